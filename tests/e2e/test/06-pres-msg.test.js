// Scenario 6: {pres what:"msg"} on `me` for members not attached to the group.
import assert from 'node:assert/strict';

import {
  useServer,
  scenario,
  newUser,
  login,
  attachMe,
  fetchMeSubs,
  record,
  waitForEvent,
  publish,
  flush,
} from '../harness.js';

useServer();

scenario('pres msg: a detached member is notified on me, an attached one gets {data}', async () => {
  const a = await newUser('Alice');
  const b = await newUser('Bob');

  const grpA = a.tn.getTopic(a.tn.newGroupTopicName(false));
  await grpA.subscribe(grpA.startMetaQuery().withDesc().build(), { desc: { public: { fn: 'Notify' } } });
  const grp = grpA.name;

  // B becomes a member (and detaches) on its sign-up session.
  {
    const t = b.tn.getTopic(grp);
    await t.subscribe(t.startMetaQuery().withDesc().build());
    await t.leave(false);
  }

  // Phase 1: a new session of B attached to `me` only.
  const b2 = await login(b.login, b.password, { label: 'Bob-2' });
  const me = await attachMe(b2.tn);
  const presMe = record(me, 'onPres');
  const subs = await fetchMeSubs(b2.tn);
  assert.ok(subs.some((s) => s.topic === grp), `B's me sub list contains ${grp}`);
  const contact = me.getContact(grp);
  assert.ok(contact, 'the group is a contact of B');
  assert.equal(contact.seq | 0, 0, 'no messages yet');

  const pub1 = await publish(grpA, 'first');
  const p1 = await waitForEvent(presMe, (p) => p.what === 'msg' && p.src === grp,
    `B: {pres topic:"me" src:${grp} what:"msg"}`);
  assert.equal(p1.topic, 'me');
  assert.equal(p1.seq, pub1.params.seq, 'pres msg carries the new seq');
  assert.equal(p1.act, a.uid, 'pres msg carries act = the publisher');
  assert.equal(me.getContact(grp).seq, pub1.params.seq, "the SDK updates the contact's seq");
  assert.equal(me.getContact(grp).unread, 1, 'one unread message');

  const pub2 = await publish(grpA, 'second');
  await waitForEvent(presMe, (p) => p.what === 'msg' && p.src === grp && p.seq === pub2.params.seq,
    `B: pres msg seq ${pub2.params.seq}`);
  assert.equal(me.getContact(grp).unread, 2);

  // Phase 2: while B's session is attached to the group it gets {data}, not pres msg.
  const grpB = b2.tn.getTopic(grp);
  const dataB = record(grpB, 'onData');
  await grpB.subscribe(grpB.startMetaQuery().withDesc().build());
  const pub3 = await publish(grpA, 'third');
  const d3 = await waitForEvent(dataB, (d) => d.seq === pub3.params.seq, `B: {data} seq ${pub3.params.seq}`);
  assert.equal(d3.from, a.uid);
  assert.equal(d3.content, 'third');
  await flush();
  assert.ok(!presMe.some((p) => p.what === 'msg' && p.seq === pub3.params.seq),
    'a session attached to the group must not also get pres msg on me');

  // Phase 3: detached again → pres msg again.
  await grpB.leave(false);
  const pub4 = await publish(grpA, 'fourth');
  const p4 = await waitForEvent(presMe, (p) => p.what === 'msg' && p.src === grp && p.seq === pub4.params.seq,
    `B (detached again): pres msg seq ${pub4.params.seq}`);
  assert.equal(p4.act, a.uid);
  assert.equal(me.getContact(grp).seq, pub4.params.seq);

  // The publisher's own sessions get no pres msg for what it is attached to; a second session of A
  // on `me` only does get it (every session of a subscriber not attached to the topic).
  const a2 = await login(a.login, a.password, { label: 'Alice-2' });
  const meA2 = await attachMe(a2.tn);
  const presA2 = record(meA2, 'onPres');
  const pub5 = await publish(grpA, 'fifth');
  await waitForEvent(presA2, (p) => p.what === 'msg' && p.src === grp && p.seq === pub5.params.seq,
    `A's second session: pres msg seq ${pub5.params.seq}`);
  await waitForEvent(presMe, (p) => p.what === 'msg' && p.src === grp && p.seq === pub5.params.seq,
    `B: pres msg seq ${pub5.params.seq}`);
});
