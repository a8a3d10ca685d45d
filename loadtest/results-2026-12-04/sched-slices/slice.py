# usage: slice.py PID COMM_PREFIX SLICE_US [NICE [POLICY]]  -- sched_setattr on matching threads (POLICY 0 normal, 3 batch, 5 idle)
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
pid, prefix, us = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
nice = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4] != "" else 0
pol = int(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[5] != "" else 0
for tid in os.listdir(f"/proc/{pid}/task"):
    comm = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
    if not comm.startswith(prefix):
        continue
    attr = struct.pack("IIQiIQQQ", 48, pol, 0, nice, 0, us * 1000, 0, 0)
    buf = ctypes.create_string_buffer(attr)
    r = libc.syscall(314, int(tid), buf, 0)
    print(comm, tid, "rc", r, "errno", ctypes.get_errno())
