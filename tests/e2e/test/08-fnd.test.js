// Scenario 8: tags and search through `fnd`. Reference: tinode-protocol.md 3.6 ({set tags}),
// 3.5 ({get tags}), 3.9 (fnd query language and results), 4.5 (basic:<login> tag).
// Tags are sent with request() (raw {set}), because the SDK's Topic.setMeta() normalises tags itself
// and would hide what the server does.
import assert from 'node:assert/strict';

import {
  useServer,
  scenario,
  newUser,
  signUp,
  connect,
  uniqueLogin,
  randomSuffix,
  attachMe,
  createGroup,
  join,
  request,
  requestCode,
  expectCode,
  flush,
  softAsserts,
} from '../harness.js';

useServer();

async function myTags(tn) {
  const reply = await request(tn, { get: { topic: 'me', what: 'tags' } });
  if (reply.meta) return reply.meta.tags;
  if (reply.ctrl && reply.ctrl.code === 204) return [];
  throw new Error(`unexpected reply to {get me what:"tags"}: ${JSON.stringify(reply)}`);
}

/** Run a search the way the web app does; resolves with the result list ([] on 204). */
async function search(tn, query) {
  const fnd = tn.getFndTopic();
  if (!fnd.isSubscribed()) await fnd.subscribe();
  const set = await tn.setMeta('fnd', { desc: { public: query } });
  assert.ok(set.code === 200 || set.code === 304, `{set fnd desc.public} answers 200/304, got ${JSON.stringify(set)}`);
  const reply = await fnd.getMeta(fnd.startMetaQuery().withSub().build());
  await flush();
  if (reply && Array.isArray(reply.sub)) return reply.sub;
  if (reply && reply.code === 204) return [];
  throw new Error(`unexpected reply to {get fnd what:"sub"} for ${JSON.stringify(query)}: ${JSON.stringify(reply)}`);
}

const idOf = (s) => s.user || s.topic;

scenario('tags: {set me tags} is normalised (lowercase, trimmed, sorted, de-duplicated, length 2..96)', async () => {
  const u = await newUser('Tagger');
  await attachMe(u.tn);
  const before = await myTags(u.tn);
  assert.ok(before.includes(`basic:${u.login}`), `sign-up adds the tag basic:<login>, got ${JSON.stringify(before)}`);

  const long = 'x'.repeat(97);
  const ok96 = 'y'.repeat(96);
  const reply = await request(u.tn, {
    set: { topic: 'me', tags: ['  Zebra ', 'apple', 'APPLE', 'Mango', 'b', long, ok96, 'zebra', `basic:${u.login}`] },
  });
  assert.equal(reply.ctrl?.code, 200, `{set me tags} answers 200, got ${JSON.stringify(reply)}`);
  const tags = await myTags(u.tn);
  assert.deepEqual(tags, ['apple', `basic:${u.login}`, 'mango', ok96, 'zebra'].sort(),
    'stored tags: lowercased, trimmed, sorted, deduplicated; 1-char and 97-char tags dropped');

  // Setting the same list again changes nothing: 304.
  const again = await request(u.tn, { set: { topic: 'me', tags: ['apple', 'mango', ok96, 'zebra', `basic:${u.login}`] } });
  assert.equal(again.ctrl?.code, 304, `an unchanged tag list answers 304 "not modified", got ${JSON.stringify(again)}`);

  // At most 16 tags are kept (maxTagCount; advertised in {hi}).
  assert.equal(u.tn.getServerInfo().maxTagCount, 16, '{hi} params.maxTagCount is 16');
  const many = Array.from({ length: 20 }, (_, i) => `tag${String(i).padStart(2, '0')}`);
  // basic: first, so it survives a cap applied to the raw list (as the reference does) as well.
  const manyReply = await request(u.tn, { set: { topic: 'me', tags: [`basic:${u.login}`, ...many] } });
  // The reference caps the normalised list; a server that refuses the request with 400 instead
  // would also keep the limit, but the reference behaviour is to store the first 16.
  assert.equal(manyReply.ctrl?.code, 200, `{set me tags} with 21 tags answers 200 (capped), got ${JSON.stringify(manyReply)}`);
  const capped = await myTags(u.tn);
  assert.ok(capped.length <= 16, `at most 16 tags stored, got ${capped.length}: ${JSON.stringify(capped)}`);
  assert.ok(capped.includes(`basic:${u.login}`), 'the restricted basic: tag is never dropped by the cap');
});

scenario('tags: restricted namespaces email:, tel:, basic: cannot be added or removed by the user (403)', async () => {
  const u = await newUser('Restricted');
  await attachMe(u.tn);
  const basic = `basic:${u.login}`;
  const soft = softAsserts();
  for (const bad of ['email:someone@example.com', 'tel:+15551234567', `basic:someoneelse${randomSuffix()}`]) {
    const reply = await request(u.tn, { set: { topic: 'me', tags: ['free', basic, bad] } });
    await soft(() => assert.equal(reply.ctrl?.code, 403, `adding ${bad} must be refused with 403, got ${JSON.stringify(reply)}`));
  }
  // Removing basic:<login> is refused as well.
  const remove = await request(u.tn, { set: { topic: 'me', tags: ['free'] } });
  await soft(() => assert.equal(remove.ctrl?.code, 403, `removing ${basic} must be refused with 403, got ${JSON.stringify(remove)}`));
  const tags = await myTags(u.tn);
  await soft(() => assert.ok(tags.includes(basic), `basic tag still there: ${JSON.stringify(tags)}`));
  await soft(() => assert.ok(!tags.some((t) => t.startsWith('email:') || t.startsWith('tel:')), `no email:/tel: tag: ${JSON.stringify(tags)}`));

  // Restricted tags cannot be smuggled in at sign-up either ({acc tags}): 403.
  const c = await connect('SignupTags');
  await soft(() => expectCode(
    c.createAccountBasic(uniqueLogin('smuggler'), 'pw-smuggle', { public: { fn: 'S' }, tags: ['ok', 'email:a@b.example'] }),
    403,
    'sign-up with an email: tag',
  ));
  soft.done();
});

scenario('tags: group tags are set and read by the owner only', async () => {
  const owner = await newUser('Owner');
  const member = await newUser('Member');
  const grp = await createGroup(owner.tn, { name: 'Tagged', tags: ['initial'] });
  await join(member.tn, grp.name);

  const set = await request(owner.tn, { set: { topic: grp.name, tags: ['Hiking', 'outdoors', 'hiking'] } });
  assert.equal(set.ctrl?.code, 200, `owner's {set grp tags} answers 200, got ${JSON.stringify(set)}`);
  const got = await request(owner.tn, { get: { topic: grp.name, what: 'tags' } });
  assert.deepEqual(got.meta?.tags, ['hiking', 'outdoors'], `owner reads normalised group tags, got ${JSON.stringify(got)}`);

  assert.equal(await requestCode(member.tn, { set: { topic: grp.name, tags: ['vandal'] } }), 403,
    "a member's {set grp tags} is refused");
  assert.equal(await requestCode(member.tn, { get: { topic: grp.name, what: 'tags' } }), 403,
    "a member's {get grp tags} is refused");
});

scenario('fnd: AND (space), OR (comma), quotes; results carry public; deleted users vanish', async () => {
  const s = randomSuffix(3);
  const t = (w) => `${w}${s}`;
  const u1 = await newUser('Uno');
  const u2 = await newUser('Dos');
  const u3 = await newUser('Tres');
  const u4 = await newUser('Cuatro');
  for (const [u, tags] of [
    [u1, [t('travel'), t('music')]],
    [u2, [t('travel'), t('art')]],
    [u3, [t('cooking')]],
    [u4, [t('travel')]],
  ]) {
    await attachMe(u.tn); // {set me tags} needs an attached me (3.6)
    const r = await request(u.tn, { set: { topic: 'me', tags: [...tags, `basic:${u.login}`] } });
    assert.equal(r.ctrl?.code, 200, `${u.name}: {set me tags} answers 200, got ${JSON.stringify(r)}`);
  }
  const grp = await createGroup(u3.tn, { name: 'Kitchen', tags: [t('cooking'), t('group')] });

  const searcher = await newUser('Searcher');
  const ids = async (q) => (await search(searcher.tn, q)).map(idOf).sort();

  assert.deepEqual(await ids(t('travel')), [u1.uid, u2.uid, u4.uid].sort(), 'single term');
  assert.deepEqual(await ids(`${t('travel')} ${t('music')}`), [u1.uid], 'space = AND');
  assert.deepEqual(await ids(`${t('music')},${t('art')}`), [u1.uid, u2.uid].sort(), 'comma = OR');
  assert.deepEqual(await ids(`${t('travel')} ${t('music')},${t('art')}`), [u1.uid, u2.uid].sort(),
    'travel AND (music OR art)');
  assert.deepEqual(await ids(`"${t('travel')}" "${t('art')}"`), [u2.uid], 'quoted terms');
  assert.deepEqual(await ids(t('travel').toUpperCase()), [u1.uid, u2.uid, u4.uid].sort(),
    'queries are case-insensitive');
  assert.deepEqual(await ids(t('nothing')), [], 'no match → 204, empty result');

  // Groups are found by their tags; results carry public (and subcnt for groups).
  const both = await search(searcher.tn, t('cooking'));
  const byId = Object.fromEntries(both.map((x) => [idOf(x), x]));
  assert.deepEqual(Object.keys(byId).sort(), [u3.uid, grp.name].sort(), `users and groups by tag: ${JSON.stringify(both)}`);
  assert.equal(byId[u3.uid].public?.fn, 'Tres', 'a user result carries its public');
  assert.equal(byId[grp.name].public?.fn, 'Kitchen', 'a group result carries its public');
  assert.equal(byId[grp.name].topic, grp.name, 'a group result names the topic in sub.topic');
  assert.equal(byId[u3.uid].user, u3.uid, 'a user result names the user in sub.user');

  // The SDK's fnd topic holds the results too.
  const fnd = searcher.tn.getFndTopic();
  const contacts = [];
  fnd.contacts((c) => contacts.push(idOf(c)));
  assert.deepEqual(contacts.sort(), [u3.uid, grp.name].sort());

  // Found by the basic:<login> tag the server added at sign-up.
  assert.deepEqual(await ids(`basic:${u2.login}`), [u2.uid], 'basic:<login> finds the user');

  // A deleted account never appears in results.
  const gone = await u4.tn.delCurrentUser(true).then(() => 200, (e) => e.code);
  assert.equal(gone, 200, 'u4 deletes its account');
  assert.deepEqual(await ids(t('travel')), [u1.uid, u2.uid].sort(), 'deleted users are not found');
});

scenario('fnd: a query can be changed per session and {get fnd} before any query answers 204', async () => {
  const s = randomSuffix(3);
  const a = await signUp(uniqueLogin('findme'), 'pw-findme', 'Findme', { tags: [`solo${s}`] });
  const searcher = await newUser('Seeker');
  const fnd = searcher.tn.getFndTopic();
  await fnd.subscribe();
  const empty = await fnd.getMeta(fnd.startMetaQuery().withSub().build());
  assert.equal(empty.code, 204, `{get fnd sub} without a query answers 204, got ${JSON.stringify(empty)}`);
  // Tags given at sign-up ({acc tags}) are searchable.
  const found = await search(searcher.tn, `solo${s}`);
  assert.deepEqual(found.map(idOf), [a.uid], 'tags from {acc tags} are searchable');
});

scenario('credentials: an email belongs to one account (409 at sign-up and in {set cred}), and finds it', async () => {
  const email = `${randomSuffix()}@example.com`.toLowerCase();
  const first = await connect('Cred-1');
  const login1 = uniqueLogin('credone');
  const r1 = await request(first, {
    acc: {
      user: 'new', scheme: 'basic', login: true,
      secret: Buffer.from(`${login1}:pw-${login1}`).toString('base64'),
      desc: { public: { fn: 'Cred One' } },
      cred: [{ meth: 'email', val: email }],
    },
  });
  assert.equal(r1.ctrl?.code, 200, `sign-up with an email answers 200, got ${JSON.stringify(r1)}`);
  // The confirmed credential is a restricted, searchable tag.
  const second = await connect('Cred-2');
  const login2 = uniqueLogin('credtwo');
  const r2 = await request(second, {
    acc: {
      user: 'new', scheme: 'basic', login: true,
      secret: Buffer.from(`${login2}:pw-${login2}`).toString('base64'),
      cred: [{ meth: 'email', val: email.toUpperCase() }],
    },
  });
  assert.equal(r2.ctrl?.code, 409, `the same email on another account: 409, got ${JSON.stringify(r2)}`);
  assert.equal(r2.ctrl?.params?.what, 'email');
  // Another account adding it later is refused too.
  const other = await signUp(uniqueLogin('credthree'), 'pw-credthree', 'Cred Three', { label: 'Cred-3' });
  await attachMe(other.tn);
  assert.equal(await requestCode(other.tn, { set: { topic: 'me', cred: { meth: 'email', val: email } } }), 409,
    '{set me cred} with an email another account holds → 409');
  // Searching by the address finds the first account.
  await attachMe(other.tn);
  await request(other.tn, { sub: { topic: 'fnd' } });
  await request(other.tn, { set: { topic: 'fnd', desc: { public: email } } });
  const res = await request(other.tn, { get: { topic: 'fnd', what: 'sub' } });
  const users = (res.meta?.sub || []).map((s) => s.user);
  assert.deepEqual(users, [r1.ctrl.params.user], `fnd by email finds its owner, got ${JSON.stringify(res)}`);
});
