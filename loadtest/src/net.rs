//! Client sockets: TCP connects bound to a chosen loopback source address (127.0.0.2, …, with
//! IP_BIND_ADDRESS_NO_PORT so the port is picked per destination and the ephemeral range is
//! per source address), WebSocket upgrades on them, and a minimal HTTP/1.1 client for long
//! polling and `/debug/vars`.

use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::WebSocketStream;

pub type Ws = WebSocketStream<TcpStream>;

/// Why a connection attempt failed in a way a report should name.
#[derive(Debug)]
pub struct HttpStatus(pub u16);

impl std::fmt::Display for HttpStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HTTP status {}", self.0)
    }
}
impl std::error::Error for HttpStatus {}

pub fn resolve(addr: &str) -> Result<SocketAddr> {
    addr.to_socket_addrs()
        .with_context(|| format!("cannot resolve {addr}"))?
        .next()
        .ok_or_else(|| anyhow!("{addr} resolves to nothing"))
}

/// Round-robin over a worker's source addresses (none when the target is not on loopback).
pub struct Sources {
    addrs: Vec<IpAddr>,
    next: Cell<usize>,
}

impl Sources {
    pub fn new(addrs: &[String], target: SocketAddr) -> Sources {
        let addrs = if target.ip().is_loopback() {
            addrs.iter().filter_map(|a| a.parse().ok()).collect()
        } else {
            Vec::new()
        };
        Sources {
            addrs,
            next: Cell::new(0),
        }
    }
    pub fn pick(&self) -> Option<IpAddr> {
        if self.addrs.is_empty() {
            return None;
        }
        let i = self.next.get();
        self.next.set(i.wrapping_add(1));
        Some(self.addrs[i % self.addrs.len()])
    }
}

/// Source addresses for worker `index`: 127.0.0.(2 + 4·index) … +3.
pub fn worker_sources(index: usize) -> Vec<String> {
    (0..4)
        .map(|j| {
            let n = 2 + 4 * index + j;
            Ipv4Addr::new(127, 0, (n / 250) as u8, (n % 250) as u8).to_string()
        })
        .collect()
}

pub async fn tcp_connect(dst: SocketAddr, src: Option<IpAddr>) -> Result<TcpStream> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(dst),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    sock.set_nonblocking(true)?;
    sock.set_tcp_nodelay(true)?;
    if let Some(ip) = src {
        set_bind_no_port(&sock);
        sock.bind(&SocketAddr::new(ip, 0).into())
            .with_context(|| format!("bind {ip}"))?;
    }
    let std_stream: std::net::TcpStream = sock.into();
    let s = TcpSocket::from_std_stream(std_stream);
    let stream = s
        .connect(dst)
        .await
        .with_context(|| format!("connect {dst}"))?;
    Ok(stream)
}

/// SO_LINGER 0: closing the socket sends a TCP reset instead of a FIN (an abrupt drop).
pub fn set_reset_on_close(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).set_linger(Some(std::time::Duration::ZERO));
}

/// IP_BIND_ADDRESS_NO_PORT: pick the source port at connect time, per destination.
fn set_bind_no_port(sock: &socket2::Socket) {
    use std::os::fd::AsRawFd as _;
    let one: libc::c_int = 1;
    // SAFETY: setsockopt on a socket we own, with a pointer to a live c_int.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            &one as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Opens a WebSocket at `path` (with query) on `dst`; a non-101 answer becomes [`HttpStatus`].
pub async fn ws_connect(
    dst: SocketAddr,
    src: Option<IpAddr>,
    path: &str,
    subprotocol: Option<&str>,
) -> Result<Ws> {
    let stream = tcp_connect(dst, src).await?;
    let mut req = format!("ws://{dst}{path}").into_client_request()?;
    if let Some(p) = subprotocol {
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", p.parse().expect("header value"));
    }
    let cfg = WebSocketConfig::default();
    match tokio_tungstenite::client_async_with_config(req, stream, Some(cfg)).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            Err(anyhow::Error::new(HttpStatus(resp.status().as_u16())))
        }
        Err(e) => Err(anyhow!("websocket upgrade on {dst}{path}: {e}")),
    }
}

/// The HTTP status inside an error chain, if the error was a refused upgrade or request.
pub fn http_status(e: &anyhow::Error) -> Option<u16> {
    e.chain()
        .find_map(|c| c.downcast_ref::<HttpStatus>())
        .map(|s| s.0)
}

/// One HTTP/1.1 response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
    /// The server closes the connection after this answer.
    pub close: bool,
}

/// An HTTP/1.1 client connection (Content-Length and chunked bodies): kept alive while the
/// server keeps it, and opened again for the next request after a `Connection: close` answer
/// (coretalk's long polling answers every request that way: one request per connection).
pub struct HttpConn {
    /// `None` after the server closed it; the next request connects again.
    stream: Option<TcpStream>,
    dst: SocketAddr,
    src: Option<IpAddr>,
    host: String,
    buf: Vec<u8>,
    /// Connections opened, the first included.
    pub connects: u64,
}

impl HttpConn {
    pub async fn open(dst: SocketAddr, src: Option<IpAddr>) -> Result<HttpConn> {
        Ok(HttpConn {
            stream: Some(tcp_connect(dst, src).await?),
            dst,
            src,
            host: dst.to_string(),
            buf: Vec::with_capacity(4096),
            connects: 1,
        })
    }

    /// A client that connects on its first request.
    pub fn lazy(dst: SocketAddr, src: Option<IpAddr>) -> HttpConn {
        HttpConn {
            stream: None,
            dst,
            src,
            host: dst.to_string(),
            buf: Vec::with_capacity(4096),
            connects: 0,
        }
    }

    /// Drops the connection abruptly (a reset when `reset`, else a FIN), whatever is in
    /// flight on it.
    pub fn abort(mut self, reset: bool) {
        if let (Some(s), true) = (self.stream.take(), reset) {
            set_reset_on_close(&s);
        }
    }

    fn stream(&mut self) -> Result<&mut TcpStream> {
        self.stream
            .as_mut()
            .ok_or_else(|| anyhow!("connection closed"))
    }

    pub async fn request(&mut self, method: &str, path: &str, body: &[u8]) -> Result<Response> {
        if self.stream.is_none() {
            self.buf.clear();
            self.stream = Some(tcp_connect(self.dst, self.src).await?);
            self.connects += 1;
        }
        let r = self.exchange(method, path, body).await;
        match &r {
            Ok(resp) if !resp.close => {}
            // Closed by the server after this answer, or broken: the next request reconnects.
            _ => self.stream = None,
        }
        r
    }

    async fn exchange(&mut self, method: &str, path: &str, body: &[u8]) -> Result<Response> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        let mut out = Vec::with_capacity(head.len() + body.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(body);
        self.stream()?.write_all(&out).await?;
        self.read_response(method == "HEAD").await
    }

    async fn fill(&mut self) -> Result<()> {
        let mut tmp = [0u8; 8192];
        let n = self.stream()?.read(&mut tmp).await?;
        if n == 0 {
            bail!("connection closed by server");
        }
        self.buf.extend_from_slice(&tmp[..n]);
        Ok(())
    }

    async fn read_response(&mut self, head_only: bool) -> Result<Response> {
        let end = loop {
            if let Some(p) = find(&self.buf, b"\r\n\r\n") {
                break p + 4;
            }
            if self.buf.len() > 64 << 10 {
                bail!("response head too large");
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
        self.buf.drain(..end);
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("bad status line"))?;
        let (mut len, mut chunked, mut close) = (None, false, false);
        for l in lines {
            let Some((k, v)) = l.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
            match k.as_str() {
                "content-length" => len = v.parse::<usize>().ok(),
                "transfer-encoding" => chunked = v.contains("chunked"),
                "connection" => close = v.contains("close"),
                _ => {}
            }
        }
        let body = if head_only || status == 204 || status == 304 {
            Vec::new()
        } else if chunked {
            let mut body = Vec::new();
            loop {
                let line_end = loop {
                    if let Some(p) = find(&self.buf, b"\r\n") {
                        break p;
                    }
                    self.fill().await?;
                };
                let size_txt = String::from_utf8_lossy(&self.buf[..line_end]).to_string();
                let size =
                    usize::from_str_radix(size_txt.split(';').next().unwrap_or("").trim(), 16)
                        .map_err(|_| anyhow!("bad chunk size"))?;
                self.buf.drain(..line_end + 2);
                while self.buf.len() < size + 2 {
                    self.fill().await?;
                }
                body.extend_from_slice(&self.buf[..size]);
                self.buf.drain(..size + 2);
                if size == 0 {
                    break body;
                }
            }
        } else if let Some(n) = len {
            while self.buf.len() < n {
                self.fill().await?;
            }
            self.buf.drain(..n).collect()
        } else {
            // No length: the body runs to the end of the connection.
            close = true;
            loop {
                let mut tmp = [0u8; 8192];
                let n = self.stream()?.read(&mut tmp).await?;
                if n == 0 {
                    break;
                }
                self.buf.extend_from_slice(&tmp[..n]);
            }
            std::mem::take(&mut self.buf)
        };
        Ok(Response {
            status,
            body,
            close,
        })
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// GET a small JSON document (e.g. `/debug/vars`) with a fresh connection.
pub async fn get_json(addr: SocketAddr, path: &str) -> Result<serde_json::Value> {
    let mut c = HttpConn::open(addr, None).await?;
    let r = c.request("GET", path, b"").await?;
    if r.status != 200 {
        return Err(anyhow::Error::new(HttpStatus(r.status)).context(format!("GET {path}")));
    }
    Ok(serde_json::from_slice(&r.body)?)
}
