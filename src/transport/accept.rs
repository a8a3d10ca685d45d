//! Accepting connections without spinning: a failed `accept` is counted
//! (`coretalk_accept_errors_total`), logged at most `log.noisy_per_sec` times a second per
//! listener (the rest summarised), and when the process is out of file descriptors or memory
//! (`EMFILE`, `ENFILE`, `ENOBUFS`, `ENOMEM`) the loop backs off, 10 ms doubling up to 1 s, so
//! a full file table costs a few wake-ups a second instead of a busy loop. The backlog keeps
//! the waiting connections meanwhile; the first success resets the delay. Before pausing,
//! the front door sheds a batch of the shard's oldest unauthenticated connections
//! (`door.rs`), so real clients get in while an idle flood holds the descriptors.

use std::io;
use std::time::{Duration, Instant};

use glommio::net::{TcpListener, TcpStream};

use crate::logging::Noisy;
use crate::shard::local::with;

/// First pause after a resource error.
const FIRST_PAUSE: Duration = Duration::from_millis(10);
/// Longest pause.
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// One listener's accept state.
pub struct Acceptor {
    what: &'static str,
    noisy: Noisy,
    pause: Duration,
}

/// Errors that mean "no resources now": retrying at once would fail again.
pub fn is_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// The pause after `previous` (zero before the first resource error).
pub fn next_pause(previous: Duration) -> Duration {
    if previous.is_zero() {
        FIRST_PAUSE
    } else {
        (previous * 2).min(MAX_PAUSE)
    }
}

impl Acceptor {
    /// `what` names the listener in log lines (`http`, `grpc`, `monitor`).
    pub fn new(what: &'static str, lines_per_sec: u32) -> Acceptor {
        Acceptor {
            what,
            noisy: Noisy::per_second(lines_per_sec),
            pause: Duration::ZERO,
        }
    }

    /// The next connection; errors are handled here.
    pub async fn accept(&mut self, listener: &TcpListener) -> TcpStream {
        loop {
            match listener.accept().await {
                Ok(s) => {
                    if !self.pause.is_zero() {
                        let missed = self.noisy.flush(Instant::now() + Duration::from_secs(3600));
                        tracing::warn!(
                            listener = self.what,
                            suppressed = missed,
                            "accepting again after running out of resources"
                        );
                        self.pause = Duration::ZERO;
                    }
                    return s;
                }
                Err(e) => {
                    let e = io::Error::from(e);
                    with(|ctx| ctx.accept_failed());
                    let exhausted = is_exhaustion(&e);
                    if exhausted {
                        // Shed the oldest unauthenticated connections first; if that freed
                        // some, retry as soon as their tasks have closed them.
                        self.pause = if super::door::shed_for_descriptors() > 0 {
                            FIRST_PAUSE
                        } else {
                            next_pause(self.pause)
                        };
                    }
                    if let Some(before) = self.noisy.hit(Instant::now()) {
                        if before > 0 {
                            tracing::warn!(
                                listener = self.what,
                                "{before} more accept failures since the last line"
                            );
                        }
                        tracing::warn!(
                            listener = self.what,
                            pause_ms = self.pause.as_millis() as u64,
                            "accept failed: {e}"
                        );
                    }
                    if exhausted {
                        glommio::timer::sleep(self.pause).await;
                    } else {
                        // A connection that died in the queue and the like: the next one may
                        // be fine, but do not spin on an error that repeats.
                        glommio::timer::sleep(Duration::from_millis(1)).await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_descriptors_backs_off_up_to_a_second() {
        assert!(is_exhaustion(&io::Error::from_raw_os_error(libc::EMFILE)));
        assert!(is_exhaustion(&io::Error::from_raw_os_error(libc::ENFILE)));
        assert!(!is_exhaustion(&io::Error::from_raw_os_error(
            libc::ECONNABORTED
        )));
        let mut p = Duration::ZERO;
        let mut seen = Vec::new();
        for _ in 0..10 {
            p = next_pause(p);
            seen.push(p.as_millis());
        }
        assert_eq!(seen, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
    }
}
