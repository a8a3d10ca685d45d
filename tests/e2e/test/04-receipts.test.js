// Scenario 4: read/recv notes → {info} to other members, persisted read/recv markers.
import assert from 'node:assert/strict';

import {
  useServer,
  scenario,
  newUser,
  login,
  attachMe,
  fetchMeSubs,
  fetchTopicSubs,
  record,
  waitFor,
  waitForEvent,
  publish,
  flush,
} from '../harness.js';

useServer();

scenario('receipts: noteRecv/noteRead reach the other member and persist', async () => {
  const a = await newUser('Alice');
  const b = await newUser('Bob');

  const grpA = a.tn.getTopic(a.tn.newGroupTopicName(false));
  const infoA = record(grpA, 'onInfo');
  await grpA.subscribe(grpA.startMetaQuery().withDesc().withSub().build(), { desc: { public: { fn: 'Receipts' } } });
  const grp = grpA.name;

  // B becomes a member, then A writes 4 messages while B is away.
  {
    const t = b.tn.getTopic(grp);
    await t.subscribe(t.startMetaQuery().withDesc().build());
    await t.leave(false);
  }
  for (let i = 1; i <= 4; i++) await publish(grpA, `message ${i}`);

  // B attaches without fetching data (so the SDK sends no automatic recv note).
  const grpB = b.tn.getTopic(grp);
  const ctrlB = record(b.tn, 'onCtrlMessage');
  await grpB.subscribe(grpB.startMetaQuery().withDesc().withSub().build());
  await waitFor(() => grpB.seq === 4, "B's {meta desc} with seq 4");
  assert.equal(grpB.read | 0, 0, "B's desc.read starts at 0");
  assert.equal(grpB.recv | 0, 0, "B's desc.recv starts at 0");

  // A learns about B's subscription (its member list now includes B).
  await fetchTopicSubs(grpA);
  await waitFor(() => grpA.subscriber(b.uid), "B in A's member list");
  assert.equal(grpA.msgRecvCount(3), 0);
  assert.equal(grpA.msgReadCount(2), 0);

  // recv 3 → A gets {info what:"recv" seq:3 from:B}.
  grpB.noteRecv(3);
  const recv3 = await waitForEvent(infoA, (i) => i.what === 'recv' && i.from === b.uid,
    `A: {info topic:${grp} what:"recv" from:${b.uid}}`);
  assert.equal(recv3.topic, grp);
  assert.equal(recv3.seq, 3);
  assert.equal(grpA.msgRecvCount(3), 1, 'A counts B as having received seq 3');
  assert.equal(grpA.msgRecvCount(4), 0);

  // read 2 → A gets {info what:"read" seq:2 from:B}.
  grpB.noteRead(2);
  const read2 = await waitForEvent(infoA, (i) => i.what === 'read' && i.from === b.uid,
    `A: {info topic:${grp} what:"read" from:${b.uid}}`);
  assert.equal(read2.topic, grp);
  assert.equal(read2.seq, 2);
  assert.equal(grpA.msgReadCount(2), 1, 'A counts B as having read seq 2');
  assert.equal(grpA.msgReadCount(3), 0);

  // Stale (not increasing) markers are dropped silently: no {info}, no error reply.
  b.tn.note(grp, 'recv', 1);
  b.tn.note(grp, 'read', 1);
  // Barrier: a valid note sent after them on the same session.
  grpB.noteRecv(4);
  await waitForEvent(infoA, (i) => i.what === 'recv' && i.from === b.uid && i.seq === 4,
    'A: {info what:"recv" seq:4} (sent after two stale notes)');
  await flush();
  assert.deepEqual(
    infoA.filter((i) => i.from === b.uid && (i.what === 'read' || i.what === 'recv')).map((i) => `${i.what}:${i.seq}`),
    ['recv:3', 'read:2', 'recv:4'],
    'stale read/recv notes must not be forwarded',
  );
  assert.ok(!ctrlB.some((c) => c.code >= 400), `notes must not produce error replies: ${JSON.stringify(ctrlB.filter((c) => c.code >= 400))}`);

  // A's own session does not get its own notes echoed as info about A (it sent none).
  assert.ok(!infoA.some((i) => i.from === a.uid), 'A must not receive {info} about its own markers');

  // After reconnecting, B's subscription reports read 2, recv 4, seq 4 — in the topic desc ...
  const b2 = await login(b.login, b.password, { label: 'Bob-2' });
  const grpB2 = b2.tn.getTopic(grp);
  await grpB2.subscribe(grpB2.startMetaQuery().withDesc().build());
  await waitFor(() => grpB2.seq === 4, "B's new session: {meta desc} with seq 4");
  assert.equal(grpB2.read, 2, 'desc.read after reconnect');
  assert.equal(grpB2.recv, 4, 'desc.recv after reconnect');

  // ... and in B's `me` subscription list.
  // The markers reach the store behind the topic (write-behind on the topic's home shard); a
  // contact list read on another shard may run before they are applied, so it is read again
  // until they show (never, and the wait fails).
  const b3 = await login(b.login, b.password, { label: 'Bob-3' });
  await attachMe(b3.tn);
  let subs = [];
  await waitFor(async () => {
    subs = await fetchMeSubs(b3.tn);
    const it = subs.find((s) => s.topic === grp);
    return it && it.read === 2 && it.recv === 4;
  }, "B's me sub list with the persisted markers");
  const item = subs.find((s) => s.topic === grp);
  assert.ok(item, `B's me sub list must contain ${grp}: ${JSON.stringify(subs)}`);
  assert.equal(item.seq, 4, 'me sub.seq');
  assert.equal(item.read, 2, 'me sub.read');
  assert.equal(item.recv, 4, 'me sub.recv');
  const cont = b3.tn.getMeTopic().getContact(grp);
  assert.ok(cont, 'the SDK has a contact for the group');
  assert.equal(cont.unread, 2, 'unread = seq - read');

  // ... and A, on a fresh session, sees B's markers in the member list.
  const a2 = await login(a.login, a.password, { label: 'Alice-2' });
  const grpA2 = a2.tn.getTopic(grp);
  await grpA2.subscribe(grpA2.startMetaQuery().withDesc().withSub().build());
  const bAsSeenByA = await waitFor(() => grpA2.subscriber(b.uid), "B in A's member list (fresh session)");
  assert.equal(bAsSeenByA.read, 2, 'sub.read of B as seen by A');
  assert.equal(bAsSeenByA.recv, 4, 'sub.recv of B as seen by A');
  assert.equal(grpA2.msgReadCount(2), 1);
  assert.equal(grpA2.msgRecvCount(4), 1);
});
