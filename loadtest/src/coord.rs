//! The parent's side of the worker processes: spawns K copies of this binary as
//! `coretalk-load worker` pinned to the client cores, hands each its spec, sends commands and
//! gathers their events, driving an indicatif progress bar from their progress lines.

use std::process::Stdio;

use anyhow::{anyhow, bail, Context, Result};
use indicatif::ProgressBar;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::msg::{Cmd, Ev, WorkerSpec, WorkerStats};

/// The target lacks what the workload needs (e.g. long polling); not a harness failure.
#[derive(Debug)]
pub struct Unsupported(pub String);

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
impl std::error::Error for Unsupported {}

/// Whether an error chain says "unsupported".
pub fn unsupported(e: &anyhow::Error) -> Option<String> {
    e.chain()
        .find_map(|c| c.downcast_ref::<Unsupported>())
        .map(|u| u.0.clone())
}

#[derive(Clone, Default)]
struct Prog {
    done: u64,
    total: u64,
    sent: u64,
    recv: u64,
    errors: u64,
}

pub struct Workers {
    stdin: Vec<ChildStdin>,
    children: Vec<Child>,
    rx: mpsc::UnboundedReceiver<(usize, Option<Ev>)>,
    prog: Vec<Prog>,
}

/// Which event `gather` waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Want {
    Ready,
    Done,
}

impl Workers {
    pub async fn spawn(specs: Vec<WorkerSpec>, client_cores: &str) -> Result<Workers> {
        let exe = std::env::current_exe().context("current_exe")?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut stdin = Vec::new();
        let mut children = Vec::new();
        let have_taskset = std::path::Path::new("/usr/bin/taskset").exists()
            || std::path::Path::new("/bin/taskset").exists();
        for (i, spec) in specs.iter().enumerate() {
            let mut cmd = if have_taskset && !client_cores.is_empty() {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(client_cores).arg(&exe);
                c
            } else {
                Command::new(&exe)
            };
            cmd.arg("worker")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true);
            let mut child = cmd.spawn().context("spawn worker")?;
            let mut input = child.stdin.take().expect("piped stdin");
            let line = serde_json::to_string(spec)? + "\n";
            input.write_all(line.as_bytes()).await?;
            input.flush().await?;
            let out = child.stdout.take().expect("piped stdout");
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(out).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    match serde_json::from_str::<Ev>(&l) {
                        Ok(ev) => {
                            let _ = tx.send((i, Some(ev)));
                        }
                        Err(_) => eprintln!("worker {i}: {l}"),
                    }
                }
                let _ = tx.send((i, None));
            });
            stdin.push(input);
            children.push(child);
        }
        let n = specs.len();
        Ok(Workers {
            stdin,
            children,
            rx,
            prog: vec![Prog::default(); n],
        })
    }

    /// Process ids of the workers (taskset execs, so these are the workers themselves).
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().filter_map(|c| c.id()).collect()
    }

    pub fn len(&self) -> usize {
        self.stdin.len()
    }

    pub async fn send(&mut self, i: usize, cmd: &Cmd) -> Result<()> {
        let line = serde_json::to_string(cmd)? + "\n";
        self.stdin[i]
            .write_all(line.as_bytes())
            .await
            .with_context(|| format!("worker {i} is gone"))?;
        self.stdin[i].flush().await?;
        Ok(())
    }

    pub async fn send_all(&mut self, cmd: &Cmd) -> Result<()> {
        for i in 0..self.len() {
            self.send(i, cmd).await?;
        }
        Ok(())
    }

    /// Waits for `want` from every worker, showing progress on `bar` (set-up: done/total
    /// sessions; run: sends, deliveries, errors). An `Unsupported` from any worker becomes
    /// [`Unsupported`].
    pub async fn gather(&mut self, want: Want, bar: &ProgressBar) -> Result<Vec<WorkerStats>> {
        let n = self.len();
        let mut got: Vec<Option<WorkerStats>> = vec![None; n];
        while got.iter().any(|g| g.is_none()) {
            let (i, ev) = self
                .rx
                .recv()
                .await
                .ok_or_else(|| anyhow!("all workers gone"))?;
            match ev {
                None => {
                    if got[i].is_none() {
                        bail!("worker {i} exited before finishing");
                    }
                }
                Some(Ev::Progress {
                    done,
                    total,
                    sent,
                    recv,
                    errors,
                    ..
                }) => {
                    self.prog[i] = Prog {
                        done,
                        total,
                        sent,
                        recv,
                        errors,
                    };
                    let sum = self.prog.iter().fold(Prog::default(), |a, p| Prog {
                        done: a.done + p.done,
                        total: a.total + p.total,
                        sent: a.sent + p.sent,
                        recv: a.recv + p.recv,
                        errors: a.errors + p.errors,
                    });
                    if want == Want::Ready && sum.total > 0 {
                        bar.set_length(sum.total);
                        bar.set_position(sum.done);
                    }
                    bar.set_message(format!(
                        "sent {} recv {} errors {}",
                        sum.sent, sum.recv, sum.errors
                    ));
                }
                Some(Ev::Ready(s)) if want == Want::Ready => got[i] = Some(s),
                Some(Ev::Done(s)) if want == Want::Done => got[i] = Some(s),
                Some(Ev::Ready(_)) | Some(Ev::Done(_)) => {
                    bail!("worker {i}: unexpected event")
                }
                Some(Ev::Unsupported { msg }) => return Err(anyhow::Error::new(Unsupported(msg))),
                Some(Ev::Fatal { msg }) => bail!("worker {i}: {msg}"),
            }
        }
        for p in &mut self.prog {
            *p = Prog::default();
        }
        Ok(got.into_iter().map(|g| g.expect("all gathered")).collect())
    }

    /// Tells every worker to stop and waits for them (killing stragglers after 5 s).
    pub async fn stop(mut self) {
        let _ = self.send_all(&Cmd::Stop).await;
        for c in &mut self.children {
            if tokio::time::timeout(std::time::Duration::from_secs(5), c.wait())
                .await
                .is_err()
            {
                let _ = c.kill().await;
            }
        }
    }
}
