// Passkey ceremonies end to end: the official @teamhanko/passkeys-sdk on the server side, Debian
// chromium with a virtual authenticator on the browser side, the real passkey-server in between.
// Wire shapes: docs/hanko-compatibility.md#public-routes; README.md (key-scoped routes).
//
// The tests of this file run in order and share state: test a registers the credential that b, c and d
// use (each says so when that state is missing).
import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import { tenant } from '@teamhanko/passkeys-sdk';
import { createLocalJWKSet, createRemoteJWKSet, jwtVerify } from 'jose';

import { E2E, api, browserCreate, browserFetch, browserGet } from './harness.mjs';

const env = new E2E();
before(() => env.start(), { timeout: E2E.START_TIMEOUT });
after(() => env.stop());

// State shared by the tests, in order.
const s = {
  tenantA: null, // {id, apiKey}: origins and CORS = the test page
  sdkA: null,
  page: null, // the localhost page with the platform authenticator that holds user-1's passkey
  credId: null, // user-1's credential id (base64url)
  tenantB: null, // a second tenant, for the wrong-origin and cross-tenant checks
};

const jsonHeaders = { 'Content-Type': 'application/json' };
const bearer = (key) => ({ Authorization: `Bearer ${key}` });
const tenantURL = (t, p) => `${env.publicURL}/${t.id}${p}`;
const b64urlText = (text) => Buffer.from(text, 'utf8').toString('base64url');

function need(value, what) {
  if (!value) throw new Error(`this test needs ${what} from an earlier test of this file, which failed`);
  return value;
}

/**
 * verifyToken checks a finalize token against the tenant's JWKS (remote: GET
 * /{tenant}/.well-known/jwks.json through jose, or the given local JWKS) and the claims of docs/hanko-compatibility.md#tokens.
 */
async function verifyToken(token, t, { sub, cred, jwks } = {}) {
  assert.equal(typeof token, 'string', 'token');
  const keys = jwks ? createLocalJWKSet(jwks) : createRemoteJWKSet(new URL(tenantURL(t, '/.well-known/jwks.json')));
  const { payload, protectedHeader } = await jwtVerify(token, keys, { audience: 'localhost', maxTokenAge: '5m' });
  assert.ok(protectedHeader.kid, 'token header has a kid');
  assert.ok(Array.isArray(payload.aud) && payload.aud.includes('localhost'), `aud ${JSON.stringify(payload.aud)}`);
  assert.equal(typeof payload.iat, 'number');
  assert.equal(typeof payload.exp, 'number');
  assert.ok(payload.exp > payload.iat && payload.exp - payload.iat <= 300, `exp - iat = ${payload.exp - payload.iat}`);
  assert.equal(payload.iss, `${env.publicURL}/${t.id}`, 'iss = PASSKEY_PUBLIC_URL/{tenant_id} (README)');
  if (sub !== undefined) assert.equal(payload.sub, sub, 'sub');
  if (cred !== undefined) assert.equal(payload.cred, cred, 'cred');
  return payload;
}

/** expectJSONError checks a 4xx answer with the error body of docs/hanko-compatibility.md#error-body. */
function expectJSONError(res, what) {
  assert.equal(res.error, undefined, `${what}: the browser refused the request: ${res.error}`);
  assert.ok(res.status >= 400 && res.status < 500, `${what}: status ${res.status}, want 4xx; body ${res.text}`);
  assert.ok(res.json && typeof res.json === 'object', `${what}: error body is not JSON: ${res.text}`);
  assert.equal(typeof res.json.title, 'string', `${what}: error body has no title: ${res.text}`);
  assert.equal(res.json.status, res.status, `${what}: error body status`);
  return res.json;
}

function assertCreationOptions(options, { userId, username }) {
  const pk = options?.publicKey;
  assert.ok(pk, `creation options are wrapped in publicKey: ${JSON.stringify(options)}`);
  assert.equal(pk.rp.id, 'localhost');
  assert.equal(pk.user.id, b64urlText(userId), 'user.id = base64url(user_id)');
  assert.equal(pk.user.name, username);
  assert.ok(Buffer.from(pk.challenge, 'base64url').length >= 16, 'challenge');
  assert.ok(pk.pubKeyCredParams.some((p) => p.alg === -7), 'ES256 offered');
}

function clientData(credential) {
  return JSON.parse(Buffer.from(credential.response.clientDataJSON, 'base64url').toString('utf8'));
}

// ---------------------------------------------------------------------------------------------------

env.test('a. registration through the SDK (P3, P4); the token verifies against the tenant JWKS', async () => {
  s.tenantA = await env.createTenant({ displayName: 'E2E A' });
  s.sdkA = tenant({ tenantId: s.tenantA.id, apiKey: s.tenantA.apiKey, baseUrl: env.publicURL });
  ({ page: s.page } = await env.openPage());

  const options = await s.sdkA.registration.initialize({ userId: 'user-1', username: 'alice' });
  assertCreationOptions(options, { userId: 'user-1', username: 'alice' });
  const credential = await browserCreate(s.page, options);
  assert.equal(clientData(credential).origin, env.pageOrigin);

  const res = await s.sdkA.registration.finalize(credential);
  assert.ok(res?.token, `finalize answered ${JSON.stringify(res)}`);
  const jwks = await s.sdkA.jwks();
  await verifyToken(res.token, s.tenantA, { sub: 'user-1', cred: credential.id, jwks });
  s.credId = credential.id;
});

env.test('b. usernameless login from the page itself (P5, P6 over CORS, no API key)', async () => {
  const page = need(s.page, 'the registered passkey (test a)');
  need(s.credId, 'the registered passkey (test a)');

  const init = await browserFetch(page, tenantURL(s.tenantA, '/login/initialize'), { method: 'POST' });
  assert.equal(init.error, undefined, `login/initialize from ${env.pageOrigin} refused by the browser: ${init.error}`);
  assert.equal(init.status, 200, `login/initialize: ${init.status} ${init.text}`);
  // (A readable answer means the server sent a matching Access-Control-Allow-Origin; the page itself
  // cannot see that header.)
  const pk = init.json.publicKey;
  assert.equal(pk.rpId, 'localhost');
  assert.ok(!pk.allowCredentials || pk.allowCredentials.length === 0, 'usernameless: no allowCredentials');

  const assertion = await browserGet(page, init.json);
  assert.equal(assertion.id, s.credId);
  assert.equal(Buffer.from(assertion.response.userHandle, 'base64url').toString('utf8'), 'user-1');

  // A JSON body makes this a preflighted request: the tenant's CORS must answer the preflight too.
  const fin = await browserFetch(page, tenantURL(s.tenantA, '/login/finalize'), { method: 'POST', body: assertion });
  assert.equal(fin.error, undefined, `login/finalize from ${env.pageOrigin} refused by the browser: ${fin.error}`);
  assert.equal(fin.status, 200, `login/finalize: ${fin.status} ${fin.text}`);
  await verifyToken(fin.json.token, s.tenantA, { sub: 'user-1', cred: s.credId });
});

env.test('c1. the SDK lists the user\'s credential (P14) with its transports', async () => {
  need(s.credId, 'the registered passkey (test a)');
  const list = await s.sdkA.user('user-1').credentials();
  assert.ok(Array.isArray(list), `credentials(): ${JSON.stringify(list)}`);
  const c = list.find((x) => x.id === s.credId);
  assert.ok(c, `credential ${s.credId} not in ${JSON.stringify(list)}`);
  assert.equal(c.user_id, 'user-1');
  assert.equal(c.is_mfa, false);
  assert.equal(typeof c.public_key, 'string');
  assert.equal(typeof c.backup_eligible, 'boolean');
  assert.equal(typeof c.backup_state, 'boolean');
  assert.ok(Array.isArray(c.transports) && c.transports.length > 0, `transports: ${JSON.stringify(c.transports)}`);
  assert.ok(c.transports.includes('internal'), `transports: ${JSON.stringify(c.transports)}`);
  // The login of test b has been recorded.
  assert.ok(c.last_used_at, 'last_used_at');

  const other = await s.sdkA.user('nobody').credentials();
  assert.deepEqual(other, [], 'an unknown user has no credentials (an empty list, not null)');
});

env.test('c2. CORS: a page on an origin the tenant does not allow cannot call the API', async () => {
  need(s.tenantA, 'tenant A (test a)');
  const other = await env.startOtherPageServer();
  const { page } = await env.openPage({ url: other.url, authenticator: null, expectCORSRefusal: true });
  const res = await browserFetch(page, tenantURL(s.tenantA, '/login/initialize'), { method: 'POST', body: {} });
  assert.ok(res.error, `a fetch from ${other.origin} should be refused by the browser, got ${res.status} ${res.text}`);
  // The same request from the allowed origin goes through.
  const ok = await browserFetch(s.page, tenantURL(s.tenantA, '/login/initialize'), { method: 'POST', body: {} });
  assert.equal(ok.error, undefined, ok.error);
  assert.equal(ok.status, 200, ok.text);
});

env.test('c3. wrong origin: a clientDataJSON from an origin the tenant does not list is rejected (4xx JSON)', async () => {
  // Tenant B first lists the page's origin, so that a passkey can be registered; then its origins are
  // replaced with http://localhost:1. The browser still creates and gets credentials for RP ID localhost
  // (its origin is on that RP ID), so only the server's origin check can refuse them.
  s.tenantB = await env.createTenant({ displayName: 'E2E B' });
  const sdkB = tenant({ tenantId: s.tenantB.id, apiKey: s.tenantB.apiKey, baseUrl: env.publicURL });
  const { page } = await env.openPage();
  const created = await browserCreate(page, await sdkB.registration.initialize({ userId: 'user-b', username: 'bea' }));
  const reg = await sdkB.registration.finalize(created);
  await verifyToken(reg.token, s.tenantB, { sub: 'user-b', cred: created.id });

  await env.putConfig(s.tenantB.id, { displayName: 'E2E B', origins: ['http://localhost:1'] });
  await new Promise((r) => setTimeout(r, 1500)); // > 2 x PASSKEY_CACHE_REFRESH, should the cache be slow

  // Login: the assertion is valid in every way but its origin.
  const loginOptions = await sdkB.login.initialize();
  const assertion = await browserGet(page, loginOptions);
  assert.equal(assertion.id, created.id);
  assert.equal(clientData(assertion).origin, env.pageOrigin);
  const bad = await api(tenantURL(s.tenantB, '/login/finalize'), { method: 'POST', headers: jsonHeaders, body: assertion });
  expectJSONError(bad, 'login/finalize with a clientDataJSON from an origin the tenant does not list');

  // Registration likewise (on a fresh authenticator, so that the passkey above stays the only one).
  const { page: page2 } = await env.openPage();
  const created2 = await browserCreate(page2, await sdkB.registration.initialize({ userId: 'user-b2', username: 'bob2' }));
  const badReg = await api(tenantURL(s.tenantB, '/registration/finalize'), { method: 'POST', headers: jsonHeaders, body: created2 });
  expectJSONError(badReg, 'registration/finalize with a clientDataJSON from an origin the tenant does not list');
  const listed = await sdkB.user('user-b2').credentials();
  assert.deepEqual(listed, [], 'a refused registration stores no credential');

  // Control: with the page's origin listed again, the same passkey logs in.
  await env.putConfig(s.tenantB.id, { displayName: 'E2E B' });
  await new Promise((r) => setTimeout(r, 1500));
  const again = await browserGet(page, await sdkB.login.initialize());
  const good = await sdkB.login.finalize(again);
  await verifyToken(good.token, s.tenantB, { sub: 'user-b', cred: created.id });
});

env.test('d. delete: credential(id).remove() (P17); the passkey can no longer log in', async () => {
  const page = need(s.page, 'the registered passkey (test a)');
  const credId = need(s.credId, 'the registered passkey (test a)');

  // Another tenant's key cannot delete it.
  if (s.tenantB) {
    const sdkB = tenant({ tenantId: s.tenantB.id, apiKey: s.tenantB.apiKey, baseUrl: env.publicURL });
    await assert.rejects(sdkB.credential(credId).remove(), /Request failed/, 'tenant B must not delete tenant A\'s credential');
  }
  const wrongKey = await api(tenantURL(s.tenantA, `/credentials/${credId}`), {
    method: 'DELETE',
    headers: { apiKey: s.tenantB ? s.tenantB.apiKey : 'sk_not_a_key' },
  });
  expectJSONError(wrongKey, 'DELETE with another tenant\'s API key');

  await s.sdkA.credential(credId).remove();
  const list = await s.sdkA.user('user-1').credentials();
  assert.ok(!list.some((c) => c.id === credId), `deleted credential still listed: ${JSON.stringify(list)}`);
  const gone = await api(tenantURL(s.tenantA, `/credentials/${credId}`), { headers: { apiKey: s.tenantA.apiKey } });
  assert.equal(gone.status, 404, `GET a deleted credential: ${gone.status} ${gone.text}`);
  await assert.rejects(s.sdkA.credential(credId).remove(), /Request failed/, 'a second remove must fail (404)');

  // The authenticator still holds the passkey and answers with it; the server must refuse it.
  const assertion = await browserGet(page, await s.sdkA.login.initialize());
  assert.equal(assertion.id, credId);
  const fin = await api(tenantURL(s.tenantA, '/login/finalize'), { method: 'POST', headers: jsonHeaders, body: assertion });
  expectJSONError(fin, 'login/finalize with a deleted credential');
});

env.test('e. key-scoped routes: register and log in through /credentials/... with a Bearer secret key', async () => {
  const t = s.tenantA ?? (await env.createTenant({ displayName: 'E2E keyed' }));
  const { page } = await env.openPage();
  const auth = bearer(t.apiKey);
  const keyed = (p) => `${env.publicURL}/credentials${p}`;

  const init = await api(keyed('/register/initialize'), { method: 'POST', headers: auth, body: { user_id: 'user-2', username: 'bob' } });
  assert.equal(init.status, 200, `register/initialize: ${init.status} ${init.text}`);
  assertCreationOptions(init.json, { userId: 'user-2', username: 'bob' });
  const credential = await browserCreate(page, init.json);
  const reg = await api(keyed('/register/finalize'), { method: 'POST', headers: auth, body: credential });
  assert.equal(reg.status, 200, `register/finalize: ${reg.status} ${reg.text}`);
  await verifyToken(reg.json.token, t, { sub: 'user-2', cred: credential.id });

  const linit = await api(keyed('/login/initialize'), { method: 'POST', headers: auth });
  assert.equal(linit.status, 200, `login/initialize: ${linit.status} ${linit.text}`);
  assert.equal(linit.json.publicKey.rpId, 'localhost');
  const assertion = await browserGet(page, linit.json);
  assert.equal(assertion.id, credential.id);
  const login = await api(keyed('/login/finalize'), { method: 'POST', headers: auth, body: assertion });
  assert.equal(login.status, 200, `login/finalize: ${login.status} ${login.text}`);
  await verifyToken(login.json.token, t, { sub: 'user-2', cred: credential.id });

  // The key-scoped list sees the same credential as Hanko's route.
  const list = await api(`${env.publicURL}/credentials?user_id=user-2`, { headers: auth });
  assert.equal(list.status, 200, `GET /credentials: ${list.status} ${list.text}`);
  assert.ok(list.json.some((c) => c.id === credential.id && c.user_id === 'user-2'), list.text);

  // Without a key the key-scoped family answers 401.
  const noKey = await api(keyed('/register/initialize'), { method: 'POST', body: { user_id: 'user-3', username: 'x' } });
  assert.equal(noKey.status, 401, `register/initialize without a key: ${noKey.status} ${noKey.text}`);
});
