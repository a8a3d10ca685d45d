// Scenario 1: account creation, basic login, token login.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import {
  useServer,
  scenario,
  connect,
  signUp,
  login,
  loginToken,
  expectCode,
  uniqueLogin,
} from '../harness.js';

useServer();

const USER_ID = /^usr[A-Za-z0-9_-]{11}$/;
const STD_BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

// A token with Tinode's layout (uid u64 | expires u32 | level u16 | serial u16 | features u16, little
// endian, then a 32-byte HMAC) and a valid shape, but a random signature.
function forgedToken() {
  const buf = Buffer.alloc(50);
  randomBytes(8).copy(buf, 0);
  buf.writeUInt32LE(Math.floor(Date.now() / 1000) + 3600, 8);
  buf.writeUInt16LE(20, 12); // auth level "auth"
  buf.writeUInt16LE(1, 14); // serial
  buf.writeUInt16LE(0, 16); // features
  randomBytes(32).copy(buf, 18);
  return buf.toString('base64');
}

function assertToken(res, who) {
  assert.equal(typeof res.token, 'string', `${who}: SDK kept no auth token (needs params.token and params.expires)`);
  assert.match(res.token, STD_BASE64, `${who}: token must be standard base64 (the server base64-decodes login secrets)`);
  assert.equal(res.token.length % 4, 0, `${who}: token must be padded base64`);
  assert.ok(res.expires instanceof Date, `${who}: params.expires must be a timestamp the SDK parses into a Date`);
  assert.ok(res.expires.getTime() > Date.now(), `${who}: token must not be expired`);
}

scenario('sign-up, duplicate login, wrong password, basic and token login', async () => {
  const loginA = uniqueLogin('alice');
  const loginB = uniqueLogin('bob');
  const pwA = 'alice-secret-1';
  const pwB = 'bob-secret-1';

  // The {hi} reply is what the SDK calls server info.
  const probe = await connect('probe');
  const info = probe.getServerInfo();
  assert.ok(info && typeof info.ver === 'string', `{hi} reply must carry params.ver, got ${JSON.stringify(info)}`);

  // Two sign-ups.
  const a = await signUp(loginA, pwA, 'Alice');
  assert.equal(a.ctrl.code, 200, `sign-up with login:true answers 200, got ${a.ctrl.code}`);
  assert.match(a.uid ?? '', USER_ID, 'sign-up must return params.user = usr + 11 chars');
  assert.equal(a.tn.getCurrentUserID(), a.uid);
  assert.equal(a.tn.isAuthenticated(), true, 'session must be authenticated after acc login:true');
  assertToken(a, 'sign-up A');

  const b = await signUp(loginB, pwB, 'Bob');
  assert.equal(b.ctrl.code, 200);
  assert.match(b.uid ?? '', USER_ID);
  assert.notEqual(b.uid, a.uid, 'two accounts must get different user ids');
  assertToken(b, 'sign-up B');

  // Duplicate login on a fresh connection: 409.
  const dup = await connect('dup');
  await expectCode(dup.createAccountBasic(loginA, 'another-pass-1', { public: { fn: 'Impostor' } }), 409,
    'creating an account with an existing login');
  assert.equal(dup.isAuthenticated(), false);

  // Wrong password: 401; the same session can then log in properly.
  const c = await connect('wrongpw');
  await expectCode(c.loginBasic(loginA, 'not-the-password'), 401, 'basic login with a wrong password');
  assert.equal(c.isAuthenticated(), false);
  await expectCode(c.loginBasic(uniqueLogin('nobody'), 'whatever-1'), 401, 'basic login of an unknown user');
  const ok = await c.loginBasic(loginA, pwA);
  assert.equal(ok.code, 200, 'basic login with the right password after a failure');
  assert.equal(ok.params.user, a.uid, 'basic login yields the user id from sign-up');
  assert.equal(c.isAuthenticated(), true);

  // A second login on an authenticated session is refused.
  await expectCode(c.loginBasic(loginA, pwA), 409, 'login on an already authenticated session');

  // Basic login on another new connection.
  const a2 = await login(loginA, pwA, { label: 'alice-2' });
  assert.equal(a2.uid, a.uid);
  assertToken(a2, 'basic login A');

  // Token login on a new connection: same user, fresh token.
  const t1 = await loginToken(a.token, { label: 'alice-token' });
  assert.equal(t1.ctrl.code, 200, `token login answers 200, got ${t1.ctrl.code}`);
  assert.equal(t1.uid, a.uid, 'token login must yield the same user id');
  assert.equal(t1.tn.isAuthenticated(), true);
  assertToken(t1, 'token login A');
  assert.ok(t1.expires.getTime() >= a.expires.getTime(), 'a token login issues a token with a full lifetime');

  // The freshly issued token works too.
  const t2 = await loginToken(t1.token, { label: 'alice-token-2' });
  assert.equal(t2.uid, a.uid);

  // B's token logs in as B.
  const tb = await loginToken(b.token, { label: 'bob-token' });
  assert.equal(tb.uid, b.uid);

  // A forged token (right shape, wrong HMAC) is refused with 401.
  const forged = await connect('forged');
  await expectCode(forged.loginToken(forgedToken()), 401, 'token login with a forged token');
  assert.equal(forged.isAuthenticated(), false);
});
