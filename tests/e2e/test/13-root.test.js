// Scenario 13: root users (named in the config: `[auth] root_users = ["<login>"]`), the sys topic
// for root, suspension and deletion of other accounts, search visibility. Reference:
// tinode-protocol.md 4.4, 4.7 (root privileges), 2.2 ({acc status}), 3.9 (root finds suspended users).
// If the server refuses the config key, every test here fails at start-up (the server's error is in
// the output).
import assert from 'node:assert/strict';

import {
  useServer,
  scenario,
  newUser,
  signUp,
  login,
  loginToken,
  randomSuffix,
  attachMe,
  createGroup,
  join,
  request,
  requestCode,
  waitForFrame,
  mark,
  publish,
  expectCode,
  flush,
  softAsserts,
} from '../harness.js';

const ROOT_LOGIN = `root${randomSuffix()}`;
const ROOT_PASSWORD = 'pw-root-e2e';

useServer({ config: { auth: { root_users: [ROOT_LOGIN] } } });

let rootSignedUp = false;
/** Log in as the configured root user (signing it up on first use). */
async function rootSession(label = 'Root') {
  if (!rootSignedUp) {
    await signUp(ROOT_LOGIN, ROOT_PASSWORD, 'Root', { label: `${label}-signup` });
    rootSignedUp = true;
  }
  return login(ROOT_LOGIN, ROOT_PASSWORD, { label });
}

async function search(tn, query) {
  const fnd = tn.getFndTopic();
  if (!fnd.isSubscribed()) await fnd.subscribe();
  await tn.setMeta('fnd', { desc: { public: query } });
  const reply = await fnd.getMeta(fnd.startMetaQuery().withSub().build());
  await flush();
  if (reply && Array.isArray(reply.sub)) return reply.sub.map((s) => s.user || s.topic);
  if (reply && reply.code === 204) return [];
  throw new Error(`unexpected fnd reply ${JSON.stringify(reply)}`);
}

scenario('root: a user named in root_users logs in with authlvl "root"; others get "auth"', async () => {
  const root = await rootSession();
  assert.equal(root.ctrl.params?.authlvl, 'root', `root login reply: ${JSON.stringify(root.ctrl)}`);
  const u = await newUser('Plain');
  const again = await login(u.login, u.password, { label: 'Plain-2' });
  assert.equal(again.ctrl.params?.authlvl, 'auth');
  // Root sees state in its me desc (2.3).
  await attachMe(root.tn);
  const d = (await request(root.tn, { get: { topic: 'me', what: 'desc' } })).meta?.desc;
  assert.equal(d?.state, 'ok', `root's me desc carries state:"ok": ${JSON.stringify(d)}`);
  // A root token keeps the level.
  const byToken = await loginToken(root.token, { label: 'Root-token' });
  assert.equal(byToken.ctrl.params?.authlvl, 'root');
});

scenario('sys: root may subscribe and receives what users publish there', async () => {
  const root = await rootSession();
  const sys = root.tn.getTopic('sys');
  const ctrl = await sys.subscribe(sys.startMetaQuery().withDesc().build());
  assert.equal(ctrl.code, 200, `root {sub sys}: ${JSON.stringify(ctrl)}`);
  const u = await newUser('Reporter');
  await expectCode(u.tn.subscribe('sys'), 403, 'non-root {sub sys}');
  const since = mark(root.tn);
  const r = await request(u.tn, { pub: { topic: 'sys', content: 'please review usrSomeone' } });
  assert.equal(r.ctrl?.code, 202);
  const d = await waitForFrame(root.tn, 'data', (x) => x.topic === 'sys', '{data topic:"sys"}', { since });
  assert.equal(d.from, u.uid);
  assert.equal(d.content, 'please review usrSomeone');
});

scenario('suspension: root {acc user status:"susp"} evicts the user (205), blocks login (403), hides from search', async () => {
  const soft = softAsserts();
  const root = await rootSession();
  const s = randomSuffix(3);
  const x = await signUp(`susp${s}`, 'pw-suspended', 'Suspect', { label: 'Suspect', tags: [`suspect${s}`] });
  const x2 = await login(`susp${s}`, 'pw-suspended', { label: 'Suspect-2' });
  await attachMe(x2.tn);
  const grp = await createGroup(x.tn, { name: 'Suspect group' });
  const m = await newUser('Member');
  const grpM = await join(m.tn, grp.name);
  const searcher = await newUser('Searcher');
  await soft(async () => assert.deepEqual(await search(searcher.tn, `suspect${s}`), [x.uid], 'found before suspension'));

  // Only root may change another account's status.
  await soft(async () => assert.equal(await requestCode(m.tn, { acc: { user: x.uid, status: 'susp' } }), 403, 'non-root {acc status}'));

  const s1 = mark(x.tn);
  const s2 = mark(x2.tn);
  const susp = await request(root.tn, { acc: { user: x.uid, status: 'susp' } });
  await soft(async () => assert.equal(susp.ctrl?.code, 200, `root suspends: ${JSON.stringify(susp)}`));
  for (const [tn, since] of [[x.tn, s1], [x2.tn, s2]]) {
    const ev = await waitForFrame(tn, 'ctrl', (c) => c.code === 205 && !c.topic, '205 evicted (session dropped)', { since });
    await soft(async () => assert.equal(ev.text, 'evicted'));
  }
  await soft(async () => assert.equal(await requestCode(root.tn, { acc: { user: x.uid, status: 'susp' } }), 304, 'suspending again → 304'));

  await soft(async () => expectCode(login(`susp${s}`, 'pw-suspended', { label: 'Suspect-3' }), 403, 'login of a suspended user'));
  await soft(async () => expectCode(loginToken(x.token, { label: 'Suspect-4' }), 403, 'token login of a suspended user'));
  // Topics owned by a suspended user are read-only (3.2).
  await soft(async () => assert.equal(await requestCode(m.tn, { pub: { topic: grp.name, content: 'anyone?' } }), 403,
    "publishing to a suspended user's group"));
  void grpM;
  // Search: hidden for ordinary users, visible to root.
  await soft(async () => assert.deepEqual(await search(searcher.tn, `suspect${s}`), [], 'suspended users are not found by ordinary users'));
  await soft(async () => assert.deepEqual(await search(root.tn, `suspect${s}`), [x.uid], 'root finds suspended users'));

  // Unsuspend: the user can log in again.
  await soft(async () => assert.equal(await requestCode(root.tn, { acc: { user: x.uid, status: 'ok' } }), 200, 'root unsuspends'));
  const back = await login(`susp${s}`, 'pw-suspended', { label: 'Suspect-5' });
  await soft(async () => assert.equal(back.uid, x.uid));
  await soft(async () => assert.deepEqual(await search(searcher.tn, `suspect${s}`), [x.uid], 'found again after unsuspension'));
  soft.done();
});

scenario('root deletes another account; a non-root cannot', async () => {
  const root = await rootSession();
  const y = await newUser('Victim');
  const z = await newUser('Bystander');
  assert.equal(await requestCode(z.tn, { del: { what: 'user', user: y.uid } }), 403, 'non-root deleting another user');
  const sy = mark(y.tn);
  const del = await request(root.tn, { del: { what: 'user', user: y.uid, hard: true } });
  assert.equal(del.ctrl?.code, 200, `root deletes a user: ${JSON.stringify(del)}`);
  await waitForFrame(y.tn, 'ctrl', (c) => c.code === 205, "205 evicted to the deleted user's session", { since: sy });
  await expectCode(login(y.login, y.password, { label: 'Victim-2' }), 401, 'login of a deleted user');
});
