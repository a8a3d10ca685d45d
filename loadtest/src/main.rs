//! `coretalk-load`: the load harness (workloads W0–W6 of the performance design).
//!
//! Not built yet: this binary only states so and exits with status 2, so nobody mistakes it for
//! a measurement tool. The workspace member exists so the harness can share the server's
//! protocol types when it is written.

fn main() {
    eprintln!("coretalk-load: the load harness is not implemented yet (see loadtest/README.md)");
    std::process::exit(2);
}
