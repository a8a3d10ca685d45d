// Scenario 10: metadata queries and updates, deleting messages, topics, accounts and credentials.
// Reference: tinode-protocol.md 2.3 ({meta} fields), 3.4 (delete ids), 3.5 ({get}), 3.6 ({set}),
// 3.7 ({del}), 0 ("␡" clears a field).
import assert from 'node:assert/strict';

import {
  Tinode,
  useServer,
  scenario,
  newUser,
  signUp,
  login,
  loginToken,
  attachMe,
  fetchMeSubs,
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
  softAsserts,
  replyCode,
  sleep,
} from '../harness.js';

// One scenario publishes 1,030 messages in pipelined batches of 100 to reach {del msg}'s id
// limit: far above any client's message rate, so the per-session rate limit is off for this
// file (tests/it/limits.rs covers the limit itself).
useServer({ config: { limits: { msg_per_sec: 0 } } });

const DEL = Tinode.DEL_CHAR; // "␡"

/** Seq ids covered by a list of {low, hi?} ranges (hi exclusive). */
function seqsOf(ranges) {
  const out = [];
  for (const r of ranges || []) {
    if (!r.hi) out.push(r.low);
    else for (let s = r.low; s < r.hi; s++) out.push(s);
  }
  return out.sort((a, b) => a - b);
}

async function dataSeqs(tn, topic, query = {}) {
  const since = mark(tn);
  const reply = await request(tn, { get: { topic, what: 'data', data: query } });
  const code = reply.ctrl ? reply.ctrl.code : 200;
  assert.ok(code === 208 || code === 204, `{get data} on ${topic} answers 208/204, got ${JSON.stringify(reply)}`);
  return frames(tn, 'data', (d) => d.topic === topic, since).map((d) => d.seq).sort((a, b) => a - b);
}

scenario('get: desc and sub with ims (not modified → no public/private, 204 for subs), limit paging', async () => {
  const soft = softAsserts();
  const owner = await newUser('Owner');
  const grp = await createGroup(owner.tn, { name: 'Meta' });
  const members = [];
  for (const n of ['M1', 'M2', 'M3']) {
    const m = await newUser(n);
    await join(m.tn, grp.name);
    members.push(m);
  }
  for (let i = 1; i <= 5; i++) await publish(grp, `msg ${i}`);
  const setPriv = await grp.setMeta({ desc: { private: { comment: 'mine' } } });
  await soft(async () => assert.equal(setPriv.code, 200));

  // Full desc (no ims): created, updated, public, private, defacs (owner), acs, seq, subcnt.
  const full = (await request(owner.tn, { get: { topic: grp.name, what: 'desc' } })).meta?.desc;
  await soft(async () => assert.ok(full, '{meta desc}'));
  for (const k of ['created', 'updated', 'public', 'private', 'defacs', 'acs']) {
    await soft(async () => assert.ok(full[k] !== undefined, `desc.${k} present without ims: ${JSON.stringify(full)}`));
  }
  await soft(async () => assert.equal(full.seq, 5));
  await soft(async () => assert.deepEqual(full.private, { comment: 'mine' }));
  await soft(async () => assert.equal(full.subcnt, 4, 'desc.subcnt counts the 4 subscribers'));

  // ims = after the last change (topic updated, and the private set later: its ctrl ts) → nothing
  // changed since → desc without created/public/private.
  // Timestamps are compared as instants, never as strings: the wire form drops trailing zeros
  // of the milliseconds (".46Z" is later than ".463Z" but sorts before it as text).
  const latest = (ts) => new Date(Math.max(...ts.map((t) => new Date(t).getTime()))).toISOString();
  const lastChange = latest([full.updated, setPriv.ts]);
  const same = (await request(owner.tn, { get: { topic: grp.name, what: 'desc', desc: { ims: lastChange } } })).meta?.desc;
  await soft(async () => assert.ok(same, 'a {meta desc} is still sent with ims'));
  await soft(async () => assert.equal(same.created, undefined, 'desc.created only without ims'));
  await soft(async () => assert.equal(same.public, undefined, 'public omitted when not modified since ims'));
  await soft(async () => assert.equal(same.private, undefined, 'private omitted when not modified since ims'));
  await soft(async () => assert.equal(same.seq, 5, 'seq is always reported to readers'));
  // ims in the past → public again, still no created.
  const old = (await request(owner.tn, { get: { topic: grp.name, what: 'desc', desc: { ims: '2001-01-01T00:00:00Z' } } })).meta?.desc;
  await soft(async () => assert.deepEqual(old?.public, { fn: 'Meta' }, 'public when modified since ims'));
  await soft(async () => assert.equal(old?.created, undefined));

  // Subscriptions: full list, then ims = newest update → 204; change one → only that one.
  // The read/recv notes the clients sent for the messages above are fire-and-forget and move
  // their subscriptions' `updated` as they land: wait until the list has settled (two reads
  // 50 ms apart agree), so that `newest` below is really the newest.
  const subs = async () => (await request(owner.tn, { get: { topic: grp.name, what: 'sub' } })).meta?.sub;
  const all = await waitFor(async () => {
    const a = await subs();
    await sleep(50);
    const b = await subs();
    return JSON.stringify(a) === JSON.stringify(b) ? b : undefined;
  }, 'the subscription list settles');
  await soft(async () => assert.equal(all?.length, 4, `4 subscribers: ${JSON.stringify(all)}`));
  const newest = latest(all.map((s) => s.updated));
  const none = await request(owner.tn, { get: { topic: grp.name, what: 'sub', sub: { ims: newest } } });
  await soft(async () => assert.equal(none.ctrl?.code, 204, `no subscription changed since ims → 204, got ${JSON.stringify(none)}`));
  await soft(async () => assert.equal(none.ctrl?.params?.what, 'sub'));
  await flush();
  await new Promise((r) => setTimeout(r, 5)); // the change below must get a later timestamp
  const chg = await grp.setMeta({ sub: { user: members[1].uid, mode: 'JRWP' } });
  await soft(async () => assert.equal(chg.code, 200));
  const changed = (await request(owner.tn, { get: { topic: grp.name, what: 'sub', sub: { ims: newest } } })).meta?.sub;
  await soft(async () => assert.deepEqual(changed?.map((s) => s.user), [members[1].uid], `only the changed subscription: ${JSON.stringify(changed)}`));

  // limit.
  const two = (await request(owner.tn, { get: { topic: grp.name, what: 'sub', sub: { limit: 2 } } })).meta?.sub;
  await soft(async () => assert.equal(two?.length, 2, `sub limit 2 → 2 items, got ${JSON.stringify(two)}`));
  const since = mark(owner.tn);
  const page = await request(owner.tn, { get: { topic: grp.name, what: 'data', data: { limit: 2 } } });
  await soft(async () => assert.equal(page.ctrl?.code, 208));
  await soft(async () => assert.equal(page.ctrl?.params?.count, 2));
  await soft(async () => assert.deepEqual(frames(owner.tn, 'data', () => true, since).map((d) => d.seq), [5, 4], 'newest first, limited to 2'));
  await soft(async () => assert.deepEqual(await dataSeqs(owner.tn, grp.name, { since: 2, before: 4 }), [2, 3], 'since inclusive, before exclusive'));

  // Malformed options: desc with limit, sub with since → 400.
  await soft(async () => assert.equal(await requestCode(owner.tn, { get: { topic: grp.name, what: 'desc', desc: { limit: 3 } } }), 400, '{get desc} with desc.limit → 400 (3.5: desc takes ims only)'));
  await soft(async () => assert.equal(await requestCode(owner.tn, { get: { topic: grp.name, what: 'sub', sub: { since: 3 } } }), 400, '{get sub} with sub.since → 400'));
  await soft(async () => assert.equal(await requestCode(owner.tn, { get: { topic: grp.name, what: 'nonsense' } }), 400, 'no known what → 400'));

  // A member who is not a sharer (M2 now has JRWP, no S) sees no defacs, nor anyone else's private.
  const md = (await request(members[1].tn, { get: { topic: grp.name, what: 'desc' } })).meta?.desc;
  await soft(async () => assert.equal(md?.defacs, undefined, 'defacs only for sharers/admins'));
  await soft(async () => assert.equal(md?.private, undefined, "another user's private is never shown"));
  soft.done();
});

scenario('set desc: public/private merge, "␡" clears a key or the whole field; me public', async () => {
  const owner = await newUser('Owner');
  const m = await newUser('Member');
  const grp = await createGroup(owner.tn, { name: 'Desc' });
  await join(m.tn, grp.name);

  const set1 = await request(owner.tn, { set: { topic: grp.name, desc: { public: { fn: 'Desc', note: 'about' } } } });
  assert.equal(set1.ctrl?.code, 200);
  const unchanged = await request(owner.tn, { set: { topic: grp.name, desc: { public: { fn: 'Desc', note: 'about' } } } });
  assert.equal(unchanged.ctrl?.code, 304, `setting the same public again → 304, got ${JSON.stringify(unchanged)}`);
  const d1 = (await request(m.tn, { get: { topic: grp.name, what: 'desc' } })).meta.desc;
  assert.deepEqual(d1.public, { fn: 'Desc', note: 'about' });

  // Deep merge: a key set to "␡" is removed, others stay.
  await request(owner.tn, { set: { topic: grp.name, desc: { public: { note: DEL } } } });
  const d2 = (await request(m.tn, { get: { topic: grp.name, what: 'desc' } })).meta.desc;
  assert.deepEqual(d2.public, { fn: 'Desc' }, `"␡" removes public.note, got ${JSON.stringify(d2.public)}`);

  // Private is per user: M's private is not the owner's.
  const mp = await request(m.tn, { set: { topic: grp.name, desc: { private: { mine: 1, other: 2 } } } });
  assert.equal(mp.ctrl?.code, 200);
  await request(m.tn, { set: { topic: grp.name, desc: { private: { other: DEL } } } });
  const d3 = (await request(m.tn, { get: { topic: grp.name, what: 'desc' } })).meta.desc;
  assert.deepEqual(d3.private, { mine: 1 });
  const d4 = (await request(owner.tn, { get: { topic: grp.name, what: 'desc' } })).meta.desc;
  assert.equal(d4.private, undefined, "the owner does not see M's private");

  // "␡" as the whole value clears the field.
  await request(m.tn, { set: { topic: grp.name, desc: { private: DEL } } });
  const d5 = (await request(m.tn, { get: { topic: grp.name, what: 'desc' } })).meta.desc;
  assert.equal(d5.private, undefined, `private cleared, got ${JSON.stringify(d5.private)}`);
  await request(owner.tn, { set: { topic: grp.name, desc: { public: DEL } } });
  const d6 = (await request(m.tn, { get: { topic: grp.name, what: 'desc' } })).meta.desc;
  assert.equal(d6.public, undefined, `public cleared, got ${JSON.stringify(d6.public)}`);

  // me: own public through the SDK.
  const me = await attachMe(owner.tn);
  const r = await me.setMeta({ desc: { public: { fn: 'Owner Renamed' } } });
  assert.equal(r.code, 200);
  const md = (await request(owner.tn, { get: { topic: 'me', what: 'desc' } })).meta.desc;
  assert.deepEqual(md.public, { fn: 'Owner Renamed' });
  // defacs on me: auth gets A forced (4.2), an O is malformed.
  assert.equal(await requestCode(owner.tn, { set: { topic: 'me', desc: { defacs: { auth: 'JRWPO' } } } }), 400,
    'defacs with O → 400');
});

scenario('set tags / aux: SDK setMeta round trip; aux needs A, not on me (405); pres aux to members', async () => {
  const owner = await newUser('Owner');
  const m = await newUser('Member');
  const grp = await createGroup(owner.tn, { name: 'Aux' });
  const grpM = await join(m.tn, grp.name);

  const tags = await grp.setMeta({ tags: ['Alpha', 'beta'] });
  assert.equal(tags.code, 200);
  const gotTags = await grp.getMeta(grp.startMetaQuery().withTags().build());
  assert.deepEqual(gotTags.tags, ['alpha', 'beta']);

  const empty = await grp.getMeta(grp.startMetaQuery().withAux().build());
  assert.equal(empty.code, 204, `no aux yet → 204, got ${JSON.stringify(empty)}`);
  assert.equal(empty.params?.what, 'aux');

  const sinceM = mark(m.tn);
  const set = await grp.setMeta({ aux: { pins: [1, 2], color: 'red' } });
  assert.equal(set.code, 200, `owner sets aux: ${JSON.stringify(set)}`);
  const aux = await grp.getMeta(grp.startMetaQuery().withAux().build());
  assert.deepEqual(aux.aux, { pins: [1, 2], color: 'red' });
  await waitForFrame(m.tn, 'pres', (p) => p.topic === grp.name && p.what === 'aux', 'pres aux', { since: sinceM });
  await waitFor(() => grpM.aux('color') === 'red', "the SDK fetched aux for M after pres aux");

  // Deep merge with "␡".
  await grp.setMeta({ aux: { color: DEL } });
  const aux2 = await grp.getMeta(grp.startMetaQuery().withAux().build());
  assert.deepEqual(aux2.aux, { pins: [1, 2] });

  assert.equal(await requestCode(m.tn, { set: { topic: grp.name, aux: { x: 1 } } }), 403, 'aux without A → 403');
  await attachMe(owner.tn);
  assert.equal(await requestCode(owner.tn, { set: { topic: 'me', aux: { x: 1 } } }), 405, 'aux on me → 405');
  assert.equal(await requestCode(owner.tn, { get: { topic: 'me', what: 'aux' } }), 405, 'get aux on me → 405');
});

scenario('del msg: soft for the caller only, hard for everyone (pres del), ranges and delete ids', async () => {
  const owner = await newUser('Owner');
  const m = await newUser('Member');
  const grp = await createGroup(owner.tn, { name: 'Deletes' });
  const grpM = await join(m.tn, grp.name);
  const m2 = await login(m.login, m.password, { label: 'Member-2' });
  await join(m2.tn, grp.name);
  const m3 = await login(m.login, m.password, { label: 'Member-3' });
  await attachMe(m3.tn);
  for (let i = 1; i <= 8; i++) await publish(grp, `msg ${i}`);
  await flush();

  // Soft delete of seq 2 by M (no D): hidden for M only; M's other sessions are told.
  const sO = mark(owner.tn);
  const sM2 = mark(m2.tn);
  const sM3 = mark(m3.tn);
  const soft = await grpM.delMessages([{ low: 2 }], false);
  assert.equal(soft.code, 200);
  assert.equal(soft.params.del, 1, 'first delete transaction gets delete id 1');
  assert.deepEqual(await dataSeqs(m.tn, grp.name), [1, 3, 4, 5, 6, 7, 8], 'seq 2 hidden for M');
  assert.deepEqual(await dataSeqs(owner.tn, grp.name), [1, 2, 3, 4, 5, 6, 7, 8], 'seq 2 still there for the owner');
  await waitForFrame(m2.tn, 'pres', (p) => p.topic === grp.name && p.what === 'del',
    "M's other attached session: pres del", { since: sM2 });
  await waitForFrame(m3.tn, 'pres', (p) => p.topic === 'me' && p.src === grp.name && p.what === 'del',
    "M's session on me: pres del", { since: sM3 });
  await expectNoFrame(owner.tn, 'pres', (p) => p.what === 'del', 'pres del for a soft delete by someone else', { since: sO, ms: 100 });

  // "hard" without D silently becomes soft (3.7): seq 3 stays for the owner.
  const notHard = await grpM.delMessages([{ low: 3 }], true);
  assert.equal(notHard.code, 200);
  assert.ok((await dataSeqs(owner.tn, grp.name)).includes(3), 'a member without D cannot hard-delete');

  // Hard delete of seq 4..5 by the owner: gone for everyone; attached readers get pres del.
  const sM = mark(m.tn);
  const hard = await grp.delMessages([{ low: 4, hi: 6 }], true);
  assert.equal(hard.code, 200);
  assert.equal(hard.params.del, 3, 'third delete transaction');
  const pd = await waitForFrame(m.tn, 'pres', (p) => p.topic === grp.name && p.what === 'del', 'pres del (hard)', { since: sM });
  assert.equal(pd.clear, 3);
  assert.deepEqual(seqsOf(pd.delseq), [4, 5]);
  await waitFor(() => grpM.maxClearId() === 3, 'the SDK applied clear=3');
  assert.deepEqual(await dataSeqs(owner.tn, grp.name), [1, 2, 3, 6, 7, 8]);
  assert.deepEqual(await dataSeqs(m.tn, grp.name), [1, 6, 7, 8]);

  // Ranges: several at once, overlapping ranges merged, hi above last clamped.
  const multi = await request(owner.tn, { del: { topic: grp.name, what: 'msg', hard: true, delseq: [{ low: 6 }, { low: 7, hi: 100 }, { low: 8 }] } });
  assert.equal(multi.ctrl?.code, 200, `several ranges: ${JSON.stringify(multi)}`);
  assert.equal(multi.ctrl.params.del, 4);
  assert.deepEqual(await dataSeqs(owner.tn, grp.name), [1, 2, 3]);

  // Delete log and delete ids.
  const delO = await request(owner.tn, { get: { topic: grp.name, what: 'del' } });
  assert.equal(delO.meta?.del?.clear, 4, `owner's {meta del}.clear: ${JSON.stringify(delO)}`);
  assert.deepEqual(seqsOf(delO.meta.del.delseq), [4, 5, 6, 7, 8], "the owner's delete log: hard deletes only");
  const delM = await request(m.tn, { get: { topic: grp.name, what: 'del' } });
  assert.deepEqual(seqsOf(delM.meta?.del?.delseq), [2, 3, 4, 5, 6, 7, 8], "M's delete log: its soft deletes and the hard ones");
  const since2 = await request(owner.tn, { get: { topic: grp.name, what: 'del', del: { since: 4 } } });
  assert.deepEqual(seqsOf(since2.meta?.del?.delseq), [6, 7, 8], 'del since=4 → only transaction 4');
  const descO = (await request(owner.tn, { get: { topic: grp.name, what: 'desc' } })).meta.desc;
  assert.equal(descO.clear, 4, 'desc.clear = newest delete id');

  // Validation → 400.
  for (const [delseq, why] of [
    [[], 'no ranges'],
    [[{ low: 50 }], 'low above the last seq'],
    [[{ low: 3, hi: 2 }], 'hi below low'],
    [[{ low: 0 }], 'low 0 and hi 0'],
    [[{ low: -1, hi: 2 }], 'negative low'],
  ]) {
    assert.equal(await requestCode(owner.tn, { del: { topic: grp.name, what: 'msg', hard: true, delseq } }), 400,
      `{del msg} with ${why} → 400`);
  }
  // Not attached → 409.
  await grpM.leave(false);
  assert.equal(await requestCode(m.tn, { del: { topic: grp.name, what: 'msg', delseq: [{ low: 1 }] } }), 409,
    '{del msg} without attaching');
});

scenario('del msg: more than 1024 ids across several ranges → 400; one big range is fine', async () => {
  const owner = await newUser('Owner');
  const grp = await createGroup(owner.tn, { name: 'Many' });
  const N = 1030;
  for (let start = 1; start <= N; start += 100) {
    const batch = [];
    for (let i = start; i < Math.min(start + 100, N + 1); i++) batch.push(owner.tn.publish(grp.name, `m${i}`, true));
    const res = await Promise.all(batch);
    assert.ok(res.every((c) => c.code === 202));
  }
  const tooMany = await request(owner.tn, { del: { topic: grp.name, what: 'msg', hard: true, delseq: [{ low: 1 }, { low: 3, hi: N + 1 }] } });
  assert.equal(tooMany.ctrl?.code, 400, `1 + 1028 ids in two ranges → 400, got ${JSON.stringify(tooMany)}`);
  const one = await request(owner.tn, { del: { topic: grp.name, what: 'msg', hard: true, delseq: [{ low: 1, hi: N + 1 }] } });
  assert.equal(one.ctrl?.code, 200, `a single range of 1030 ids is allowed: ${JSON.stringify(one)}`);
});

scenario('del topic: the owner deletes (members get pres gone), a member\'s del topic only unsubscribes', async () => {
  const soft = softAsserts();
  const owner = await newUser('Owner');
  const a = await newUser('Attached');
  const d = await newUser('Detached');
  const grp = await createGroup(owner.tn, { name: 'Doomed' });
  const grpA = await join(a.tn, grp.name);
  await attachMe(a.tn);
  {
    const t = await join(d.tn, grp.name);
    await t.leave(false);
  }
  const meD = await attachMe(d.tn);
  await publish(grp, 'last words');

  // A member deletes: = leave unsub. The topic lives on.
  const x = await newUser('Leaver');
  const grpX = await join(x.tn, grp.name);
  const leave = await grpX.delTopic(true);
  await soft(async () => assert.equal(leave.code, 200));
  const subs = (await request(owner.tn, { get: { topic: grp.name, what: 'sub' } })).meta.sub;
  await soft(async () => assert.ok(!subs.some((s) => s.user === x.uid), 'the member who deleted is unsubscribed'));
  await publish(grp, 'still alive');

  // The owner deletes: everyone gets pres gone on me; attached sessions are detached.
  const sA = mark(a.tn);
  const sD = mark(d.tn);
  const del = await grp.delTopic(true);
  await soft(async () => assert.equal(del.code, 200, `owner's {del topic}: ${JSON.stringify(del)}`));
  await soft(async () => waitForFrame(a.tn, 'pres', (p) => p.topic === 'me' && p.src === grp.name && p.what === 'gone', 'pres gone (attached member)', { since: sA }));
  await soft(async () => waitForFrame(d.tn, 'pres', (p) => p.topic === 'me' && p.src === grp.name && p.what === 'gone', 'pres gone (member on me)', { since: sD }));
  await soft(async () => waitFor(() => !meD.getContact(grp.name), 'the SDK dropped the contact'));
  await soft(async () => assert.equal(await requestCode(a.tn, { pub: { topic: grp.name, content: 'hello?' } }), 409, 'detached from the deleted topic'));
  void grpA;
  await soft(async () => {
    // 503 "locked" is allowed while the topic shuts down (5.5: clients retry), for up to 2 s.
    let code;
    for (let i = 0; i < 20; i++) {
      code = await replyCode(a.tn.subscribe(grp.name));
      if (code !== 503) break;
      await sleep(100);
    }
    assert.equal(code, 404, 'subscribing to a deleted topic → 404 (503 "locked" retried for 2 s)');
  });
  const left = await fetchMeSubs(d.tn);
  await soft(async () => assert.ok(!left.some((s) => s.topic === grp.name), 'not in the contact list any more'));
  // Deleting it again: nothing to delete.
  const again = await requestCode(owner.tn, { del: { topic: grp.name, what: 'topic', hard: true } });
  await soft(async () => assert.ok(again === 304 || again === 404, `deleting a deleted topic → 304 "no action" (or 404), got ${again}`));
  soft.done();
});

scenario('del user: the account goes away; other sessions evicted; contacts get pres gone; login fails', async () => {
  const soft = softAsserts();
  const doomed = await newUser('Doomed');
  const friend = await newUser('Friend');
  const member = await newUser('GroupMember');
  // A P2P contact and an owned group.
  const p = doomed.tn.getTopic(friend.uid);
  await p.subscribe(p.startMetaQuery().withDesc().build());
  await publish(p, 'bye');
  const grp = await createGroup(doomed.tn, { name: 'Orphan' });
  await join(member.tn, grp.name);
  const meF = await attachMe(friend.tn);
  await attachMe(member.tn);
  await attachMe(doomed.tn);
  await soft(async () => waitFor(() => meF.getContact(doomed.uid), "friend has the doomed user as a contact"));
  const other = await login(doomed.login, doomed.password, { label: 'Doomed-2' });
  const token = doomed.token;
  const sF = mark(friend.tn);
  const sM = mark(member.tn);
  const sO = mark(other.tn);
  const sD = mark(doomed.tn);

  const code = await doomed.tn.delCurrentUser(true).then(() => 200, (e) => e.code);
  await soft(async () => assert.equal(code, 200, '{del what:"user"} answers 200'));
  const ev = await waitForFrame(other.tn, 'ctrl', (c) => c.code === 205, '205 evicted (other session)', { since: sO });
  await soft(async () => assert.equal(ev.text, 'evicted'));
  await soft(async () => assert.equal(ev.topic, undefined, 'the whole session is dropped (no topic)'));
  await soft(async () => waitForFrame(doomed.tn, 'ctrl', (c) => c.code === 205 && !c.topic, '205 evicted after the reply (own session)', { since: sD }));
  await soft(async () => waitForFrame(friend.tn, 'pres', (p) => p.topic === 'me' && p.src === doomed.uid && p.what === 'gone',
    `friend: {pres topic:"me" src:${doomed.uid} what:"gone"}`, { since: sF }));
  await soft(async () => waitForFrame(member.tn, 'pres', (p) => p.topic === 'me' && p.src === grp.name && p.what === 'gone',
    `member: {pres topic:"me" src:${grp.name} what:"gone"} (owned group deleted)`, { since: sM }));

  await soft(async () => expectCode(login(doomed.login, doomed.password, { label: 'Doomed-3' }), 401, 'basic login of a deleted account'));
  const tokenLogin = await loginToken(token, { label: 'Doomed-4' }).then(() => 200, (e) => e.code);
  await soft(async () => assert.ok([401, 403, 404].includes(tokenLogin), `token login of a deleted account fails (401/403/404), got ${tokenLogin}`));
  // The login name is free again.
  const reuse = await signUp(doomed.login, 'pw-new-owner', 'Reborn', { label: 'Reborn' });
  await soft(async () => assert.ok(reuse.uid && reuse.uid !== doomed.uid, 'the login can be registered again, as a new user'));
  soft.done();
});

scenario('cred: {get cred} on me, {del cred} validation', async () => {
  const u = await newUser('Cred');
  const me = await attachMe(u.tn);
  const got = await me.getMeta(me.startMetaQuery().withCred().build());
  assert.ok(got.code === 204 || Array.isArray(got.cred), `{get me cred} → {meta cred} or 204, got ${JSON.stringify(got)}`);
  if (got.code === 204) assert.equal(got.params?.what, 'creds', '204 params.what is "creds" (sic)');
  assert.equal(await requestCode(u.tn, { del: { topic: 'me', what: 'cred' } }), 400, '{del cred} without cred.meth → 400');
  const grp = await createGroup(u.tn, { name: 'NoCreds' });
  assert.equal(await requestCode(u.tn, { del: { topic: grp.name, what: 'cred', cred: { meth: 'email', val: 'a@b.example' } } }), 403,
    '{del cred} outside me → 403');
  assert.equal(await requestCode(u.tn, { get: { topic: grp.name, what: 'cred' } }), 405, '{get cred} outside me → 405');
});
