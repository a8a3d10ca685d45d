#!/bin/bash
# stat.sh BIN NAME: W0 20 B, perf stat of the server for 5 s mid-run
bin=$1; name=$2
L=/work/main/target/release/coretalk-load
( sleep 8; pid=$(pgrep -n -f "$bin --listen"); perf stat -e context-switches,cpu-migrations,task-clock,syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,timer:hrtimer_expire_entry -p $pid -- sleep 5 2> /tmp/w0p/$name.stat ) &
$L w0 --target coretalk --server-bin $bin --connections 100 --payload 20 --rate 20000 --server-cores 0 --client-cores 1 --duration 12 --warmup 2 --no-results > /tmp/w0p/$name.load 2>&1
wait
grep -E "context|task-clock|io_uring|recvfrom|sendto|hrtimer" /tmp/w0p/$name.stat
