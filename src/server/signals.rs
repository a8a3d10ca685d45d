//! SIGINT and SIGTERM, taken in one place: `main` blocks both before any thread exists, so every
//! thread inherits the mask and neither signal can ever take its default action (terminate the
//! process) in whichever thread the kernel picks; one thread, `coretalk-signal`, then takes them
//! with `sigwait` and hands each to the shutdown sequence as an event.
//!
//! It does not decide what a signal means: the first starts the graceful shutdown, a second cuts
//! it short (`server/shutdown.rs`).

use std::sync::mpsc::Sender;

use super::shutdown::Event;

/// Proof that SIGINT and SIGTERM are blocked in the thread that made it (and in the threads it
/// starts afterwards); [`crate::server::run`] takes it so that it cannot be forgotten.
pub struct Blocked {
    set: libc::sigset_t,
}

impl std::fmt::Debug for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Blocked(SIGINT, SIGTERM)")
    }
}

/// Blocks SIGINT and SIGTERM in the calling thread. `main` calls it before anything else, so
/// that every thread started later (store writer, hash threads, shards) inherits the mask.
///
/// # Panics
///
/// If `pthread_sigmask` fails, which it does only for an invalid `how` argument.
pub fn block() -> Blocked {
    // SAFETY: plain libc calls on a zeroed, locally owned signal set.
    let rc = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc == 0 {
            return Blocked { set };
        }
        rc
    };
    panic!(
        "pthread_sigmask failed: {}",
        std::io::Error::from_raw_os_error(rc)
    );
}

/// The name of a signal this module handles.
pub fn name(sig: i32) -> &'static str {
    match sig {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "signal",
    }
}

impl Blocked {
    /// Starts `coretalk-signal`: it sends [`Event::Signal`] for every SIGINT/SIGTERM, for the
    /// life of the process (or until nobody listens). Signals that arrived before it started
    /// stay pending and are taken first.
    pub(super) fn listen(self, events: Sender<Event>) -> std::io::Result<()> {
        let set = self.set;
        std::thread::Builder::new()
            .name("coretalk-signal".to_owned())
            .stack_size(64 << 10)
            .spawn(move || loop {
                let mut sig = 0;
                // SAFETY: `set` holds SIGINT and SIGTERM, blocked in this thread (inherited);
                // sigwait writes one int.
                let rc = unsafe { libc::sigwait(&set, &mut sig) };
                if rc != 0 {
                    // Only EINVAL (a bad set), which would repeat forever.
                    log::error!("sigwait failed: {}", std::io::Error::from_raw_os_error(rc));
                    return;
                }
                if events.send(Event::Signal(sig)).is_err() {
                    return;
                }
            })
            .map(drop)
    }
}
