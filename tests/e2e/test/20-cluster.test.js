// Scenario 20: the official SDK against a cluster of three nodes (cluster.js): clients on different
// nodes share a group (join, publish both ways, presence on/off), talk P2P, read history through a
// node that does not master the topic, and a long-poll client reaches a topic mastered elsewhere,
// including one whose every request goes to the next node in turn (a load balancer without
// stickiness). Reference: tinode-protocol.md §6 (a client session talks only to its own node and
// sees the same protocol as on a standalone server).
//
// Runs only in the PostgreSQL pass with CORETALK_TEST_PG set (tests/run-all.sh); skipped, saying
// why, otherwise.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  scenario,
  newUser,
  createGroup,
  disconnect,
  record,
  waitFor,
  waitForEvent,
  publish,
  flush,
} from '../harness.js';
import { clusterSkipReason, useCluster } from '../cluster.js';

const skip = clusterSkipReason();
if (skip) {
  console.log(`skipped: the cluster scenarios (${skip})`);
  test('cluster: three nodes driven by the SDK', { skip }, () => {});
} else {
  const nodes = useCluster();
  const on = (i) => ({ host: nodes[i].host });

  /** Joins `name` for `tn` with its onData/onPres recorded from before the {sub}. */
  async function joinRecorded(tn, name) {
    const t = tn.getTopic(name);
    const data = record(t, 'onData');
    const pres = record(t, 'onPres');
    const ctrl = await t.subscribe(t.startMetaQuery().withDesc().withSub().build());
    assert.equal(ctrl.code, 200, `[${tn.label}] {sub ${name}}: ${JSON.stringify(ctrl)}`);
    await flush();
    return { t, data, pres };
  }

  const gotData = (events, content, what) =>
    waitForEvent(events, (d) => d.content === content, `${what}: {data} "${content}"`);

  scenario('cluster: a group across three nodes: join, publish, presence on/off, history from a non-master node', async () => {
    const a = await newUser('Alice', on(0));
    const b = await newUser('Bob', on(1));
    const c = await newUser('Carol', on(2));

    // Created on n1, so mastered there (new group names are drawn until they hash to it).
    const grpA = await createGroup(a.tn, { name: 'Cluster room' });
    const grp = grpA.name;
    const dataA = record(grpA, 'onData');
    const presA = record(grpA, 'onPres');

    const B = await joinRecorded(b.tn, grp);
    await waitForEvent(presA, (p) => p.what === 'on' && p.src === b.uid, `Alice: {pres on} of Bob (n2)`);
    assert.ok(B.t.subscriber(a.uid), "Alice in Bob's member list");
    const C = await joinRecorded(c.tn, grp);
    await waitForEvent(presA, (p) => p.what === 'on' && p.src === c.uid, `Alice: {pres on} of Carol (n3)`);
    await waitForEvent(B.pres, (p) => p.what === 'on' && p.src === c.uid, `Bob: {pres on} of Carol`);

    // Every member publishes; the other two get it, whichever node they are on.
    const p1 = await publish(grpA, 'from n1');
    await gotData(B.data, 'from n1', 'Bob');
    await gotData(C.data, 'from n1', 'Carol');
    const p2 = await publish(B.t, 'from n2');
    await gotData(dataA, 'from n2', 'Alice');
    await gotData(C.data, 'from n2', 'Carol');
    const p3 = await publish(C.t, 'from n3');
    await gotData(dataA, 'from n3', 'Alice');
    const d3 = await gotData(B.data, 'from n3', 'Bob');
    assert.equal(d3.from, c.uid, '{data}.from is the publisher');
    assert.deepEqual([p1, p2, p3].map((p) => p.params.seq), [1, 2, 3], 'one seq order, kept by the master');

    // History through n3 (not the master), for a new member there.
    const c2 = await newUser('Carol2', on(2));
    const C2 = await joinRecorded(c2.tn, grp);
    await waitFor(() => C2.t.seq === 3, `{meta desc} seq 3 through n3 (got ${C2.t.seq})`);
    const page = await C2.t.getMessagesPage(10, undefined, 0, 4, false);
    assert.equal(page.code, 208, `history page: ${JSON.stringify(page)}`);
    await waitFor(() => C2.data.length >= 3, 'the three messages of the page');
    await flush();
    assert.deepEqual(C2.data.map((d) => d.seq).sort(), [1, 2, 3]);
    assert.deepEqual(C2.data.map((d) => d.content).sort(), ['from n1', 'from n2', 'from n3']);

    // Bob's node loses his session: the others see him go offline.
    disconnect(b.tn);
    await waitForEvent(presA, (p) => p.what === 'off' && p.src === b.uid, `Alice: {pres off} of Bob`);
    await waitForEvent(C.pres, (p) => p.what === 'off' && p.src === b.uid, `Carol: {pres off} of Bob`);
  });

  scenario('cluster: P2P between users of different nodes', async () => {
    const d = await newUser('Dan', on(1));
    const e = await newUser('Erin', on(2));
    const D = await joinRecorded(d.tn, e.uid);
    assert.equal(D.t.name, e.uid, 'Dan names the chat by Erin');
    const E = await joinRecorded(e.tn, d.uid);

    await publish(D.t, 'hi Erin');
    const got = await gotData(E.data, 'hi Erin', 'Erin');
    assert.equal(got.topic, d.uid, 'Erin sees the chat named by Dan');
    assert.equal(got.from, d.uid);
    await publish(E.t, 'hi Dan');
    const back = await gotData(D.data, 'hi Dan', 'Dan');
    assert.equal(back.topic, e.uid);
  });

  scenario('cluster: long-poll clients talk to a group mastered on another node, one of them through every node in turn', async () => {
    const a = await newUser('Alice', on(0));
    const grpA = await createGroup(a.tn, { name: 'LP room' });
    const grp = grpA.name;
    const dataA = record(grpA, 'onData');

    // A long-poll client of n2.
    const f = await newUser('Frank', { ...on(1), transport: 'lp' });
    const F = await joinRecorded(f.tn, grp);
    await publish(grpA, 'to Frank');
    await gotData(F.data, 'to Frank', 'Frank (lp, n2)');
    await publish(F.t, 'from Frank');
    await gotData(dataA, 'from Frank', 'Alice');

    // A long-poll client whose session lives on n3 while its requests go to n3, n1, n2, n3, ...
    const spread = [nodes[2].host, nodes[0].host, nodes[1].host];
    const g = await newUser('Gina', { host: spread[0], transport: 'lp', spread });
    const G = await joinRecorded(g.tn, grp);
    await publish(grpA, 'to Gina');
    await gotData(G.data, 'to Gina', 'Gina (lp, spread)');
    await publish(G.t, 'from Gina');
    await gotData(dataA, 'from Gina', 'Alice');
    await gotData(F.data, 'from Gina', 'Frank');
    // Her sid names n3, and requests with it went to n1 and n2 as well.
    const withSid = g.tn._spreadUrls.filter((u) => /[?&]sid=[A-Za-z0-9_-]{22}\.n3(&|$)/.test(u));
    for (const host of spread) {
      assert.ok(withSid.some((u) => u.includes(`//${host}/`)), `a request with Gina's sid went to ${host}: ${withSid}`);
    }
    const page = await G.t.getMessagesPage(10, undefined, 0, 5, false);
    assert.equal(page.code, 208, `Gina's history page: ${JSON.stringify(page)}`);
    await waitFor(() => new Set(G.data.map((d) => d.seq)).size >= 4, "Gina's history: seqs 1-4");
  });
}
