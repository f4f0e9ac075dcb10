// A client generated from openapi.yaml (openapi-typescript: api.d.ts, made by `npm run client`) and
// typed calls through openapi-fetch. Each path of the spec names its server, public or admin port, so
// the client is two: one per server, each typed by the same paths.
import createClient from 'openapi-fetch';

import type { components, paths } from './api.js';

export type Tenant = components['schemas']['TenantSummary'];

export interface Servers {
  publicURL: string;
  adminURL: string;
  adminToken: string;
}

export function clients(s: Servers) {
  return {
    public: createClient<paths>({ baseUrl: s.publicURL }),
    admin: createClient<paths>({ baseUrl: s.adminURL, headers: { Authorization: `Bearer ${s.adminToken}` } }),
  };
}

// createTenantAndReadJWKS makes a tenant with only its relying party (the rest defaults), lists the
// tenants, and reads the new tenant's JWKS from the public port: one call of each API.
export async function createTenantAndReadJWKS(s: Servers, origin: string) {
  const c = clients(s);
  const created = await c.admin.POST('/tenants', {
    body: {
      display_name: 'Generated client',
      config: { webauthn: { relying_party: { id: 'localhost', display_name: 'Generated client', origins: [origin] } } },
    },
  });
  if (created.error || !created.data) throw new Error(`POST /tenants: ${JSON.stringify(created.error)}`);
  const id: string = created.data.id;
  const listed = await c.admin.GET('/tenants');
  if (listed.error) throw new Error(`GET /tenants: ${JSON.stringify(listed.error)}`);
  const tenants: Tenant[] = listed.data ?? [];
  const jwks = await c.public.GET('/{tenant_id}/.well-known/jwks.json', { params: { path: { tenant_id: id } } });
  if (jwks.error) throw new Error(`GET jwks: ${JSON.stringify(jwks.error)}`);
  return { id, tenants, jwks: jwks.data };
}
