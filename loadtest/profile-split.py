# Not part of the build: splits a dwarf profile of the server (`perf script -F comm,tid,ip,sym`
# output) into where its CPU goes: the shard's sleep (its io_uring wait), its sends (system
# calls and io_uring sends), its receives, its own code (coretalk, glommio, the allocator),
# and the store thread. loadtest/profile-split.sh runs it.
#   profile-split.py SCRIPT
import collections
import re
import sys


def samples(path):
    out, cur, comm = [], None, None
    for line in open(path):
        line = line.rstrip('\n')
        if not line.strip():
            if cur is not None:
                out.append((comm, cur))
            cur = None
            continue
        if not line.startswith((' ', '\t')):
            comm, cur = line.split()[0], []
            continue
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and cur is not None:
            cur.append((parts[0], re.sub(r'\+0x[0-9a-f]+$', '', parts[1].rsplit(' (', 1)[0])))
    if cur is not None:
        out.append((comm, cur))
    return out


def bucket(comm, s):
    fs = [f for _, f in s]
    kernel = bool(s) and s[0][0].startswith('ffffffff')
    if comm.startswith('coretalk-store'):
        return 'store thread, ' + ('kernel' if kernel else 'user')
    # A park submits and waits in one entry when it has requests to submit
    # (`io_uring_submit_and_wait`), and only waits when it has none (`io_cqring_wait`).
    if any('submit_and_wait' in f or f.startswith('io_cqring_wait') for f in fs) and not any(
            f.startswith(('io_send', 'io_issue_sqe')) for f in fs):
        return 'shard: sleep and wake-up (io_uring wait)'
    if any('__sys_sendto' in f or f.startswith(('io_send', 'io_issue_sqe')) for f in fs):
        return 'shard: sends (kernel: send system calls, io_uring sends)'
    if any('__sys_recvfrom' in f for f in fs):
        return 'shard: recv system calls (kernel)'
    if kernel:
        return 'shard: other kernel'
    if any(f.startswith(('mi_', '_mi_')) for f in fs[:3]):
        return 'shard: allocator'
    head = fs[:6]
    if any(f.startswith('glommio') for f in head) and not any(
            f.startswith(('coretalk', '<coretalk')) for f in head):
        return 'shard: glommio executor and reactor'
    return 'shard: coretalk code (protocol, topics, sessions, frames)'


ss = samples(sys.argv[1])
c = collections.Counter(bucket(comm, s) for comm, s in ss)
print(f"samples {len(ss)}")
for k, v in c.most_common():
    print(f"{100 * v / len(ss):5.1f}% {k}")
