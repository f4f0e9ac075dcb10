// WebAuthn Level 3 through the browser helper (GET /js/passkeys.js) in real chromium with a CDP virtual
// authenticator: hints reach create(), a login finalize forwards signals to the Signal API, and a login
// with a credential deleted through the API makes the helper call signalUnknownCredential.
// README.md, "Signals", "Hints" and "Browser helper".
import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import { E2E, api, authenticatorCredentials, expectStatus } from './harness.mjs';

const env = new E2E();
before(() => env.start(), { timeout: E2E.START_TIMEOUT });
after(() => env.stop());

const s = { tenant: null, page: null, cdp: null, authenticatorId: null, credIds: [] };

const secret = (t) => ({ apiKey: t.apiKey });
const tenantURL = (p) => `${env.publicURL}/${s.tenant.id}${p}`;

// instrument loads the helper into the page and records what create()/get() and the Signal API receive.
async function instrument(page) {
  await page.evaluate(async (url) => {
    window.pk = await import(url);
    window.seen = { create: [], signals: [] };
    const creds = navigator.credentials;
    const create = creds.create.bind(creds);
    creds.create = (o) => {
      window.seen.create.push({ hints: o.publicKey.hints ?? null, mediation: o.mediation ?? null, extensions: Object.keys(o.publicKey.extensions || {}) });
      return create(o);
    };
    for (const name of ['signalUnknownCredential', 'signalAllAcceptedCredentials', 'signalCurrentUserDetails']) {
      const orig = PublicKeyCredential[name];
      if (typeof orig !== 'function') continue;
      PublicKeyCredential[name] = (arg) => {
        window.seen.signals.push({ name, arg });
        return orig.call(PublicKeyCredential, arg);
      };
    }
  }, `${env.publicURL}/js/passkeys.js`);
}

// registerInPage starts a registration on the server side (secret key) and finishes it with the helper.
async function registerInPage(userId, body = {}) {
  const init = await api(tenantURL('/registration/initialize'), {
    method: 'POST',
    headers: secret(s.tenant),
    body: { user_id: userId, username: `${userId}@example.com`, ...body },
  });
  expectStatus(init, 200, 'registration initialize');
  return s.page.evaluate(
    async ({ options, url }) => {
      const credential = await window.pk.create(options);
      const res = await window.pk.finalize(url, credential);
      return { credential, ...res };
    },
    { options: init.json, url: tenantURL('/registration/finalize') },
  );
}

// loginInPage runs a discoverable login from the page with the helper.
async function loginInPage() {
  return s.page.evaluate(
    async ({ init, fin }) => {
      window.seen.signals.length = 0; // only this login's calls
      const options = await (await fetch(init, { method: 'POST' })).json();
      const credential = await window.pk.get(options);
      const res = await window.pk.finalize(fin, credential);
      return { credentialId: credential.id, ...res, seen: window.seen.signals.splice(0) };
    },
    { init: tenantURL('/login/initialize'), fin: tenantURL('/login/finalize') },
  );
}

env.test('the helper is served as a cross-origin module script', async () => {
  const res = await api(`${env.publicURL}/js/passkeys.js`);
  expectStatus(res, 200, 'GET /js/passkeys.js');
  assert.match(res.headers['content-type'], /^text\/javascript/);
  assert.equal(res.headers['access-control-allow-origin'], '*');
  s.tenant = await env.createTenant({ webauthn: { hints: ['client-device'], signals: true } });
  const p = await env.openPage();
  Object.assign(s, { page: p.page, cdp: p.cdp, authenticatorId: p.authenticatorId });
  await instrument(s.page);
  assert.equal(typeof (await s.page.evaluate(() => typeof window.pk.create)), 'string');
});

env.test('hints reach create(), the tenant default and the body', async () => {
  const first = await registerInPage('user-1');
  assert.equal(first.status, 200, JSON.stringify(first.body));
  s.credIds.push(first.credential.id);
  // Another user: excludeCredentials keeps one authenticator from registering user-1 twice.
  const second = await registerInPage('user-2', { hints: ['client-device', 'hybrid'] });
  assert.equal(second.status, 200, JSON.stringify(second.body));
  s.credIds.push(second.credential.id);
  const seen = await s.page.evaluate(() => window.seen.create);
  assert.deepEqual(seen.map((c) => c.hints), [['client-device'], ['client-device', 'hybrid']]);
  // The finalize answer carried the user's signals, and the helper passed them on.
  assert.deepEqual(second.body.signals.allAcceptedCredentials[0].allAcceptedCredentialIds, [second.credential.id]);
  assert.equal(second.body.signals.currentUserDetails[0].name, 'user-2@example.com');
});

env.test('a login forwards allAcceptedCredentials and currentUserDetails', async () => {
  assert.equal(s.credIds.length, 2, 'needs the two credentials of the previous test');
  const res = await loginInPage();
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const all = res.seen.find((x) => x.name === 'signalAllAcceptedCredentials');
  const hasSignals = await s.page.evaluate(() => typeof PublicKeyCredential.signalAllAcceptedCredentials === 'function');
  if (!hasSignals) {
    // Without the Signal API the helper calls nothing; the answer still carries the signals.
    assert.deepEqual(res.signalled, []);
    return;
  }
  assert.ok(all, `signalAllAcceptedCredentials called: ${JSON.stringify(res.signalled)}`);
  assert.equal(all.arg.rpId, 'localhost');
  const user = res.credentialId === s.credIds[0] ? 'user-1' : 'user-2';
  assert.equal(all.arg.userId, Buffer.from(user).toString('base64url'));
  assert.deepEqual([...all.arg.allAcceptedCredentialIds], [res.credentialId]);
  assert.ok(res.signalled.includes('signalCurrentUserDetails'), JSON.stringify(res.signalled));
});

env.test('a credential deleted through the API: the failed login calls signalUnknownCredential', async (t) => {
  assert.equal(s.credIds.length, 2, 'needs the two credentials of the earlier test');
  // Delete every credential the authenticator holds, so whichever it offers is unknown.
  for (const id of s.credIds) {
    expectStatus(await api(tenantURL(`/credentials/${id}`), { method: 'DELETE', headers: secret(s.tenant) }), 204, 'DELETE credential');
  }
  // user-2's signals from the signals route (after the deletion: no accepted credential), sent by the
  // helper as an application would after its own sign-in.
  const sig = await api(tenantURL('/users/user-2/signals'), { headers: secret(s.tenant) });
  expectStatus(sig, 200, 'GET signals');
  assert.deepEqual(sig.json.allAcceptedCredentials[0].allAcceptedCredentialIds, []);
  const start = await authenticatorCredentials(s.cdp, s.authenticatorId);
  const sent = await s.page.evaluate((signals) => window.pk.sendSignals(signals), sig.json);
  await s.page.evaluate(() => window.seen.signals.splice(0));
  const before = await authenticatorCredentials(s.cdp, s.authenticatorId);
  t.diagnostic(`chromium: signalAllAcceptedCredentials([]) for user-2 (${JSON.stringify(sent)}): ${start.length} credentials before, ${before.length} after`);
  if (sent.includes('signalAllAcceptedCredentials')) {
    assert.ok(!before.some((c) => Buffer.from(c.credentialId, 'base64').toString('base64url') === s.credIds[1]), 'user-2 credential removed');
  }
  const res = await loginInPage();
  assert.equal(res.status, 401, JSON.stringify(res.body));
  assert.equal(res.body.code, 'assertion_failed');
  assert.deepEqual(res.body.signals.unknownCredential, { rpId: 'localhost', credentialId: res.credentialId });
  const hasSignal = await s.page.evaluate(() => typeof PublicKeyCredential.signalUnknownCredential === 'function');
  const after = await authenticatorCredentials(s.cdp, s.authenticatorId);
  t.diagnostic(`chromium: signalUnknownCredential ${hasSignal ? 'exists' : 'is missing'}; virtual authenticator held ${before.length} credentials, holds ${after.length} after the signal`);
  if (!hasSignal) return;
  const call = res.seen.find((x) => x.name === 'signalUnknownCredential');
  assert.ok(call, `signalUnknownCredential called: ${JSON.stringify(res.signalled)}`);
  assert.deepEqual(call.arg, { rpId: 'localhost', credentialId: res.credentialId });
  assert.ok(res.signalled.includes('signalUnknownCredential'), JSON.stringify(res.signalled));
  // Chromium's virtual authenticator honours the signal: the credential is gone.
  assert.ok(!after.some((c) => Buffer.from(c.credentialId, 'base64').toString('base64url') === res.credentialId), 'signalled credential removed');
});
