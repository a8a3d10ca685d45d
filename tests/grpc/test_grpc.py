#!/usr/bin/env python3
"""gRPC end-to-end tests with the official Tinode Python bindings (PyPI `tinode-grpc` 0.22.3).

Starts the built coretalk binary (CORETALK_BIN, default <repo>/target/debug/coretalk) on free
ports of 127.0.0.1 with 2 shards, a fast bcrypt cost and a fresh data directory, and drives it
through `pbx.NodeStub.MessageLoop` exactly as tn-cli and other gRPC clients do: one
bidirectional stream per session, JSON values as JSON bytes, raw secrets.

Covers sign-up, basic and token login, group creation, joining, publishing and receiving,
history, notes (read/recv/kp → info), leaving and unsubscribing, a malformed message, and the
session released when the client ends its stream.

Prints `N passed, N failed` last; exit status 0 only when everything passed.
"""

import base64
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

import grpc
from tinode_grpc import pb, pbx

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("CORETALK_BIN") or os.path.join(ROOT, "target", "debug", "coretalk")
TIMEOUT = 20.0

SERVER = None


_db_counter = 0


def store_args():
    """`--store URL` for a new database when this run tests the PostgreSQL store
    (CORETALK_TEST_STORE=postgres with CORETALK_TEST_PG naming a throw-away instance, as
    tests/pg.sh starts); no arguments for the embedded store."""
    global _db_counter
    if os.environ.get("CORETALK_TEST_STORE") != "postgres":
        return []
    base = os.environ.get("CORETALK_TEST_PG")
    if not base:
        raise RuntimeError("CORETALK_TEST_STORE=postgres needs CORETALK_TEST_PG (tests/pg.sh)")
    name = "grpc_%d_%d" % (os.getpid(), _db_counter)
    _db_counter += 1
    psql = os.path.join(os.environ.get("PGBIN", "/usr/lib/postgresql/15/bin"), "psql")
    subprocess.run([psql, base + "/postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c",
                    "CREATE DATABASE " + name], check=True)
    return ["--store", base + "/" + name]


class Server:
    """One coretalk process on free ports with its own data directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="coretalk-grpc-")
        config = os.path.join(self.dir, "config.toml")
        with open(config, "w") as f:
            f.write("[auth]\nbcrypt_cost = 4\n")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.stderr = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [BIN, "--listen", "127.0.0.1:0", "--grpc-listen", "127.0.0.1:0",
             "--data", os.path.join(self.dir, "data"), "--shards", "2", "--config", config]
            + store_args(),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        self.grpc_addr = None
        self.http_addr = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            line = line.strip()
            if line.startswith("coretalk grpc listening on "):
                self.grpc_addr = line.rsplit(" ", 1)[1]
            if line.startswith("coretalk listening on "):
                self.http_addr = line.rsplit(" ", 1)[1]
                break
        if not (self.grpc_addr and self.http_addr):
            self.stop()
            raise RuntimeError("coretalk did not announce its addresses:\n" + self.log())
        # Keep draining stdout so the server never blocks on it.
        threading.Thread(target=lambda: self.proc.stdout.read(), daemon=True).start()

    def vars(self):
        with urllib.request.urlopen(f"http://{self.http_addr}/debug/vars", timeout=TIMEOUT) as r:
            return json.loads(r.read())

    def log(self):
        try:
            with open(self.stderr_path) as f:
                return "".join(f.readlines()[-40:])
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()


def setUpModule():
    global SERVER
    SERVER = Server()


def tearDownModule():
    SERVER.stop()


_counter = [0]


def unique(prefix):
    _counter[0] += 1
    return f"{prefix}{os.getpid() % 10000}x{_counter[0]}"


def j(value):
    """A JSON value as the bytes this wire carries."""
    return json.dumps(value).encode()


def unj(b):
    return json.loads(b) if b else None


class Session:
    """One gRPC session: a MessageLoop stream fed from a queue and read by a thread."""

    def __init__(self, name):
        self.name = name
        self.channel = grpc.insecure_channel(SERVER.grpc_addr)
        self.out = queue.Queue()
        self.inbox = queue.Queue()
        self.next = 0
        self.uid = None
        self.token = None
        self.stream = pbx.NodeStub(self.channel).MessageLoop(self._requests())
        threading.Thread(target=self._read, daemon=True).start()

    def _requests(self):
        while True:
            msg = self.out.get()
            if msg is None:
                return
            yield msg

    def _read(self):
        try:
            for msg in self.stream:
                self.inbox.put(msg)
        except grpc.RpcError as e:
            self.inbox.put(e)
        self.inbox.put(None)

    def id(self):
        self.next += 1
        return f"{self.name}-{self.next}"

    def send(self, **kw):
        self.out.put(pb.ClientMsg(**kw))

    def recv(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise queue.Empty
        msg = self.inbox.get(timeout=left)
        if msg is None or isinstance(msg, grpc.RpcError):
            raise AssertionError(f"{self.name}: stream ended: {msg!r}")
        return msg

    def recv_until(self, what, pred):
        deadline = time.monotonic() + TIMEOUT
        try:
            while True:
                msg = self.recv(deadline)
                if pred(msg):
                    return msg
        except queue.Empty:
            raise AssertionError(f"{self.name}: no {what} within {TIMEOUT} s") from None

    def ctrl_for(self, id):
        msg = self.recv_until(f"ctrl {id}", lambda m: m.HasField("ctrl") and m.ctrl.id == id)
        return msg.ctrl

    def hi(self):
        id = self.id()
        self.send(hi=pb.ClientHi(id=id, user_agent="coretalk-grpc-e2e/1.0", ver="0.22.3",
                                 lang="en", platform="cli"))
        c = self.ctrl_for(id)
        assert c.code == 201, c
        assert "ver" in c.params, c
        return c

    def sign_up(self, login, public=None):
        id = self.id()
        self.send(acc=pb.ClientAcc(
            id=id, user_id="new", scheme="basic", secret=f"{login}:{login}-pw".encode(),
            login=True, tags=[login],
            desc=pb.SetDesc(public=j(public or {"fn": login}))))
        c = self.ctrl_for(id)
        assert c.code == 200, c
        self.uid = unj(c.params["user"])
        self.token = unj(c.params["token"])
        return c

    def login_basic(self, login):
        id = self.id()
        self.send(login=pb.ClientLogin(id=id, scheme="basic",
                                       secret=f"{login}:{login}-pw".encode()))
        c = self.ctrl_for(id)
        assert c.code == 200, c
        self.uid = unj(c.params["user"])
        self.token = unj(c.params["token"])
        return c

    def login_token(self, token):
        id = self.id()
        self.send(login=pb.ClientLogin(id=id, scheme="token", secret=base64.b64decode(token)))
        c = self.ctrl_for(id)
        assert c.code == 200, c
        self.uid = unj(c.params["user"])
        return c

    def sub(self, topic, get=None, set_query=None):
        id = self.id()
        self.send(sub=pb.ClientSub(id=id, topic=topic, get_query=get, set_query=set_query))
        c = self.ctrl_for(id)
        assert c.code == 200, c
        return c

    def publish(self, topic, content, head=None):
        id = self.id()
        self.send(pub=pb.ClientPub(id=id, topic=topic, content=j(content),
                                   head={k: j(v) for k, v in (head or {}).items()}))
        c = self.ctrl_for(id)
        assert c.code == 202, c
        return unj(c.params["seq"])

    def close(self):
        """Ends the stream from the client's side and waits for the server to end it too."""
        self.out.put(None)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            msg = self.inbox.get(timeout=TIMEOUT)
            if msg is None or isinstance(msg, grpc.RpcError):
                break
        self.channel.close()


def data_with(content):
    return lambda m: m.HasField("data") and unj(m.data.content) == content


class GrpcE2E(unittest.TestCase):
    def setUp(self):
        self.sessions = []

    def tearDown(self):
        for s in self.sessions:
            try:
                s.out.put(None)
                s.channel.close()
            except Exception:
                pass

    def session(self, name):
        s = Session(name)
        self.sessions.append(s)
        s.hi()
        return s

    def test_sign_up_then_basic_and_token_login(self):
        login = unique("pya")
        a = self.session("a")
        c = a.sign_up(login)
        self.assertTrue(a.uid.startswith("usr"), c)
        self.assertIn("expires", c.params)
        b = self.session("b")
        b.login_basic(login)
        self.assertEqual(b.uid, a.uid)
        t = self.session("t")
        t.login_token(a.token)
        self.assertEqual(t.uid, a.uid)
        # A wrong password is refused.
        w = self.session("w")
        id = w.id()
        w.send(login=pb.ClientLogin(id=id, scheme="basic", secret=f"{login}:nope".encode()))
        self.assertEqual(w.ctrl_for(id).code, 401)
        # My own description, with the public value as sent.
        a.sub("me")
        id = a.id()
        a.send(get=pb.ClientGet(id=id, topic="me", query=pb.GetQuery(what="desc")))
        meta = a.recv_until("meta desc", lambda m: m.HasField("meta") and m.meta.id == id)
        self.assertEqual(unj(meta.meta.desc.public), {"fn": login})

    def test_group_create_join_publish_receive_history_notes_leave(self):
        alice = self.session("alice")
        alice.sign_up(unique("pyal"))
        bob = self.session("bob")
        bob.sign_up(unique("pybo"))

        c = alice.sub("new", set_query=pb.SetQuery(
            desc=pb.SetDesc(public=j({"fn": "Room"})), tags=["pyroom"]))
        grp = c.topic
        self.assertTrue(grp.startswith("grp"), c)

        # Bob joins and reads the description.
        id = bob.id()
        bob.send(sub=pb.ClientSub(id=id, topic=grp, get_query=pb.GetQuery(what="desc sub")))
        self.assertEqual(bob.ctrl_for(id).code, 200)
        meta = bob.recv_until("desc", lambda m: m.HasField("meta") and m.meta.HasField("desc"))
        self.assertEqual(unj(meta.meta.desc.public), {"fn": "Room"})
        # Alice, the owner, sees Bob arrive.
        alice.recv_until("pres on", lambda m: m.HasField("pres") and m.pres.src == bob.uid
                         and m.pres.what == pb.ServerPres.ON)

        # Publish both ways.
        seq = alice.publish(grp, "hello")
        self.assertEqual(seq, 1)
        d = bob.recv_until("alice's message", data_with("hello")).data
        self.assertEqual((d.topic, d.from_user_id, d.seq_id), (grp, alice.uid, 1))
        self.assertGreater(d.timestamp, 1_600_000_000_000)
        drafty = {"txt": "hi alice", "fmt": [{"at": 0, "len": 2, "tp": "ST"}]}
        bob.publish(grp, drafty, head={"mime": "text/x-drafty"})
        d = alice.recv_until("bob's message", data_with(drafty)).data
        self.assertEqual(d.from_user_id, bob.uid)
        self.assertEqual(unj(d.head["mime"]), "text/x-drafty")

        # History: a third member reads the page, newest first, and a limited page.
        carol = self.session("carol")
        carol.sign_up(unique("pyca"))
        id = carol.id()
        carol.send(sub=pb.ClientSub(id=id, topic=grp, get_query=pb.GetQuery(what="data")))
        self.assertEqual(carol.ctrl_for(id).code, 200)
        got = []
        while len(got) < 2:
            m = carol.recv_until("history", lambda m: m.HasField("data"))
            got.append(m.data.seq_id)
        self.assertEqual(sorted(got), [1, 2])
        id = carol.id()
        carol.send(get=pb.ClientGet(id=id, topic=grp, query=pb.GetQuery(
            what="data", data=pb.GetOpts(before_id=2, limit=1))))
        m = carol.recv_until("page", lambda m: m.HasField("data"))
        self.assertEqual((m.data.seq_id, unj(m.data.content)), (1, "hello"))

        # Notes become info for the other attached members (a publisher has read its own
        # message already, so Alice reports reading Bob's).
        alice.send(note=pb.ClientNote(topic=grp, what=pb.READ, seq_id=2))
        info = bob.recv_until("read info", lambda m: m.HasField("info")
                              and m.info.what == pb.READ).info
        self.assertEqual((info.topic, info.from_user_id, info.seq_id), (grp, alice.uid, 2))
        bob.send(note=pb.ClientNote(topic=grp, what=pb.KP))
        info = alice.recv_until("kp info", lambda m: m.HasField("info")
                                and m.info.what == pb.KP).info
        self.assertEqual(info.from_user_id, bob.uid)

        # Leaving: Bob detaches (still a member), Carol unsubscribes.
        id = bob.id()
        bob.send(leave=pb.ClientLeave(id=id, topic=grp))
        self.assertEqual(bob.ctrl_for(id).code, 200)
        alice.recv_until("pres off", lambda m: m.HasField("pres") and m.pres.src == bob.uid
                         and m.pres.what == pb.ServerPres.OFF)
        id = carol.id()
        carol.send(leave=pb.ClientLeave(id=id, topic=grp, unsub=True))
        self.assertEqual(carol.ctrl_for(id).code, 200)
        id = alice.id()
        alice.send(get=pb.ClientGet(id=id, topic=grp, query=pb.GetQuery(what="sub")))
        meta = alice.recv_until("members", lambda m: m.HasField("meta") and m.meta.id == id)
        members = sorted(s.user_id for s in meta.meta.sub)
        self.assertEqual(members, sorted([alice.uid, bob.uid]))

        # A detached member publishing must attach first.
        id = bob.id()
        bob.send(pub=pb.ClientPub(id=id, topic=grp, content=j("late")))
        self.assertEqual(bob.ctrl_for(id).code, 409)

    def test_ending_the_stream_ends_the_session(self):
        before = SERVER.vars()["LiveSessions"]
        s = Session("closer")
        s.hi()
        s.sign_up(unique("pycl"))
        s.sub("me")
        self.assertEqual(SERVER.vars()["LiveSessions"], before + 1)
        s.close()
        deadline = time.monotonic() + TIMEOUT
        while SERVER.vars()["LiveSessions"] != before:
            self.assertLess(time.monotonic(), deadline, "the session outlived its stream")
            time.sleep(0.1)
        v = SERVER.vars()
        self.assertGreater(v["IncomingMessagesGrpcTotal"], 0)
        self.assertGreater(v["OutgoingMessagesGrpcTotal"], 0)


def main():
    if not os.access(BIN, os.X_OK):
        print(f"no server binary at {BIN}: build it (cargo build) or set CORETALK_BIN",
              file=sys.stderr)
        return 2
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors)
    passed = result.testsRun - failed - len(result.skipped)
    if SERVER is not None:
        if failed:
            print("--- coretalk stderr (last lines) ---\n" + SERVER.log(), file=sys.stderr)
        if os.environ.get("GRPC_E2E_KEEP") != "1":
            shutil.rmtree(SERVER.dir, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and result.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
