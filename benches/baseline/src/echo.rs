//! `/echo`: the raw WebSocket echo of workload W0.
//!
//! Every text or binary frame goes back as it came; frames that are already readable are
//! echoed together and flushed once, the same batching the Tinode endpoint does.

use futures_util::{FutureExt, SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{Error, Message};
use tokio_tungstenite::WebSocketStream;

/// Frames handled per batch before a flush, so a flooding client cannot starve its own writes.
pub const BATCH: usize = 64;

/// Echoes until the client closes.
pub async fn run(mut ws: WebSocketStream<TcpStream>) -> Result<(), Error> {
    while let Some(first) = ws.next().await {
        let mut next = Some(first);
        let mut n = 0;
        while let Some(msg) = next.take() {
            match msg? {
                m @ (Message::Text(_) | Message::Binary(_)) => ws.feed(m).await?,
                Message::Close(_) => return close(ws).await,
                // Pings are answered by tungstenite itself on the next write or flush.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
            n += 1;
            if n < BATCH {
                next = ws.next().now_or_never().flatten();
            }
        }
        ws.flush().await?;
    }
    Ok(())
}

/// Completes the closing handshake, ignoring a peer that is already gone.
pub async fn close(mut ws: WebSocketStream<TcpStream>) -> Result<(), Error> {
    match ws.close(None).await {
        Ok(()) | Err(Error::ConnectionClosed) | Err(Error::AlreadyClosed) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Errors that only mean the client went away.
pub fn is_disconnect(e: &Error) -> bool {
    match e {
        Error::ConnectionClosed | Error::AlreadyClosed | Error::Protocol(_) => true,
        Error::Io(io) => matches!(
            io.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::BrokenPipe
                | std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::ConnectionAborted
        ),
        _ => false,
    }
}
