// The passkey playground (GET /{tenant_id}/playground on the public port) in real Chromium with CDP
// virtual authenticators: the page registers a passkey, logs in (known user and without a user id),
// registers and uses an MFA security key and signs a transaction, and shows each token's claims
// verified in the page against the JWKS. The tokens are verified here again with jose. A tenant without
// the flag has no playground. Screenshots go to e2e/screenshots/ (git-ignored).
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';

import { createRemoteJWKSet, jwtVerify } from 'jose';

import { E2E, PLATFORM_AUTHENTICATOR, ROAMING_AUTHENTICATOR, addVirtualAuthenticator, api, expectStatus, randomToken } from './harness.mjs';

export const SCREENSHOTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'screenshots');

const env = new E2E();
before(() => env.start(), { timeout: E2E.START_TIMEOUT });
after(() => env.stop());

const s = { tenant: null, origin: null, page: null, cdp: null };

/** runCeremony clicks a playground button and waits for the ceremony it starts to end; returns its article. */
async function runCeremony(page, button) {
  const n = await page.locator('#log article').count();
  await page.click(`#${button}`);
  await page.waitForFunction((i) => {
    const a = document.querySelectorAll('#log article')[i];
    return a && a.dataset.status !== 'running';
  }, n, { timeout: 45_000 });
  const art = page.locator('#log article').nth(n);
  const status = await art.getAttribute('data-status');
  assert.equal(status, 'ok', `${button}: ${await art.innerText()}`);
  assert.equal(await art.locator('[data-verified]').getAttribute('data-verified'), 'true', `${button}: claims not verified: ${await art.innerText()}`);
  return art;
}

/** tokenOf returns the token an article shows, verified with jose against the tenant JWKS. */
async function tokenOf(art) {
  const token = (await art.locator('details[data-step="Token"] pre').textContent()).trim();
  const keys = createRemoteJWKSet(new URL(`${env.publicURL}/${s.tenant.id}/.well-known/jwks.json`));
  const { payload } = await jwtVerify(token, keys, { audience: 'localhost', issuer: `${env.publicURL}/${s.tenant.id}` });
  return payload;
}

env.test('a. the playground is served for a tenant with the flag, and is a 404 without it', async () => {
  const port = new URL(env.publicURL).port;
  s.origin = `http://localhost:${port}`;
  const res = await api(`${env.server.adminURL}/tenants`, {
    method: 'POST',
    headers: env.server.adminHeaders(),
    body: {
      display_name: 'Playground', create_api_key: true,
      config: {
        playground: true,
        cors: { allowed_origins: [s.origin] },
        webauthn: { relying_party: { id: 'localhost', display_name: 'Playground', origins: [s.origin] }, timeout: 60000 },
      },
    },
  });
  expectStatus(res, 201, 'POST /tenants');
  s.tenant = { id: res.json.id };

  const off = await env.createTenant({ displayName: 'No playground' });
  const notFound = await api(`${env.publicURL}/${off.id}/playground`);
  assert.equal(notFound.status, 404, `playground of a tenant without the flag: ${notFound.status}`);
  const proxyOff = await api(`${env.publicURL}/${off.id}/playground/registration/initialize`, { method: 'POST', body: { user_id: 'x', username: 'x' } });
  assert.equal(proxyOff.status, 404, `playground proxy of a tenant without the flag: ${proxyOff.status}`);
  // GET /playground: the embedded mode (SQLite) redirects to its development tenant's playground; with
  // PostgreSQL there is none.
  const short = await fetch(`${env.publicURL}/playground`, { redirect: 'manual' });
  if (env.server.database) {
    assert.equal(short.status, 404);
  } else {
    assert.equal(short.status, 302);
    assert.match(short.headers.get('location'), /^\/[0-9a-f-]{36}\/playground$/);
  }

  const page = await api(`${env.publicURL}/${s.tenant.id}/playground`);
  assert.equal(page.status, 200);
  assert.match(page.headers['content-security-policy'], /script-src 'nonce-[^']+'/);
  assert.doesNotMatch(page.text, /sk_/, 'no secret key in the page');

  ({ page: s.page, cdp: s.cdp } = await env.openPage({ url: `${s.origin}/${s.tenant.id}/playground`, authenticator: PLATFORM_AUTHENTICATOR }));
  await mkdir(SCREENSHOTS, { recursive: true });
  await s.page.screenshot({ path: path.join(SCREENSHOTS, 'playground-start.png') });
});

env.test('b. register, log in as the user and without a user id', async () => {
  const page = s.page;
  assert.ok(page, 'needs the page of test a');
  const user = `alice-${randomToken(3)}`;
  await page.fill('#user-id', user);
  const reg = await runCeremony(page, 'register');
  const regClaims = await tokenOf(reg);
  assert.equal(regClaims.sub, `playground:${user}`);
  assert.equal(regClaims.ceremony, 'registration');
  const stored = JSON.parse(await reg.locator('details[data-step="Credential as stored"] pre').textContent());
  assert.equal(stored.id, regClaims.cred);
  assert.equal(stored.user_id, `playground:${user}`);

  const login = await tokenOf(await runCeremony(page, 'login-user'));
  assert.equal(login.ceremony, 'login');
  assert.equal(login.sub, `playground:${user}`);
  const discoverable = await tokenOf(await runCeremony(page, 'login-discoverable'));
  assert.equal(discoverable.sub, `playground:${user}`);
  assert.equal(discoverable.cred, regClaims.cred);
});

env.test('c. MFA with a security key, and a signed transaction', async () => {
  const page = s.page;
  assert.ok(page, 'needs the page of test a');
  await addVirtualAuthenticator(s.cdp, ROAMING_AUTHENTICATOR); // the MFA profile asks for a cross-platform key
  const mfaReg = await tokenOf(await runCeremony(page, 'mfa-register'));
  assert.equal(mfaReg.ceremony, 'mfa_registration');
  const mfaLogin = await tokenOf(await runCeremony(page, 'mfa-login'));
  assert.equal(mfaLogin.ceremony, 'mfa_login');

  const tx = await runCeremony(page, 'transaction');
  const claims = await tokenOf(tx);
  assert.equal(claims.ceremony, 'transaction');
  assert.match(claims.trans, /^pay-/);
  assert.ok(claims.trans_hash, 'trans_hash');
  await tx.locator('details[data-step="Claims (decoded)"]').scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(SCREENSHOTS, 'playground.png'), fullPage: true });
  await page.setViewportSize({ width: 1000, height: 1000 });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(SCREENSHOTS, 'playground-view.png') });
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: path.join(SCREENSHOTS, 'playground-narrow.png') });
});
