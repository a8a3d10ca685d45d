use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
fn main() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let _c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    s.set_nonblocking(false).unwrap();
    let fd = s.as_raw_fd();
    let buf = vec![0u8; 65536];
    let mut ring = io_uring::IoUring::new(64).unwrap();
    let mut total = 0i64;
    for i in 0..200 {
        let e = io_uring::opcode::Send::new(io_uring::types::Fd(fd), buf.as_ptr(), buf.len() as u32)
            .flags(libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL).build().user_data(i);
        unsafe { ring.submission().push(&e).unwrap() };
        let t = std::time::Instant::now();
        ring.submit_and_wait(1).unwrap();
        let c = ring.completion().next().unwrap();
        println!("send {i}: result {} in {:?}", c.result(), t.elapsed());
        if c.result() < 0 { break; }
        total += c.result() as i64;
        if (c.result() as usize) < buf.len() { /* short */ }
    }
    println!("total {total}");
}
