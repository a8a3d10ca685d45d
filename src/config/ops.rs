//! The operations sections of the configuration: the monitoring endpoints (`[monitor]`), the
//! logs (`[log]`), and the trusted-proxy address list (`listen.trusted_proxies`, parsed here
//! into [`Cidr`]s). Documented in tuning/operations.md.

use std::net::IpAddr;

use serde::Deserialize;

/// The monitoring endpoints: `/metrics`, `/debug/vars`, `/healthz`, `/readyz`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorConfig {
    /// Serve `/metrics` (Prometheus text) and `/debug/vars` (the reference's expvar JSON). On:
    /// they cost nothing until scraped, and a scrape reads counters without stopping a shard.
    pub metrics: bool,
    /// Serve `/healthz` (the process answers) and `/readyz` (store open, every shard
    /// accepting). On: load balancers and systemd watchdogs expect them.
    pub health: bool,
    /// `HOST:PORT` of a listener of their own, bound by every shard like `listen.addr`, that
    /// serves only these endpoints; empty serves them on `listen.addr` (the reference's
    /// behaviour for `/debug/vars`). A separate port lets a firewall keep them off the internet.
    pub addr: String,
    /// Record the request-latency and outgoing-size histograms. On: measured at no visible
    /// cost (loadtest/RESULTS-history.md, histograms A/B); off leaves them published but empty.
    pub histograms: bool,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            metrics: true,
            health: true,
            addr: String::new(),
            histograms: true,
        }
    }
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One human-readable line per event, fields as `key=value`.
    #[default]
    Text,
    /// One JSON object per line (for log shippers).
    Json,
}

/// Logs: `tracing` events (and the `log` lines of older code, bridged) written to stderr by a
/// thread of their own.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// Which events to keep, in `RUST_LOG` syntax (`info`, `coretalk::store=debug,info`);
    /// the `RUST_LOG` environment variable, when set, wins.
    pub filter: String,
    /// Lines buffered for the writer thread; when it falls this far behind (stderr blocked),
    /// further lines are dropped rather than ever blocking a shard. 65,536 lines is a few
    /// seconds of the noisiest burst (rate-limited warnings) at a few MB.
    pub buffer_lines: usize,
    /// Most lines per second for each noisy condition (accept failures, slow consumers,
    /// malformed input) per shard; the rest are counted and summarised once per interval.
    pub noisy_per_sec: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            filter: "info".into(),
            buffer_lines: 65_536,
            noisy_per_sec: 5,
        }
    }
}

/// An address block (`10.0.0.0/8`, `::1/128`, or a bare address for one host).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `ADDR/PREFIX` or `ADDR`.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| format!("{s:?} is not an address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or_else(|| format!("{s:?}: prefix must be 0..={max}"))?,
        };
        Ok(Cidr { addr, prefix })
    }

    /// Whether `ip` is in the block. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) matches
    /// IPv4 blocks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_eq(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let (full, rest) = ((prefix / 8) as usize, prefix % 8);
    if a[..full] != b[..full] {
        return false;
    }
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        a[full] & mask == b[full] & mask
    }
}

/// Parses every entry of `listen.trusted_proxies`.
pub fn parse_cidrs(list: &[String]) -> Result<Vec<Cidr>, String> {
    list.iter().map(|s| Cidr::parse(s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_contain_their_addresses_only() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains(ip("10.1.255.3")));
        assert!(!c.contains(ip("10.2.0.1")));
        assert!(c.contains(ip("::ffff:10.1.0.9")), "IPv4-mapped");
        let c = Cidr::parse("192.168.1.128/25").unwrap();
        assert!(c.contains(ip("192.168.1.200")));
        assert!(!c.contains(ip("192.168.1.100")));
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains(ip("127.0.0.1")) && !one.contains(ip("127.0.0.2")));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")) && !v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains(ip("8.8.8.8")));
    }

    #[test]
    fn bad_blocks_are_refused() {
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "nope",
            "10.0.0.0/",
            "10.0.0.0/x",
            "",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }
}
