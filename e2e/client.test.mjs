// A client generated from openapi.yaml (client/: openapi-typescript types, compiled with tsc by
// `npm run client` before the tests) makes real calls: one to the admin port and one to the public
// port, each where the spec's per-path servers say.
import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import { createTenantAndReadJWKS } from './client/dist/call.js';
import { E2E } from './harness.mjs';

const env = new E2E();
before(() => env.start(), { timeout: E2E.START_TIMEOUT });
after(() => env.stop());

env.test('the generated client creates a tenant with defaults and reads its JWKS', async () => {
  const s = env.server;
  const got = await createTenantAndReadJWKS({ publicURL: s.publicURL, adminURL: s.adminURL, adminToken: s.adminToken }, env.pageOrigin);
  assert.match(got.id, /^[0-9a-f-]{36}$/);
  assert.ok(got.tenants.some((t) => t.id === got.id), 'the new tenant is listed');
  assert.ok(got.jwks.keys.length >= 1, JSON.stringify(got.jwks));
});
