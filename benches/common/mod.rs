//! Helpers shared by the custom-harness benches (`mod common;` in each): not a bench itself.
//! Each bench compiles its own copy, so a helper some benches do not call is allowed to be
//! unused there.

use std::time::Duration;

/// CPU time used so far by the calling thread.
pub fn thread_cpu() -> Duration {
    cpu_clock(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time used so far by the whole process (every thread, io_uring workers included).
#[allow(dead_code)]
pub fn process_cpu() -> Duration {
    cpu_clock(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn cpu_clock(id: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, exclusively borrowed timespec for the call to fill in.
    unsafe { libc::clock_gettime(id, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
