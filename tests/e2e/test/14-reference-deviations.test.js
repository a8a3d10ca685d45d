// Scenario 14: behaviours where coretalk used to differ from the reference server, driven as the
// official clients drive them: delivery receipts from a member not attached, typing and receipts
// on `me`, the stored fnd query, {set tags:[]}, P2P and sign-up default access, and the name of a
// member just added from the group's Info panel.
import assert from 'node:assert/strict';

import {
  useServer,
  scenario,
  connect,
  newUser,
  attachMe,
  createGroup,
  join,
  publish,
  record,
  waitFor,
  waitForEvent,
  waitForFrame,
  expectNoFrame,
  frames,
  mark,
  request,
  requestCode,
  sendRaw,
  uniqueLogin,
  signUp,
  flush,
} from '../harness.js';

useServer();

scenario('notes: a recv from a member not attached is stored and told; a read must attach first', async () => {
  const a = await newUser('Alice');
  const b = await newUser('Bob');
  const grpA = await createGroup(a.tn, { name: 'Receipts' });
  const infoA = record(grpA, 'onInfo');
  const grp = grpA.name;
  const grpB = await join(b.tn, grp);
  await publish(grpA, 'one');
  await publish(grpA, 'two');
  await grpB.leave(false);

  // Bob's phone fetched the messages after a push and reports them delivered without attaching.
  const sinceB = mark(b.tn);
  sendRaw(b.tn, { note: { topic: grp, what: 'recv', seq: 2 } });
  const info = await waitForEvent(infoA, (i) => i.what === 'recv' && i.from === b.uid,
    `A: {info topic:${grp} what:"recv" from:${b.uid}}`);
  assert.equal(info.seq, 2);
  await expectNoFrame(b.tn, 'ctrl', () => true, 'no reply to a recv note', { since: sinceB });

  // The marker is stored: Bob's desc shows it when he attaches again.
  const again = await join(b.tn, grp);
  await waitFor(() => again.recv === 2, `B: desc.recv 2 (got ${again.recv})`);

  // A read from a session not attached is answered 409, as the reference does.
  await again.leave(false);
  const since = mark(b.tn);
  sendRaw(b.tn, { note: { topic: grp, what: 'read', seq: 2 } });
  const c = await waitForFrame(b.tn, 'ctrl', (x) => x.topic === grp, 'ctrl for the read note', { since });
  assert.equal(c.code, 409);
});

scenario('notes: typing and read receipts reach members not attached, on me', async () => {
  const a = await newUser('Alice');
  const b = await newUser('Bob');
  const c = await newUser('Carol');
  const grpA = await createGroup(a.tn, { name: 'Typing' });
  const grp = grpA.name;
  await join(b.tn, grp).then((t) => t.leave(false));
  const grpC = await join(c.tn, grp);
  await publish(grpA, 'hello');
  const meB = await attachMe(b.tn);
  const infoMe = record(meB, 'onInfo');

  grpA.noteKeyPress();
  const kp = await waitForEvent(infoMe, (i) => i.what === 'kp', 'B: {info topic:"me" what:"kp"}');
  assert.deepEqual([kp.topic, kp.src, kp.from], ['me', grp, a.uid]);

  // Carol reads the message while attached; Bob's contact list learns it on me.
  grpC.noteRead(1);
  const read = await waitForEvent(infoMe, (i) => i.what === 'read', 'B: {info topic:"me" what:"read"}');
  assert.deepEqual([read.src, read.from, read.seq], [grp, c.uid, 1]);
});

scenario('fnd: a query stored in private is used when the session sets none', async () => {
  const tag = `chess${Date.now().toString(36)}`;
  const x = await signUp(uniqueLogin('xavier'), 'pw-xavier', 'Xavier', { tags: [tag] });
  const y = await newUser('Yvonne');
  const fnd = y.tn.getFndTopic();
  await fnd.subscribe();
  // The SDK's fnd.setMeta resolves with nothing; the reply is on the wire.
  const since = mark(y.tn);
  await fnd.setMeta({ desc: { private: tag } });
  const set = await waitForFrame(y.tn, 'ctrl', (c) => c.topic === 'fnd', '{set fnd} reply', { since });
  assert.equal(set.code, 200, `{set fnd desc:{private}} answers 200, got ${JSON.stringify(set)}`);

  // Another session of the same user, with no query of its own.
  const y2 = await connect('Yvonne2');
  await y2.loginBasic(y.login, y.password);
  await requestCode(y2, { sub: { topic: 'fnd' } });
  const reply = await request(y2, { get: { topic: 'fnd', what: 'sub' } });
  assert.ok(reply.meta && reply.meta.sub, `{get fnd sub} returns results: ${JSON.stringify(reply)}`);
  assert.deepEqual(reply.meta.sub.map((s) => s.user), [x.uid]);
  const desc = await request(y2, { get: { topic: 'fnd', what: 'desc' } });
  assert.equal(desc.meta.desc.private, tag);
});

scenario('tags: {set tags:[]} is 304 and keeps the tags', async () => {
  const u = await signUp(uniqueLogin('tagger'), 'pw-tagger', 'Tagger', { tags: ['chess'] });
  await attachMe(u.tn);
  assert.equal(await requestCode(u.tn, { set: { topic: 'me', tags: [] } }), 304);
  const tags = await request(u.tn, { get: { topic: 'me', what: 'tags' } });
  assert.ok(tags.meta.tags.includes('chess'), `tags kept: ${JSON.stringify(tags)}`);
});

scenario('p2p: the requester gets the peer\'s full default; sign-up defaults are masked to JRWPA', async () => {
  const a = await newUser('Alice');
  const b = await newUser('Bob');
  const pA = a.tn.getTopic(b.uid);
  await pA.subscribe(pA.startMetaQuery().withDesc().build());
  await flush();
  const acs = pA.getAccessMode();
  assert.equal(acs.getGiven(), 'JRWPAS', `A's given is B's default in full: ${JSON.stringify(acs)}`);
  assert.equal(acs.getWant(), 'JRWPA', `A's want is what A gives B: ${JSON.stringify(acs)}`);

  const tn = await connect('defacs');
  const secret = Buffer.from(`${uniqueLogin('dora')}:pw-dora1`).toString('base64');
  const reply = await request(tn, {
    acc: { user: 'new', scheme: 'basic', secret, login: false,
      desc: { defacs: { auth: 'JRWPASDO', anon: 'JRWPASDO' }, public: { fn: 'Dora' } } },
  });
  assert.equal(reply.ctrl.code, 201, JSON.stringify(reply));
  assert.deepEqual(reply.ctrl.params.desc.defacs, { auth: 'JRWPA', anon: 'JRWPA' });
});

scenario('group: a member added from the Info panel is named at once, without a reload', async () => {
  const o = await newUser('Olivia');
  const m = await newUser('Mallory');
  const grp = await createGroup(o.tn, { name: 'Club' });
  // The web app's "Add members": topic.invite(uid, null) for each new member.
  const subs = record(grp, 'onSubsUpdated');
  const before = grp.subcnt;
  const ctrl = await grp.invite(m.uid, null);
  assert.equal(ctrl.code, 200, JSON.stringify(ctrl));
  await waitForEvent(subs, () => grp.subscriber(m.uid) && grp.subscriber(m.uid).public, 'onSubsUpdated with a public');
  const sub = grp.subscriber(m.uid);
  assert.equal(sub.public && sub.public.fn, 'Mallory', `the owner's client knows the name: ${JSON.stringify(sub)}`);
  assert.equal(grp.subcnt, before + 1, 'the member count counts the new member once');
  assert.equal(frames(o.tn, 'meta', (x) => x.topic === grp.name && x.sub && !x.id).length, 1);
});
