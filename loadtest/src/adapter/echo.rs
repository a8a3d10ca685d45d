//! Raw WebSocket echo (W0): every text frame sent comes back unchanged; the frame is the
//! payload. Used for the baseline's `/echo` and coretalk's (`ws.echo_path`, which the harness
//! turns on for W0).

use tokio_tungstenite::tungstenite::Message;

pub fn frame(payload: String) -> Message {
    Message::text(payload)
}

/// The payload of an echoed frame.
pub fn payload(frame: &[u8]) -> &[u8] {
    frame
}
