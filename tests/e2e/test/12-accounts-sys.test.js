// Scenario 12: the sys topic, channels, anonymous accounts. Reference: tinode-protocol.md 3.1 (sys),
// 3.10 (channels), 4.2 (defaults), 4.5 (anonymous scheme), 2.2 ({acc}/{login}).
// Root-only behaviour (sys subscription by root, suspension, root auth level) is in 13-root.
import assert from 'node:assert/strict';

import {
  useServer,
  scenario,
  newUser,
  connect,
  loginToken,
  createGroup,
  join,
  request,
  requestCode,
  waitFor,
  waitForFrame,
  expectNoFrame,
  frames,
  mark,
  publish,
  expectCode,
  flush,
} from '../harness.js';

// A tiny subscriber limit: the owner plus two members fill a group; channel readers do not count.
useServer({ config: { topic: { max_subscriber_count: 3 } } });

scenario('sys: any user may publish without subscribing; subscribing needs root (403)', async () => {
  const u = await newUser('Reporter');
  const reply = await request(u.tn, { pub: { topic: 'sys', content: { action: 'report', target: 'usrSomebody' } } });
  assert.equal(reply.ctrl?.code, 202, `{pub sys} without a subscription answers 202, got ${JSON.stringify(reply)}`);
  // The SDK's own report() helper publishes a Drafty JSON attachment to sys.
  const viaSdk = await u.tn.report('report', 'grpNobody').then((c) => c.code, (e) => e.code);
  assert.equal(viaSdk, 202, 'Tinode.report() → {pub sys} accepted');
  await expectCode(u.tn.subscribe('sys'), 403, '{sub sys} by a non-root user');
});

scenario('channels: nch… creates a channel; readers use chn…, get {data} without from, see no presence nor members', async () => {
  const owner = await newUser('Owner');
  const chan = await createGroup(owner.tn, { name: 'Broadcast', channel: true });
  const grp = chan.name;
  const chn = `chn${grp.slice(3)}`;
  assert.match(grp, /^grp/, 'the owner addresses the channel by its grp name');
  const d = (await request(owner.tn, { get: { topic: grp, what: 'desc' } })).meta?.desc;
  assert.equal(d?.chan, true, 'desc.chan marks a channel');
  assert.deepEqual(d?.defacs, { auth: 'RWPS', anon: 'N' }, 'channel default access (owner view)');

  // Members must be invited: the channel default (RWPS) has no J, so a plain {sub grp…} is refused.
  const m1 = await newUser('Member1');
  const m2 = await newUser('Member2');
  const m3 = await newUser('Member3');
  await expectCode(m3.tn.subscribe(grp), 403, 'joining a channel by its grp name without an invitation');
  // Two invited members fill the group to max_subscriber_count = 3 (owner included).
  for (const m of [m1, m2]) {
    assert.equal(await requestCode(owner.tn, { set: { topic: grp, sub: { user: m.uid, mode: 'JRWPS' } } }), 200, 'invite member');
  }
  const grpM1 = await join(m1.tn, grp);
  assert.equal(await requestCode(owner.tn, { set: { topic: grp, sub: { user: m3.uid, mode: 'JRWPS' } } }), 422,
    'a 4th subscriber exceeds max_subscriber_count = 3 → 422');
  await expectCode(m3.tn.subscribe(grp), 422, 'a 4th subscriber joining a full group → 422');

  // Five readers, beyond the subscriber limit.
  const readers = [];
  for (let i = 1; i <= 5; i++) {
    const r = await newUser(`Reader${i}`);
    const t = r.tn.getTopic(chn);
    const ctrl = await t.subscribe(t.startMetaQuery().withDesc().withSub().build());
    assert.equal(ctrl.code, 200, `reader ${i}: {sub ${chn}} answers 200, got ${JSON.stringify(ctrl)}`);
    assert.equal(ctrl.topic, chn, 'the reply names the channel as chn…');
    await flush();
    assert.equal(t.getAccessMode().getGiven(), 'JRP', `a reader's given is JRP, got ${t.getAccessMode()}`);
    readers.push({ ...r, topic: t });
  }
  await flush();

  // A reader sees only itself in the member list.
  const rsubs = (await request(readers[0].tn, { get: { topic: chn, what: 'sub' } })).meta?.sub || [];
  assert.deepEqual(rsubs.map((s) => s.user), [readers[0].uid], `a reader sees only its own subscription: ${JSON.stringify(rsubs)}`);
  // Members do not see readers either.
  const msubs = (await request(owner.tn, { get: { topic: grp, what: 'sub' } })).meta?.sub || [];
  assert.deepEqual(msubs.map((s) => s.user).sort(), [owner.uid, m1.uid, m2.uid].sort(),
    `the member list holds the owner and the two members only: ${JSON.stringify(msubs)}`);

  // No presence for readers: a member attaching/leaving is not announced to them, and readers
  // attaching is not announced to members.
  const sR = readers.map((r) => mark(r.tn));
  const grpM2 = await join(m2.tn, grp);
  await grpM2.leave(false);
  const sO = mark(owner.tn);
  const late = await newUser('LateReader');
  const lt = late.tn.getTopic(chn);
  await lt.subscribe(lt.startMetaQuery().withDesc().build());

  // The owner publishes: readers get {data topic:chn… } without from; members get it with from.
  const pub = await publish(chan, 'news');
  for (const [i, r] of readers.entries()) {
    const dd = await waitForFrame(r.tn, 'data', (x) => x.seq === pub.params.seq, `reader ${i + 1}: {data}`, { since: sR[i] });
    assert.equal(dd.topic, chn, 'readers get data on the chn… name');
    assert.equal(dd.from, undefined, `readers get {data} without from: ${JSON.stringify(dd)}`);
    assert.equal(dd.content, 'news');
  }
  const dm = await waitForFrame(m1.tn, 'data', (x) => x.seq === pub.params.seq, 'member: {data}');
  assert.equal(dm.from, owner.uid, 'members see from');
  for (const [i, r] of readers.entries()) {
    assert.deepEqual(frames(r.tn, 'pres', (p) => p.topic === chn, sR[i]), [], `reader ${i + 1} must get no presence on the channel`);
  }
  await expectNoFrame(owner.tn, 'pres', (p) => p.src === late.uid && (p.what === 'on' || p.what === 'off'),
    'presence about a reader', { since: sO, ms: 100 });

  // Readers cannot write nor delete; a member addressing chn… is told to use grp… (303).
  assert.equal(await requestCode(readers[0].tn, { pub: { topic: chn, content: 'me too' } }), 403, 'reader {pub} → 403');
  assert.equal(await requestCode(readers[0].tn, { del: { topic: chn, what: 'msg', delseq: [{ low: 1 }] } }), 405,
    'reader {del msg} → 405');
  await grpM1.leave(false);
  const other = await request(m1.tn, { sub: { topic: chn } });
  assert.equal(other.ctrl?.code, 303, `a member subscribing by chn… → 303 "use other", got ${JSON.stringify(other)}`);
  assert.equal(other.ctrl?.params?.topic, grp);

  // chn… of a group that is not a channel → 404.
  const plain = await createGroup(owner.tn, { name: 'Plain' });
  await expectCode(readers[0].tn.subscribe(`chn${plain.name.slice(3)}`), 404, 'chn… name of a non-channel group');
});

scenario('anonymous: createAccount("anonymous", login:true) gets a token; {login scheme:"anonymous"} → 501', async () => {
  const tn = await connect('Anon');
  const ctrl = await tn.createAccount('anonymous', null, true, { public: { fn: 'Guest' } });
  assert.equal(ctrl.code, 200, `anonymous sign-up with login answers 200, got ${JSON.stringify(ctrl)}`);
  assert.match(ctrl.params?.user || '', /^usr[A-Za-z0-9_-]{11}$/);
  assert.equal(ctrl.params?.authlvl, 'anon', 'anonymous accounts have auth level anon');
  const tok = tn.getAuthToken();
  assert.ok(tok && tok.token, 'the SDK stored a token for the anonymous account');

  // The token is the only way back in.
  const again = await loginToken(tok.token, { label: 'Anon-2' });
  assert.equal(again.uid, ctrl.params.user);
  assert.equal(again.ctrl.params?.authlvl, 'anon');
  const c3 = await connect('Anon-3');
  await expectCode(c3.login('anonymous', ''), 501, '{login scheme:"anonymous"}');

  // Anonymous users get the anon default access: N on a normal group, a P2P chat with a normal
  // user is refused (user defacs.anon is N).
  const owner = await newUser('Owner');
  const grp = await createGroup(owner.tn, { name: 'AuthOnly' });
  await expectCode(tn.subscribe(grp.name), 403, 'anonymous user joining a group whose defacs.anon is N');
  await expectCode(tn.subscribe(owner.uid), 403, 'anonymous user opening a P2P chat with a user whose defacs.anon is N');
});
