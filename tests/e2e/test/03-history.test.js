// Scenario 3: message history — since/before/limit, newest-first delivery, paging, counts.
import assert from 'node:assert/strict';

import {
  useServer,
  scenario,
  newUser,
  login,
  record,
  waitFor,
  publish,
  flush,
} from '../harness.js';

useServer();

const TOTAL = 15;

/** Run one {get what:"data"} and return the seqs of the {data} it produced, in arrival order. */
async function fetchData(topic, dataLog, query, expectCount, what) {
  const start = dataLog.length;
  const reply = await topic.getMeta(query);
  if (expectCount === 0) {
    assert.equal(reply.code, 204, `${what}: an empty data query answers 204, got ${JSON.stringify(reply)}`);
    assert.equal(reply.params && reply.params.what, 'data', `${what}: 204 must carry params.what = "data"`);
    await flush();
    assert.equal(dataLog.length, start, `${what}: no {data} expected`);
    return [];
  }
  assert.equal(reply.code, 208, `${what}: a data query answers 208 "delivered" after the {data}, got ${JSON.stringify(reply)}`);
  assert.equal(reply.params && reply.params.what, 'data', `${what}: 208 must carry params.what = "data"`);
  assert.equal(reply.params.count, expectCount, `${what}: params.count`);
  // {data} frames come before the closing {ctrl}, but the SDK routes them in a setTimeout.
  await waitFor(() => dataLog.length - start >= expectCount, `${what}: ${expectCount} {data} frames`);
  await flush();
  const got = dataLog.slice(start);
  assert.equal(got.length, expectCount, `${what}: exactly ${expectCount} {data} frames, got seqs ${got.map((d) => d.seq)}`);
  for (const d of got) {
    assert.equal(d.topic, topic.name);
    assert.equal(d.content, `message ${d.seq}`, `${what}: content of seq ${d.seq}`);
    assert.ok(d.ts instanceof Date, `${what}: ts of seq ${d.seq} must parse as a Date`);
  }
  return got.map((d) => d.seq);
}

function range(hiInclusive, loInclusive) {
  const out = [];
  for (let s = hiInclusive; s >= loInclusive; s--) out.push(s);
  return out;
}

scenario('history: since/before/limit, newest first, paging and final count', async () => {
  const a = await newUser('Alice');
  const b = await newUser('Bob');

  const grpA = a.tn.getTopic(a.tn.newGroupTopicName(false));
  await grpA.subscribe(grpA.startMetaQuery().withDesc().build(), { desc: { public: { fn: 'History' } } });
  const grp = grpA.name;
  assert.match(grp, /^grp/);

  // B joins before the messages are written so it is a member throughout.
  const grpB0 = b.tn.getTopic(grp);
  await grpB0.subscribe(grpB0.startMetaQuery().withDesc().build());
  await grpB0.leave(false);

  for (let i = 1; i <= TOTAL; i++) {
    const ctrl = await publish(grpA, `message ${i}`);
    assert.equal(ctrl.params.seq, i, `publish #${i} gets seq ${i}`);
  }

  // Fresh connection and session for B: attach without data, then page through history.
  const b2 = await login(b.login, b.password, { label: 'Bob-2' });
  const grpB = b2.tn.getTopic(grp);
  const dataB = record(grpB, 'onData');
  const sub = await grpB.subscribe(grpB.startMetaQuery().withDesc().build());
  assert.equal(sub.code, 200);
  await waitFor(() => grpB.seq === TOTAL, `{meta desc} of ${grp} reporting seq ${TOTAL}`);
  assert.equal(dataB.length, 0, 'no {data} without a data query');

  // Latest page: newest first.
  let seqs = await fetchData(grpB, dataB, grpB.startMetaQuery().withData(undefined, undefined, 5).build(), 5,
    'latest 5');
  assert.deepEqual(seqs, range(15, 11), 'latest page must be seq 15..11, newest first');
  assert.equal(grpB.minMsgSeq(), 11);
  assert.equal(grpB.maxMsgSeq(), 15);

  // Earlier page: before = lowest loaded seq (exclusive).
  seqs = await fetchData(grpB, dataB, grpB.startMetaQuery().withEarlierData(5).build(), 5, 'earlier 5 (before 11)');
  assert.deepEqual(seqs, range(10, 6), 'page before 11 must be seq 10..6, newest first');

  // since (inclusive) and before (exclusive) together, with room to spare in the limit.
  seqs = await fetchData(grpB, dataB, grpB.startMetaQuery().withData(3, 6, 100).build(), 3, 'since 3 before 6');
  assert.deepEqual(seqs, [5, 4, 3], 'since=3 before=6 must return 5,4,3');

  // since only.
  seqs = await fetchData(grpB, dataB, grpB.startMetaQuery().withData(14).build(), 2, 'since 14');
  assert.deepEqual(seqs, [15, 14], 'since=14 must return 15,14');

  // before only, limited: the newest messages below the bound.
  seqs = await fetchData(grpB, dataB, grpB.startMetaQuery().withData(undefined, 4, 2).build(), 2, 'before 4 limit 2');
  assert.deepEqual(seqs, [3, 2]);

  // Nothing newer than the last message: 204.
  await fetchData(grpB, dataB, grpB.startMetaQuery().withData(TOTAL + 1).build(), 0, 'since 16');

  // The rest.
  seqs = await fetchData(grpB, dataB, grpB.startMetaQuery().withData(1, 2).build(), 1, 'since 1 before 2');
  assert.deepEqual(seqs, [1]);

  // The SDK's cache now holds every message exactly once, in ascending order.
  const cached = [];
  grpB.messages((m) => cached.push(m));
  assert.deepEqual(cached.map((m) => m.seq), range(15, 1).reverse(), 'topic.messages() must list seq 1..15');
  assert.deepEqual(cached.map((m) => m.content), cached.map((m) => `message ${m.seq}`));
  assert.ok(cached.every((m) => m.from === a.uid), 'every message is from A');
  assert.equal(grpB.messageCount(), TOTAL);
});

scenario('history: SDK getMessagesPage() over an empty cache (ranges query)', async () => {
  const a = await newUser('Alice');
  const grpA = a.tn.getTopic(a.tn.newGroupTopicName(false));
  await grpA.subscribe(grpA.startMetaQuery().withDesc().build(), { desc: { public: { fn: 'Pages' } } });
  const grp = grpA.name;
  for (let i = 1; i <= TOTAL; i++) await publish(grpA, `message ${i}`);

  const a2 = await login(a.login, a.password, { label: 'Alice-2' });
  const t = a2.tn.getTopic(grp);
  const data = record(t, 'onData');
  await t.subscribe(t.startMetaQuery().withDesc().build());
  await waitFor(() => t.seq === TOTAL, `{meta desc} reporting seq ${TOTAL}`);

  // The SDK turns the missing range [1, 16) into {get data:{ranges:[{low:1,hi:16}], limit:6}}.
  const page1 = await t.getMessagesPage(6, undefined, 0, TOTAL + 1, false);
  assert.equal(page1.code, 208, `first page: expected 208, got ${JSON.stringify(page1)}`);
  assert.equal(page1.params.count, 6);
  await waitFor(() => data.length >= 6, 'first page {data}');
  await flush();
  assert.deepEqual(data.map((d) => d.seq), range(15, 10), 'a ranges query returns the newest messages first');

  // Next page: the SDK now asks for the gap below the loaded messages.
  const page2 = await t.getMessagesPage(6, undefined, 0, t.minMsgSeq(), false);
  assert.equal(page2.code, 208, `second page: expected 208, got ${JSON.stringify(page2)}`);
  await waitFor(() => data.length >= 12, 'second page {data}');
  await flush();
  assert.deepEqual(data.slice(6).map((d) => d.seq), range(9, 4));

  const page3 = await t.getMessagesPage(6, undefined, 0, t.minMsgSeq(), false);
  assert.equal(page3.code, 208);
  assert.equal(page3.params.count, 3);
  await waitFor(() => data.length >= 15, 'third page {data}');
  await flush();
  assert.deepEqual(data.slice(12).map((d) => d.seq), [3, 2, 1]);
  assert.equal(t.messageCount(), TOTAL);

  // Everything is loaded: the SDK answers locally without asking the server.
  const page4 = await t.getMessagesPage(6, undefined, 0, t.minMsgSeq(), false);
  assert.equal(page4.code, 200);
  assert.equal(page4.params.count, 0);
});
