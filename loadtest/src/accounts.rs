//! Accounts for the Tinode targets, created once per run by the parent (`{acc}` with
//! `login:true` on a fresh connection each: the reply carries the user id and a token) and
//! then reused by every worker through token logins. bcrypt is the server's cost here, which
//! is why the harness starts coretalk with `bcrypt_cost = 4`. Other targets get synthetic
//! accounts (a login that names the client's personal subject).

use std::net::SocketAddr;
use std::rc::Rc;

/// The password of every account the harness creates.
pub const PASSWORD: &str = "secret1";

use anyhow::{Context, Result};
use indicatif::ProgressBar;

use crate::adapter::Session;
use crate::msg::{Account, TargetSpec};
use crate::net::Sources;

/// `n` accounts for `t`, created with `concurrency` connections at a time.
pub async fn create(
    t: &TargetSpec,
    dst: SocketAddr,
    n: usize,
    concurrency: usize,
    bar: &ProgressBar,
) -> Result<Vec<Account>> {
    let logins: Vec<String> = (0..n).map(|i| format!("l{}x{i}", t.run_id)).collect();
    if !t.kind.is_tinode() {
        return Ok(logins
            .into_iter()
            .map(|login| Account {
                login,
                ..Default::default()
            })
            .collect());
    }
    bar.set_length(n as u64);
    bar.set_position(0);
    let srcs = Rc::new(Sources::new(
        &["127.0.0.250".into(), "127.0.0.251".into()],
        dst,
    ));
    let next = Rc::new(std::cell::Cell::new(0usize));
    let out: Rc<std::cell::RefCell<Vec<Option<Account>>>> =
        Rc::new(std::cell::RefCell::new(vec![None; n]));
    let local = tokio::task::LocalSet::new();
    let mut handles = Vec::new();
    for _ in 0..concurrency.clamp(1, n.max(1)) {
        let (t, srcs, next, out, logins, bar) = (
            t.clone(),
            srcs.clone(),
            next.clone(),
            out.clone(),
            logins.clone(),
            bar.clone(),
        );
        handles.push(local.spawn_local(async move {
            loop {
                let i = next.get();
                if i >= logins.len() {
                    return Ok::<(), anyhow::Error>(());
                }
                next.set(i + 1);
                let mut tries = 0;
                let acct = loop {
                    match Session::create_account(&t, dst, srcs.pick(), &logins[i], PASSWORD).await
                    {
                        Ok(a) => break a,
                        Err(e) if tries < 3 => {
                            tries += 1;
                            let _ = e;
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        }
                        Err(e) => return Err(e.context(format!("creating account {}", logins[i]))),
                    }
                };
                out.borrow_mut()[i] = Some(acct);
                bar.inc(1);
            }
        }));
    }
    local
        .run_until(async {
            for h in handles {
                h.await.context("account task")??;
            }
            Ok::<(), anyhow::Error>(())
        })
        .await?;
    let v = Rc::try_unwrap(out)
        .map_err(|_| anyhow::anyhow!("account tasks still running"))?
        .into_inner();
    Ok(v.into_iter()
        .map(|a| a.expect("every account created"))
        .collect())
}
