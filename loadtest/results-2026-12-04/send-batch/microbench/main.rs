// Experiment: CPU per small send over N loopback sockets, send() loop vs one io_uring submission.
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Instant;

fn cpu_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn pin(core: usize) {
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args[1].clone();
    let n: usize = args[2].parse().unwrap();
    let rounds: usize = args[3].parse().unwrap();
    let size: usize = args.get(4).map(|s| s.parse().unwrap()).unwrap_or(120);
    let pace: u64 = args.get(5).map(|s| s.parse().unwrap()).unwrap_or(0);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let mut clients = Vec::new();
    let mut servers = Vec::new();
    for _ in 0..n {
        let c = TcpStream::connect(addr).unwrap();
        c.set_nodelay(true).unwrap();
        let (s, _) = l.accept().unwrap();
        s.set_nodelay(true).unwrap();
        s.set_nonblocking(true).unwrap();
        clients.push(c);
        servers.push(s);
    }
    // reader thread on core 1: epoll over clients
    let cfds: Vec<i32> = clients.iter().map(|c| c.as_raw_fd()).collect();
    for c in &clients { c.set_nonblocking(true).unwrap(); }
    let total = (n * rounds * size) as u64;
    let reader = std::thread::spawn(move || {
        pin(1);
        let _keep = clients;
        let ep = unsafe { libc::epoll_create1(0) };
        for (i, fd) in cfds.iter().enumerate() {
            let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: i as u64 };
            unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, *fd, &mut ev) };
        }
        let mut got = 0u64;
        let mut buf = vec![0u8; 65536];
        let mut evs = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        while got < total {
            let k = unsafe { libc::epoll_wait(ep, evs.as_mut_ptr(), 256, 1000) };
            for e in &evs[..k.max(0) as usize] {
                let fd = cfds[e.u64 as usize];
                loop {
                    let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
                    if r <= 0 { break; }
                    got += r as u64;
                }
            }
        }
    });
    pin(0);
    let frame = vec![b'x'; size];
    let sfds: Vec<i32> = servers.iter().map(|s| s.as_raw_fd()).collect();
    let t0 = Instant::now();
    let c0 = cpu_ns();
    let mut short = 0usize;
    match mode.as_str() {
        "send" => {
            for _ in 0..rounds {
                for &fd in &sfds {
                    let r = unsafe { libc::send(fd, frame.as_ptr().cast(), size, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
                    if r != size as isize { short += 1; }
                }
                // pace a little like a fanout at a rate: yield
                if pace > 0 { std::thread::sleep(std::time::Duration::from_micros(pace)); } else { std::thread::yield_now(); }
            }
        }
        "uring" => {
            let mut ring = io_uring::IoUring::new(4096).unwrap();
            for _ in 0..rounds {
                {
                    let mut sq = ring.submission();
                    for (i, &fd) in sfds.iter().enumerate() {
                        let e = io_uring::opcode::Send::new(io_uring::types::Fd(fd), frame.as_ptr(), size as u32)
                            .flags(libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
                            .build().user_data(i as u64);
                        unsafe { sq.push(&e).unwrap() };
                    }
                }
                ring.submit_and_wait(n).unwrap();
                for c in ring.completion() {
                    if c.result() != size as i32 { short += 1; }
                }
                if pace > 0 { std::thread::sleep(std::time::Duration::from_micros(pace)); } else { std::thread::yield_now(); }
            }
        }
        _ => panic!(),
    }
    let cpu = cpu_ns() - c0;
    let wall = t0.elapsed();
    reader.join().unwrap();
    println!("{mode} n={n} rounds={rounds} size={size}: {:.3} us cpu/send, wall {:?}, short {short}", cpu as f64 / (n * rounds) as f64 / 1000.0, wall);
    drop(servers);
}
