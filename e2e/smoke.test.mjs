// Smoke test of the harness itself, against what already exists: the server starts, a tenant is made
// through the admin API, its JWKS is served (to the SDK and, with CORS, to the page), and the browser's
// virtual authenticators work on this machine with locally made WebAuthn options.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';

import { tenant } from '@teamhanko/passkeys-sdk';

import { E2E, ROAMING_AUTHENTICATOR, authenticatorCredentials, b64url, browserCreate, browserFetch, browserGet } from './harness.mjs';

const env = new E2E();
before(() => env.start(), { timeout: E2E.START_TIMEOUT });
after(() => env.stop());

let t1;

env.test('admin API creates a tenant; its JWKS has a signing key with a kid (SDK jwks())', async () => {
  t1 = await env.createTenant({ displayName: 'Smoke' });
  assert.match(t1.id, /^[0-9a-f-]{36}$/);
  assert.ok(t1.apiKey.length >= 16, 'api_key.secret');
  const sdk = tenant({ tenantId: t1.id, apiKey: t1.apiKey, baseUrl: env.publicURL });
  const jwks = await sdk.jwks();
  assert.ok(Array.isArray(jwks.keys) && jwks.keys.length >= 1, `JWKS keys: ${JSON.stringify(jwks)}`);
  for (const k of jwks.keys) {
    assert.ok(k.kid, `key without kid: ${JSON.stringify(k)}`);
    assert.ok(k.kty, 'kty');
    assert.equal(k.d, undefined, 'the JWKS must not carry private key material');
  }
});

env.test('the page reads the JWKS across origins (tenant CORS)', async () => {
  assert.ok(t1, 'needs the tenant of the previous test');
  const { page } = await env.openPage({ authenticator: null });
  const res = await browserFetch(page, `${env.publicURL}/${t1.id}/.well-known/jwks.json`);
  assert.equal(res.error, undefined, `fetch from ${env.pageOrigin} was refused: ${res.error}`);
  assert.equal(res.status, 200, res.text);
  assert.ok(res.json.keys.length >= 1);
});

env.test('platform virtual authenticator: create and get a resident credential in chromium', async () => {
  const { page, cdp, authenticatorId } = await env.openPage();
  const userId = randomBytes(16);
  const cred = await browserCreate(page, {
    publicKey: {
      rp: { id: 'localhost', name: 'Smoke' },
      user: { id: b64url(userId), name: 'smoke', displayName: 'Smoke' },
      challenge: b64url(randomBytes(32)),
      pubKeyCredParams: [
        { type: 'public-key', alg: -7 },
        { type: 'public-key', alg: -257 },
      ],
      timeout: 60000,
      authenticatorSelection: { residentKey: 'required', requireResidentKey: true, userVerification: 'required' },
      attestation: 'direct',
    },
  });
  assert.equal(cred.type, 'public-key');
  assert.match(cred.id, /^[A-Za-z0-9_-]+$/);
  assert.equal(cred.rawId, cred.id);
  assert.ok(cred.response.clientDataJSON && cred.response.attestationObject);
  assert.deepEqual(cred.response.transports, ['internal']);
  const clientData = JSON.parse(Buffer.from(cred.response.clientDataJSON, 'base64url'));
  assert.equal(clientData.type, 'webauthn.create');
  assert.equal(clientData.origin, env.pageOrigin);

  const held = await authenticatorCredentials(cdp, authenticatorId);
  assert.equal(held.length, 1);
  assert.equal(held[0].isResidentCredential, true);

  // Usernameless get: the authenticator finds the credential by RP ID alone.
  const assertion = await browserGet(page, {
    publicKey: { challenge: b64url(randomBytes(32)), rpId: 'localhost', timeout: 60000, userVerification: 'required' },
  });
  assert.equal(assertion.id, cred.id);
  assert.equal(Buffer.from(assertion.response.userHandle, 'base64url').toString('hex'), userId.toString('hex'));
});

env.test('roaming (USB, non-resident) virtual authenticator: create and get with allowCredentials', async () => {
  const { page } = await env.openPage({ authenticator: ROAMING_AUTHENTICATOR });
  const cred = await browserCreate(page, {
    publicKey: {
      rp: { id: 'localhost', name: 'Smoke' },
      user: { id: b64url(randomBytes(16)), name: 'roaming', displayName: 'Roaming' },
      challenge: b64url(randomBytes(32)),
      pubKeyCredParams: [{ type: 'public-key', alg: -7 }],
      timeout: 60000,
      authenticatorSelection: { residentKey: 'discouraged', requireResidentKey: false, userVerification: 'preferred' },
      attestation: 'none',
    },
  });
  assert.deepEqual(cred.response.transports, ['usb']);
  const assertion = await browserGet(page, {
    publicKey: {
      challenge: b64url(randomBytes(32)),
      rpId: 'localhost',
      timeout: 60000,
      allowCredentials: [{ type: 'public-key', id: cred.id }],
      userVerification: 'preferred',
    },
  });
  assert.equal(assertion.id, cred.id);
});
