// MFA ceremonies end to end (docs/hanko-compatibility.md#mfa): the official
// @teamhanko/passkeys-sdk on the server side (user(id).mfa.registration / .mfa.login), Debian chromium
// with a ROAMING virtual authenticator (USB, non-resident) on the browser side, the real passkey-server
// in between. Tokens are verified with jose against the tenant JWKS.
//
// The tests of this file run in order and share state: test a registers the MFA credential that b and
// c use (each says so when that state is missing).
import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import { tenant } from '@teamhanko/passkeys-sdk';
import { createRemoteJWKSet, jwtVerify } from 'jose';

import { E2E, ROAMING_AUTHENTICATOR, api, authenticatorCredentials, browserCreate, browserGet } from './harness.mjs';

const env = new E2E();
before(() => env.start(), { timeout: E2E.START_TIMEOUT });
after(() => env.stop());

const USER = 'user-mfa';

// State shared by the tests, in order.
const s = {
  tenant: null, // {id, apiKey}
  sdk: null,
  page: null, // the page whose roaming authenticator holds the MFA credential
  cdp: null,
  authenticatorId: null,
  credId: null, // the MFA credential id (base64url)
};

const jsonHeaders = { 'Content-Type': 'application/json' };
const tenantURL = (t, p) => `${env.publicURL}/${t.id}${p}`;
const b64urlText = (text) => Buffer.from(text, 'utf8').toString('base64url');

function need(value, what) {
  if (!value) throw new Error(`this test needs ${what} from an earlier test of this file, which failed`);
  return value;
}

/** verifyToken checks a finalize token against the tenant's JWKS (GET /{tenant}/.well-known/jwks.json). */
async function verifyToken(token, t, { sub, cred, ceremony }) {
  assert.equal(typeof token, 'string', 'token');
  const keys = createRemoteJWKSet(new URL(tenantURL(t, '/.well-known/jwks.json')));
  const { payload, protectedHeader } = await jwtVerify(token, keys, { audience: 'localhost', maxTokenAge: '5m' });
  assert.ok(protectedHeader.kid, 'token header has a kid');
  assert.ok(Array.isArray(payload.aud) && payload.aud.includes('localhost'), `aud ${JSON.stringify(payload.aud)}`);
  assert.ok(payload.exp > payload.iat && payload.exp - payload.iat <= 300, `exp - iat = ${payload.exp - payload.iat}`);
  assert.equal(payload.iss, `${env.publicURL}/${t.id}`, 'iss');
  assert.equal(payload.sub, sub, 'sub');
  assert.equal(payload.cred, cred, 'cred');
  assert.equal(payload.ceremony, ceremony, 'ceremony claim');
  return payload;
}

/** expectJSONError checks a 4xx answer with a JSON error body; returns the body. */
function expectJSONError(res, what) {
  assert.ok(res.status >= 400 && res.status < 500, `${what}: status ${res.status}, want 4xx; body ${res.text}`);
  assert.ok(res.json && typeof res.json === 'object', `${what}: error body is not JSON: ${res.text}`);
  assert.equal(typeof res.json.title, 'string', `${what}: error body has no title: ${res.text}`);
  assert.equal(res.json.status, res.status, `${what}: error body status`);
  return res.json;
}

// ---------------------------------------------------------------------------------------------------

env.test('a. MFA registration through the SDK with a roaming, non-resident authenticator (P10, P11)', async () => {
  s.tenant = await env.createTenant({ displayName: 'E2E MFA' });
  s.sdk = tenant({ tenantId: s.tenant.id, apiKey: s.tenant.apiKey, baseUrl: env.publicURL });
  ({ page: s.page, cdp: s.cdp, authenticatorId: s.authenticatorId } = await env.openPage({ authenticator: ROAMING_AUTHENTICATOR }));

  const options = await s.sdk.user(USER).mfa.registration.initialize({ username: 'bob' });
  const pk = options?.publicKey;
  assert.ok(pk, `creation options are wrapped in publicKey: ${JSON.stringify(options)}`);
  assert.equal(pk.rp.id, 'localhost');
  assert.equal(pk.user.id, b64urlText(USER), 'user.id = base64url(user_id)');
  assert.equal(pk.user.name, 'bob');
  assert.ok(Buffer.from(pk.challenge, 'base64url').length >= 16, 'challenge');
  // The tenant's MFA profile defaults (docs/hanko-compatibility.md#tenant-config): a security key, no resident key.
  const sel = pk.authenticatorSelection;
  assert.ok(sel, `authenticatorSelection: ${JSON.stringify(pk)}`);
  assert.equal(sel.authenticatorAttachment, 'cross-platform', `authenticatorSelection ${JSON.stringify(sel)}`);
  assert.equal(sel.residentKey, 'discouraged', `authenticatorSelection ${JSON.stringify(sel)}`);
  assert.equal(sel.requireResidentKey, false, `authenticatorSelection ${JSON.stringify(sel)}`);
  assert.equal(sel.userVerification, 'preferred', `authenticatorSelection ${JSON.stringify(sel)}`);

  const credential = await browserCreate(s.page, options);
  assert.equal(credential.authenticatorAttachment, 'cross-platform');
  const held = await authenticatorCredentials(s.cdp, s.authenticatorId);
  assert.equal(held.length, 1, `the roaming authenticator holds ${held.length} credentials`);
  assert.equal(held[0].isResidentCredential, false, 'the MFA credential is not discoverable (non-resident)');

  const res = await s.sdk.user(USER).mfa.registration.finalize(credential);
  assert.ok(res?.token, `mfa registration finalize answered ${JSON.stringify(res)}`);
  await verifyToken(res.token, s.tenant, { sub: USER, cred: credential.id, ceremony: 'mfa_registration' });
  s.credId = credential.id;
});

env.test('b. MFA login through the SDK (P12, P13): allowCredentials names the MFA credential', async () => {
  const page = need(s.page, 'the MFA credential (test a)');
  const credId = need(s.credId, 'the MFA credential (test a)');

  const options = await s.sdk.user(USER).mfa.login.initialize();
  const pk = options?.publicKey;
  assert.ok(pk, `request options are wrapped in publicKey: ${JSON.stringify(options)}`);
  assert.equal(pk.rpId, 'localhost');
  assert.ok(Array.isArray(pk.allowCredentials), `allowCredentials: ${JSON.stringify(pk)}`);
  assert.ok(pk.allowCredentials.some((c) => c.id === credId && c.type === 'public-key'),
    `allowCredentials ${JSON.stringify(pk.allowCredentials)} lacks ${credId}`);

  const assertion = await browserGet(page, options);
  assert.equal(assertion.id, credId);
  const res = await s.sdk.user(USER).mfa.login.finalize(assertion);
  assert.ok(res?.token, `mfa login finalize answered ${JSON.stringify(res)}`);
  await verifyToken(res.token, s.tenant, { sub: USER, cred: credId, ceremony: 'mfa_login' });
});

env.test('c. the MFA credential is listed with is_mfa, and plain passkey login cannot use it', async () => {
  const page = need(s.page, 'the MFA credential (test a)');
  const credId = need(s.credId, 'the MFA credential (test a)');

  // P14 through the SDK.
  const list = await s.sdk.user(USER).credentials();
  assert.ok(Array.isArray(list), `credentials(): ${JSON.stringify(list)}`);
  const c = list.find((x) => x.id === credId);
  assert.ok(c, `credential ${credId} not in ${JSON.stringify(list)}`);
  assert.equal(c.is_mfa, true, `is_mfa: ${JSON.stringify(c)}`);
  assert.equal(c.user_id, USER);

  // Non-discoverable passkey login for the user: the MFA credential is not offered, and the user has no
  // other credential.
  const named = await api(tenantURL(s.tenant, '/login/initialize'), {
    method: 'POST',
    headers: { ...jsonHeaders, apiKey: s.tenant.apiKey },
    body: { user_id: USER },
  });
  const err = expectJSONError(named, 'login/initialize with user_id of a user who has only an MFA credential');
  assert.equal(named.status, 400, `login/initialize with user_id: ${named.status} ${named.text}`);
  assert.equal(err.code, 'no_credentials', `error code: ${named.text}`);

  // Discoverable passkey login: the browser is made to answer with the MFA credential anyway (the
  // challenge is the login session's; allowCredentials added by the page). The server must refuse it.
  const login = await s.sdk.login.initialize();
  const lpk = login.publicKey;
  assert.ok(!lpk.allowCredentials || lpk.allowCredentials.length === 0, 'discoverable: no allowCredentials');
  const forced = { ...lpk, allowCredentials: [{ type: 'public-key', id: credId }] };
  const assertion = await browserGet(page, forced);
  assert.equal(assertion.id, credId);
  const fin = await api(tenantURL(s.tenant, '/login/finalize'), { method: 'POST', headers: jsonHeaders, body: assertion });
  // A non-resident credential returns no userHandle, which alone refuses a discoverable login.
  expectJSONError(fin, 'login/finalize (plain passkey login) with an MFA credential and no userHandle');
  // The userHandle is not covered by the signature: supply the right one, so that only the server's
  // rule "plain login never accepts MFA credentials" (docs/hanko-compatibility.md#mfa) can refuse it. A fresh session,
  // since the first one was consumed by the failed finalize.
  const login2 = await s.sdk.login.initialize();
  const assertion2 = await browserGet(page, { ...login2.publicKey, allowCredentials: [{ type: 'public-key', id: credId }] });
  assertion2.response.userHandle = b64urlText(USER);
  const fin2 = await api(tenantURL(s.tenant, '/login/finalize'), { method: 'POST', headers: jsonHeaders, body: assertion2 });
  const err2 = expectJSONError(fin2, 'login/finalize (plain passkey login) with an MFA credential and its user\'s handle');
  assert.equal(err2.code, 'assertion_failed', `error code: ${fin2.text}`);
  assert.doesNotMatch(err2.details ?? '', /blank User Handle/, `refused for a missing user handle instead of by the MFA rule: ${fin2.text}`);
  await assert.rejects(s.sdk.login.finalize(assertion2), /Request failed/, 'the SDK\'s login.finalize must fail too');
  // Control: the MFA credential still works for MFA login afterwards.
  const again = await browserGet(page, await s.sdk.user(USER).mfa.login.initialize());
  const ok = await s.sdk.user(USER).mfa.login.finalize(again);
  await verifyToken(ok.token, s.tenant, { sub: USER, cred: credId, ceremony: 'mfa_login' });
});

env.test('d. an MFA registration session cannot be finalized on the plain /registration/finalize route', async () => {
  const t = s.tenant ?? (await env.createTenant({ displayName: 'E2E MFA d' }));
  const sdk = s.sdk ?? tenant({ tenantId: t.id, apiKey: t.apiKey, baseUrl: env.publicURL });
  // A fresh roaming authenticator and another user, so that excludeCredentials does not interfere.
  const { page } = await env.openPage({ authenticator: ROAMING_AUTHENTICATOR });
  const user = 'user-mfa-2';
  const credential = await browserCreate(page, await sdk.user(user).mfa.registration.initialize({ username: 'carol' }));

  const plain = await api(tenantURL(t, '/registration/finalize'), { method: 'POST', headers: jsonHeaders, body: credential });
  const err = expectJSONError(plain, 'registration/finalize with an MFA registration session');
  assert.equal(err.code, 'session_not_found', `error code: ${plain.text}`);
  // The same through the SDK (which sends the API key).
  await assert.rejects(sdk.registration.finalize(credential), /Request failed/, 'SDK registration.finalize of an MFA session');
  const listed = await sdk.user(user).credentials();
  assert.ok(!listed.some((c) => c.id === credential.id), `no credential stored by the refused finalize: ${JSON.stringify(listed)}`);

  // The MFA routes need the secret key.
  const noKey = await api(tenantURL(t, '/mfa/registration/finalize'), { method: 'POST', headers: jsonHeaders, body: credential });
  assert.equal(noKey.status, 401, `mfa/registration/finalize without a key: ${noKey.status} ${noKey.text}`);
  const noKeyLogin = await api(tenantURL(t, '/mfa/login/initialize'), { method: 'POST', headers: jsonHeaders, body: { user_id: USER } });
  assert.equal(noKeyLogin.status, 401, `mfa/login/initialize without a key: ${noKeyLogin.status} ${noKeyLogin.text}`);
});
