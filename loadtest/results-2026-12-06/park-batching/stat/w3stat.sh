#!/bin/bash
# w3stat.sh BIN PB_US NAME
bin=$1; pb=$2; name=$3
W=$(mktemp -d)
printf '[auth]\nbcrypt_cost = 4\n[store]\ndurable = false\n[limits]\nmsg_per_sec = 0\nauth_per_min = 0\naddr_auth_per_min = 0\nmax_sessions_per_user = 0\n[runtime]\npark_batch_us = %s\n' $pb > $W/c.toml
taskset -c 0 $bin --listen 127.0.0.1:0 --grpc-listen "" --data $W/data --shards 1 --config $W/c.toml > $W/out 2> $W/err &
pid=$!
for _ in $(seq 100); do grep -q "^coretalk listening on" $W/out && break; sleep 0.1; done
addr=$(grep -o "^coretalk listening on [0-9.:]*" $W/out | awk '{print $4}')
( sleep 12; perf stat --per-thread -e context-switches,task-clock,syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_futex,syscalls:sys_enter_sched_yield -p $pid -- sleep 5 2> /tmp/w0p/$name.stat ) &
/work/main/target/release/coretalk-load w3 --attach $addr --server-pid $pid --pairs 2000 --rate 2500 --topic-kind p2p --duration 16 --warmup 3 --client-cores 1 --no-results > /tmp/w0p/$name.load 2>&1
wait %2 2>/dev/null; sleep 1
kill -INT $pid; wait $pid 2>/dev/null
grep -v "^$" /tmp/w0p/$name.stat | grep -v " 0 " | head -30
tail -n 2 /tmp/w0p/$name.load | head -1
rm -rf $W
