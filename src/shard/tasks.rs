//! The shard's own long-running tasks on its executor: draining the mesh when its doorbell
//! rings, once-a-second housekeeping (idle topic unload, gauges, backlog retries), and the
//! journal's writer (`shard::journal`, only where the journal is on).
//!
//! Both only call synchronous steps on the [`ShardCtx`] through [`crate::shard::local::with`];
//! neither blocks the executor.

use std::future::poll_fn;
use std::time::Duration;

use crate::shard::local::with;
use crate::shard::{Envelope, Local};

/// Most envelopes handled per wake-up before yielding to other tasks (fairness with sockets).
const DRAIN_BATCH: usize = 256;

/// Spawns the mesh and housekeeping tasks on the current executor.
pub fn spawn_tasks() {
    glommio::spawn_local(mesh_loop()).detach();
    glommio::spawn_local(housekeeping_loop()).detach();
    glommio::spawn_local(crate::shard::journal::journal_loop()).detach();
}

/// Runs until shutdown completes: the future the executor's main task awaits. It sleeps until
/// the shard has drained (woken by the shutdown step itself; an idle shard is never polled).
pub async fn run_tasks() {
    poll_fn(|cx| with(|ctx| ctx.poll_drained(cx))).await;
    // Give writers a moment to send the shutdown notice, then exit.
    glommio::timer::sleep(Duration::from_millis(200)).await;
}

async fn mesh_loop() {
    let mut locals: Vec<Local> = Vec::new();
    let mut buf: Vec<Envelope> = Vec::with_capacity(DRAIN_BATCH);
    loop {
        poll_fn(|cx| with(|ctx| ctx.poll_mesh(cx))).await;
        with(|ctx| {
            ctx.drain_mesh(DRAIN_BATCH, &mut locals, &mut buf);
            ctx.handle_received(&mut locals, &mut buf);
        });
        glommio::yield_if_needed().await;
    }
}

async fn housekeeping_loop() {
    loop {
        let backlog = with(|ctx| {
            ctx.housekeeping();
            ctx.should_retry_soon()
        });
        let pause = if backlog {
            Duration::from_millis(1)
        } else {
            Duration::from_secs(1)
        };
        glommio::timer::sleep(pause).await;
    }
}
