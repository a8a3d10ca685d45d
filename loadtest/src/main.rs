//! `coretalk-load`: the open-loop load harness for coretalk and its peers (workloads W0–W6 of
//! `shared/design/performance.md`). Parses the command line and dispatches: a workload, a
//! comparison, the smoke run, or one of the hidden helper processes (a client worker, the
//! plain-HTTP and the WebSocket speed-of-light peers).

mod accounts;
mod adapter;
mod cli;
mod compare;
mod coord;
mod engine;
mod env;
mod hist;
mod httpsol;
mod msg;
mod net;
mod payload;
mod plot;
mod report;
mod sample;
mod schedule;
mod server;
mod smoke;
mod worker;
mod workload;
mod wssol;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, Common, Workload};

/// Where results directories go.
pub fn results_base(c: &Common) -> PathBuf {
    c.results_dir
        .clone()
        .unwrap_or_else(|| env::workspace_root().join("loadtest/results"))
}

/// Pins this process to a taskset-style core list (the parent stays off the server's cores).
fn pin_self(list: &str) {
    let mut cores = Vec::new();
    for part in list.split(',').filter(|p| !p.trim().is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                if let (Ok(a), Ok(b)) = (a.trim().parse::<usize>(), b.trim().parse::<usize>()) {
                    cores.extend(a..=b);
                }
            }
            None => {
                if let Ok(c) = part.trim().parse::<usize>() {
                    cores.push(c);
                }
            }
        }
    }
    if cores.is_empty() {
        return;
    }
    // SAFETY: a zeroed cpu_set_t is valid; CPU_SET and sched_setaffinity only touch it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for c in cores {
            if c < libc::CPU_SETSIZE as usize {
                libc::CPU_SET(c, &mut set);
            }
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn run_one(w: Workload) -> ExitCode {
    pin_self(&w.common().client_cores);
    let rt = runtime();
    let mut r = rt.block_on(workload::run(&w));
    println!("{}", report::table(&r));
    if !w.common().no_results {
        match report::write_dir(&mut r, &results_base(w.common())) {
            Ok(d) => println!("results: {}", d.display()),
            Err(e) => eprintln!("coretalk-load: cannot write results: {e:#}"),
        }
    }
    ExitCode::from(r.exit_code())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Command::W0(a) => run_one(Workload::W0(a)),
        Command::W1(a) => run_one(Workload::W1(a)),
        Command::W2(a) => run_one(Workload::W2(a)),
        Command::W3(a) => run_one(Workload::W3(a)),
        Command::W4(a) => run_one(Workload::W4(a)),
        Command::W5(a) => run_one(Workload::W5(a)),
        Command::W6(a) => run_one(Workload::W6(a)),
        Command::W7(a) => run_one(Workload::W7(a)),
        Command::Soak(a) => run_one(Workload::Soak(a)),
        Command::Churn(a) => run_one(Workload::Churn(a)),
        Command::Compare(c) => {
            pin_self(&c.workload.common().client_cores);
            match runtime().block_on(compare::run(&c.workload)) {
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    eprintln!("coretalk-load compare: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Smoke(a) => {
            pin_self(&a.client_cores);
            match runtime().block_on(smoke::run(&a)) {
                Ok(code) => ExitCode::from(code),
                Err(e) => {
                    eprintln!("coretalk-load smoke: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Worker => worker::main(),
        Command::HttpSol { listen, close } => match httpsol::main(&listen, close) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("coretalk-load http-sol: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::WsSol { listen } => match wssol::main(&listen) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("coretalk-load ws-sol: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
