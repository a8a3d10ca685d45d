//! The Tinode JSON subset of `/v0/channels`: client messages in, `{ctrl}` and `{data}` out,
//! plus the small encodings they need (user and topic ids, tokens, RFC 3339 timestamps).
//!
//! Field names and order follow the reference server (and coretalk), so the harness's Tinode
//! adapter reads both the same way. Application JSON (`content`, `head`) stays raw.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// Protocol version reported by `{hi}`, as coretalk's.
pub const VERSION: &str = "0.25";
/// Token lifetime, as coretalk's `auth.token_lifetime_secs` default (14 days).
const TOKEN_LIFETIME_MS: u64 = 14 * 24 * 3600 * 1000;

/// One client message; only the first present payload (in the reference's priority
/// `pub > sub > leave > hi > login > acc`) is handled.
#[derive(Deserialize)]
pub struct ClientMsg<'a> {
    #[serde(rename = "pub", borrow)]
    pub publish: Option<Pub<'a>>,
    pub sub: Option<Sub>,
    pub leave: Option<Leave>,
    pub hi: Option<Hi>,
    pub login: Option<Login>,
    pub acc: Option<Acc>,
}

#[derive(Deserialize)]
pub struct Hi {
    pub id: Option<String>,
}

#[derive(Deserialize)]
pub struct Acc {
    pub id: Option<String>,
    pub user: Option<String>,
    pub scheme: Option<String>,
    pub secret: Option<String>,
    #[serde(default)]
    pub login: bool,
}

#[derive(Deserialize)]
pub struct Login {
    pub id: Option<String>,
    pub scheme: Option<String>,
    pub secret: Option<String>,
}

#[derive(Deserialize)]
pub struct Sub {
    pub id: Option<String>,
    pub topic: String,
}

#[derive(Deserialize)]
pub struct Pub<'a> {
    pub id: Option<String>,
    pub topic: String,
    #[serde(default)]
    pub noecho: bool,
    #[serde(borrow)]
    pub head: Option<&'a RawValue>,
    #[serde(borrow)]
    pub content: &'a RawValue,
}

#[derive(Deserialize)]
pub struct Leave {
    pub id: Option<String>,
    pub topic: String,
}

/// `{ctrl}` in the reference's field order.
#[derive(Serialize)]
struct CtrlBody<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    topic: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    params: Option<Value>,
    code: u16,
    text: &'a str,
    ts: &'a str,
}

#[derive(Serialize)]
struct CtrlMsg<'a> {
    ctrl: CtrlBody<'a>,
}

/// Encodes a `{ctrl}`.
pub fn ctrl(
    id: Option<&str>,
    topic: Option<&str>,
    code: u16,
    text: &str,
    params: Option<Value>,
    ts: &str,
) -> String {
    let msg = CtrlMsg {
        ctrl: CtrlBody {
            id,
            topic,
            params,
            code,
            text,
            ts,
        },
    };
    serde_json::to_string(&msg).unwrap_or_default()
}

#[derive(Serialize)]
struct DataBody<'a> {
    topic: &'a str,
    from: &'a str,
    ts: &'a str,
    seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    head: Option<&'a RawValue>,
    content: &'a RawValue,
}

#[derive(Serialize)]
struct DataMsg<'a> {
    data: DataBody<'a>,
}

/// One `{pub}` as it goes out to readers.
pub struct DataOut<'a> {
    pub from: &'a str,
    pub ts: &'a str,
    pub seq: u64,
    pub head: Option<&'a RawValue>,
    pub content: &'a RawValue,
}

impl DataOut<'_> {
    /// Encodes the `{data}` as seen under `topic`.
    pub fn encode(&self, topic: &str) -> String {
        let msg = DataMsg {
            data: DataBody {
                topic,
                from: self.from,
                ts: self.ts,
                seq: self.seq,
                head: self.head,
                content: self.content,
            },
        };
        serde_json::to_string(&msg).unwrap_or_default()
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// RFC 3339 with milliseconds in UTC: `2026-01-02T03:04:05.678Z`.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `usr` + base64url of the id's 8 little-endian bytes (11 characters), as the reference.
pub fn user_name(uid: u64) -> String {
    format!("usr{}", URL_SAFE_NO_PAD.encode(uid.to_le_bytes()))
}

/// The id named by `usrXXXXXXXXXXX`, if it is one.
pub fn parse_user(name: &str) -> Option<u64> {
    let body = name.strip_prefix("usr")?;
    if body.len() != 11 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

/// A fresh group name: `grp` + 11 random base64url characters.
pub fn group_name() -> String {
    format!(
        "grp{}",
        URL_SAFE_NO_PAD.encode(rand::random::<u64>().to_le_bytes())
    )
}

/// A token for `uid` and its expiry: standard base64 of the user id and the expiry time. It is
/// not signed: the baseline checks no credentials, it only has to log the same user in again.
pub fn mint_token(uid: u64, now: u64) -> (String, u64) {
    let expires = now + TOKEN_LIFETIME_MS;
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&uid.to_le_bytes());
    raw[8..].copy_from_slice(&expires.to_le_bytes());
    (STANDARD.encode(raw), expires)
}

/// The user a token names, if it is well formed and not expired.
pub fn check_token(token: &str, now: u64) -> Option<u64> {
    let raw = STANDARD.decode(token).ok()?;
    if raw.len() != 16 {
        return None;
    }
    let uid = u64::from_le_bytes(raw[..8].try_into().ok()?);
    let expires = u64::from_le_bytes(raw[8..].try_into().ok()?);
    (expires > now && uid != 0).then_some(uid)
}

/// The login part of a `basic` secret (base64 of `login:password`).
pub fn basic_login(secret: &str) -> Option<String> {
    let raw = STANDARD.decode(secret).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (login, _password) = text.split_once(':')?;
    (!login.is_empty()).then(|| login.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_millis() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_735_787_045_123), "2025-01-02T03:04:05.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn user_names_round_trip() {
        let name = user_name(0x0123_4567_89ab_cdef);
        assert_eq!(name.len(), 14);
        assert_eq!(parse_user(&name), Some(0x0123_4567_89ab_cdef));
        assert_eq!(parse_user("usrshort"), None);
        assert_eq!(group_name().len(), 14);
    }

    #[test]
    fn tokens_name_their_user_until_they_expire() {
        let (t, exp) = mint_token(42, 1000);
        assert_eq!(check_token(&t, 1000), Some(42));
        assert_eq!(check_token(&t, exp), None);
        assert_eq!(check_token("not base64!", 1000), None);
    }

    #[test]
    fn basic_secrets_give_the_login() {
        assert_eq!(
            basic_login(&STANDARD.encode("alice:pw")),
            Some("alice".into())
        );
        assert_eq!(basic_login(&STANDARD.encode("nocolon")), None);
    }

    #[test]
    fn data_keeps_content_verbatim() {
        let content = RawValue::from_string(r#"{"txt":"hi","n":[1, 2]}"#.into()).unwrap();
        let d = DataOut {
            from: "usrAAAAAAAAAAA",
            ts: "2025-01-02T03:04:05.123Z",
            seq: 7,
            head: None,
            content: &content,
        };
        assert_eq!(
            d.encode("grpX"),
            r#"{"data":{"topic":"grpX","from":"usrAAAAAAAAAAA","ts":"2025-01-02T03:04:05.123Z","seq":7,"content":{"txt":"hi","n":[1, 2]}}}"#
        );
    }

    #[test]
    fn pub_has_priority_and_borrows_content() {
        let m: ClientMsg =
            serde_json::from_str(r#"{"pub":{"id":"1","topic":"grpX","content":"x"},"hi":{}}"#)
                .unwrap();
        assert_eq!(m.publish.unwrap().content.get(), r#""x""#);
    }
}
