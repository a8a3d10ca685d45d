// Test harness for the coretalk end-to-end suite.
//
// Starts one coretalk server per test file (each `node --test` file runs in its own process) and
// drives it with the official Tinode JS SDK (npm `tinode-sdk`) over WebSocket or long polling,
// exactly as a browser client would. Node 20 has no WebSocket/XMLHttpRequest/indexedDB, so the SDK
// gets `ws`, `xhr2` and a tiny indexedDB stub (with `persist: false` the SDK only calls
// `indexedDB.deleteDatabase()`).
//
// Cluster mode (cluster.js): three node processes on one throw-away PostgreSQL, for the tests that
// spread SDK clients over nodes; skipped, saying why, without CORETALK_TEST_PG or outside the
// PostgreSQL pass.
//
// Environment:
//   E2E_TRANSPORT  `ws` (default) or `lp`: the SDK's transport for every client (`npm test` runs
//                  the whole suite once per transport)
//   CORETALK_BIN   server binary (default <repo>/target/debug/coretalk)
//   E2E_TRACE=1    print every wire frame (SDK "in:"/"out:" log lines) live
//   E2E_KEEP=1     keep the server's temp dir (data + log) even when all tests pass

import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { test, before, after } from 'node:test';

import WebSocket from 'ws';
import XMLHttpRequest from 'xhr2';
import sdk from 'tinode-sdk';

export const { Tinode, AccessMode, Drafty } = sdk;

export const API_KEY = 'AQEAAAABAAD_rAp4DJh05a1HAwFT3A6K';
/** The SDK transport of every client in this run: 'ws' or 'lp' (E2E_TRANSPORT). */
export const TRANSPORT = process.env.E2E_TRANSPORT === 'lp' ? 'lp' : 'ws';
if (!['', undefined, 'ws', 'lp'].includes(process.env.E2E_TRANSPORT)) {
  throw new Error(`E2E_TRANSPORT must be ws or lp, not ${process.env.E2E_TRANSPORT}`);
}
export const DEFAULT_TIMEOUT_MS = 5000;

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.resolve(HERE, '..', '..');
const SERVER_BIN = process.env.CORETALK_BIN || path.join(REPO_ROOT, 'target', 'debug', 'coretalk');

/**
 * `--store URL` for a new database when this run tests the PostgreSQL store
 * (CORETALK_TEST_STORE=postgres with CORETALK_TEST_PG naming a throw-away instance, as
 * tests/pg.sh starts); no arguments for the embedded store.
 */
let dbCounter = 0;
function storeArgs() {
  if (process.env.CORETALK_TEST_STORE !== 'postgres') return [];
  const base = process.env.CORETALK_TEST_PG;
  if (!base) throw new Error('CORETALK_TEST_STORE=postgres needs CORETALK_TEST_PG (tests/pg.sh)');
  const name = `e2e_${process.pid}_${dbCounter++}`;
  const psql = path.join(process.env.PGBIN || '/usr/lib/postgresql/15/bin', 'psql');
  execFileSync(psql, [`${base}/postgres`, '-v', 'ON_ERROR_STOP=1', '-q', '-c', `CREATE DATABASE ${name}`]);
  return ['--store', `${base}/${name}`];
}
const STARTUP_TIMEOUT_MS = 20000;
const KILL_GRACE_MS = 3000;
const TRACE_LIVE = !!process.env.E2E_TRACE;
const TRACE_KEEP = 400; // wire lines kept for the failure dump

// ---------------------------------------------------------------------------------------------------
// SDK environment

// Minimal indexedDB stand-in: with persist:false the SDK only deletes its database once.
const fakeIndexedDB = {
  open() {
    throw new Error('indexedDB.open() is not available in the e2e harness (use persist:false)');
  },
  deleteDatabase() {
    const req = {};
    setTimeout(() => {
      if (req.onsuccess) req.onsuccess({ target: req });
    }, 0);
    return req;
  },
};

// SDK quirk (tinode-sdk 0.25.3, connection.js): over long polling, disconnect() aborts only the
// first poll of a connection; the poll pending at that moment stays open until the server answers
// it, and then the SDK starts another one on a null URL. A browser tab that closes takes its
// requests with it; a Node process does not. So every XMLHttpRequest is tagged with the client
// whose code created it (a poll is created in the handler of the previous one, so the chain
// inherits the tag) and disconnect() aborts the client's requests still open: the server sees the
// connection close and lets the session expire, as it would for a closed tab.
let xhrOwner = null;
class TrackedXHR extends XMLHttpRequest {
  constructor() {
    super();
    this.owner = xhrOwner;
    if (this.owner) this.owner._xhrs.add(this);
  }

  // A client with `_spread` (a list of hosts) sends each request to the next of them, as a load
  // balancer without stickiness would (cluster mode: any node must serve any long-poll session).
  open(method, url, ...rest) {
    const hosts = this.owner && this.owner._spread;
    if (hosts && hosts.length) {
      const host = hosts[this.owner._spreadNext++ % hosts.length];
      url = String(url).replace(/^(https?:\/\/)[^/]+/, `$1${host}`);
      this.owner._spreadUrls.push(url);
    }
    return super.open(method, url, ...rest);
  }

  _setReadyState(state) {
    if (state === XMLHttpRequest.DONE && this.owner) this.owner._xhrs.delete(this);
    const prev = xhrOwner;
    xhrOwner = this.owner;
    try {
      return super._setReadyState(state);
    } finally {
      xhrOwner = prev;
    }
  }
}

Tinode.setNetworkProviders(WebSocket, TrackedXHR);
Tinode.setDatabaseProvider(fakeIndexedDB);

// ---------------------------------------------------------------------------------------------------
// Small utilities

/** Random lowercase suffix for unique logins/tags within one run. */
export function randomSuffix(bytes = 4) {
  return randomBytes(bytes).toString('hex');
}

/** A login name that is unique per run: letters/digits only (basic-auth login policy). */
export function uniqueLogin(base) {
  return `${base}${randomSuffix()}`;
}

/** Resolve after `ms` milliseconds (used only to let already-queued SDK callbacks run). */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Let already-arrived frames be processed: the SDK handles {meta}/{data}/{pres}/{info} in a
 * setTimeout(0) while {ctrl} settles promises immediately, so after a request's promise resolves the
 * frames that preceded its {ctrl} may still be queued.
 */
export function flush() {
  return sleep(25);
}

/**
 * Poll `predicate` until it returns a truthy value; resolve with that value. Rejects with a clear
 * message after `timeoutMs`.
 */
export async function waitFor(predicate, what = 'condition', timeoutMs = DEFAULT_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let value;
    try {
      value = await predicate();
    } catch (err) {
      value = undefined;
      if (Date.now() >= deadline) throw err;
    }
    if (value) return value;
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    }
    await sleep(10);
  }
}

/** Reject if `promise` does not settle within `timeoutMs`. */
export function withTimeout(promise, what, timeoutMs = DEFAULT_TIMEOUT_MS) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`)),
      timeoutMs,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Record every call of `target[handlerName]` (e.g. topic.onData, me.onPres, tinode.onMetaMessage)
 * into the returned array, keeping any previously installed handler. Calls without arguments
 * (the SDK calls onData() to mean "redraw") are not recorded.
 */
export function record(target, handlerName) {
  const events = [];
  const prev = target[handlerName];
  target[handlerName] = function recorded(...args) {
    if (args.length > 0 && args[0] !== undefined) {
      events.push(args.length === 1 ? args[0] : args);
    }
    if (prev) return prev.apply(this, args);
    return undefined;
  };
  return events;
}

/** Wait until an element of `events` (from record()) matches `match`; resolve with it. */
export function waitForEvent(events, match, what, timeoutMs = DEFAULT_TIMEOUT_MS) {
  return waitFor(() => events.find(match), what, timeoutMs);
}

/**
 * Await an SDK request that must be refused with `{ctrl code}`; returns the CommError.
 */
export async function expectCode(promise, code, what) {
  let result;
  try {
    result = await promise;
  } catch (err) {
    if (err && err.code === code) return err;
    throw new Error(
      `${what}: expected rejection with code ${code}, got ${err && err.code !== undefined ? `code ${err.code}: ` : ''}${err && err.message ? err.message : err}`,
    );
  }
  throw new Error(`${what}: expected rejection with code ${code}, but it succeeded: ${JSON.stringify(result)}`);
}

// ---------------------------------------------------------------------------------------------------
// Server lifecycle

let server = null; // { proc, port, host, dir, logPath, exited }
let anyFailure = false;
const wireTrace = []; // last TRACE_KEEP wire lines of all clients in this file

function traceLine(line) {
  wireTrace.push(line);
  if (wireTrace.length > TRACE_KEEP) wireTrace.splice(0, wireTrace.length - TRACE_KEEP);
  if (TRACE_LIVE) console.log(line);
}

function tailOf(file, lines = 60) {
  try {
    const text = fs.readFileSync(file, 'utf8');
    const all = text.split('\n');
    return all.slice(-lines).join('\n');
  } catch (err) {
    return `<cannot read ${file}: ${err.message}>`;
  }
}

function tomlValue(v) {
  if (Array.isArray(v)) return `[${v.map(tomlValue).join(', ')}]`;
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}

/**
 * The server config file for a test file: `[auth] bcrypt_cost = 4` plus `config`, an object of
 * sections, e.g. `{ auth: { root_users: ['root1'] }, topic: { max_subscriber_count: 3 } }`.
 */
export function configToml(config = {}) {
  const sections = { auth: { bcrypt_cost: 4 } };
  // A long-poll session outlives its last request by session.detached_idle_ms (70 s, as the
  // reference); a disconnected client must go offline as soon as a WebSocket one would (the
  // scenarios time presence), so over LP it ends 1 s after its last request. The SDK always
  // has a poll open, so a live client never comes near that.
  if (TRANSPORT === 'lp') sections.session = { detached_idle_ms: 1000 };
  for (const [name, values] of Object.entries(config)) {
    sections[name] = { ...(sections[name] || {}), ...values };
  }
  let out = '';
  for (const [name, values] of Object.entries(sections)) {
    out += `[${name}]\n`;
    for (const [key, value] of Object.entries(values)) out += `${key} = ${tomlValue(value)}\n`;
  }
  return out;
}

/**
 * Start coretalk on an ephemeral port with a fresh data dir and config. Resolves with
 * { port, host, dir, logPath } once it prints "coretalk listening on 127.0.0.1:PORT".
 * `config`: extra config sections (see configToml).
 */
export async function startServer({ config } = {}) {
  server = await spawnServer({ config });
  return server;
}

/**
 * Start one coretalk process (not registered as this file's server): `shards` shards, the
 * run's store unless `store` (arguments) is given, and `extraArgs`. Resolves with
 * { proc, port, host, dir, logPath, exited } once it listens; stop it with stopProcess().
 */
export async function spawnServer({ config, shards = 2, store, extraArgs = [] } = {}) {
  if (!fs.existsSync(SERVER_BIN)) {
    throw new Error(`coretalk binary not found at ${SERVER_BIN} (build it or set CORETALK_BIN)`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coretalk-e2e-'));
  const dataDir = path.join(dir, 'data');
  const configPath = path.join(dir, 'coretalk.toml');
  const logPath = path.join(dir, 'server.log');
  fs.writeFileSync(configPath, configToml(config));
  const logFd = fs.openSync(logPath, 'a');

  // gRPC off: parallel test servers must not share its fixed default port.
  const args = ['--listen', '127.0.0.1:0', '--grpc-listen', '', '--data', dataDir, '--shards', String(shards),
    '--config', configPath, ...(store || storeArgs()), ...extraArgs];
  const proc = spawn(SERVER_BIN, args, { stdio: ['ignore', 'pipe', logFd] });
  fs.closeSync(logFd); // the child holds its own copy

  const state = { proc, dir, logPath, port: 0, host: '', exited: null };
  proc.on('exit', (code, signal) => {
    state.exited = { code, signal };
  });
  // Never leave a server behind if the test process dies.
  const killOnExit = () => {
    try {
      proc.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  };
  process.on('exit', killOnExit);
  state.killOnExit = killOnExit;

  const port = await new Promise((resolve, reject) => {
    let done = false;
    const finish = (err, value) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(value);
    };
    const timer = setTimeout(() => {
      finish(
        new Error(
          `coretalk did not print "coretalk listening on 127.0.0.1:PORT" within ${STARTUP_TIMEOUT_MS} ms.\n` +
            `command: ${SERVER_BIN} ${args.join(' ')}\n--- stderr (${logPath}) ---\n${tailOf(logPath)}`,
        ),
      );
    }, STARTUP_TIMEOUT_MS);
    const rl = readline.createInterface({ input: proc.stdout });
    rl.on('line', (line) => {
      fs.appendFileSync(logPath, `[stdout] ${line}\n`);
      const m = /coretalk listening on 127\.0\.0\.1:(\d+)/.exec(line);
      if (m) finish(null, Number(m[1]));
    });
    proc.on('error', (err) => finish(new Error(`cannot start ${SERVER_BIN}: ${err.message}`)));
    proc.on('exit', (code, signal) => {
      // Give the stderr file a moment to be complete before reading it.
      setTimeout(
        () =>
          finish(
            new Error(
              `coretalk exited before listening (code ${code}, signal ${signal}).\n` +
                `command: ${SERVER_BIN} ${args.join(' ')}\n--- stderr (${logPath}) ---\n${tailOf(logPath)}`,
            ),
          ),
        50,
      );
    });
  });

  state.port = port;
  state.host = `127.0.0.1:${port}`;
  return state;
}

/** SIGTERM, then SIGKILL after 3 s. Removes the temp dir unless something failed or E2E_KEEP. */
export async function stopServer() {
  const s = server;
  server = null;
  await stopProcess(s);
}

/** Stops a process spawnServer() started, as stopServer() does. */
export async function stopProcess(s) {
  if (!s) return;
  if (!s.exited) {
    const exited = new Promise((resolve) => s.proc.once('exit', resolve));
    s.proc.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (!s.exited) s.proc.kill('SIGKILL');
    }, KILL_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }
  process.removeListener('exit', s.killOnExit);
  s.proc.stdout?.destroy();
  if (anyFailure || process.env.E2E_KEEP) {
    console.log(`# coretalk data and log kept in ${s.dir}`);
  } else {
    fs.rmSync(s.dir, { recursive: true, force: true });
  }
}

/**
 * Register before/after hooks that start and stop one server for this test file.
 * `options.config`: extra config sections (see configToml).
 */
export function useServer(options = {}) {
  before(async () => {
    await startServer(options);
  });
  after(async () => {
    await disconnectAll();
    await stopServer();
  });
}

export function currentServer() {
  if (!server) throw new Error('server not started: call useServer() at the top of the test file');
  return server;
}

/** Servers besides this file's own whose log a failure prints (the nodes of a cluster). */
const diagnosed = new Set();
export function diagnose(state) {
  diagnosed.add(state);
}
export function undiagnose(state) {
  diagnosed.delete(state);
}

function dumpDiagnostics(name, err) {
  anyFailure = true;
  const parts = [`\n===== e2e failure in "${name}": ${err && err.stack ? err.stack : err}`];
  for (const s of [server, ...diagnosed]) {
    if (!s) continue;
    if (s.exited) {
      parts.push(`server process ${s.host} has EXITED: ${JSON.stringify(s.exited)}`);
    }
    parts.push(`----- server log tail (${s.logPath}) -----\n${tailOf(s.logPath)}`);
  }
  parts.push(`----- last ${Math.min(wireTrace.length, 120)} wire frames -----\n${wireTrace.slice(-120).join('\n')}`);
  parts.push('===== end of diagnostics');
  console.log(parts.join('\n'));
}

// ---------------------------------------------------------------------------------------------------
// Clients

const openClients = new Set();

/**
 * New SDK instance connected over the run's transport (TRANSPORT, or `transport`) to this file's
 * server (or `host`), resolved once the server answered {hi}. `spread` (long polling): hosts
 * the client's requests go to in turn after the first.
 * `label` tags its frames in the wire trace; `appName` becomes the first word of the session's
 * user agent ("e2e (Node; ...); tinodejs/0.25.3" by default).
 */
export async function connect(label = 'client', { appName = 'e2e', host, transport = TRANSPORT, spread } = {}) {
  const tn = new Tinode({
    appName,
    host: host || currentServer().host,
    apiKey: API_KEY,
    transport,
    secure: false,
    persist: false,
  });
  tn.label = label;
  tn._xhrs = new Set(); // long polling: this client's open requests (see TrackedXHR)
  tn._spread = spread; // long polling: hosts its requests go to in turn (see TrackedXHR)
  tn._spreadNext = 0;
  tn._spreadUrls = []; // the URLs they went to
  // Every frame received, raw (tn.rawIn, strings) and parsed without the SDK's reviver (tn.wire,
  // plain JSON: timestamps stay strings, acs stays {want,given,mode}). See frames()/waitForFrame().
  tn.rawIn = [];
  tn.wire = [];
  tn.onRawMessage = (data) => {
    tn.rawIn.push(data);
    try {
      tn.wire.push(JSON.parse(data));
    } catch {
      /* the probe answer "0" is not JSON */
    }
  };
  // Capture the SDK's own log (every frame in and out) into the wire trace.
  tn.logger = (str, ...args) => {
    traceLine(`[${label}] ${str}${args.length ? ' ' + args.join(' ') : ''}`);
  };
  openClients.add(tn);

  const ready = new Promise((resolve, reject) => {
    tn.onConnect = () => resolve();
    tn.onDisconnect = (err) =>
      reject(new Error(`[${label}] disconnected before {hi} was answered: ${err && err.message ? err.message : err}`));
  });
  xhrOwner = tn;
  try {
    tn.connect().catch(() => {
      /* reported through onDisconnect / timeout */
    });
  } finally {
    xhrOwner = null;
  }
  try {
    await withTimeout(ready, `[${label}] ${transport} connect + reply to {hi}`);
  } catch (err) {
    disconnect(tn);
    throw err;
  }
  tn.onConnect = undefined;
  tn.onDisconnect = undefined;
  return tn;
}

/** Close one client (no auto-reconnect). */
export function disconnect(tn) {
  if (!tn) return;
  openClients.delete(tn);
  // The SDK sends {note recv} from a timer 100 ms after each {data}; one that fires after the
  // close would throw "Websocket is not connected" as an uncaught exception into whatever test
  // runs then. A closed client sends no notes.
  tn.note = () => {};
  try {
    tn.disconnect();
  } catch {
    /* ignore */
  }
  for (const xhr of [...(tn._xhrs || [])]) {
    try {
      xhr.abort();
    } catch {
      /* ignore */
    }
  }
}

/** Close every client opened so far. */
export async function disconnectAll() {
  // The SDK handles {meta}/{data}/{pres} in a setTimeout and sends {note recv} 100 ms after a
  // {data}; let those run while still connected, or they throw "Websocket is not connected"
  // into the next test.
  await sleep(150);
  for (const tn of [...openClients]) disconnect(tn);
  await sleep(20);
}

function authResult(tn, ctrl) {
  const tok = tn.getAuthToken();
  return { tn, ctrl, uid: ctrl?.params?.user, token: tok ? tok.token : undefined, expires: tok?.expires };
}

/**
 * createAccountBasic(login, password, {public:{fn}}) with login:true on a new connection.
 * Resolves with { tn, ctrl, uid, token, expires }.
 */
export async function signUp(login, password, publicName, { label = login, tags, ...conn } = {}) {
  const tn = await connect(label, conn);
  const params = { public: { fn: publicName } };
  if (tags) params.tags = tags;
  const ctrl = await tn.createAccountBasic(login, password, params);
  return authResult(tn, ctrl);
}

/** loginBasic on a new connection. */
export async function login(loginName, password, { label = loginName, ...conn } = {}) {
  const tn = await connect(label, conn);
  const ctrl = await tn.loginBasic(loginName, password);
  return authResult(tn, ctrl);
}

/** loginToken on a new connection. */
export async function loginToken(token, { label = 'token', appName } = {}) {
  const tn = await connect(label, { appName });
  const ctrl = await tn.loginToken(token);
  return authResult(tn, ctrl);
}

/**
 * Convenience for scenarios: sign up a fresh user with a unique login; `conn`: connect()'s
 * options (host, transport, spread). Returns { tn, uid, token, login, password, name }.
 */
export async function newUser(name, conn = {}) {
  const loginName = uniqueLogin(name.toLowerCase());
  const password = `pw-${name}-${randomSuffix(3)}`;
  const res = await signUp(loginName, password, name, { label: name, ...conn });
  if (!res.uid) throw new Error(`sign-up of ${loginName} returned no user id: ${JSON.stringify(res.ctrl)}`);
  return { ...res, login: loginName, password, name };
}

/** Subscribe to `me` of `tn`, asking for desc and the subscription list. Returns the me topic. */
export async function attachMe(tn) {
  const me = tn.getMeTopic();
  await me.subscribe(me.startMetaQuery().withDesc().withSub().build());
  return me;
}

/**
 * Ask `me` for the subscription list; resolves with the raw sub array ([] when the server answers
 * 204 "no content"). The SDK resolves a {get} with the first {meta} or {ctrl} carrying its id.
 */
export async function fetchMeSubs(tn) {
  const me = tn.getMeTopic();
  const reply = await me.getMeta(me.startMetaQuery().withSub().build());
  await flush();
  if (reply && Array.isArray(reply.sub)) return reply.sub;
  if (reply && reply.code === 204) return [];
  throw new Error(`unexpected reply to {get me what:"sub"}: ${JSON.stringify(reply)}`);
}

/** Same for a group topic's member list. */
export async function fetchTopicSubs(topic) {
  const reply = await topic.getMeta(topic.startMetaQuery().withSub().build());
  await flush();
  if (reply && Array.isArray(reply.sub)) return reply.sub;
  if (reply && reply.code === 204) return [];
  throw new Error(`unexpected reply to {get ${topic.name} what:"sub"}: ${JSON.stringify(reply)}`);
}

/**
 * Publish through the SDK's Topic.publish(). The SDK swallows {pub} errors (it only marks the message
 * failed and resolves with undefined), so turn that into a test failure here.
 */
export async function publish(topic, content) {
  const ctrl = await topic.publish(content);
  if (!ctrl || ctrl.code !== 202 || !ctrl.params || !Number.isInteger(ctrl.params.seq)) {
    throw new Error(
      `publish to ${topic.name} failed: expected {ctrl 202 params:{seq}}, got ${JSON.stringify(ctrl)} (see wire trace)`,
    );
  }
  return ctrl;
}

// ---------------------------------------------------------------------------------------------------
// Wire-level helpers: every client records what it receives in tn.wire (parsed JSON, no reviver) and
// tn.rawIn (the text frames), so tests can check frames the SDK would swallow or reshape.

/** Payloads of `type` ('ctrl', 'data', 'meta', 'pres', 'info') received by `tn` from index `since` on. */
export function frames(tn, type, match = () => true, since = 0) {
  const out = [];
  for (let i = since; i < tn.wire.length; i++) {
    const p = tn.wire[i][type];
    if (p && match(p)) out.push(p);
  }
  return out;
}

/** Position in tn.wire; pass it as `since` to look only at frames that arrive later. */
export function mark(tn) {
  return tn.wire.length;
}

/** Wait until `tn` has received a `{type}` frame matching `match` (from `since` on); resolve with it. */
export function waitForFrame(tn, type, match, what, { since = 0, timeout = DEFAULT_TIMEOUT_MS } = {}) {
  return waitFor(() => frames(tn, type, match, since)[0], `[${tn.label}] {${type}} ${what}`, timeout);
}

/** Wait `ms`, then fail if `tn` received a `{type}` frame matching `match` (from `since` on). */
export async function expectNoFrame(tn, type, match, what, { since = 0, ms = 300 } = {}) {
  await sleep(ms);
  const got = frames(tn, type, match, since);
  if (got.length > 0) {
    throw new Error(`[${tn.label}] must not receive {${type}} ${what}, got ${JSON.stringify(got)}`);
  }
}

let rawIdCounter = 0;

/**
 * Send one client message as written (no SDK normalisation: the SDK lowercases tags, merges delete
 * ranges, has no API for some fields such as {acc status}) with a fresh id, and resolve with the
 * first reply carrying that id: the whole packet, `{ctrl:{...}}` or `{meta:{...}}`.
 * Example: await request(tn, { set: { topic: 'me', tags: ['A'] } }).
 */
export async function request(tn, msg, { timeout = DEFAULT_TIMEOUT_MS } = {}) {
  const [type] = Object.keys(msg);
  const id = `raw${++rawIdCounter}`;
  const pkt = { [type]: { id, ...msg[type] } };
  const since = tn.wire.length;
  const text = JSON.stringify(pkt);
  traceLine(`[${tn.label}] out(raw): ${text}`);
  tn._connection.sendText(text);
  return waitFor(
    () => tn.wire.slice(since).find((p) => (p.ctrl && p.ctrl.id === id) || (p.meta && p.meta.id === id)),
    `[${tn.label}] reply to ${text}`,
    timeout,
  );
}

/** Like request(), but resolves with the reply's ctrl code (200 for a {meta} reply). */
export async function requestCode(tn, msg, opts) {
  const reply = await request(tn, msg, opts);
  return reply.ctrl ? reply.ctrl.code : 200;
}

/** Send one message without an id and without waiting (e.g. a {note}). */
export function sendRaw(tn, msg) {
  const text = JSON.stringify(msg);
  traceLine(`[${tn.label}] out(raw): ${text}`);
  tn._connection.sendText(text);
}

/** Create a group topic ("new..." sub) owned by `tn`; resolves with the attached Topic. */
export async function createGroup(tn, { name = 'Group', defacs, tags, channel = false } = {}) {
  const topic = tn.getTopic(tn.newGroupTopicName(channel));
  const desc = { public: { fn: name } };
  if (defacs) desc.defacs = defacs;
  const setParams = { desc };
  if (tags) setParams.tags = tags;
  const ctrl = await topic.subscribe(topic.startMetaQuery().withDesc().withSub().build(), setParams);
  if (!ctrl || ctrl.code !== 200 || !/^grp[A-Za-z0-9_-]{11}$/.test(topic.name)) {
    throw new Error(`creating a group failed: ${JSON.stringify(ctrl)}, topic name ${topic.name}`);
  }
  await flush();
  return topic;
}

/** Attach `tn` to the topic `name` asking for desc and members; resolves with the Topic. */
export async function join(tn, name, setParams) {
  const topic = tn.getTopic(name);
  const ctrl = await topic.subscribe(topic.startMetaQuery().withDesc().withSub().build(), setParams);
  if (!ctrl || ctrl.code !== 200) {
    throw new Error(`[${tn.label}] {sub ${name}} answered ${JSON.stringify(ctrl)}`);
  }
  await flush();
  return topic;
}

/** Resolve with the ctrl code of an SDK request, whether it resolved (2xx/3xx) or rejected. */
export function replyCode(promise) {
  return promise.then(
    (ctrl) => (ctrl && ctrl.code) || 200,
    (err) => (err && err.code) || String(err),
  );
}

/**
 * An access mode as plain strings {want, given, mode}, whether it came through the SDK (its JSON
 * reviver turns every "acs" into an AccessMode object) or raw from request().
 */
export function acsOf(acs) {
  if (!acs) return acs;
  if (typeof acs.getWant === 'function') return { want: acs.getWant(), given: acs.getGiven(), mode: acs.getMode() };
  return { want: acs.want, given: acs.given, mode: acs.mode };
}

/**
 * Independent checks that should all be reported: `await soft(() => assert...)` records a failure
 * instead of throwing; `soft.done()` throws one error listing them all.
 */
export function softAsserts() {
  const errors = [];
  const soft = async (fn) => {
    try {
      await fn();
    } catch (err) {
      // A generated assertion message spans lines (actual/expected diff): keep it, on one line.
      const msg = err && err.message ? err.message : String(err);
      errors.push(err && err.generatedMessage ? msg.replace(/\s*\n\s*/g, ' ') : msg.split('\n')[0]);
    }
  };
  soft.done = () => {
    if (errors.length) throw new Error(`${errors.length} check(s) failed:\n- ${errors.join('\n- ')}`);
  };
  return soft;
}

// ---------------------------------------------------------------------------------------------------
// Scenario wrapper

/**
 * A top-level test that, on failure, prints the server log tail and the recent wire frames, and
 * always closes the clients it opened.
 */
// Scenarios of issue 3 the server does not satisfy yet. They still run; node:test reports
// them as TODO (a failure does not fail the run, a pass is shown too), so the list can only
// shrink. Each entry names what is missing. Keep this list short and honest.
const KNOWN_GAPS = new Map([
]);

export function scenario(name, fn, { timeout = 60000 } = {}) {
  const todo = KNOWN_GAPS.get(name);
  return test(name, { timeout, ...(todo ? { todo } : {}) }, async (t) => {
    try {
      await fn(t);
    } catch (err) {
      dumpDiagnostics(name, err);
      throw err;
    } finally {
      await disconnectAll();
    }
  });
}
