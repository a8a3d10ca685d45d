//! Tinode long polling (tinode-protocol.md 1.4): `POST /v0/channels/lp?apikey=K` with an empty
//! body creates a session (HTTP 201, `ctrl.params.sid`); a POST with a body and `&sid=` sends
//! one client message (HTTP 200, empty body); a POST with an empty body and `&sid=` is a poll
//! answered with exactly one server message (or an empty body after ~50 s).
//!
//! Sends and polls use two HTTP clients, as a browser would: each keeps its connection while
//! the server keeps it alive and connects again after a `Connection: close` answer (coretalk
//! answers one request per connection).

use std::net::{IpAddr, SocketAddr};

use anyhow::{anyhow, bail, Result};

use super::tinode;
use crate::net::{HttpConn, HttpStatus};

pub struct LpSession {
    send: HttpConn,
    poll: HttpConn,
    pub sid: String,
    next_id: u64,
}

impl LpSession {
    /// Creates a session. A target without long polling answers 404, returned as
    /// [`HttpStatus`] so the caller can call it unsupported.
    pub async fn create(dst: SocketAddr, src: Option<IpAddr>) -> Result<LpSession> {
        let mut send = HttpConn::open(dst, src).await?;
        let r = send.request("POST", &tinode::lp_path(None), b"").await?;
        if r.status != 201 {
            return Err(anyhow::Error::new(HttpStatus(r.status)).context(format!(
                "long-poll session creation answered {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            )));
        }
        let v: serde_json::Value = serde_json::from_slice(&r.body)?;
        let sid = v["ctrl"]["params"]["sid"]
            .as_str()
            .ok_or_else(|| anyhow!("long-poll 201 without ctrl.params.sid"))?
            .to_owned();
        let poll = HttpConn::lazy(dst, src);
        Ok(LpSession {
            send,
            poll,
            sid,
            next_id: 0,
        })
    }

    pub async fn send(&mut self, frame: &str) -> Result<()> {
        let path = tinode::lp_path(Some(&self.sid));
        let r = self.send.request("POST", &path, frame.as_bytes()).await?;
        if r.status != 200 {
            bail!(
                "long-poll send answered {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        }
        Ok(())
    }

    /// One poll: the body of the response (empty when the server had nothing).
    pub async fn poll(&mut self) -> Result<Vec<u8>> {
        let path = tinode::lp_path(Some(&self.sid));
        let r = self.poll.request("POST", &path, b"").await?;
        if r.status != 200 {
            bail!(
                "long-poll poll answered {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        }
        Ok(r.body)
    }

    /// Drops both connections abruptly (a reset when `reset`, else a FIN).
    pub fn abort(self, reset: bool) {
        self.send.abort(reset);
        self.poll.abort(reset);
    }

    /// Sends a request and polls until the `{ctrl}` with its id arrives.
    pub async fn request(&mut self, frame: impl FnOnce(&str) -> String) -> Result<tinode::Ctrl> {
        self.next_id += 1;
        let id = self.next_id.to_string();
        self.send(&frame(&id)).await?;
        loop {
            let body = tokio::time::timeout(super::STEP_TIMEOUT, self.poll())
                .await
                .map_err(|_| anyhow!("no long-poll answer"))??;
            if let tinode::In::Ctrl(c) = tinode::parse(&body) {
                if c.id.as_deref() == Some(id.as_str()) {
                    return Ok(c);
                }
            }
        }
    }
}
