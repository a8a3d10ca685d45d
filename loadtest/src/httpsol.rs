//! `coretalk-load http-sol` (hidden): the plain-HTTP speed of light for W5. A single-threaded
//! HTTP/1.1 keep-alive responder answering every request with a fixed small JSON body, as a
//! long poll would answer with one message. With `--close` it answers `Connection: close` and
//! closes after each response (one request per connection, like coretalk's long polling).
//! Prints `http-sol listening on HOST:PORT`.

use std::io::Write as _;

use anyhow::Result;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BODY: &str = r#"{"ctrl":{"code":200,"text":"ok"}}"#;

pub fn main(listen: &str, close: bool) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let l = TcpListener::bind(listen).await?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "http-sol listening on {}", l.local_addr()?)?;
            out.flush()?;
        }
        loop {
            let (s, _) = l.accept().await?;
            let _ = s.set_nodelay(true);
            tokio::spawn(async move {
                let _ = serve(s, close).await;
            });
        }
    })
}

async fn serve(mut s: TcpStream, close: bool) -> Result<()> {
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n{BODY}",
        BODY.len(),
        if close { "Connection: close\r\n" } else { "" }
    );
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut tmp = [0u8; 8192];
    loop {
        // Answer every complete request in the buffer.
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() < end + 4 + len {
                break;
            }
            buf.drain(..end + 4 + len);
            s.write_all(resp.as_bytes()).await?;
            if close {
                return Ok(());
            }
        }
        let n = s.read(&mut tmp).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}
