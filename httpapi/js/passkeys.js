// passkeys.js: a small, dependency-free browser helper for passkey-server (served at GET /js/passkeys.js;
// also usable from a bundler). It runs navigator.credentials.create()/get() with the options a
// passkey-server initialize call returned, keeping what common wrappers strip (hints, extensions such
// as prf, mediation), and hands the finalize answer's `signals` to the browser's Signal API
// (WebAuthn §5.1.10) when the browser has it. README.md, "Browser helper", shows how to use it.

/** @param {ArrayBuffer|ArrayBufferView} buf */
export function toBase64url(buf) {
  const bytes = buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** @param {string} s base64url, with or without padding */
export function fromBase64url(s) {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

const hasJSONParsers = () =>
  typeof PublicKeyCredential !== 'undefined' &&
  typeof PublicKeyCredential.parseCreationOptionsFromJSON === 'function' &&
  typeof PublicKeyCredential.parseRequestOptionsFromJSON === 'function';

// prfInputs decodes the salts of an extensions.prf input (WebAuthn §10.1.4) in place of a copy.
function prfInputs(prf) {
  if (!prf) return prf;
  const values = (v) => v && { first: fromBase64url(v.first), ...(v.second !== undefined ? { second: fromBase64url(v.second) } : {}) };
  const out = { ...prf };
  if (prf.eval) out.eval = values(prf.eval);
  if (prf.evalByCredential) {
    out.evalByCredential = Object.fromEntries(Object.entries(prf.evalByCredential).map(([id, v]) => [id, values(v)]));
  }
  return out;
}

const descriptor = (d) => ({ ...d, id: fromBase64url(d.id) });

/** parseCreationOptions turns publicKey JSON into PublicKeyCredentialCreationOptions, keeping every member. */
export function parseCreationOptions(json) {
  if (hasJSONParsers()) return PublicKeyCredential.parseCreationOptionsFromJSON(json);
  const o = { ...json, challenge: fromBase64url(json.challenge), user: { ...json.user, id: fromBase64url(json.user.id) } };
  if (json.excludeCredentials) o.excludeCredentials = json.excludeCredentials.map(descriptor);
  if (json.extensions) o.extensions = { ...json.extensions, prf: prfInputs(json.extensions.prf) };
  return o;
}

/** parseRequestOptions turns publicKey JSON into PublicKeyCredentialRequestOptions, keeping every member. */
export function parseRequestOptions(json) {
  if (hasJSONParsers()) return PublicKeyCredential.parseRequestOptionsFromJSON(json);
  const o = { ...json, challenge: fromBase64url(json.challenge) };
  if (json.allowCredentials) o.allowCredentials = json.allowCredentials.map(descriptor);
  if (json.extensions) o.extensions = { ...json.extensions, prf: prfInputs(json.extensions.prf) };
  return o;
}

// extensionResults encodes client extension outputs for JSON: binary members (prf.results) as base64url.
function extensionResults(results) {
  const walk = (v) => {
    if (v instanceof ArrayBuffer || ArrayBuffer.isView(v)) return toBase64url(v);
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(results || {});
}

/** credentialToJSON is PublicKeyCredential.toJSON(), or the same done by hand where a browser lacks it. */
export function credentialToJSON(cred) {
  if (typeof cred.toJSON === 'function') {
    const json = cred.toJSON();
    // Some browsers leave PRF results as buffers, which JSON.stringify would drop.
    json.clientExtensionResults = extensionResults(cred.getClientExtensionResults?.() ?? json.clientExtensionResults);
    return json;
  }
  const r = cred.response;
  const response = { clientDataJSON: toBase64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = toBase64url(r.attestationObject);
    if (r.getTransports) response.transports = r.getTransports();
  } else {
    response.authenticatorData = toBase64url(r.authenticatorData);
    response.signature = toBase64url(r.signature);
    if (r.userHandle) response.userHandle = toBase64url(r.userHandle);
  }
  return {
    id: cred.id,
    rawId: toBase64url(cred.rawId),
    type: cred.type,
    authenticatorAttachment: cred.authenticatorAttachment ?? undefined,
    response,
    clientExtensionResults: extensionResults(cred.getClientExtensionResults()),
  };
}

/**
 * create runs navigator.credentials.create with the answer of a registration initialize
 * ({publicKey, mediation?}) and returns the credential as JSON, ready for registration finalize.
 * mediation "conditional" (from the server, or opts.mediation) asks for an automatic passkey upgrade.
 */
export async function create(options, { signal, mediation } = {}) {
  const publicKey = parseCreationOptions(options.publicKey ?? options);
  const req = { publicKey };
  const m = mediation ?? options.mediation;
  if (m) req.mediation = m;
  if (signal) req.signal = signal;
  return credentialToJSON(await navigator.credentials.create(req));
}

/**
 * get runs navigator.credentials.get with the answer of a login initialize ({publicKey, mediation?})
 * and returns the credential as JSON, ready for login finalize.
 */
export async function get(options, { signal, mediation } = {}) {
  const publicKey = parseRequestOptions(options.publicKey ?? options);
  const req = { publicKey };
  const m = mediation ?? options.mediation;
  if (m) req.mediation = m;
  if (signal) req.signal = signal;
  return credentialToJSON(await navigator.credentials.get(req));
}

/**
 * sendSignals passes a finalize answer's `signals` to the browser's Signal API, each call only where
 * the browser has it, and returns the names of the calls made. A call that fails is reported in the
 * result, never thrown: a signal is advice to the authenticator, not part of the ceremony.
 */
export async function sendSignals(signals) {
  const done = [];
  if (!signals || typeof PublicKeyCredential === 'undefined') return done;
  const call = async (name, arg) => {
    if (typeof PublicKeyCredential[name] !== 'function') return;
    try {
      await PublicKeyCredential[name](arg);
      done.push(name);
    } catch (err) {
      done.push(`${name} failed: ${err.name}`);
    }
  };
  if (signals.unknownCredential) await call('signalUnknownCredential', signals.unknownCredential);
  for (const s of signals.allAcceptedCredentials || []) await call('signalAllAcceptedCredentials', s);
  for (const s of signals.currentUserDetails || []) await call('signalCurrentUserDetails', s);
  return done;
}

/**
 * finalize posts a credential to a finalize URL (with ?signals=true unless opts.signals is false),
 * forwards the answer's signals (sendSignals), and returns {ok, status, body, signalled}. Error answers
 * are returned too: a failed login's 401 may carry signals.unknownCredential.
 */
export async function finalize(url, credential, { headers = {}, signals = true } = {}) {
  const u = new URL(url, globalThis.location?.href);
  if (signals) u.searchParams.set('signals', 'true');
  const res = await fetch(u, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify(credential) });
  let body;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  const signalled = await sendSignals(body?.signals);
  return { ok: res.ok, status: res.status, body, signalled };
}
