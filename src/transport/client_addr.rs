//! The client's address behind a reverse proxy. The TCP peer is the client unless it is one of
//! `listen.trusted_proxies`; then the proxies' headers are read — `Forwarded` (RFC 7239, its
//! `for=` parameters) when present, else `X-Forwarded-For` — from the nearest hop backwards,
//! skipping hops that are themselves trusted proxies, and the first other address is the
//! client. A hop that is not an address (`unknown`, an obfuscated name) stops the walk: the
//! trusted peer is then the best that is known. Headers from any other peer are ignored, so a
//! client cannot choose its own address.
//!
//! The result is what sessions keep as their remote address: log lines, the per-address rate
//! limits and every field that reports a client's address use it.

use std::net::{IpAddr, SocketAddr};

use crate::config::{parse_cidrs, Cidr};
use crate::transport::http::RequestHead;

/// The client's address for a request that came from `peer` (as text: `ip:port` for a direct
/// peer, a bare `ip` when a proxy named it). `trusted` is `listen.trusted_proxies` (validated
/// at start-up; an entry that does not parse trusts nobody).
pub fn client_addr(peer: Option<SocketAddr>, head: &RequestHead, trusted: &[String]) -> String {
    let Some(peer) = peer else {
        return String::new();
    };
    if trusted.is_empty() {
        return peer.to_string();
    }
    let trusted = parse_cidrs(trusted).unwrap_or_default();
    match forwarded_client(peer.ip(), head, &trusted) {
        Some(ip) => ip.to_string(),
        None => peer.to_string(),
    }
}

/// The forwarded client address, when `peer` is trusted and its headers name one.
pub fn forwarded_client(peer: IpAddr, head: &RequestHead, trusted: &[Cidr]) -> Option<IpAddr> {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return None;
    }
    let values = |name: &str| -> Vec<&str> {
        head.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    let forwarded = values("forwarded");
    let hops: Vec<&str> = if !forwarded.is_empty() {
        forwarded
            .iter()
            .flat_map(|v| v.split(','))
            .map(|elem| {
                elem.split(';')
                    .filter_map(|kv| kv.split_once('='))
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                    .map(|(_, v)| v.trim())
                    .unwrap_or("")
            })
            .collect()
    } else {
        values("x-forwarded-for")
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect()
    };
    let mut client = None;
    for hop in hops.iter().rev() {
        let ip = parse_hop(hop)?;
        client = Some(ip);
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

/// One hop: `1.2.3.4`, `1.2.3.4:80`, `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:80`,
/// optionally in double quotes.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let h = hop.trim().trim_matches('"');
    if let Some(rest) = h.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Some(ip);
    }
    h.parse::<SocketAddr>().ok().map(|a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(headers: &[(&str, &str)]) -> RequestHead {
        RequestHead {
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            ..RequestHead::default()
        }
    }

    fn addr(peer: &str, headers: &[(&str, &str)], trusted: &[&str]) -> String {
        let trusted: Vec<String> = trusted.iter().map(|s| s.to_string()).collect();
        client_addr(Some(peer.parse().unwrap()), &head(headers), &trusted)
    }

    #[test]
    fn headers_are_ignored_unless_the_peer_is_a_trusted_proxy() {
        let xff = [("x-forwarded-for", "203.0.113.9")];
        assert_eq!(addr("198.51.100.1:5000", &xff, &[]), "198.51.100.1:5000");
        assert_eq!(
            addr("198.51.100.1:5000", &xff, &["10.0.0.0/8"]),
            "198.51.100.1:5000",
            "a client cannot forge its address"
        );
        assert_eq!(addr("10.0.0.5:5000", &xff, &["10.0.0.0/8"]), "203.0.113.9");
        assert_eq!(
            addr("10.0.0.5:5000", &[], &["10.0.0.0/8"]),
            "10.0.0.5:5000",
            "a trusted peer without headers is the client"
        );
    }

    #[test]
    fn the_walk_skips_trusted_hops_from_the_right_and_stops_at_the_first_other() {
        let t = &["10.0.0.0/8", "192.168.0.0/16"];
        let h = [("x-forwarded-for", "1.1.1.1, 203.0.113.9, 192.168.1.1")];
        assert_eq!(
            addr("10.0.0.5:1", &h, t),
            "203.0.113.9",
            "1.1.1.1 may be forged"
        );
        let split = [
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-for", "10.1.1.1"),
        ];
        assert_eq!(
            addr("10.0.0.5:1", &split, t),
            "203.0.113.9",
            "repeated headers"
        );
        let all_trusted = [("x-forwarded-for", "10.2.2.2, 10.3.3.3")];
        assert_eq!(addr("10.0.0.5:1", &all_trusted, t), "10.2.2.2");
        let garbage = [("x-forwarded-for", "203.0.113.9, unknown")];
        assert_eq!(addr("10.0.0.5:1", &garbage, t), "10.0.0.5:1", "unknown hop");
    }

    #[test]
    fn forwarded_wins_over_x_forwarded_for_and_its_forms_parse() {
        let t = &["127.0.0.1", "::1"];
        let h = [
            ("x-forwarded-for", "198.51.100.7"),
            (
                "forwarded",
                "for=192.0.2.60;proto=http;by=203.0.113.43, For=\"[2001:db8:cafe::17]:4711\"",
            ),
        ];
        assert_eq!(addr("127.0.0.1:9", &h, t), "2001:db8:cafe::17");
        let v4port = [("forwarded", "for=\"192.0.2.43:47011\"")];
        assert_eq!(addr("[::1]:9", &v4port, t), "192.0.2.43");
        let hidden = [("forwarded", "for=_hidden")];
        assert_eq!(addr("127.0.0.1:9", &hidden, t), "127.0.0.1:9");
        let v6 = [("x-forwarded-for", "2001:db8::5")];
        assert_eq!(addr("127.0.0.1:9", &v6, t), "2001:db8::5");
    }
}
