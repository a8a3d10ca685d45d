// Scenario 7: P2P topics. A peer is addressed by its user id ("usr..."); the server's internal
// "p2p..." name must never reach a client. Reference: tinode-protocol.md 2.1 (name expansion),
// 3.1, 3.3 (sub on a new P2P), 4.2 (P2P access defaults), 3.8 (notes).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import {
  Tinode,
  useServer,
  scenario,
  newUser,
  signUp,
  uniqueLogin,
  login,
  disconnect,
  attachMe,
  fetchMeSubs,
  record,
  waitFor,
  waitForEvent,
  waitForFrame,
  expectNoFrame,
  frames,
  mark,
  publish,
  expectCode,
  flush,
  softAsserts,
} from '../harness.js';

useServer();

// A JSON string value that is an internal P2P topic name: "p2p" + 22 base64url characters.
const P2P_NAME = /"p2p[A-Za-z0-9_-]{22}"/;

function assertNoP2PName(...clients) {
  for (const tn of clients) {
    const leaked = tn.rawIn.filter((f) => P2P_NAME.test(f));
    assert.deepEqual(leaked, [], `[${tn.label}] received frames naming an internal p2p... topic`);
  }
}

function assertBits(acs, bits, what) {
  const has = {
    J: acs.isJoiner(), R: acs.isReader(), W: acs.isWriter(), P: acs.isPresencer(),
    A: acs.isApprover(), S: acs.isSharer(), D: acs.isDeleter(), O: acs.isOwner(),
  };
  for (const b of bits) assert.ok(has[b], `${what}: mode must include ${b}, got ${acs}`);
}

scenario('p2p: subscribing to usr<B> creates the topic, each side names it by the peer, acs from defacs, pres acs to B', async () => {
  const a = await newUser('Alice');
  const b = await newUser('Bob');
  const meB = await attachMe(b.tn);
  const sinceB = mark(b.tn);

  // A opens the chat with B the way the web app does: getTopic('usr<B>').subscribe().
  const pA = a.tn.getTopic(b.uid);
  const ctrlA = await pA.subscribe(pA.startMetaQuery().withDesc().withSub().build());
  assert.equal(ctrlA.code, 200, `{sub ${b.uid}} answers 200, got ${JSON.stringify(ctrlA)}`);
  assert.equal(ctrlA.topic, b.uid, "ctrl.topic of a P2P {sub} is the peer's user id exactly as sent");
  assert.equal(pA.name, b.uid, 'the SDK must not rename the P2P topic object');
  assert.ok(pA.isSubscribed());
  assert.ok(ctrlA.params && ctrlA.params.acs, 'a new P2P subscription reports params.acs');

  // Default access (4.2): A's given comes from B's defacs.auth (JRWPAS by default), A's want is the
  // P2P mode; so A's mode has at least JRWPA, never O.
  const acsA = pA.getAccessMode();
  assertBits(acsA, 'JRWPA', "A's P2P access");
  assert.ok(!acsA.isOwner(), `nobody owns a P2P topic, A got ${acsA}`);

  // A's desc of the P2P topic is B's public; the member list holds both users.
  await waitFor(() => pA.public && pA.public.fn === 'Bob', "A: {meta desc} of usr<B> with B's public");
  const descA = frames(a.tn, 'meta', (m) => m.desc && m.topic === b.uid)[0];
  assert.ok(descA, `A: {meta topic:${b.uid} desc}`);
  assert.equal(descA.desc.defacs, undefined, 'desc.defacs is never sent for a P2P topic');
  await waitFor(() => pA.subscriber(a.uid) && pA.subscriber(b.uid), 'A: both users in the P2P member list');

  // B is told about the new chat on `me`: {pres topic:"me" src:<A> what:"acs" dacs}.
  const acsPres = await waitForFrame(b.tn, 'pres', (p) => p.topic === 'me' && p.what === 'acs' && p.src === a.uid,
    `{pres topic:"me" src:${a.uid} what:"acs"}`, { since: sinceB });
  assert.ok(acsPres.dacs && acsPres.dacs.given && acsPres.dacs.want,
    `pres acs carries dacs {want, given}, got ${JSON.stringify(acsPres)}`);
  // The SDK then fetches the new contact ({get me sub topic:<A>}) and lists it.
  const contact = await waitFor(() => {
    const c = meB.getContact(a.uid);
    return c && c.public && c.public.fn === 'Alice' ? c : null;
  }, "B: A appears in B's contacts with A's public");
  assertBits(contact.acs, 'JRWPA', "B's P2P access as seen in B's contact list");

  // B joins the same conversation, naming it by A's id.
  const pB = b.tn.getTopic(a.uid);
  const ctrlB = await pB.subscribe(pB.startMetaQuery().withDesc().withSub().build());
  assert.equal(ctrlB.code, 200, `{sub ${a.uid}} answers 200, got ${JSON.stringify(ctrlB)}`);
  await flush(); // B's subscription already existed: its acs arrives in {meta desc}, handled after the ctrl
  assert.equal(ctrlB.topic, a.uid);
  assert.equal(pB.name, a.uid);
  assertBits(pB.getAccessMode(), 'JRWPA', "B's P2P access");
  await waitFor(() => pB.public && pB.public.fn === 'Alice', "B: {meta desc} of usr<A> with A's public");

  // Both contact lists name the chat by the peer.
  await attachMe(a.tn);
  const subsA = await fetchMeSubs(a.tn);
  assert.ok(subsA.some((s) => s.topic === b.uid), `A's me sub list names the chat ${b.uid}: ${JSON.stringify(subsA)}`);
  const subsB = await fetchMeSubs(b.tn);
  assert.ok(subsB.some((s) => s.topic === a.uid), `B's me sub list names the chat ${a.uid}: ${JSON.stringify(subsB)}`);

  // Subscribing again from the same session: 304 (SDK resolves, topic stays attached).
  const again = await a.tn.subscribe(b.uid);
  assert.equal(again.code, 304, `second {sub} on an attached topic answers 304, got ${JSON.stringify(again)}`);

  assertNoP2PName(a.tn, b.tn);
});

scenario('p2p: a user\'s defacs decides what new P2P peers may do', async () => {
  // C only lets new contacts read (defacs.auth JRP; the server forces A into user defacs).
  const cLogin = uniqueLogin('carol');
  const c = await signUp(cLogin, 'pw-carol', 'Carol', { label: 'Carol' });
  await attachMe(c.tn); // {set me desc} needs an attached me (3.6)
  const setDef = await c.tn.setMeta('me', { desc: { defacs: { auth: 'JRP', anon: 'N' } } });
  assert.equal(setDef.code, 200, `{set me desc defacs} answers 200, got ${JSON.stringify(setDef)}`);
  const a = await newUser('Alice');

  const pA = a.tn.getTopic(c.uid);
  await pA.subscribe(pA.startMetaQuery().withDesc().build());
  const acs = pA.getAccessMode();
  assert.ok(acs.isReader('given') && acs.isJoiner('given'), `A's given from C's defacs has J and R: ${acs}`);
  assert.ok(!acs.isWriter('given'), `C's defacs.auth lacks W, so A's given must lack W: ${acs}`);
  assert.ok(!acs.isWriter(), `A's mode lacks W: ${acs}`);
  await expectCode(a.tn.publish(c.uid, 'may I?'), 403, "A's {pub} without W");

  // C's own side: given is what A's defacs (default JRWPAS) allows, masked to the P2P mode.
  const pC = c.tn.getTopic(a.uid);
  await pC.subscribe(pC.startMetaQuery().withDesc().build());
  await flush(); // C's subscription already existed: its acs arrives in {meta desc}
  const acsC = pC.getAccessMode();
  assert.ok(acsC.isJoiner('given') && acsC.isReader('given') && acsC.isWriter('given') && acsC.isApprover('given'),
    `C's given comes from A's default defacs (JRWPA in P2P): ${acsC}`);
  assert.ok(!acsC.isOwner('given'), `no O in P2P: ${acsC}`);
});

scenario('p2p: bad peers: own id 403, malformed id 400, unknown user 404', async () => {
  const a = await newUser('Alice');
  await expectCode(a.tn.subscribe(a.uid), 403, '{sub} to own user id');
  await expectCode(a.tn.subscribe('usrNOTANID'), 400, '{sub} to a malformed user id');
  const ghost = `usr${randomBytes(8).toString('base64url')}`;
  await expectCode(a.tn.subscribe(ghost), 404, `{sub} to a user that does not exist (${ghost})`);
});

scenario('p2p: messages both ways, history, read/recv receipts, typing, peer on/off', async () => {
  const a = await newUser('Alice');
  const b = await newUser('Bob');

  // A is on `me`: a P2P peer's online state reaches A as {pres topic:"me" src:<peer> what:"on"/"off"},
  // which the SDK applies to the very topic object of the chat (contacts and P2P topics are the same
  // objects). The reference sends topic-level on/off only in group topics (5.8).
  await attachMe(a.tn);
  const pA = a.tn.getTopic(b.uid);
  const dataA = record(pA, 'onData');
  const infoA = record(pA, 'onInfo');
  await pA.subscribe(pA.startMetaQuery().withDesc().withSub().build());
  assert.ok(!pA.online, 'B is not online yet');

  const pB = b.tn.getTopic(a.uid);
  const dataB = record(pB, 'onData');
  const infoB = record(pB, 'onInfo');
  await pB.subscribe(pB.startMetaQuery().withDesc().withSub().build());

  // B comes online (attaches its me): A's chat with B shows B online.
  const meB = await attachMe(b.tn);
  const onB = await waitForFrame(a.tn, 'pres', (p) => p.topic === 'me' && p.src === b.uid && p.what === 'on',
    `A: {pres topic:"me" src:${b.uid} what:"on"} when B comes online`);
  assert.ok(onB);
  await waitFor(() => pA.online === true, "A's P2P topic object shows B online");

  // A → B.
  const pub1 = await publish(pA, 'hello Bob');
  assert.equal(pub1.params.seq, 1, 'first P2P message has seq 1');
  assert.equal(pub1.topic, b.uid, '{pub} ctrl names the topic as the publisher sent it');
  const d1 = await waitForEvent(dataB, (d) => d.seq === 1, 'B: {data} seq 1');
  assert.equal(d1.topic, a.uid, "B receives A's message on the topic named by A's id");
  assert.equal(d1.from, a.uid);
  assert.equal(d1.content, 'hello Bob');
  const echo1 = await waitForFrame(a.tn, 'data', (d) => d.seq === 1, 'echo of seq 1');
  assert.equal(echo1.topic, b.uid, "A's own echo arrives on the topic named by B's id");

  // B's SDK acknowledges receipt by itself ({note recv seq:1} 100 ms later); A gets {info what:"recv"}.
  // (Waited for before B publishes: publishing moves B's own recv to the new seq.)
  const recv = await waitForEvent(infoA, (i) => i.what === 'recv' && i.from === b.uid && i.seq === 1,
    'A: {info what:"recv" seq:1 from:B}');
  assert.equal(recv.topic, b.uid);

  // B → A.
  const pub2 = await publish(pB, 'hi Alice');
  assert.equal(pub2.params.seq, 2);
  const d2 = await waitForEvent(dataA, (d) => d.seq === 2 && d.from === b.uid, 'A: {data} seq 2 from B');
  assert.equal(d2.topic, b.uid);
  assert.equal(d2.content, 'hi Alice');

  // A marks B's message read → B gets {info what:"read" seq:2 from:A} (checked on the wire: the SDK
  // also synthesises a "read" info from the sender of every incoming message).
  const sinceRead = mark(b.tn);
  pA.noteRead(2);
  const read = await waitForFrame(b.tn, 'info', (i) => i.what === 'read' && i.from === a.uid,
    'B: {info what:"read" from:A}', { since: sinceRead });
  assert.equal(read.topic, a.uid);
  assert.equal(read.seq, 2);
  await waitFor(() => pB.msgReadCount(2) === 1, 'B: the SDK counts seq 2 as read by A');

  // Typing: B → A gets {info what:"kp" from:B}; B gets nothing about itself.
  const sinceB = mark(b.tn);
  pB.noteKeyPress();
  const kp = await waitForEvent(infoA, (i) => i.what === 'kp' && i.from === b.uid, 'A: {info what:"kp" from:B}');
  assert.equal(kp.topic, b.uid);
  await expectNoFrame(b.tn, 'info', (i) => i.what === 'kp', 'own typing notification', { since: sinceB, ms: 150 });
  pA.noteKeyPress();
  const kpB = await waitForEvent(infoB, (i) => i.what === 'kp' && i.from === a.uid, 'B: {info what:"kp" from:A}');
  assert.equal(kpB.topic, a.uid);

  // History from a fresh session of A: newest first, both messages, ctrl 208 with count.
  const a2 = await login(a.login, a.password, { label: 'Alice-2' });
  const pA2 = a2.tn.getTopic(b.uid);
  await pA2.subscribe(pA2.startMetaQuery().withDesc().build());
  // getMessagesPage() plans its query from desc.seq, which the SDK applies after the {sub} resolves.
  await waitFor(() => pA2.seq === 2, "A-2: {meta desc} with seq 2 applied");
  const since2 = mark(a2.tn);
  const page = await pA2.getMessagesPage(10, undefined, 0, 3, false);
  assert.ok(page, 'getMessagesPage resolves');
  const hist = frames(a2.tn, 'data', () => true, since2);
  assert.deepEqual(hist.map((d) => d.seq).sort(), [1, 2], `history holds seq 1 and 2, got ${JSON.stringify(hist)}`);
  assert.ok(hist.every((d) => d.topic === b.uid), 'history {data} name the topic by the peer');
  const delivered = await waitForFrame(a2.tn, 'ctrl', (c) => c.code === 208, 'ctrl 208 after history', { since: since2 });
  assert.equal(delivered.params.what, 'data');
  assert.equal(delivered.params.count, 2);
  await flush();
  const msgs = [];
  pA2.messages((m) => msgs.push([m.seq, m.from, m.content]));
  assert.deepEqual(msgs, [[1, a.uid, 'hello Bob'], [2, b.uid, 'hi Alice']]);

  // Detached B gets pres msg on me for A's next message (3.3).
  await pB.leave(false);
  const presMeB = record(meB, 'onPres');
  const pub3 = await publish(pA, 'are you there?');
  const msg = await waitForEvent(presMeB, (p) => p.what === 'msg' && p.src === a.uid,
    `B: {pres topic:"me" src:${a.uid} what:"msg"}`);
  assert.equal(msg.seq, pub3.params.seq);

  // B goes offline (its last session closes): after the ~4 s linger A's chat shows B offline.
  const sinceOff = mark(a.tn);
  disconnect(b.tn);
  await waitForFrame(a.tn, 'pres', (p) => p.topic === 'me' && p.src === b.uid && p.what === 'off',
    `A: {pres topic:"me" src:${b.uid} what:"off"}`, { since: sinceOff, timeout: 9000 });
  await waitFor(() => pA.online === false, "A's P2P topic object shows B offline");

  assertNoP2PName(a.tn, b.tn, a2.tn);
});

scenario('p2p: del topic by one side unsubscribes it; by the last side deletes the chat', async () => {
  const soft = softAsserts();
  const a = await newUser('Alice');
  const b = await newUser('Bob');
  const meA = await attachMe(a.tn);
  const pA = a.tn.getTopic(b.uid);
  await pA.subscribe(pA.startMetaQuery().withDesc().build());
  await publish(pA, 'one');
  const meB = await attachMe(b.tn);
  await soft(async () => waitFor(() => meB.getContact(a.uid), "B: A in B's contacts"));

  // A deletes the conversation while B is still subscribed: for A it is gone (3.7: a participant
  // who is not the last one unsubscribes).
  const sinceB = mark(b.tn);
  const del = await pA.delTopic(true);
  await soft(async () => assert.equal(del.code, 200, `{del topic} on P2P answers 200, got ${JSON.stringify(del)}`));
  const subsA = await fetchMeSubs(a.tn);
  await soft(async () => assert.ok(!subsA.some((s) => s.topic === b.uid && !s.deleted), `A's contact list no longer holds ${b.uid}: ${JSON.stringify(subsA)}`));
  // B is told A left (the reference sends acs/off to the peer; the chat itself stays for B).
  await soft(async () => waitForFrame(b.tn, 'pres', (p) => p.topic === 'me' && p.src === a.uid && ['acs', 'off', 'gone'].includes(p.what),
    `{pres topic:"me" src:${a.uid}} after A deleted the chat on its side`, { since: sinceB }));
  const subsB = await fetchMeSubs(b.tn);
  await soft(async () => assert.ok(subsB.some((s) => s.topic === a.uid), `B still has the chat with A: ${JSON.stringify(subsB)}`));

  // B deletes it too: B is the last participant, so the topic itself is deleted.
  const pB = b.tn.getTopic(a.uid);
  await pB.subscribe(pB.startMetaQuery().withDesc().build());
  await soft(async () => assert.equal(pB.seq, 1, 'B still sees the one message'));
  const del2 = await pB.delTopic(true);
  await soft(async () => assert.equal(del2.code, 200, `{del topic} by the last participant answers 200, got ${JSON.stringify(del2)}`));
  const subsB2 = await fetchMeSubs(b.tn);
  await soft(async () => assert.ok(!subsB2.some((s) => s.topic === a.uid && !s.deleted), `B's list no longer holds ${a.uid}`));

  // A new chat between them starts from scratch: no history.
  const pA2 = a.tn.getTopic(b.uid);
  const since = mark(a.tn);
  const ctrl = await pA2.subscribe(pA2.startMetaQuery().withDesc().withLaterData(10).build());
  await soft(async () => assert.equal(ctrl.code, 200));
  await soft(async () => waitForFrame(a.tn, 'ctrl', (c) => c.code === 204 || c.code === 208, 'end of the data query', { since }));
  await soft(async () => assert.deepEqual(frames(a.tn, 'data', () => true, since), [], 'a re-created P2P topic has no messages'));
  // (Checked on the wire: the SDK's cached topic object keeps its old seq.)
  const newDesc = frames(a.tn, 'meta', (m) => m.desc && m.topic === b.uid, since)[0];
  await soft(async () => assert.equal(newDesc?.desc?.seq | 0, 0, `desc.seq of the re-created P2P topic is 0: ${JSON.stringify(newDesc)}`));
  void meA;
  assertNoP2PName(a.tn, b.tn);
  soft.done();
});
