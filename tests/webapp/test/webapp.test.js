// The official Tinode web app (npm tinode-webapp 0.25.3), served by coretalk's static mount and
// driven in headless Chromium by two users: sign-up, a group chat, a p2p chat.
//
// The app is used exactly as a person would: its own forms and buttons, nothing injected except
// observers. The test fails on a missing UI outcome (a message not rendered, a chat that does not
// open) and, in the last test, on any protocol failure the app met on the way: a {ctrl} 4xx/5xx
// reply, a request left unanswered for 5 s (the SDK's "timeout (504)"), an error shown in the
// app's error panel, an uncaught page exception, or a console error outside the allow-list.
//
// Output under tests/webapp/out/ (gitignored; out/lp/ for a long-polling run):
//   screenshots/*.png       key screens; fail-*.png when a step fails
//   frames-<user>.log       every WebSocket frame (or long-poll body) both ways, with times
//   server.log              coretalk's stderr
//
// Environment:
//   WEBAPP_TRANSPORT ws (default) or lp: over lp the app is told (its own `settings` in
//                    localStorage, as its settings panel stores them) to use long polling with
//                    the server at localhost:PORT while the page is at 127.0.0.1:PORT, so every
//                    request is cross-origin and needs coretalk's CORS answers
//   CORETALK_BIN     server binary (default <CARGO_TARGET_DIR or repo/target>/debug/coretalk)
//   CHROMIUM_BIN     browser (default /usr/bin/chromium)
//   WEBAPP_HEADFUL=1 show the browser (needs a display)

import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { test, before, after } from 'node:test';

import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PKG = path.resolve(HERE, '..');
const REPO = path.resolve(PKG, '..', '..');
const TRANSPORT = process.env.WEBAPP_TRANSPORT === 'lp' ? 'lp' : 'ws';
const SITE = path.join(PKG, 'out', 'site');
const OUT = TRANSPORT === 'lp' ? path.join(PKG, 'out', 'lp') : path.join(PKG, 'out');
const SHOTS = path.join(OUT, 'screenshots');
const TARGET = path.resolve(REPO, process.env.CARGO_TARGET_DIR || 'target');
const SERVER_BIN = process.env.CORETALK_BIN || path.join(TARGET, 'debug', 'coretalk');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

const UI_TIMEOUT = 10_000; // one UI outcome (a rendered message, an opened chat)
const SDK_TIMEOUT = 5_000; // the SDK rejects an unanswered request after this

// Console messages that are not protocol failures. Each entry says why it is harmless.
const CONSOLE_ALLOW = [
  // Web fonts and icon fonts are dropped by prepare.js (no internet); icons show their names.
  [/fonts\.(googleapis|gstatic)\.com/, 'font CDN (dropped offline)'],
  // prepare.js removes firebase-init.js: push notifications are off.
  [/firebase/i, 'firebase push (not configured)'],
  // Browsers ask for it on their own; the package has none.
  [/favicon\.ico/, 'favicon'],
];

// Page exceptions that are defects of the app itself, each with the exact place it is thrown.
const PAGE_ERROR_ALLOW = [
  // tinode-sdk 0.25.3 me-topic _routePres calls onContactUpdate('acs', undefined) for a
  // {pres what:"acs"} about a contact it does not know yet (a new P2P conversation: the peer
  // is told with pres acs, as the protocol requires and the reference server does), and the
  // app's tnMeContactUpdate reads `.topic` of that undefined contact. The SDK has already asked
  // for the subscription ({get me sub}) by then, and the contact appears; nothing is lost.
  [
    /Cannot read properties of undefined \(reading 'topic'\)[\s\S]*tnMeContactUpdate[\s\S]*_refreshContact[\s\S]*_routePres/,
    "app defect: onContactUpdate('acs') for an unknown contact",
  ],
];

const RUN = randomBytes(3).toString('hex');
const T0 = Date.now();
const stamp = () => `+${((Date.now() - T0) / 1000).toFixed(3)}s`;

// ---------------------------------------------------------------------------------------------
// Server

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
  const name = `webapp_${process.pid}_${dbCounter++}`;
  const psql = path.join(process.env.PGBIN || '/usr/lib/postgresql/15/bin', 'psql');
  execFileSync(psql, [`${base}/postgres`, '-v', 'ON_ERROR_STOP=1', '-q', '-c', `CREATE DATABASE ${name}`]);
  return ['--store', `${base}/${name}`];
}

let server = null; // { proc, port, dir, logPath }

async function startServer() {
  assert.ok(fs.existsSync(SERVER_BIN), `coretalk binary not found at ${SERVER_BIN} (cargo build --bin coretalk, or set CORETALK_BIN)`);
  assert.ok(fs.existsSync(path.join(SITE, 'index.html')), `no site in ${SITE}: run \`node prepare.js\` first`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'coretalk-webapp-'));
  const config = path.join(dir, 'coretalk.toml');
  const logPath = path.join(dir, 'server.log');
  fs.writeFileSync(config, `[web]\nstatic_dir = ${JSON.stringify(SITE)}\n\n[auth]\nbcrypt_cost = 4\n`);
  const args = ['--listen', '127.0.0.1:0', '--grpc-listen', '', '--data', path.join(dir, 'data'), '--shards', '2', '--config', config, ...storeArgs()];
  const logFd = fs.openSync(logPath, 'a');
  const proc = spawn(SERVER_BIN, args, { stdio: ['ignore', 'pipe', logFd] });
  fs.closeSync(logFd);
  const kill = () => proc.kill('SIGKILL');
  process.on('exit', kill);
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`coretalk did not start in 20 s:\n${tail(logPath)}`)), 20_000);
    readline.createInterface({ input: proc.stdout }).on('line', (line) => {
      const m = /coretalk listening on 127\.0\.0\.1:(\d+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      setTimeout(() => reject(new Error(`coretalk exited (${code ?? signal}) before listening:\n${tail(logPath)}`)), 50);
    });
  });
  server = { proc, port, dir, logPath, kill };
}

async function stopServer() {
  if (!server) return;
  const { proc, dir, logPath, kill } = server;
  server = null;
  if (proc.exitCode === null && proc.signalCode === null) {
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    const timer = setTimeout(kill, 3000);
    await exited;
    clearTimeout(timer);
  }
  process.removeListener('exit', kill);
  fs.copyFileSync(logPath, path.join(OUT, 'server.log'));
  fs.rmSync(dir, { recursive: true, force: true });
}

function tail(file, lines = 40) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch (e) {
    return `<${e.message}>`;
  }
}

// ---------------------------------------------------------------------------------------------
// Users: one browser context each, with observers for frames, console and the error panel

let browser = null;
const users = {}; // name -> User

// Runs in the page before the app: reports every text the app's error panel shows.
function watchErrorPanel() {
  let last = '';
  const check = () => {
    const box = document.querySelector('.info-box.error, .info-box.warning');
    const text = box ? (box.querySelector('span')?.textContent || '').trim() : '';
    if (text && text !== last) console.error(`[app error panel] ${text}`);
    last = text;
  };
  new MutationObserver(check).observe(document, {
    subtree: true, childList: true, characterData: true, attributes: true,
  });
}

class User {
  constructor(name, context, page) {
    this.name = name;
    this.login = `${name}${RUN}`;
    this.password = `${name}-pw`;
    this.fullName = `${name[0].toUpperCase()}${name.slice(1)} ${RUN}`;
    this.context = context;
    this.page = page;
    this.uid = null;
    this.frames = []; // { t, dir: '>>'|'<<', text, msg }
    this.problems = []; // { t, kind, text }
    this.logPath = path.join(OUT, `frames-${name}.log`);
    fs.writeFileSync(this.logPath, `# ${name} (login ${this.login}) frames, run ${RUN}\n`);
  }

  log(line) {
    fs.appendFileSync(this.logPath, `${stamp()} ${line}\n`);
  }

  problem(kind, text) {
    this.problems.push({ t: Date.now(), kind, text });
    this.log(`!! ${kind}: ${text}`);
  }

  observe() {
    const { page } = this;
    page.on('websocket', (ws) => {
      this.log(`== websocket open ${ws.url()}`);
      ws.on('framesent', (f) => this.frame('>>', f.payload));
      ws.on('framereceived', (f) => this.frame('<<', f.payload));
      ws.on('socketerror', (e) => this.problem('websocket error', String(e)));
      ws.on('close', () => this.log('== websocket closed'));
    });
    // Long polling: a request body is one client message (empty: a poll), a response body one
    // server message (empty: nothing came within the hold).
    const isLp = (r) => r.url().includes('/v0/channels/lp');
    page.on('request', (r) => {
      if (!isLp(r) || r.method() === 'OPTIONS') return;
      const body = r.postData();
      if (body) this.frame('>>', body);
    });
    page.on('response', (r) => {
      if (!isLp(r.request()) || r.request().method() === 'OPTIONS') return;
      r.text().then(
        (body) => {
          if (body) this.frame('<<', body);
        },
        () => {},
      );
    });
    page.on('pageerror', (e) => {
      const text = `${e.message}\n${e.stack || ''}`;
      const allowed = PAGE_ERROR_ALLOW.find(([re]) => re.test(text));
      if (allowed) {
        this.log(`.. page exception (allowed: ${allowed[1]}): ${text}`);
        return;
      }
      this.problem('uncaught exception', text);
    });
    page.on('console', (m) => {
      const text = m.text();
      if (m.type() !== 'error' && m.type() !== 'warning') return;
      const allowed = CONSOLE_ALLOW.find(([re]) => re.test(text) || re.test(m.location()?.url || ''));
      if (allowed) {
        this.log(`.. console ${m.type()} (allowed: ${allowed[1]}): ${text}`);
        return;
      }
      this.problem(`console ${m.type()}`, text);
    });
    page.on('requestfailed', (r) => this.log(`.. request failed ${r.url()} ${r.failure()?.errorText}`));
    page.on('response', (r) => {
      if (r.status() >= 400) this.log(`.. HTTP ${r.status()} ${r.url()}`);
    });
  }

  frame(dir, payload) {
    const text = typeof payload === 'string' ? payload : payload.toString('utf8');
    let msg = null;
    try {
      msg = JSON.parse(text);
    } catch {
      /* the network probe "1" / "0" */
    }
    this.frames.push({ t: Date.now(), dir, text, msg });
    this.log(`${dir} ${text}`);
    if (dir === '<<' && msg?.ctrl?.params?.user && !this.uid && msg.ctrl.code < 300) {
      this.uid = msg.ctrl.params.user;
    }
  }

  async shot(name) {
    await this.page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
  }
}

async function newUser(name) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: 'en-US' });
  await context.addInitScript(watchErrorPanel);
  if (TRANSPORT === 'lp') {
    await context.addInitScript((serverAddress) => {
      localStorage.setItem('settings', JSON.stringify({ serverAddress, transport: 'lp', secureConnection: false }));
    }, `localhost:${server.port}`);
  }
  const page = await context.newPage();
  const user = new User(name, context, page);
  user.observe();
  users[name] = user;
  await page.goto(`http://127.0.0.1:${server.port}/`);
  return user;
}

/**
 * The protocol failures seen on one user's connection since `since`: {ctrl} replies with code
 * >= 400 and requests answered late (after the SDK's 5 s) or never.
 */
function wireFailures(user, since = 0) {
  const requests = new Map(); // id -> { t, summary, settled }
  const failures = [];
  for (const f of user.frames) {
    if (!f.msg) continue;
    const [kind, body] = Object.entries(f.msg)[0] || [];
    if (!body || typeof body !== 'object') continue;
    if (f.dir === '>>') {
      if (body.id) {
        const extra = kind === 'sub' && body.set ? ` set=${JSON.stringify(body.set)}` : '';
        const what = body.what ? ` what=${body.what}` : '';
        requests.set(body.id, { t: f.t, summary: `{${kind}${body.topic ? ` topic=${body.topic}` : ''}${what}${extra}}`, settled: false });
      }
      continue;
    }
    if ((kind !== 'ctrl' && kind !== 'meta') || !body.id) continue;
    const req = requests.get(body.id);
    if (!req || req.settled) continue;
    req.settled = true;
    if (f.t < since) continue;
    if (f.t - req.t > SDK_TIMEOUT) {
      failures.push(`${req.summary} answered after ${f.t - req.t} ms (the SDK had already given up: timeout 504)`);
    }
    if (kind === 'ctrl' && body.code >= 400) {
      failures.push(`${req.summary} -> {ctrl ${body.code} "${body.text}"}`);
    }
  }
  for (const [id, req] of requests) {
    if (!req.settled && req.t >= since && Date.now() - req.t > SDK_TIMEOUT) {
      failures.push(`${req.summary} (id ${id}) never answered (the SDK rejects it: timeout 504)`);
    }
  }
  return failures;
}

/** Every failure of every user since `since`, as lines. */
function allFailures(since = 0) {
  const lines = [];
  for (const user of Object.values(users)) {
    for (const f of wireFailures(user, since)) lines.push(`${user.name}: wire: ${f}`);
    for (const p of user.problems.filter((p) => p.t >= since)) lines.push(`${user.name}: ${p.kind}: ${p.text}`);
  }
  return lines;
}

/**
 * Runs one step of the flow; on failure, saves a screenshot per user and adds every protocol
 * failure seen during the step to the error, which is what usually explains it.
 */
async function step(name, fn) {
  const since = Date.now();
  for (const u of Object.values(users)) u.log(`## step: ${name}`);
  try {
    await fn();
  } catch (err) {
    for (const u of Object.values(users)) {
      await u.shot(`fail-${name.replace(/\W+/g, '-')}-${u.name}`).catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 200)); // let the last frames arrive
    const seen = allFailures(since);
    err.message = `${name}: ${err.message}` + (seen.length ? `\nprotocol failures during this step:\n  ${seen.join('\n  ')}` : '');
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------
// App actions (the app's own UI)

const visible = (locator, timeout = UI_TIMEOUT) => locator.first().waitFor({ state: 'visible', timeout });

async function signUp(user) {
  const { page } = user;
  await page.locator('#side-caption-panel a', { hasText: 'person_add' }).click();
  await page.getByPlaceholder('Login').fill(user.login);
  await page.getByPlaceholder('Password').fill(user.password);
  await page.getByPlaceholder('Full name, e.g. John Doe').fill(user.fullName);
  // The app asks for an email whenever the server does not require "tel" (reqCred defaults to
  // email); coretalk's test configuration validates no credentials, so any address will do.
  // The field appears only once the app has the server's {hi} reply: wait for it (checking
  // at once raced with that reply, and an empty required field silently blocks "Sign up").
  const email = page.getByPlaceholder('Email, e.g. jdoe@example.com');
  await visible(email);
  await email.fill(`${user.login}@example.com`);
  await user.shot(`signup-${user.name}`);
  await page.getByRole('button', { name: 'Sign up' }).click();
  // Signed in: the side panel shows the contact list with the user's own name as its title.
  await visible(page.locator('#side-caption-panel', { hasText: user.fullName }));
  await visible(page.getByText('You have no chats'));
  assert.ok(user.uid, 'the sign-up reply carried no params.user');
}

/** Opens the new-chat panel on one of its tabs: 'find', 'new group', 'by id'. */
async function newChatTab(user, tab) {
  const { page } = user;
  await page.locator('#side-caption-panel a', { hasText: /^chat$/ }).click();
  await page.locator('ul.tabbar a', { hasText: tab }).click();
}

async function openById(user, id) {
  await newChatTab(user, 'by id');
  await user.page.getByPlaceholder('Group or User ID').fill(id);
  await user.page.getByRole('button', { name: 'Subscribe' }).click();
}

/** The topic open in the messages panel, from the URL (#/<topic>). */
async function openTopic(user) {
  const hash = await user.page.evaluate(() => window.location.hash);
  const m = /^#\/?([^/?]*)/.exec(hash);
  return m ? m[1] : '';
}

async function sendMessage(user, text) {
  const input = user.page.locator('#send-message-input');
  await visible(input);
  await input.fill(text);
  await input.press('Enter');
  // Own message rendered and acknowledged: it is in the list and the input is cleared.
  await visible(user.page.locator('#scroller').getByText(text, { exact: true }));
}

async function seesMessage(user, text, timeout = UI_TIMEOUT) {
  await visible(user.page.locator('#scroller').getByText(text, { exact: true }), timeout);
}

/** Clicks the chat titled `title` in the side panel's contact list. */
async function openFromContacts(user, title) {
  const item = user.page.locator('#sidepanel ul.contact-box li', { hasText: title });
  await visible(item);
  await item.first().click();
}

// ---------------------------------------------------------------------------------------------
// The flow

before(async () => {
  fs.mkdirSync(SHOTS, { recursive: true });
  for (const f of fs.readdirSync(SHOTS)) fs.rmSync(path.join(SHOTS, f));
  await startServer();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: !process.env.WEBAPP_HEADFUL,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close().catch(() => {});
  await stopServer();
});

test('the static mount serves the app', async () => {
  const base = `http://127.0.0.1:${server.port}`;
  const index = await fetch(`${base}/`);
  assert.equal(index.status, 200);
  assert.match(index.headers.get('content-type'), /^text\/html/);
  assert.match(await index.text(), /umd\/index\.prod\.js/);
  const js = await fetch(`${base}/umd/tinode.prod.js`, { method: 'HEAD' });
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type'), /^text\/javascript/);
  assert.equal(Number(js.headers.get('content-length')), fs.statSync(path.join(SITE, 'umd/tinode.prod.js')).size);
  assert.equal((await fetch(`${base}/nope.js`)).status, 404);
  assert.equal((await fetch(`${base}/%2e%2e/%2e%2e/etc/passwd`)).status, 404);
  assert.equal((await fetch(`${base}/`, { method: 'POST' })).status, 405);
  assert.equal((await fetch(`${base}/debug/vars`)).status, 200);
});

test('sign up two users through the app', { timeout: 60_000 }, async () => {
  for (const name of ['alice', 'bob']) {
    const user = await newUser(name);
    await step(`sign up ${name}`, () => signUp(user));
    await user.shot(`contacts-empty-${name}`);
  }
});

const group = { name: `Team ${RUN}`, topic: '', messages: [] };

test('group chat: alice creates a group, bob joins it by id, both talk', { timeout: 90_000 }, async () => {
  const { alice, bob } = users;
  assert.ok(alice?.uid && bob?.uid, 'sign-up did not complete');
  const groupName = group.name;
  let grp = '';
  await step('alice creates a group', async () => {
    await newChatTab(alice, 'new group');
    await alice.page.getByPlaceholder('Freeform name of the group').fill(groupName);
    await alice.page.getByRole('button', { name: 'Create' }).click();
    await visible(alice.page.locator('#topic-title', { hasText: groupName }));
    await alice.page.waitForFunction(() => /^#\/?grp/.test(window.location.hash), null, { timeout: UI_TIMEOUT });
    grp = await openTopic(alice);
    assert.match(grp, /^grp/, `the app did not rename the new topic (hash ${grp})`);
    group.topic = grp;
  });
  const hello = `hello group from alice ${RUN}`;
  await step('alice posts in the group', () => sendMessage(alice, hello));
  await step('bob joins the group by id and sees the history', async () => {
    await openById(bob, grp);
    await visible(bob.page.locator('#topic-title', { hasText: groupName }));
    await seesMessage(bob, hello);
  });
  const reply = `hi alice, bob here ${RUN}`;
  await step('bob replies, alice sees it live', async () => {
    await sendMessage(bob, reply);
    await seesMessage(alice, reply);
  });
  const again = `welcome bob ${RUN}`;
  await step('alice posts again, bob sees it live', async () => {
    await sendMessage(alice, again);
    await seesMessage(bob, again);
  });
  await alice.shot('group-alice');
  await bob.shot('group-bob');
  await step('the group is in both contact lists', async () => {
    await visible(alice.page.locator('#sidepanel ul.contact-box li', { hasText: groupName }));
    await visible(bob.page.locator('#sidepanel ul.contact-box li', { hasText: groupName }));
  });
  await alice.shot('contacts-alice');
  await bob.shot('contacts-bob');
  group.messages = [hello, reply, again];
});

test('p2p chat: alice starts a chat with bob by user id, both talk', { timeout: 90_000 }, async () => {
  const { alice, bob } = users;
  assert.ok(alice?.uid && bob?.uid, 'sign-up did not complete');
  const hello = `hello bob, alice here ${RUN}`;
  await step('alice opens a p2p chat with bob', async () => {
    await openById(alice, bob.uid);
    await visible(alice.page.locator('#topic-title', { hasText: bob.fullName }));
    assert.equal(await openTopic(alice), bob.uid);
  });
  await step('alice sends the first p2p message', () => sendMessage(alice, hello));
  await step('bob sees the new chat in his contacts and opens it', async () => {
    await openFromContacts(bob, alice.fullName);
    await seesMessage(bob, hello);
  });
  const reply = `hi alice ${RUN}`;
  await step('bob replies, alice sees it live', async () => {
    await sendMessage(bob, reply);
    await seesMessage(alice, reply);
  });
  await alice.shot('p2p-alice');
  await bob.shot('p2p-bob');
});

test('reopening a chat: alice returns to the group from her contact list', { timeout: 60_000 }, async () => {
  const { alice, bob } = users;
  assert.ok(group.topic && group.messages.length, 'the group chat test did not complete');
  await step('alice opens another screen, then the group from her contacts', async () => {
    // Show another chat first, so that opening the group really subscribes again: a second
    // group (this works without p2p support).
    await newChatTab(alice, 'new group');
    await alice.page.getByPlaceholder('Freeform name of the group').fill(`Other ${RUN}`);
    await alice.page.getByRole('button', { name: 'Create' }).click();
    await visible(alice.page.locator('#topic-title', { hasText: `Other ${RUN}` }));
    await openFromContacts(alice, group.name);
    await visible(alice.page.locator('#topic-title', { hasText: group.name }));
    for (const text of group.messages) await seesMessage(alice, text);
  });
  await step('bob, who moved on to the p2p chat, reopens the group from his contacts', async () => {
    await openFromContacts(bob, group.name);
    await visible(bob.page.locator('#topic-title', { hasText: group.name }));
  });
  const more = `back again ${RUN}`;
  await step('alice posts after reopening, bob sees it live', async () => {
    await sendMessage(alice, more);
    await seesMessage(bob, more);
  });
  await alice.shot('group-reopened-alice');
});

test('no protocol failures, page errors or unexpected console errors', async () => {
  await new Promise((r) => setTimeout(r, 500));
  const lines = allFailures(0);
  assert.deepEqual(lines, [], `the app met protocol failures:\n  ${lines.join('\n  ')}`);
});
