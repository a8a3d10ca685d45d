//! Latency histograms: HdrHistogram in nanoseconds (1 ns .. 100 s, 3 significant digits),
//! their V2 + base64 form for crossing from a worker to the parent, and the percentile summary
//! every report uses.

use anyhow::{anyhow, Result};
use base64::Engine as _;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest recordable latency: 100 s (larger values are clamped).
const HIGHEST_NS: u64 = 100_000_000_000;

pub fn new() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_NS, 3).expect("valid histogram bounds")
}

/// Records one latency; values out of range are clamped, never dropped.
pub fn record(h: &mut Histogram<u64>, ns: u64) {
    h.saturating_record(ns.clamp(1, HIGHEST_NS));
}

pub fn to_b64(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut buf)
        .expect("serialize to memory");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

pub fn from_b64(s: &str) -> Result<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s)?;
    let h: Histogram<u64> = Deserializer::new()
        .deserialize(&mut &bytes[..])
        .map_err(|e| anyhow!("bad histogram: {e:?}"))?;
    Ok(h)
}

/// Merges serialized histograms.
pub fn merge_b64<'a>(parts: impl IntoIterator<Item = &'a String>) -> Result<Histogram<u64>> {
    let mut all = new();
    for p in parts {
        if p.is_empty() {
            continue;
        }
        all.add(from_b64(p)?).map_err(|e| anyhow!("merge: {e:?}"))?;
    }
    Ok(all)
}

/// The percentiles a report shows, in microseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LatSummary {
    pub count: u64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    pub mean_us: f64,
}

pub fn summary(h: &Histogram<u64>) -> LatSummary {
    if h.is_empty() {
        return LatSummary::default();
    }
    let us = |v: u64| v as f64 / 1000.0;
    LatSummary {
        count: h.len(),
        p50_us: us(h.value_at_quantile(0.50)),
        p90_us: us(h.value_at_quantile(0.90)),
        p99_us: us(h.value_at_quantile(0.99)),
        p999_us: us(h.value_at_quantile(0.999)),
        max_us: us(h.max()),
        mean_us: h.mean() / 1000.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_merges() {
        let mut a = new();
        let mut b = new();
        for v in 1..=1000u64 {
            record(&mut a, v * 1000);
            record(&mut b, v * 2000);
        }
        let m = merge_b64([&to_b64(&a), &to_b64(&b)]).unwrap();
        assert_eq!(m.len(), 2000);
        let s = summary(&m);
        // The union of 1..1000 ms and 2..2000 ms (step 2) has its median near 667 ms.
        assert!(s.p50_us > 600.0 && s.p50_us < 750.0, "{s:?}");
        assert!(s.max_us >= 1990.0, "{s:?}");
    }
}
