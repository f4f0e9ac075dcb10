// The admin console (GET /console on the admin port) in real Chromium: sign-in with the admin token,
// a tenant created, its config edited (a refused value shows the API's message by its field, and
// nothing is stored), an API key created (secret shown once) and revoked, a user found and its
// passkey renamed and deleted, the audit log filtered, a signing key rotated, the tenant deleted after
// confirmation; without a session every page redirects to sign-in, and a form post without the CSRF
// token is refused. Screenshots of each page go to e2e/screenshots/ (git-ignored).
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before } from 'node:test';
import { fileURLToPath } from 'node:url';

import { E2E, api, browserCreate, expectStatus, randomToken } from './harness.mjs';

const SCREENSHOTS = path.join(path.dirname(fileURLToPath(import.meta.url)), 'screenshots');

const env = new E2E();
before(() => env.start(), { timeout: E2E.START_TIMEOUT });
after(() => env.stop());

const s = { page: null, shop: null, users: null, user: null };
const consoleURL = (p) => `${env.server.adminURL}/console${p}`;
const shot = (name, opts = {}) => s.page.screenshot({ path: path.join(SCREENSHOTS, `console-${name}.png`), fullPage: true, ...opts });
const heading = (text) => s.page.locator('h1', { hasText: text }).waitFor();
const flash = async (text) => {
  await s.page.locator('.flash', { hasText: text }).waitFor();
};

env.test('a. without a session every console page redirects to sign-in; then sign in', async () => {
  await mkdir(SCREENSHOTS, { recursive: true });
  const { page } = await env.openPage({ url: consoleURL('/tenants'), authenticator: null });
  s.page = page;
  page.on('dialog', (d) => d.accept());
  const some = '00000000-0000-4000-8000-000000000000';
  for (const p of ['', '/tenants', `/tenants/${some}`, `/tenants/${some}/config`, `/tenants/${some}/keys`,
    `/tenants/${some}/signing-keys`, `/tenants/${some}/users`, `/tenants/${some}/user?id=x`, `/tenants/${some}/audit`,
    `/tenants/${some}/delete`, '/metrics']) {
    const res = await fetch(consoleURL(p), { redirect: 'manual' });
    assert.equal(res.status, 303, `GET /console${p} without a session: ${res.status}`);
    assert.match(res.headers.get('location'), /^\/console\/sign-in(\?|$)/, `GET /console${p}`);
  }
  assert.match(page.url(), /\/console\/sign-in\?next=/);
  await heading('Sign in');
  await page.fill('#token', 'adm_not_the_token_but_long_enough');
  await page.click('button[type=submit]:has-text("Sign in")');
  await page.locator('#token-error').waitFor();
  await shot('signin');
  await page.fill('#token', env.server.adminToken);
  await page.click('button[type=submit]:has-text("Sign in")');
  await heading('Tenants');
  assert.match(page.url(), /\/console\/tenants$/);
});

env.test('b. create a tenant and edit its config; a refused value shows the error and stores nothing', async () => {
  const page = s.page;
  await page.fill('#display_name', 'Console Shop');
  await page.fill('#origin', 'https://shop.example.com');
  await page.click('button:has-text("Create tenant")');
  await heading('Configuration');
  await flash('Console Shop created');
  s.shop = page.url().match(/tenants\/([0-9a-f-]{36})\/config/)[1];

  await page.fill('#f-webauthn-timeout', '5');
  await page.fill('#f-webauthn-relying-party-origins', 'https://shop.example.com\nhttps://evil.example.org');
  await page.click('button:has-text("Save configuration")');
  const err = page.locator('#f-webauthn-timeout-error');
  await err.waitFor();
  assert.match(await err.innerText(), /webauthn\.timeout must be between 10000 and 600000 milliseconds/);
  assert.match(await page.locator('#f-webauthn-relying-party-origins-error').innerText(), /is not on the relying party id "shop.example.com"/);
  assert.equal(await page.locator('#f-webauthn-timeout').getAttribute('aria-invalid'), 'true');
  await shot('config-error');
  const stored = await api(`${env.server.adminURL}/tenants/${s.shop}`, { headers: env.server.adminHeaders() });
  assert.equal(stored.json.config.webauthn.timeout, 60000, 'nothing stored by the refused form');
  assert.deepEqual(stored.json.config.webauthn.relying_party.origins, ['https://shop.example.com']);

  await page.fill('#f-webauthn-timeout', '120000');
  await page.fill('#f-webauthn-relying-party-origins', 'https://shop.example.com\nhttps://www.shop.example.com');
  await page.selectOption('#f-webauthn-user-verification', 'preferred');
  await page.click('button:has-text("Save configuration")');
  await flash('Configuration saved');
  const saved = await api(`${env.server.adminURL}/tenants/${s.shop}`, { headers: env.server.adminHeaders() });
  assert.equal(saved.json.config.webauthn.timeout, 120000);
  assert.equal(saved.json.config.webauthn.user_verification, 'preferred');
  assert.equal(saved.json.config.webauthn.relying_party.origins.length, 2);
  await shot('config');
});

env.test('c. create an API key (secret shown once) and revoke it', async () => {
  const page = s.page;
  await page.click('nav.tabs a:has-text("API keys")');
  await heading('API keys');
  await page.fill('#key-name', 'ci');
  await page.click('button:has-text("Create key")');
  const secret = (await page.locator('#new-secret').innerText()).trim();
  assert.match(secret, /^sk_/);
  await shot('keys');
  // The key works, and the list shows it masked with its last use.
  const keys = await api(`${env.server.adminURL}/tenants/${s.shop}/secrets/api`, { headers: env.server.adminHeaders() });
  assert.ok(keys.json.some((k) => k.name === 'ci'), JSON.stringify(keys.json));
  // The same page again: its heading is there before the new page arrives, so wait for the secret to
  // go (a timeout here means it is shown again).
  await page.click('nav.tabs a:has-text("API keys")');
  await page.locator('#new-secret').waitFor({ state: 'detached', timeout: 10000 });
  await heading('API keys');
  assert.doesNotMatch(await page.content(), new RegExp(secret));
  await page.click('button[aria-label="Revoke ci"]');
  await flash('API key revoked');
  assert.equal(await page.locator('button[aria-label="Revoke ci"]').count(), 0);
});

env.test('d. find a user, rename and delete its passkey, filter the audit log', async () => {
  const page = s.page;
  // A user with a passkey on a tenant of the test page's origin, registered in the browser.
  const t = await env.createTenant({ displayName: 'Console Users' });
  s.users = t.id;
  s.user = `user-${randomToken(3)}`;
  const { page: webPage } = await env.openPage();
  const options = await api(`${env.publicURL}/${t.id}/registration/initialize`, {
    method: 'POST', headers: { apiKey: t.apiKey }, body: { user_id: s.user, username: 'dora@example.com' },
  });
  expectStatus(options, 200, 'registration/initialize');
  const credential = await browserCreate(webPage, options.json);
  expectStatus(await api(`${env.publicURL}/${t.id}/registration/finalize`, { method: 'POST', body: credential }), 200, 'registration/finalize');

  await page.goto(consoleURL(`/tenants/${t.id}/users`));
  await heading('Users');
  await page.fill('#q', 'nobody-here');
  await page.click('button:has-text("Find")');
  await page.locator('text=No user with the id').waitFor();
  await page.fill('#q', s.user);
  await page.click('button:has-text("Find")');
  await page.locator(`a:has-text("${s.user}")`).waitFor();
  await shot('users');
  await page.click(`a:has-text("${s.user}")`);
  await heading(`User ${s.user}`);
  await page.locator('.credential').waitFor();
  await shot('user');

  await page.fill(`#name-${credential.id}`, 'Work laptop');
  await page.click('button:has-text("Rename")');
  await flash('Credential renamed');
  await page.locator('.credential strong', { hasText: 'Work laptop' }).waitFor();
  await page.click('button:has-text("Delete credential")');
  await flash('Credential deleted');
  await page.locator('text=No credentials.').waitFor();

  await page.click('nav.tabs a:has-text("Audit log")');
  await heading('Audit log');
  await page.selectOption('#type', ['webauthn_credential_updated', 'webauthn_credential_deleted']);
  await page.fill('#actor', s.user);
  await page.click('button:has-text("Filter")');
  await page.locator('p[role=status]', { hasText: '2 events' }).waitFor({ timeout: 10_000 }).catch(async () => {
    // The audit log writes in batches every 200 ms: once more.
    await page.click('button:has-text("Filter")');
    await page.locator('p[role=status]', { hasText: '2 events' }).waitFor();
  });
  const types = await page.locator('table.audit tbody code:not(.small)').allInnerTexts();
  assert.deepEqual(types.sort(), ['webauthn_credential_deleted', 'webauthn_credential_updated']);
  await shot('audit');
});

env.test('e. signing keys, metrics, and a tenant deleted after confirmation', async () => {
  const page = s.page;
  await page.goto(consoleURL(`/tenants/${s.users}/signing-keys`));
  await heading('Signing keys');
  const before = await page.locator('tbody tr').count();
  await page.fill('#overlap', '1');
  await page.click('button:has-text("Rotate the signing key")');
  await flash('Rotated');
  assert.equal(await page.locator('tbody tr').count(), before + 1);
  await shot('signing');

  await page.click('header.top a:has-text("Metrics")');
  await heading('Metrics at a glance');
  await page.locator('td', { hasText: 'Console Users' }).waitFor();
  await shot('metrics');

  await page.goto(consoleURL(`/tenants/${s.shop}`));
  await heading('Console Shop');
  await shot('tenant');
  await page.click('a:has-text("Delete this tenant")');
  await heading('Delete Console Shop?');
  await page.click('button:has-text("Delete the tenant")');
  await flash('Tenant deleted');
  assert.equal(await page.locator('td a', { hasText: 'Console Shop' }).count(), 0);
  await shot('tenants');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(consoleURL(`/tenants/${s.users}/config`));
  await heading('Configuration');
  await shot('narrow', { fullPage: false });
});

env.test('f. a form post without the CSRF token is refused', async () => {
  const page = s.page;
  const req = page.context().request; // the signed-in browser's cookies, no form token
  const res = await req.post(consoleURL('/tenants'), { form: { display_name: 'Forged', origin: 'https://forged.example.com' }, maxRedirects: 0 });
  assert.equal(res.status(), 403);
  const res2 = await req.post(consoleURL('/tenants'), { form: { _csrf: 'guess', display_name: 'Forged', origin: 'https://forged.example.com' }, maxRedirects: 0 });
  assert.equal(res2.status(), 403);
  const list = await api(`${env.server.adminURL}/tenants`, { headers: env.server.adminHeaders() });
  assert.ok(!list.json.some((t) => t.display_name === 'Forged'), 'nothing created');
  // Signing out ends the session.
  await page.goto(consoleURL('/tenants'));
  await page.click('button:has-text("Sign out")');
  await heading('Sign in');
  await page.goto(consoleURL('/tenants'));
  await heading('Sign in');
});
