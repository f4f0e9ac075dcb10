// Transaction confirmation end to end (docs/hanko-compatibility.md#transactions): a passkey registered through the
// official @teamhanko/passkeys-sdk, the application server (node, fetch with the header apiKey) starting
// and finishing the transaction, Debian chromium with a platform virtual authenticator signing it.
// Tokens are verified with jose against the tenant JWKS.
//
// The tests of this file run in order and share state: test a registers the passkey and confirms the
// transaction that b and c use (each says so when that state is missing).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before } from 'node:test';

import { tenant } from '@teamhanko/passkeys-sdk';
import { createRemoteJWKSet, jwtVerify } from 'jose';

import { E2E, api, browserCreate, browserGet, randomToken } from './harness.mjs';

const env = new E2E();
before(() => env.start(), { timeout: E2E.START_TIMEOUT });
after(() => env.stop());

const USER = 'user-tx';

// The transaction data exactly as the application sends it. It is written as JSON text, not built with
// JSON.stringify, because JavaScript numbers cannot hold 12345678901234567890 (it would be sent as
// 12345678901234567000).
const DATA_TEXT = '{"amount":"100.00","currency":"EUR","to":"DE89 3704 0044 0532 0130 00","big":12345678901234567890}';

// State shared by the tests, in order.
const s = {
  tenant: null, // {id, apiKey}
  sdk: null,
  page: null, // the page whose platform authenticator holds user-tx's passkey
  credId: null,
  txId: null, // the confirmed transaction
  assertion: null, // the assertion that confirmed it
};

const jsonHeaders = { 'Content-Type': 'application/json' };
const tenantURL = (t, p) => `${env.publicURL}/${t.id}${p}`;
const keyHeaders = (t) => ({ ...jsonHeaders, apiKey: t.apiKey });
const sha256 = (...parts) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

function need(value, what) {
  if (!value) throw new Error(`this test needs ${what} from an earlier test of this file, which failed`);
  return value;
}

/**
 * canonicalize is an independent implementation of the canonical form the server hashes: object keys
 * sorted (by UTF-16 code units, which is JavaScript's default sort), no whitespace, strings as
 * JSON.stringify writes them, and numbers exactly as written in the source text. It reads the source
 * text of numbers with a small tokenizer of its own (node 20's JSON.parse cannot give them).
 */
function canonicalize(text) {
  let i = 0;
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i])) i++;
  };
  const value = () => {
    ws();
    const ch = text[i];
    if (ch === '{') {
      i++;
      const members = [];
      ws();
      if (text[i] === '}') {
        i++;
        return '{}';
      }
      for (;;) {
        ws();
        const key = str();
        ws();
        assert.equal(text[i++], ':');
        members.push([JSON.parse(key), value()]);
        ws();
        const sep = text[i++];
        if (sep === '}') break;
        assert.equal(sep, ',');
      }
      members.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${members.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
    }
    if (ch === '[') {
      i++;
      const items = [];
      ws();
      if (text[i] === ']') {
        i++;
        return '[]';
      }
      for (;;) {
        items.push(value());
        ws();
        const sep = text[i++];
        if (sep === ']') break;
        assert.equal(sep, ',');
      }
      return `[${items.join(',')}]`;
    }
    if (ch === '"') return JSON.stringify(JSON.parse(str()));
    const m = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i));
    assert.ok(m, `bad JSON at ${i}`);
    i += m[0].length;
    return m[0];
  };
  const str = () => {
    const start = i;
    assert.equal(text[i++], '"');
    while (text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    i++;
    return text.slice(start, i);
  };
  const out = value();
  ws();
  assert.equal(i, text.length, 'one JSON value');
  return out;
}

const CANONICAL = canonicalize(DATA_TEXT);

/** initBody is the transaction/initialize body as JSON text, with the data embedded verbatim. */
const initBody = (txId, dataText = DATA_TEXT) =>
  `{"user_id":${JSON.stringify(USER)},"transaction_id":${JSON.stringify(txId)},"transaction_data":${dataText}}`;

/** verifyToken checks a finalize token against the tenant's JWKS (GET /{tenant}/.well-known/jwks.json). */
async function verifyToken(token, t, { sub, cred }) {
  assert.equal(typeof token, 'string', 'token');
  const keys = createRemoteJWKSet(new URL(tenantURL(t, '/.well-known/jwks.json')));
  const { payload, protectedHeader } = await jwtVerify(token, keys, { audience: 'localhost', maxTokenAge: '5m' });
  assert.ok(protectedHeader.kid, 'token header has a kid');
  assert.ok(payload.exp > payload.iat && payload.exp - payload.iat <= 300, `exp - iat = ${payload.exp - payload.iat}`);
  assert.equal(payload.iss, `${env.publicURL}/${t.id}`, 'iss');
  assert.equal(payload.sub, sub, 'sub');
  assert.equal(payload.cred, cred, 'cred');
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

/** startTransaction POSTs /{tenant}/transaction/initialize with the API key and checks the binding. */
async function startTransaction(t, txId) {
  const init = await api(tenantURL(t, '/transaction/initialize'), { method: 'POST', headers: keyHeaders(t), body: initBody(txId) });
  assert.equal(init.status, 200, `transaction/initialize: ${init.status} ${init.text}`);
  const pk = init.json?.publicKey;
  assert.ok(pk, `request options are wrapped in publicKey: ${init.text}`);
  assert.equal(pk.rpId, 'localhost');
  const challenge = Buffer.from(pk.challenge, 'base64url');
  assert.equal(challenge.length, 64, `challenge is ${challenge.length} bytes, want 32 random + 32 binding`);
  const binding = sha256(Buffer.from(txId, 'utf8'), Buffer.from(CANONICAL, 'utf8'));
  assert.equal(challenge.subarray(32).toString('hex'), binding.toString('hex'),
    'challenge[32:64] = SHA-256(transaction_id ‖ canonical data)');
  return init.json;
}

// ---------------------------------------------------------------------------------------------------

env.test('the test\'s own canonical form keeps the big number exact', () => {
  assert.equal(CANONICAL, '{"amount":"100.00","big":12345678901234567890,"currency":"EUR","to":"DE89 3704 0044 0532 0130 00"}');
  assert.notEqual(CANONICAL, JSON.stringify(JSON.parse(DATA_TEXT)), 'JSON.stringify would round the number');
});

env.test('a. a transaction confirmed in the browser (P7, P8): trans, trans_hash and the challenge binding', async () => {
  s.tenant = await env.createTenant({ displayName: 'E2E TX' });
  s.sdk = tenant({ tenantId: s.tenant.id, apiKey: s.tenant.apiKey, baseUrl: env.publicURL });
  ({ page: s.page } = await env.openPage());

  // The user's passkey, registered through the SDK.
  const created = await browserCreate(s.page, await s.sdk.registration.initialize({ userId: USER, username: 'tess' }));
  const reg = await s.sdk.registration.finalize(created);
  await verifyToken(reg.token, s.tenant, { sub: USER, cred: created.id });
  s.credId = created.id;

  // The transaction routes need the secret key.
  const txId = `tx-${randomToken(8)}`;
  const noKey = await api(tenantURL(s.tenant, '/transaction/initialize'), { method: 'POST', headers: jsonHeaders, body: initBody(txId) });
  assert.equal(noKey.status, 401, `transaction/initialize without a key: ${noKey.status} ${noKey.text}`);

  const options = await startTransaction(s.tenant, txId);
  assert.ok(Array.isArray(options.publicKey.allowCredentials) && options.publicKey.allowCredentials.some((c) => c.id === s.credId),
    `allowCredentials: ${JSON.stringify(options.publicKey.allowCredentials)}`);

  const assertion = await browserGet(s.page, options);
  assert.equal(assertion.id, s.credId);
  const clientData = JSON.parse(Buffer.from(assertion.response.clientDataJSON, 'base64url').toString('utf8'));
  assert.equal(clientData.type, 'webauthn.get');
  assert.equal(clientData.challenge, options.publicKey.challenge, 'the browser signed the bound challenge');

  const fin = await api(tenantURL(s.tenant, '/transaction/finalize'), { method: 'POST', headers: keyHeaders(s.tenant), body: assertion });
  assert.equal(fin.status, 200, `transaction/finalize: ${fin.status} ${fin.text}`);
  const payload = await verifyToken(fin.json?.token, s.tenant, { sub: USER, cred: s.credId });
  assert.equal(payload.trans, txId, 'trans = the transaction id');
  assert.equal(payload.ceremony, 'transaction', 'ceremony claim');
  assert.equal(payload.trans_hash, sha256(Buffer.from(CANONICAL, 'utf8')).toString('base64url'),
    'trans_hash = base64url(SHA-256(canonical data))');
  s.txId = txId;
  s.assertion = assertion;
});

env.test('b. the transaction list (P9) shows it confirmed; replaying its assertion fails; its id cannot be reused', async () => {
  const txId = need(s.txId, 'the confirmed transaction (test a)');
  const assertion = need(s.assertion, 'the confirmed transaction (test a)');

  const list = await api(tenantURL(s.tenant, `/transaction/${USER}`), { headers: { apiKey: s.tenant.apiKey } });
  assert.equal(list.status, 200, `GET /transaction/${USER}: ${list.status} ${list.text}`);
  assert.ok(Array.isArray(list.json), list.text);
  const tx = list.json.find((x) => x.identifier === txId);
  assert.ok(tx, `transaction ${txId} not in ${list.text}`);
  assert.equal(tx.status, 'confirmed', `status: ${JSON.stringify(tx)}`);
  assert.equal(tx.credential_id, s.credId, `credential_id: ${JSON.stringify(tx)}`);
  assert.equal(tx.data, CANONICAL, 'data is the canonical text, the big number kept exact');
  const noKey = await api(tenantURL(s.tenant, `/transaction/${USER}`));
  assert.equal(noKey.status, 401, `GET /transaction/${USER} without a key: ${noKey.status} ${noKey.text}`);

  const replay = await api(tenantURL(s.tenant, '/transaction/finalize'), { method: 'POST', headers: keyHeaders(s.tenant), body: assertion });
  expectJSONError(replay, 'a second transaction/finalize with the same assertion');

  const reuse = await api(tenantURL(s.tenant, '/transaction/initialize'), { method: 'POST', headers: keyHeaders(s.tenant), body: initBody(txId) });
  assert.equal(reuse.status, 409, `transaction/initialize with a used transaction_id: ${reuse.status} ${reuse.text}`);
  expectJSONError(reuse, 'transaction/initialize with a used transaction_id');

  // Still confirmed, by the same credential.
  const again = await api(tenantURL(s.tenant, `/transaction/${USER}`), { headers: { apiKey: s.tenant.apiKey } });
  const tx2 = again.json.find((x) => x.identifier === txId);
  assert.equal(tx2?.status, 'confirmed', `after the replay and the reuse: ${again.text}`);
});

env.test('c. a transaction assertion is refused by /login/finalize', async () => {
  const page = need(s.page, 'user-tx\'s passkey (test a)');
  const txId = `tx-${randomToken(8)}`;
  const assertion = await browserGet(page, await startTransaction(s.tenant, txId));

  const asLogin = await api(tenantURL(s.tenant, '/login/finalize'), { method: 'POST', headers: jsonHeaders, body: assertion });
  expectJSONError(asLogin, 'login/finalize with a transaction assertion');
  await assert.rejects(s.sdk.login.finalize(assertion), /Request failed/, 'SDK login.finalize with a transaction assertion');

  // Control: the assertion itself was good, and the transaction is still pending, so it confirms.
  const fin = await api(tenantURL(s.tenant, '/transaction/finalize'), { method: 'POST', headers: keyHeaders(s.tenant), body: assertion });
  assert.equal(fin.status, 200, `transaction/finalize after the refused login: ${fin.status} ${fin.text}`);
  const payload = await verifyToken(fin.json.token, s.tenant, { sub: USER, cred: s.credId });
  assert.equal(payload.trans, txId);
});
