// Scenario 2: group creation, joining with the default access, live messages both ways, presence.
import assert from 'node:assert/strict';

import {
  useServer,
  scenario,
  newUser,
  record,
  waitFor,
  waitForEvent,
  publish,
  randomSuffix,
  flush,
} from '../harness.js';

useServer();

scenario('group: create, join with default access, publish both ways, presence on/off', async () => {
  const a = await newUser('Alice');
  const b = await newUser('Bob');
  const tag = `e2etag${randomSuffix()}`;

  // A creates the group the way the web app does: a "new..." topic subscribed with set.desc/tags.
  const grpA = a.tn.getTopic(a.tn.newGroupTopicName(false));
  const presA = record(grpA, 'onPres');
  const dataA = record(grpA, 'onData');
  const created = await grpA.subscribe(
    grpA.startMetaQuery().withDesc().withSub().build(),
    { desc: { public: { fn: 'Room' } }, tags: [tag] },
  );
  assert.equal(created.code, 200, `{sub new...} answers 200, got ${JSON.stringify(created)}`);
  assert.match(created.topic ?? '', /^grp[A-Za-z0-9_-]{11}$/, '{sub new...} reply must name the new grp topic');
  const grp = grpA.name;
  assert.equal(grp, created.topic, 'the SDK renames its topic object to the ctrl.topic of the reply');
  assert.equal(a.tn.cacheGetTopic(grp), grpA);
  assert.ok(grpA.isSubscribed(), 'creator is attached');
  const acsA = grpA.getAccessMode();
  assert.ok(acsA && acsA.isOwner(), `creator must be the owner, acs=${acsA}`);
  assert.ok(acsA.isJoiner() && acsA.isReader() && acsA.isWriter() && acsA.isPresencer() && acsA.isAdmin() &&
    acsA.isSharer() && acsA.isDeleter(), `owner mode must be JRWPASDO, got ${acsA}`);

  // Owner may read the tags back.
  const tagsReply = await grpA.getMeta(grpA.startMetaQuery().withTags().build());
  assert.ok(Array.isArray(tagsReply.tags) && tagsReply.tags.includes(tag),
    `tags set at creation must be readable by the owner, got ${JSON.stringify(tagsReply)}`);

  // B joins: default group access for authenticated users (JRWPS) applies.
  const grpB = b.tn.getTopic(grp);
  const presB = record(grpB, 'onPres');
  const dataB = record(grpB, 'onData');
  const joined = await grpB.subscribe(grpB.startMetaQuery().withDesc().withSub().build());
  assert.equal(joined.code, 200, `B's {sub} answers 200, got ${JSON.stringify(joined)}`);
  assert.equal(joined.topic, grp, 'ctrl.topic of a {sub} to an existing group equals the requested name');
  assert.ok(joined.params && joined.params.acs, 'a new subscription reports params.acs');
  assert.ok(grpB.isSubscribed());
  const acsB = grpB.getAccessMode();
  for (const [bit, ok] of [['J', acsB.isJoiner()], ['R', acsB.isReader()], ['W', acsB.isWriter()], ['P', acsB.isPresencer()]]) {
    assert.ok(ok, `B's mode must include ${bit} (default access JRWPS), got ${acsB}`);
  }
  assert.ok(!acsB.isOwner(), `B must not be an owner, got ${acsB}`);

  // B's desc carries the public set at creation; its member list shows A, online.
  await waitFor(() => grpB.public && grpB.public.fn === 'Room', "B's {meta desc} with public.fn = 'Room'");
  const aSeenByB = await waitFor(() => grpB.subscriber(a.uid), "A in B's member list ({meta sub})");
  assert.equal(aSeenByB.online, true, 'A is attached to the group, so B must see sub.online = true');
  await waitFor(() => grpB.subscriber(b.uid), "B itself in B's member list");

  // A is told that B came online in the group.
  const onB = await waitForEvent(presA, (p) => p.what === 'on' && p.src === b.uid,
    `A: {pres topic:${grp} src:${b.uid} what:"on"}`);
  assert.equal(onB.topic, grp);

  // A publishes, B receives it live.
  const pub1 = await publish(grpA, 'hello from A');
  assert.equal(pub1.params.seq, 1, 'first message of a new topic gets seq 1');
  const d1 = await waitForEvent(dataB, (d) => d.seq === pub1.params.seq, `B: {data} seq ${pub1.params.seq}`);
  assert.equal(d1.topic, grp);
  assert.equal(d1.from, a.uid, '{data}.from must be the publisher');
  assert.equal(d1.content, 'hello from A');
  assert.ok(d1.ts instanceof Date, '{data}.ts must be a timestamp the SDK parses');

  // B publishes back, A receives it.
  const pub2 = await publish(grpB, 'hi back from B');
  assert.equal(pub2.params.seq, 2);
  const d2 = await waitForEvent(dataA, (d) => d.seq === 2 && d.from === b.uid, 'A: {data} seq 2 from B');
  assert.equal(d2.topic, grp);
  assert.equal(d2.content, 'hi back from B');

  // Each side saw exactly one copy of each message (A's own echo is merged by the SDK by seq).
  await flush();
  assert.deepEqual(dataB.filter((d) => d.seq === 1).map((d) => d.from), [a.uid]);
  assert.deepEqual(grpA.maxMsgSeq(), 2);
  assert.deepEqual(grpB.maxMsgSeq(), 2);

  // B sees A go off and come back on in the group.
  const left = await grpA.leave(false);
  assert.equal(left.code, 200, `{leave} answers 200, got ${JSON.stringify(left)}`);
  assert.equal(grpA.isSubscribed(), false);
  await waitForEvent(presB, (p) => p.what === 'off' && p.src === a.uid, `B: {pres topic:${grp} src:${a.uid} what:"off"}`);
  assert.equal(grpB.subscriber(a.uid).online, false);

  const rejoined = await grpA.subscribe(grpA.startMetaQuery().withDesc().build());
  assert.equal(rejoined.code, 200);
  await waitForEvent(presB, (p) => p.what === 'on' && p.src === a.uid, `B: {pres topic:${grp} src:${a.uid} what:"on"}`);
  assert.equal(grpB.subscriber(a.uid).online, true);

  // Nobody gets presence about themselves.
  assert.ok(!presA.some((p) => p.src === a.uid && (p.what === 'on' || p.what === 'off')), 'A got on/off about itself');
  assert.ok(!presB.some((p) => p.src === b.uid && (p.what === 'on' || p.what === 'off')), 'B got on/off about itself');

  // After re-attaching, A can publish again and B receives it.
  const pub3 = await publish(grpA, 'A is back');
  assert.equal(pub3.params.seq, 3);
  const d3 = await waitForEvent(dataB, (d) => d.seq === 3, 'B: {data} seq 3');
  assert.equal(d3.from, a.uid);
  assert.equal(d3.content, 'A is back');

  // The owner is told about the new member with {pres what:"acs"} (the SDK then fetches the member).
  // Checked last so that the checks above still run.
  await waitForEvent(presA, (p) => p.what === 'acs' && p.src === b.uid,
    `A (owner): {pres topic:${grp} src:${b.uid} what:"acs"} for B's new subscription`);
});
