//! The worker process (`coretalk-load worker`, hidden): reads its spec from the first line of
//! stdin, then commands (one JSON object per line), and writes events to stdout, one JSON
//! object per line. It runs one current-thread runtime; the parent pins it with taskset.

use std::io::Write as _;

use anyhow::{anyhow, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader, Lines, Stdin};

use crate::msg::{Cmd, Ev, Role, WorkerSpec};
use crate::workload;

/// Writes one event line to the parent.
pub fn emit(ev: &Ev) {
    let line = serde_json::to_string(ev).expect("event serializes");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Commands from the parent.
pub struct Cmds {
    lines: Lines<BufReader<Stdin>>,
}

impl Cmds {
    pub async fn next(&mut self) -> Result<Cmd> {
        loop {
            let line = self
                .lines
                .next_line()
                .await?
                .ok_or_else(|| anyhow!("parent closed stdin"))?;
            if line.trim().is_empty() {
                continue;
            }
            return serde_json::from_str(&line).with_context(|| format!("bad command: {line}"));
        }
    }
}

pub fn main() -> std::process::ExitCode {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let local = tokio::task::LocalSet::new();
    let r = local.block_on(&rt, async {
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        let first = lines
            .next_line()
            .await?
            .ok_or_else(|| anyhow!("no spec on stdin"))?;
        let spec: WorkerSpec = serde_json::from_str(&first).context("bad worker spec")?;
        let mut cmds = Cmds { lines };
        match &spec.role {
            Role::Echo { .. } => workload::w0::worker(&spec, &mut cmds).await,
            Role::Idle { .. } => workload::w1::worker(&spec, &mut cmds).await,
            Role::Arrivals { .. } => workload::w2::worker(&spec, &mut cmds).await,
            Role::Pairs { .. } => workload::w3::worker(&spec, &mut cmds).await,
            Role::Fanout { .. } => workload::w4::worker(&spec, &mut cmds).await,
            Role::LongPoll { .. } => workload::w5::worker(&spec, &mut cmds).await,
            Role::Soak { .. } => workload::soak::worker(&spec, &mut cmds).await,
            Role::Churn { .. } => workload::churn_client::worker(&spec, &mut cmds).await,
        }
    });
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            match crate::coord::unsupported(&e) {
                Some(msg) => emit(&Ev::Unsupported { msg }),
                None => emit(&Ev::Fatal {
                    msg: format!("{e:#}"),
                }),
            }
            std::process::ExitCode::FAILURE
        }
    }
}
