// End-to-end harness: builds and starts the real passkey-server, serves a blank test page on
// http://localhost:<port>, creates tenants through the admin API and drives Debian's chromium (through
// playwright-core) with a CDP virtual authenticator.
//
// Everything here is bounded in time, and everything it starts is stopped by E2E.stop() (and, should the
// test process die, the server is killed by an exit hook).
import { spawn, execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(here, '..');

export const CHROMIUM = process.env.PASSKEY_E2E_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

const BUILD_TIMEOUT_MS = 5 * 60_000;
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 10_000;
const HTTP_TIMEOUT_MS = 15_000;
const PSQL_TIMEOUT_MS = 30_000;
// How long one navigator.credentials.create/get may take in the page before it is aborted.
const CEREMONY_TIMEOUT_MS = 30_000;
const MAX_LOG_LINES = 5000;

// Authenticator profiles for WebAuthn.addVirtualAuthenticator.
export const PLATFORM_AUTHENTICATOR = Object.freeze({
  protocol: 'ctap2',
  transport: 'internal',
  hasResidentKey: true,
  hasUserVerification: true,
  isUserVerified: true,
  automaticPresenceSimulation: true,
});
export const ROAMING_AUTHENTICATOR = Object.freeze({
  protocol: 'ctap2',
  transport: 'usb',
  hasResidentKey: false,
  hasUserVerification: true,
  isUserVerified: true,
  automaticPresenceSimulation: true,
});

// ---------------------------------------------------------------------------------------------------
// small helpers

export function randomToken(bytes = 16) {
  return randomBytes(bytes).toString('hex');
}

export function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

/** withTimeout rejects when promise has not settled within ms. */
export async function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** freePort asks the kernel for a free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function run(cmd, args, { cwd, env, timeout }) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { cwd, env, timeout, killSignal: 'SIGKILL', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const why = err.killed ? `killed after ${timeout} ms` : `exit code ${err.code}`;
        reject(new Error(`${cmd} ${args.join(' ')} failed (${why}):\n${stdout}${stderr}`));
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** waitFor resolves with promise's value, or with null after ms (without keeping the process alive). */
function waitFor(promise, ms) {
  let timer;
  const timeout = new Promise((r) => {
    timer = setTimeout(() => r(null), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * api performs one HTTP request with a timeout and returns {status, headers, text, json}. A JSON body
 * (an object) is sent with Content-Type application/json.
 */
export async function api(url, { method = 'GET', headers = {}, body, timeout = HTTP_TIMEOUT_MS } = {}) {
  const init = { method, headers: { ...headers }, signal: AbortSignal.timeout(timeout) };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    if (!Object.keys(init.headers).some((h) => h.toLowerCase() === 'content-type')) {
      init.headers['Content-Type'] = 'application/json';
    }
  }
  const res = await fetch(url, init);
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: Object.fromEntries(res.headers), text, json };
}

/** expectStatus throws a descriptive error unless res.status is one of want. */
export function expectStatus(res, want, what) {
  const wants = Array.isArray(want) ? want : [want];
  if (!wants.includes(res.status)) {
    throw new Error(`${what}: status ${res.status}, want ${wants.join(' or ')}; body: ${res.text ?? res.error}`);
  }
  return res;
}

// ---------------------------------------------------------------------------------------------------
// the server

let builtBinary; // one build per test process

/** buildServer builds ./cmd/passkey-server (or uses PASSKEY_E2E_SERVER_BIN) and returns its path. */
export async function buildServer(dir) {
  if (process.env.PASSKEY_E2E_SERVER_BIN) return process.env.PASSKEY_E2E_SERVER_BIN;
  if (builtBinary) return builtBinary;
  const out = path.join(dir, 'passkey-server');
  await run('go', ['build', '-o', out, './cmd/passkey-server'], { cwd: repoRoot, env: process.env, timeout: BUILD_TIMEOUT_MS });
  builtBinary = out;
  return out;
}

/** Server is one running passkey-server process with its own data dir (and database, with Postgres). */
export class Server {
  constructor() {
    this.logLines = [];
    this.child = null;
    this.exited = null; // {code, signal} once the process is gone
    this.database = null; // {name, adminURL} with Postgres
    this.dir = null;
  }

  async start() {
    this.dir = await mkdtemp(path.join(os.tmpdir(), 'passkey-e2e-'));
    const bin = await buildServer(this.dir);
    const [publicPort, adminPort] = await distinctPorts(2);
    this.publicURL = `http://127.0.0.1:${publicPort}`;
    this.adminURL = `http://127.0.0.1:${adminPort}`;
    this.adminToken = `adm_e2e_${randomToken(12)}`; // 32 characters
    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      TMPDIR: process.env.TMPDIR,
      PASSKEY_DATA_DIR: path.join(this.dir, 'data'),
      PASSKEY_PUBLIC_ADDRESS: `127.0.0.1:${publicPort}`,
      PASSKEY_ADMIN_ADDRESS: `127.0.0.1:${adminPort}`,
      PASSKEY_PUBLIC_URL: this.publicURL,
      PASSKEY_ADMIN_TOKENS: this.adminToken,
      PASSKEY_MASTER_KEY: randomBytes(32).toString('base64'),
      PASSKEY_LOG_FORMAT: 'text',
      PASSKEY_LOG_LEVEL: process.env.PASSKEY_E2E_LOG_LEVEL || 'debug',
      PASSKEY_SHUTDOWN_TIMEOUT: '2s',
      PASSKEY_SHUTDOWN_DRAIN: '0',
      PASSKEY_CACHE_REFRESH: '500ms',
    };
    for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];

    const pgURL = process.env.PASSKEY_TEST_POSTGRES_URL;
    const redisURL = process.env.PASSKEY_TEST_REDIS_URL;
    if (pgURL && redisURL) {
      const suffix = randomToken(6);
      this.database = { name: `passkey_e2e_${suffix}`, adminURL: pgURL };
      await psql(pgURL, `CREATE DATABASE "${this.database.name}"`);
      const u = new URL(pgURL);
      u.pathname = `/${this.database.name}`;
      env.PASSKEY_DATABASE_URL = u.toString();
      env.PASSKEY_REDIS_URL = redisURL;
      env.PASSKEY_REDIS_PREFIX = `passkeye2e:${suffix}:`;
      this.redis = { url: redisURL, prefix: env.PASSKEY_REDIS_PREFIX };
      this.mode = `postgres (${this.database.name}) + redis (prefix ${env.PASSKEY_REDIS_PREFIX})`;
    } else {
      this.mode = 'sqlite + in-process sessions';
    }

    this.child = spawn(bin, [], { cwd: this.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    liveChildren.add(this.child);
    this.exitPromise = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exited = { code, signal };
        liveChildren.delete(this.child);
        this.log(`[e2e] server exited: code=${code} signal=${signal}`);
        resolve(this.exited);
      });
      this.child.on('error', (err) => {
        this.exited = { code: null, signal: null, error: err };
        liveChildren.delete(this.child);
        this.log(`[e2e] server failed to start: ${err.message}`);
        resolve(this.exited);
      });
    });
    for (const stream of [this.child.stdout, this.child.stderr]) {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        buf += chunk;
        let i;
        while ((i = buf.indexOf('\n')) >= 0) {
          this.log(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
      stream.on('end', () => buf && this.log(buf));
    }

    await this.waitReady();
  }

  log(line) {
    this.logLines.push(line);
    if (this.logLines.length > MAX_LOG_LINES) this.logLines.splice(0, this.logLines.length - MAX_LOG_LINES);
  }

  /** logSince returns the log lines written after mark (a value of logMark()). */
  logMark() {
    return this.logLines.length;
  }

  logText(from = 0) {
    return this.logLines.slice(from).join('\n');
  }

  async waitReady() {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    let last = 'no answer';
    while (Date.now() < deadline) {
      if (this.exited) throw new Error(`passkey-server exited before it was ready (${JSON.stringify(this.exited)})`);
      try {
        const res = await api(`${this.adminURL}/health/ready`, { timeout: 2000 });
        if (res.status === 200) return;
        last = `status ${res.status}: ${res.text}`;
      } catch (err) {
        last = err.message;
      }
      await sleep(100);
    }
    throw new Error(`passkey-server not ready within ${READY_TIMEOUT_MS} ms (last: ${last})`);
  }

  async stop() {
    if (process.env.PASSKEY_E2E_AUDIT_TYPES_FILE && this.child && !this.exited) {
      await this.appendAuditTypes(process.env.PASSKEY_E2E_AUDIT_TYPES_FILE).catch((err) =>
        process.stderr.write(`e2e: could not list audit types: ${err.message}\n`));
    }
    if (this.child && !this.exited) {
      this.child.kill('SIGTERM');
      const done = await waitFor(this.exitPromise, STOP_TIMEOUT_MS);
      if (!done) {
        this.log(`[e2e] server did not stop within ${STOP_TIMEOUT_MS} ms of SIGTERM; killing it`);
        this.child.kill('SIGKILL');
        await waitFor(this.exitPromise, STOP_TIMEOUT_MS);
      }
    }
    if (this.database) {
      try {
        await psql(this.database.adminURL, `DROP DATABASE IF EXISTS "${this.database.name}" WITH (FORCE)`);
      } catch (err) {
        process.stderr.write(`e2e: could not drop database ${this.database.name}: ${err.message}\n`);
      }
      this.database = null;
    }
    if (this.redis) {
      await deleteRedisKeys(this.redis.url, this.redis.prefix);
      this.redis = null;
    }
    if (this.dir) {
      await rm(this.dir, { recursive: true, force: true }).catch(() => {});
      this.dir = null;
    }
  }

  /**
   * appendAuditTypes appends to file, one per line, the type of every audit event of every tenant and
   * the deployment-wide ones: with PASSKEY_E2E_AUDIT_TYPES_FILE set, each server does this before it
   * stops, so two builds can be compared (sort -u of the file) after a full run.
   */
  async appendAuditTypes(file) {
    await sleep(500); // the audit log writes in batches every 200 ms
    const tenants = await api(`${this.adminURL}/tenants`, { headers: this.adminHeaders() });
    const paths = ['/audit_logs', ...(tenants.json || []).map((t) => `/tenants/${t.id}/audit_logs`)];
    const types = [];
    for (const p of paths) {
      for (let page = 1; ; page++) {
        const res = await api(`${this.adminURL}${p}?per_page=1000&page=${page}`, { headers: this.adminHeaders() });
        if (res.status !== 200 || !Array.isArray(res.json) || res.json.length === 0) break;
        for (const e of res.json) types.push(e.type);
      }
    }
    await appendFile(file, types.map((t) => `${t}\n`).join(''));
  }

  adminHeaders() {
    return { Authorization: `Bearer ${this.adminToken}` };
  }

  /**
   * createTenant creates a tenant with a secret API key through the admin API and returns
   * {id, apiKey, response}. See tenantConfig for the options.
   */
  async createTenant({ displayName = 'E2E', ...opts }) {
    const res = await api(`${this.adminURL}/tenants`, {
      method: 'POST',
      headers: this.adminHeaders(),
      body: { display_name: displayName, create_api_key: true, config: tenantConfig({ displayName, ...opts }) },
    });
    expectStatus(res, [200, 201], 'POST /tenants');
    const id = res.json?.id;
    const apiKey = res.json?.api_key?.secret;
    if (!id || !apiKey) throw new Error(`POST /tenants: no id or api_key.secret in ${res.text}`);
    return { id, apiKey, response: res.json };
  }

  /** putConfig replaces a tenant's config (PUT /tenants/{id}/config); see tenantConfig for the options. */
  async putConfig(tenantId, { displayName = 'E2E', ...opts }) {
    const res = await api(`${this.adminURL}/tenants/${tenantId}/config`, {
      method: 'PUT',
      headers: this.adminHeaders(),
      body: tenantConfig({ displayName, ...opts }),
    });
    expectStatus(res, [200, 204], `PUT /tenants/${tenantId}/config`);
  }
}

/**
 * tenantConfig is a tenant config with RP ID localhost. pageOrigin is the browser origin of the tests;
 * origins (the WebAuthn origins) and corsOrigins (cors.allowed_origins) default to [pageOrigin];
 * webauthn is merged into config.webauthn.
 */
export function tenantConfig({ pageOrigin, origins = [pageOrigin], corsOrigins = [pageOrigin], displayName = 'E2E', webauthn = {} }) {
  return {
    cors: { allowed_origins: corsOrigins },
    webauthn: {
      relying_party: { id: 'localhost', display_name: displayName, origins },
      timeout: 60000,
      ...webauthn,
    },
  };
}

async function distinctPorts(n) {
  const ports = new Set();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

function psql(url, sql) {
  return run('psql', [url, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', sql], { env: process.env, timeout: PSQL_TIMEOUT_MS });
}

// deleteRedisKeys removes the sessions a run left behind (they would expire with the ceremony timeout
// anyway). Best effort: without redis-cli nothing happens.
async function deleteRedisKeys(url, prefix) {
  try {
    const { stdout } = await run('redis-cli', ['-u', url, '--scan', '--pattern', `${prefix}*`], { env: process.env, timeout: 10_000 });
    const keys = stdout.split('\n').filter(Boolean);
    for (let i = 0; i < keys.length; i += 100) {
      await run('redis-cli', ['-u', url, 'DEL', ...keys.slice(i, i + 100)], { env: process.env, timeout: 10_000 });
    }
  } catch {
    // no redis-cli, or Redis is gone: the keys expire by themselves
  }
}

// Kill any server still running when the test process exits (a crash, an uncaught error).
const liveChildren = new Set();
process.on('exit', () => {
  for (const c of liveChildren) {
    try {
      c.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

// ---------------------------------------------------------------------------------------------------
// the test page

/**
 * startPageServer serves e2e/page/index.html on http://<host>:<port>/. host is the name the browser
 * uses ("localhost", so that the WebAuthn RP ID localhost applies, or "127.0.0.1").
 */
export async function startPageServer(host = 'localhost') {
  const html = await readFile(path.join(here, 'page', 'index.html'));
  const handler = (req, res) => {
    const url = new URL(req.url, 'http://x');
    if (req.method === 'GET' && (url.pathname === '/' || url.pathname === '/index.html')) {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
      res.end(html);
    } else if (url.pathname === '/favicon.ico') {
      res.writeHead(204);
      res.end();
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' });
      res.end('not found');
    }
  };
  const servers = [];
  const listen = (addr, port) =>
    new Promise((resolve, reject) => {
      const s = http.createServer(handler);
      s.once('error', reject);
      s.listen(port, addr, () => {
        servers.push(s);
        resolve(s.address().port);
      });
    });
  const port = await listen('127.0.0.1', 0);
  if (host === 'localhost') {
    // "localhost" may resolve to ::1 first; serve there too when the machine has IPv6 loopback.
    await listen('::1', port).catch(() => {});
  }
  const origin = `http://${host}:${port}`;
  return {
    origin,
    url: `${origin}/`,
    port,
    close: () =>
      Promise.all(
        servers.map(
          (s) =>
            new Promise((resolve) => {
              s.closeAllConnections?.();
              s.close(() => resolve());
            }),
        ),
      ),
  };
}

// ---------------------------------------------------------------------------------------------------
// the browser

export async function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true, timeout: 30_000 });
}

/**
 * openPage opens url in a new browser context; with authenticator (PLATFORM_AUTHENTICATOR,
 * ROAMING_AUTHENTICATOR or custom options) it adds a CDP virtual authenticator to the page.
 * expectCORSRefusal silences the console errors of a refused cross-origin fetch, which that page's test
 * provokes. Returns {context, page, cdp, authenticatorId}.
 */
export async function openPage(browser, url, { authenticator = PLATFORM_AUTHENTICATOR, expectCORSRefusal = false } = {}) {
  const context = await browser.newContext();
  context.setDefaultTimeout(30_000);
  const page = await context.newPage();
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    // A page that tests a CORS refusal expects the browser's report of it; only other errors alarm.
    if (expectCORSRefusal && /blocked by CORS policy|net::ERR_FAILED/.test(msg.text())) return;
    process.stderr.write(`[page console] ${msg.text()}\n`);
  });
  await page.goto(url, { waitUntil: 'load', timeout: 30_000 });
  const cdp = await context.newCDPSession(page);
  let authenticatorId = null;
  if (authenticator) authenticatorId = await addVirtualAuthenticator(cdp, authenticator);
  return { context, page, cdp, authenticatorId };
}

/** addVirtualAuthenticator enables the WebAuthn CDP domain and adds an authenticator; returns its id. */
export async function addVirtualAuthenticator(cdp, options = PLATFORM_AUTHENTICATOR) {
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', { options: { ...options } });
  return authenticatorId;
}

export const addPlatformAuthenticator = (cdp) => addVirtualAuthenticator(cdp, PLATFORM_AUTHENTICATOR);
export const addRoamingAuthenticator = (cdp) => addVirtualAuthenticator(cdp, ROAMING_AUTHENTICATOR);

/** authenticatorCredentials lists the credentials a virtual authenticator holds (CDP). */
export async function authenticatorCredentials(cdp, authenticatorId) {
  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  return credentials;
}

/**
 * browserCreate runs navigator.credentials.create in the page with options as the server sends them
 * ({publicKey: {...}} or the bare publicKey JSON) and returns PublicKeyCredential.toJSON().
 */
export async function browserCreate(page, options) {
  const publicKey = options?.publicKey ?? options;
  const out = await page.evaluate(
    async ({ publicKey, timeout }) => {
      try {
        const pk = PublicKeyCredential.parseCreationOptionsFromJSON(publicKey);
        const cred = await navigator.credentials.create({ publicKey: pk, signal: AbortSignal.timeout(timeout) });
        return { credential: cred.toJSON() };
      } catch (err) {
        return { error: `${err.name}: ${err.message}` };
      }
    },
    { publicKey, timeout: CEREMONY_TIMEOUT_MS },
  );
  if (out.error) throw new Error(`navigator.credentials.create failed: ${out.error}\noptions: ${JSON.stringify(publicKey)}`);
  return out.credential;
}

/** browserGet runs navigator.credentials.get in the page and returns PublicKeyCredential.toJSON(). */
export async function browserGet(page, options) {
  const publicKey = options?.publicKey ?? options;
  const out = await page.evaluate(
    async ({ publicKey, timeout }) => {
      try {
        const pk = PublicKeyCredential.parseRequestOptionsFromJSON(publicKey);
        const cred = await navigator.credentials.get({ publicKey: pk, signal: AbortSignal.timeout(timeout) });
        return { credential: cred.toJSON() };
      } catch (err) {
        return { error: `${err.name}: ${err.message}` };
      }
    },
    { publicKey, timeout: CEREMONY_TIMEOUT_MS },
  );
  if (out.error) throw new Error(`navigator.credentials.get failed: ${out.error}\noptions: ${JSON.stringify(publicKey)}`);
  return out.credential;
}

/**
 * browserFetch calls fetch(url, init) inside the page (so CORS applies) and returns
 * {status, headers, text, json}, or {error} when the browser refused the request (a CORS failure, a
 * network error). init.body may be an object; it is then sent as JSON.
 */
export async function browserFetch(page, url, init = {}) {
  const req = { ...init };
  if (req.body !== undefined && typeof req.body !== 'string') {
    req.body = JSON.stringify(req.body);
    req.headers = { 'Content-Type': 'application/json', ...(req.headers || {}) };
  }
  return page.evaluate(
    async ({ url, init, timeout }) => {
      try {
        const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeout) });
        const text = await res.text();
        let json;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        return { status: res.status, headers: Object.fromEntries(res.headers), text, json };
      } catch (err) {
        return { error: `${err.name}: ${err.message}` };
      }
    },
    { url, init: req, timeout: HTTP_TIMEOUT_MS },
  );
}

// ---------------------------------------------------------------------------------------------------
// one environment per test file

/**
 * E2E bundles a server, the test page on http://localhost:<port> and a browser. Use it as
 *
 *   const env = new E2E();
 *   before(() => env.start(), { timeout: E2E.START_TIMEOUT });
 *   after(() => env.stop());
 *   env.test('name', async (t) => { ... });
 *
 * env.test prints the server log written during a failing test (the whole log if start failed).
 */
export class E2E {
  static START_TIMEOUT = BUILD_TIMEOUT_MS + READY_TIMEOUT_MS + 60_000;

  constructor({ browser = true } = {}) {
    this.wantBrowser = browser;
    this.server = new Server();
    this.page = null; // {origin, url, close}
    this.browser = null;
    this.contexts = [];
    this.extraPageServers = [];
    this.startError = null;
  }

  async start() {
    try {
      this.pageServer = await startPageServer('localhost');
      await this.server.start();
      if (this.wantBrowser) this.browser = await launchBrowser();
    } catch (err) {
      this.startError = err;
      this.dumpLog('start failed', 0);
      throw err;
    }
  }

  get publicURL() {
    return this.server.publicURL;
  }

  get pageOrigin() {
    return this.pageServer.origin;
  }

  /** createTenant creates a tenant whose RP ID is localhost and whose origins are the test page's. */
  createTenant(opts = {}) {
    return this.server.createTenant({ pageOrigin: this.pageOrigin, ...opts });
  }

  /** putConfig replaces a tenant's config; origins and CORS default to the test page's. */
  putConfig(tenantId, opts = {}) {
    return this.server.putConfig(tenantId, { pageOrigin: this.pageOrigin, ...opts });
  }

  /** openPage opens the localhost test page (or url) in a fresh context with a virtual authenticator. */
  async openPage(opts = {}) {
    if (!this.browser) throw new Error('no browser: E2E was created with {browser:false} or start failed');
    const { url = this.pageServer.url, ...rest } = opts;
    const p = await openPage(this.browser, url, rest);
    this.contexts.push(p.context);
    return p;
  }

  /**
   * startOtherPageServer serves the test page on another origin, http://127.0.0.1:<other port>, which
   * no tenant allows (and where the RP ID localhost does not apply). Stopped by stop().
   */
  async startOtherPageServer() {
    const ps = await startPageServer('127.0.0.1');
    this.extraPageServers.push(ps);
    return ps;
  }

  /** dumpLog prints the server log from line from on (or, when nothing was logged since, its tail). */
  dumpLog(why, from) {
    let text = this.server.logText(from);
    let what = from > 0 ? 'written during the test' : 'all of it';
    if (!text) {
      const all = this.server.logLines;
      text = all.slice(Math.max(0, all.length - 40)).join('\n');
      what = 'nothing was written during the test; its last lines before it';
    }
    process.stderr.write(
      `\n----- passkey-server log (${why}; ${this.server.mode ?? 'not started'}; ${what}) -----\n${text || '(empty)'}\n----- end of server log -----\n`,
    );
  }

  /** test registers a node:test test that prints the server log written during it when it fails. */
  test(name, fn, options = {}) {
    return test(name, options, async (t) => {
      if (this.startError) throw new Error(`environment did not start: ${this.startError.message}`);
      const mark = this.server.logMark();
      try {
        await fn(t);
      } catch (err) {
        this.dumpLog(`test "${name}" failed`, mark);
        throw err;
      }
    });
  }

  async stop() {
    const steps = [];
    for (const c of this.contexts) steps.push(withTimeout(c.close(), 10_000, 'close context').catch(() => {}));
    await Promise.all(steps);
    if (this.browser) {
      await withTimeout(this.browser.close(), 15_000, 'close browser').catch((err) => {
        process.stderr.write(`e2e: ${err.message}\n`);
      });
    }
    await this.server.stop();
    for (const ps of [this.pageServer, ...this.extraPageServers]) if (ps) await ps.close();
  }
}
