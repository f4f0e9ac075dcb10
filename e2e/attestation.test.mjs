// Attestation policies end to end (README "Attestation"): Chromium's virtual authenticator registers
// under a monitoring policy, with its verdict recorded on the credential, and is refused with a clear
// 403 authenticator_not_allowed under an enforced policy that needs a verified attestation (the e2e
// server has no FIDO metadata, so nothing Chromium makes can verify).
import assert from 'node:assert/strict';
import { after, before } from 'node:test';

import { tenant } from '@teamhanko/passkeys-sdk';

import { E2E, api, browserCreate } from './harness.mjs';

const env = new E2E();
before(() => env.start(), { timeout: E2E.START_TIMEOUT });
after(() => env.stop());

const jsonHeaders = { 'Content-Type': 'application/json' };

env.test('a. monitor records the verdict and accepts; enforce refuses with authenticator_not_allowed', async () => {
  const t = await env.createTenant({ displayName: 'E2E attestation' });
  const sdk = tenant({ tenantId: t.id, apiKey: t.apiKey, baseUrl: env.publicURL });
  const { page } = await env.openPage();
  const policy = { require_verified_attestation: true, allow_backup_eligible: true };

  await env.putConfig(t.id, { webauthn: { attestation_preference: 'direct', attestation_policy: { mode: 'monitor', ...policy } } });
  const created = await browserCreate(page, await sdk.registration.initialize({ userId: 'user-m', username: 'mona' }));
  const res = await sdk.registration.finalize(created);
  assert.ok(res?.token, `registration under monitor answered ${JSON.stringify(res)}`);
  const cred = await api(`${env.publicURL}/${t.id}/credentials/${created.id}`, { headers: { apiKey: t.apiKey } });
  assert.equal(cred.status, 200, cred.text);
  const a = cred.json.attestation;
  assert.ok(a, `credential has no attestation record: ${cred.text}`);
  assert.ok(['unverified', 'self', 'none'].includes(a.verdict), `verdict ${a.verdict}`);
  assert.deepEqual(a.policy_violations, ['attestation_unverified'], `violations ${JSON.stringify(a.policy_violations)}`);

  await env.putConfig(t.id, { webauthn: { attestation_preference: 'direct', attestation_policy: { mode: 'enforce', ...policy } } });
  const refused = await browserCreate(page, await sdk.registration.initialize({ userId: 'user-e', username: 'enzo' }));
  const fin = await api(`${env.publicURL}/${t.id}/registration/finalize`, { method: 'POST', headers: jsonHeaders, body: refused });
  assert.equal(fin.status, 403, fin.text);
  assert.equal(fin.json?.code, 'authenticator_not_allowed', fin.text);
  assert.match(fin.json?.details ?? '', /attestation_unverified/, fin.text);
  const list = await api(`${env.publicURL}/${t.id}/credentials?user_id=user-e`, { headers: { apiKey: t.apiKey } });
  assert.equal(list.status, 200, list.text);
  assert.deepEqual(list.json, [], 'a refused registration stores nothing');
});
