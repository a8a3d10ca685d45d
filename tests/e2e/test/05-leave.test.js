// Scenario 5: leaving a group with and without unsubscribing.
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
  waitForEvent,
  expectCode,
  publish,
} from '../harness.js';

useServer();

scenario('leave: detach keeps the subscription, leave(true) removes it', async () => {
  const a = await newUser('Alice');
  const b = await newUser('Bob');

  const grpA = a.tn.getTopic(a.tn.newGroupTopicName(false));
  const presA = record(grpA, 'onPres');
  await grpA.subscribe(grpA.startMetaQuery().withDesc().withSub().build(), { desc: { public: { fn: 'Leaving' } } });
  const grp = grpA.name;

  // B: attached to me and to the group.
  const meB = await attachMe(b.tn);
  const mePresB = record(meB, 'onPres');
  const grpB = b.tn.getTopic(grp);
  await grpB.subscribe(grpB.startMetaQuery().withDesc().withSub().build());
  assert.ok(grpB.isSubscribed());
  await waitForEvent(presA, (p) => p.what === 'on' && p.src === b.uid, `A: {pres src:${b.uid} what:"on"}`);

  // 1. Leave without unsubscribing: detached, still a member.
  const left = await grpB.leave(false);
  assert.equal(left.code, 200, `{leave} answers 200, got ${JSON.stringify(left)}`);
  assert.equal(grpB.isSubscribed(), false, 'topic detached after leave');
  await waitForEvent(presA, (p) => p.what === 'off' && p.src === b.uid, `A: {pres src:${b.uid} what:"off"}`);

  // Leaving again: not attached → 304 (a success code for the SDK).
  const again = await b.tn.leave(grp, false);
  assert.equal(again.code, 304, `a second {leave} answers 304 "not joined", got ${JSON.stringify(again)}`);

  let subs = await fetchMeSubs(b.tn);
  assert.ok(subs.some((s) => s.topic === grp), `after leave without unsub, me sub list still contains ${grp}: ${JSON.stringify(subs)}`);
  let members = await fetchTopicSubs(grpA);
  assert.ok(members.some((s) => s.user === b.uid), 'B is still in the member list');

  // Unsubscribing from a topic this session is not attached to: 409 "must attach first".
  await expectCode(grpB.leave(true), 409, '{leave unsub:true} while detached');

  // A fresh login still lists the group among B's contacts.
  {
    const b2 = await login(b.login, b.password, { label: 'Bob-2' });
    await attachMe(b2.tn);
    const subs2 = await fetchMeSubs(b2.tn);
    const item = subs2.find((s) => s.topic === grp);
    assert.ok(item, `fresh login: me sub list must contain ${grp}: ${JSON.stringify(subs2)}`);
    assert.ok(item.acs && item.acs.isJoiner && item.acs.isJoiner(), `me sub item carries acs, got ${JSON.stringify(item.acs)}`);
    assert.equal(item.public && item.public.fn, 'Leaving', 'me sub item carries the group public');
    assert.ok(b2.tn.getMeTopic().getContact(grp), 'the SDK lists the group as a contact');
  }

  // 2. Re-attach and leave with unsub (from a second session while the first one is on `me`).
  const b3 = await login(b.login, b.password, { label: 'Bob-3' });
  const grpB3 = b3.tn.getTopic(grp);
  const re = await grpB3.subscribe(grpB3.startMetaQuery().withDesc().build());
  assert.equal(re.code, 200);
  await publish(grpB3, 'bye');
  const unsub = await grpB3.leave(true);
  assert.equal(unsub.code, 200, `{leave unsub:true} answers 200, got ${JSON.stringify(unsub)}`);
  assert.equal(grpB3.isSubscribed(), false);

  // A no longer lists B as a member.
  members = await fetchTopicSubs(grpA);
  assert.ok(!members.some((s) => s.user === b.uid), `B must be gone from ${grp}'s member list: ${JSON.stringify(members)}`);
  assert.ok(members.some((s) => s.user === a.uid), 'A is still a member');

  // A fresh login: the group is gone from B's contacts.
  const b4 = await login(b.login, b.password, { label: 'Bob-4' });
  await attachMe(b4.tn);
  subs = await fetchMeSubs(b4.tn);
  assert.ok(!subs.some((s) => s.topic === grp), `after unsub, me sub list must not contain ${grp}: ${JSON.stringify(subs)}`);
  assert.equal(b4.tn.getMeTopic().getContact(grp), undefined, 'the SDK must not list the group as a contact');

  // The owner cannot unsubscribe from its own group.
  await expectCode(grpA.leave(true), 403, 'owner {leave unsub:true}');

  // Notifications of the removed subscription (checked last so that the checks above still run):
  // B's first session (attached to me, not to the group) is told the subscription is gone ...
  await waitForEvent(mePresB, (p) => p.src === grp && p.what === 'gone',
    `B's other session: {pres topic:"me" src:${grp} what:"gone"}`);
  // ... and the owner, attached to the group, gets the access change of B.
  await waitForEvent(presA, (p) => p.what === 'acs' && p.src === b.uid,
    `A (owner): {pres topic:${grp} src:${b.uid} what:"acs"} after B unsubscribed`);
});
