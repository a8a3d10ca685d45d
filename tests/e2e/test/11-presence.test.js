// Scenario 11: `me` and presence. Reference: tinode-protocol.md 5.8 (presence model: on/off with a
// 4 s linger, ua with a 5 s debounce, upd, gone, msg), 5.7 (a user's sessions mirrored via pres on
// me), 2.3 (sub fields on me: online, seen, seq, read, recv).
import assert from 'node:assert/strict';

import {
  useServer,
  scenario,
  newUser,
  login,
  loginToken,
  disconnect,
  attachMe,
  fetchMeSubs,
  createGroup,
  join,
  request,
  waitFor,
  waitForFrame,
  expectNoFrame,
  frames,
  mark,
  publish,
  flush,
  sleep,
  softAsserts,
} from '../harness.js';

useServer();

const isPres = (topic, src, what) => (p) => p.topic === topic && p.src === src && p.what === what;

/** A and B with a P2P chat between them (so they are each other's contacts). */
async function contacts() {
  const a = await newUser('Alice');
  const b = await newUser('Bob');
  const pA = a.tn.getTopic(b.uid);
  await pA.subscribe(pA.startMetaQuery().withDesc().build());
  await pA.leave(false);
  return { a, b };
}

scenario('me: contact list carries online, seq, read, recv; on/off with a 4 s linger; seen {when, ua}', async () => {
  const { a, b } = await contacts();
  // B writes 3 messages; A marks the first one read.
  const pB = b.tn.getTopic(a.uid);
  await pB.subscribe(pB.startMetaQuery().withDesc().build());
  for (let i = 1; i <= 3; i++) await publish(pB, `b${i}`);
  await pB.leave(false);
  const pA = a.tn.getTopic(b.uid);
  await pA.subscribe(pA.startMetaQuery().withDesc().build());
  pA.noteRead(1);
  await flush();
  await pA.leave(false);

  // B online (me attached) → A's list shows B online with seq/read/recv.
  await attachMe(b.tn);
  const meA = await attachMe(a.tn);
  // The online flag may come in the sub list or, if A's me learns it a moment later, as pres on.
  await waitFor(() => meA.getContact(b.uid)?.online === true, "B shown online in A's contacts");
  let subs = await fetchMeSubs(a.tn);
  let sb = subs.find((s) => s.topic === b.uid);
  assert.ok(sb, `A's contacts include ${b.uid}: ${JSON.stringify(subs)}`);
  assert.equal(sb.online, true, 'B is online (its me is attached)');
  assert.equal(sb.seq, 3, 'sub.seq = last message in the chat');
  assert.equal(sb.read, 1, 'sub.read = what A marked read');
  assert.ok(sb.recv >= 1, `sub.recv ≥ read, got ${sb.recv}`);
  assert.equal(sb.public?.fn, 'Bob', 'sub.public of a P2P contact is the peer\'s public');

  // Linger: B drops its only session and comes back within 4 s → A sees neither off nor on.
  const presA = mark(a.tn);
  const token = b.token;
  disconnect(b.tn);
  await sleep(1500);
  const b2 = await loginToken(token, { label: 'Bob-2' });
  await attachMe(b2.tn);
  await expectNoFrame(a.tn, 'pres', (p) => p.topic === 'me' && p.src === b.uid && (p.what === 'off' || p.what === 'on'),
    'off/on for a reconnect within the 4 s linger', { since: presA, ms: 4000 });

  // B leaves for good → A gets off about 4 s later; then seen {when, ua} in the contact list.
  const offSince = mark(a.tn);
  const t0 = Date.now();
  disconnect(b2.tn);
  await waitForFrame(a.tn, 'pres', isPres('me', b.uid, 'off'), `{pres topic:"me" src:${b.uid} what:"off"}`,
    { since: offSince, timeout: 9000 });
  const dt = Date.now() - t0;
  assert.ok(dt >= 3000, `off must come after the ~4 s linger, came after ${dt} ms`);
  assert.ok(dt <= 8000, `off must come soon after the linger, came after ${dt} ms`);
  await waitFor(() => meA.getContact(b.uid).online === false, 'the SDK marks B offline');
  // The contact list now shows B offline with seen {when, ua}. (Polled for up to 1 s: a server may
  // store last-seen a moment after announcing off; the first answers were seen to lack it.)
  let firstSb;
  sb = await waitFor(async () => {
    const list = await fetchMeSubs(a.tn);
    const x = list.find((s) => s.topic === b.uid);
    firstSb = firstSb || x;
    return x && !x.online && x.seen && x.seen.when ? x : null;
  }, 'offline contact with seen.when in {get me sub}', 1000).catch(() => null);
  assert.ok(sb, `sub.seen.when for an offline P2P contact (within 1 s of off): ${JSON.stringify(firstSb)}`);
  assert.ok(sb.seen.when instanceof Date, 'seen.when is a timestamp the SDK parses');
  assert.ok(Math.abs(sb.seen.when.getTime() - t0) < 6000, `seen.when ≈ when B left: ${sb.seen.when.toISOString()}`);
  assert.match(sb.seen.ua || '', /tinodejs\/0\.25\.3/, `seen.ua is B's last user agent: ${JSON.stringify(sb.seen)}`);

  // B comes back → on with ua.
  const onSince = mark(a.tn);
  const b3 = await login(b.login, b.password, { label: 'Bob-3' });
  await attachMe(b3.tn);
  const on = await waitForFrame(a.tn, 'pres', isPres('me', b.uid, 'on'), `{pres topic:"me" src:${b.uid} what:"on"}`, { since: onSince });
  assert.match(on.ua || '', /tinodejs/, `pres on carries the user agent, got ${JSON.stringify(on)}`);
  await waitFor(() => meA.getContact(b.uid).online === true, 'the SDK marks B online');
});

scenario('me: pres ua when the most recently active session has another user agent (5 s debounce)', async () => {
  const { a, b } = await contacts();
  await attachMe(a.tn);
  await attachMe(b.tn);
  await sleep(100);
  const since = mark(a.tn);
  const phone = await login(b.login, b.password, { label: 'Bob-phone', appName: 'PhoneApp' });
  await attachMe(phone.tn);
  await request(phone.tn, { get: { topic: 'me', what: 'desc' } });
  const ua = await waitForFrame(a.tn, 'pres', isPres('me', b.uid, 'ua'), `{pres topic:"me" src:${b.uid} what:"ua"}`,
    { since, timeout: 9000 });
  assert.match(ua.ua || '', /^PhoneApp/, `pres ua carries the new user agent, got ${JSON.stringify(ua)}`);
  assert.ok(!frames(a.tn, 'pres', isPres('me', b.uid, 'off'), since).length, 'no off while B stays online');
});

scenario('me: pres upd when a contact changes its public; group public change → pres upd to members', async () => {
  const soft = softAsserts();
  const { a, b } = await contacts();
  const meA = await attachMe(a.tn);
  const meB = await attachMe(b.tn);
  await soft(async () => waitFor(() => meA.getContact(b.uid), 'B in A\'s contacts'));

  const since = mark(a.tn);
  const r = await meB.setMeta({ desc: { public: { fn: 'Robert' } } });
  await soft(async () => assert.equal(r.code, 200));
  await soft(async () => waitForFrame(a.tn, 'pres', isPres('me', b.uid, 'upd'), `{pres topic:"me" src:${b.uid} what:"upd"}`, { since }));
  await soft(async () => waitFor(() => meA.getContact(b.uid).public?.fn === 'Robert', "the SDK refetched B's public after pres upd"));

  // Group: the owner changes the topic's public; a member on me (not attached) gets pres upd src=grp.
  const grp = await createGroup(b.tn, { name: 'Before' });
  {
    const t = await join(a.tn, grp.name);
    await t.leave(false);
  }
  const since2 = mark(a.tn);
  const sinceB = mark(b.tn);
  await grp.setMeta({ desc: { public: { fn: 'After' } } });
  await soft(async () => waitForFrame(a.tn, 'pres', isPres('me', grp.name, 'upd'), `{pres topic:"me" src:${grp.name} what:"upd"}`, { since: since2 }));
  await soft(async () => waitFor(() => meA.getContact(grp.name)?.public?.fn === 'After', 'the SDK refetched the group public'));
  await expectNoFrame(b.tn, 'pres', (p) => p.what === 'upd' && p.src === grp.name, 'pres upd for the actor\'s own session', { since: sinceB, ms: 100 });
  soft.done();
});

scenario('me: read/recv/unsub in one session are mirrored to the same user\'s other sessions', async () => {
  const owner = await newUser('Owner');
  const b = await newUser('Bob');
  const grp = await createGroup(owner.tn, { name: 'Mirror' });
  const grpB = await join(b.tn, grp.name);
  for (let i = 1; i <= 4; i++) await publish(grp, `m${i}`);
  const bMe = await login(b.login, b.password, { label: 'Bob-me' });
  const meB2 = await attachMe(bMe.tn);
  const bTopic = await login(b.login, b.password, { label: 'Bob-topic' });
  const grpB3 = await join(bTopic.tn, grp.name);
  await flush();
  await waitFor(() => meB2.getContact(grp.name), 'the group in Bob-me\'s contacts');

  const sMe = mark(bMe.tn);
  const sTopic = mark(bTopic.tn);
  grpB.noteRead(3);
  const readMe = await waitForFrame(bMe.tn, 'pres', (p) => isPres('me', grp.name, 'read')(p) && p.seq === 3,
    `{pres topic:"me" src:${grp.name} what:"read" seq:3} on the same user's session on me`, { since: sMe });
  assert.equal(readMe.seq, 3);
  await waitFor(() => meB2.getContact(grp.name).read === 3, 'the SDK updated the contact\'s read');
  const readInfo = await waitForFrame(bTopic.tn, 'info', (i) => i.topic === grp.name && i.what === 'read' && i.from === b.uid,
    "{info what:\"read\"} to the same user's session attached to the topic", { since: sTopic });
  assert.equal(readInfo.seq, 3);
  assert.ok(!frames(bTopic.tn, 'pres', (p) => p.topic === 'me' && p.what === 'read', sTopic).length,
    'a session attached to the topic gets {info}, not the me copy');

  // recv beyond the current value (the SDK may already have sent recv up to 4 on its own).
  const sMe2 = mark(bMe.tn);
  await publish(grp, 'm5');
  await waitForFrame(bMe.tn, 'pres', (p) => isPres('me', grp.name, 'msg')(p) && p.seq === 5, 'pres msg seq 5', { since: sMe2 });
  grpB.noteRecv(5);
  await waitForFrame(bMe.tn, 'pres', (p) => isPres('me', grp.name, 'recv')(p) && p.seq === 5,
    `{pres topic:"me" src:${grp.name} what:"recv" seq:5}`, { since: sMe2 });

  // Typing notifications never go to the same user's other sessions.
  const sTopic2 = mark(bTopic.tn);
  const sOwner = mark(owner.tn);
  grpB.noteKeyPress();
  await waitForFrame(owner.tn, 'info', (i) => i.what === 'kp' && i.from === b.uid, 'kp to the owner', { since: sOwner });
  await expectNoFrame(bTopic.tn, 'info', (i) => i.what === 'kp', "kp to the typist's other session", { since: sTopic2, ms: 100 });

  // Unsubscribing in one session: the session on me gets pres gone; the other attached one is evicted.
  const sMe3 = mark(bMe.tn);
  const sTopic3 = mark(bTopic.tn);
  const left = await grpB.leave(true);
  assert.equal(left.code, 200);
  await waitForFrame(bMe.tn, 'pres', isPres('me', grp.name, 'gone'), `{pres topic:"me" src:${grp.name} what:"gone"}`, { since: sMe3 });
  const ev = await waitForFrame(bTopic.tn, 'ctrl', (c) => c.code === 205 && c.topic === grp.name, '205 evicted', { since: sTopic3 });
  assert.equal(ev.params?.unsub, true);
  await waitFor(() => !grpB3.isSubscribed(), 'the other session detached');
});

scenario('me: pres msg for topics not attached, per session; none to the publisher', async () => {
  const { a, b } = await contacts();
  const meB = await attachMe(b.tn);
  await attachMe(a.tn);
  const pA = a.tn.getTopic(b.uid);
  await pA.subscribe(pA.startMetaQuery().withDesc().build());
  const a2 = await login(a.login, a.password, { label: 'Alice-2' });
  await attachMe(a2.tn);
  const sB = mark(b.tn);
  const sA = mark(a.tn);
  const sA2 = mark(a2.tn);
  const pub = await publish(pA, 'ping');
  const msg = await waitForFrame(b.tn, 'pres', isPres('me', a.uid, 'msg'), `{pres topic:"me" src:${a.uid} what:"msg"}`, { since: sB });
  assert.equal(msg.seq, pub.params.seq);
  assert.equal(msg.act, a.uid, 'act = the publisher');
  await waitFor(() => meB.getContact(a.uid)?.unread === 1, 'the SDK counts one unread message');
  // A's other session on me also learns about the message in a topic it is not attached to.
  const own = await waitForFrame(a2.tn, 'pres', isPres('me', b.uid, 'msg'), 'pres msg to the publisher\'s other session', { since: sA2 });
  assert.equal(own.seq, pub.params.seq);
  await expectNoFrame(a.tn, 'pres', (p) => p.what === 'msg', 'pres msg to the publishing session', { since: sA, ms: 100 });
});

scenario('me: muting presence (want without P on me) makes the user invisible to contacts', async () => {
  const { a, b } = await contacts();
  const meA = await attachMe(a.tn);
  const meB = await attachMe(b.tn);
  await waitFor(() => meA.getContact(b.uid)?.online === true, 'B online for A');
  const since = mark(a.tn);
  const r = await meB.setMeta({ sub: { mode: 'JS' } });
  assert.equal(r.code, 200, `{set me sub mode:"JS"}: ${JSON.stringify(r)}`);
  await waitForFrame(a.tn, 'pres', isPres('me', b.uid, 'off'), 'off when B hides', { since });
  const since2 = mark(a.tn);
  await meB.setMeta({ sub: { mode: 'JPS' } });
  await waitForFrame(a.tn, 'pres', isPres('me', b.uid, 'on'), 'on when B shows again', { since: since2 });
});
