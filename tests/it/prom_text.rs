//! A strict reader of the Prometheus text exposition format (0.0.4) for the `/metrics` tests:
//! every line is a `# HELP`, a `# TYPE` or a sample; names and labels follow the format's
//! grammar; every sample belongs to a family announced (once) before it; no series repeats;
//! values are numbers; histograms have ascending `le` buckets ending in `+Inf`, cumulative
//! counts, and `_count` equal to the `+Inf` bucket.

use std::collections::{BTreeMap, HashMap, HashSet};

/// One sample: name, labels (sorted), value.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed exposition: families by name (their type) and samples in order.
#[derive(Debug, Default)]
pub struct Exposition {
    pub types: HashMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Exposition {
    /// Samples of `name` whose labels include every `(k, v)` of `with`.
    pub fn find(&self, name: &str, with: &[(&str, &str)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| {
                s.name == name
                    && with
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect()
    }

    /// The sum of `name` over series matching `with`.
    pub fn sum(&self, name: &str, with: &[(&str, &str)]) -> f64 {
        self.find(name, with).iter().map(|s| s.value).sum()
    }
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || ch == ':')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}

fn valid_label(n: &str) -> bool {
    valid_name(n) && !n.contains(':') && !n.starts_with("__")
}

fn parse_value(v: &str) -> Result<f64, String> {
    match v {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => v.parse::<f64>().map_err(|_| format!("bad value {v:?}")),
    }
}

fn parse_labels(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let eq = s[i..].find('=').ok_or("label without '='")? + i;
        let name = &s[i..eq];
        if !valid_label(name) {
            return Err(format!("bad label name {name:?}"));
        }
        if b.get(eq + 1) != Some(&b'"') {
            return Err("label value not quoted".into());
        }
        let mut j = eq + 2;
        let mut val = String::new();
        loop {
            match b.get(j) {
                None => return Err("unterminated label value".into()),
                Some(b'\\') => {
                    match b.get(j + 1) {
                        Some(b'\\') => val.push('\\'),
                        Some(b'"') => val.push('"'),
                        Some(b'n') => val.push('\n'),
                        _ => return Err("bad escape in label value".into()),
                    }
                    j += 2;
                }
                Some(b'"') => break,
                Some(_) => {
                    let ch = s[j..].chars().next().ok_or("utf-8")?;
                    val.push(ch);
                    j += ch.len_utf8();
                }
            }
        }
        if out.insert(name.to_owned(), val).is_some() {
            return Err(format!("label {name} twice"));
        }
        i = j + 1;
        match b.get(i) {
            None => break,
            Some(b',') => i += 1,
            Some(_) => return Err("expected ',' between labels".into()),
        }
    }
    Ok(out)
}

/// The family a sample name belongs to (histogram series carry suffixes).
fn family_of<'a>(name: &'a str, types: &HashMap<String, String>) -> Option<&'a str> {
    if types.contains_key(name) {
        return Some(name);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if types.get(base).map(String::as_str) == Some("histogram") {
                return Some(base);
            }
        }
    }
    None
}

/// Parses and checks a whole exposition.
pub fn parse(text: &str) -> Result<Exposition, String> {
    let mut e = Exposition::default();
    let mut helped = HashSet::new();
    let mut seen = HashSet::new();
    if !text.ends_with('\n') {
        return Err("the exposition must end with a newline".into());
    }
    for (n, line) in text.lines().enumerate() {
        let at = |m: String| format!("line {}: {m}: {line:?}", n + 1);
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("");
            if !valid_name(name) || !helped.insert(name.to_owned()) {
                return Err(at("bad or repeated HELP".into()));
            }
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split(' ');
            let (name, kind) = (it.next().unwrap_or(""), it.next().unwrap_or(""));
            if !valid_name(name) || it.next().is_some() {
                return Err(at("bad TYPE".into()));
            }
            if !["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind) {
                return Err(at(format!("unknown type {kind}")));
            }
            if e.samples
                .iter()
                .any(|s| family_of(&s.name, &e.types) == Some(name))
            {
                return Err(at("TYPE after its samples".into()));
            }
            if e.types.insert(name.to_owned(), kind.to_owned()).is_some() {
                return Err(at("repeated TYPE".into()));
            }
        } else if line.starts_with('#') || line.trim().is_empty() {
            return Err(at("unexpected comment or blank line".into()));
        } else {
            let (series, value) = line.rsplit_once(' ').ok_or_else(|| at("no value".into()))?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let inner = rest
                        .strip_suffix('}')
                        .ok_or_else(|| at("unclosed labels".into()))?;
                    (name, parse_labels(inner).map_err(at)?)
                }
                None => (series, BTreeMap::new()),
            };
            if !valid_name(name) {
                return Err(at("bad metric name".into()));
            }
            let family =
                family_of(name, &e.types).ok_or_else(|| at("sample before its TYPE".into()))?;
            if e.types[family] == "counter" && !name.ends_with("_total") {
                return Err(at("counter not named *_total".into()));
            }
            let value = parse_value(value).map_err(at)?;
            if !seen.insert(format!("{name}{labels:?}")) {
                return Err(at("repeated series".into()));
            }
            e.samples.push(Sample {
                name: name.to_owned(),
                labels,
                value,
            });
        }
    }
    check_histograms(&e)?;
    Ok(e)
}

fn check_histograms(e: &Exposition) -> Result<(), String> {
    for (family, kind) in &e.types {
        if kind != "histogram" {
            continue;
        }
        // Group buckets by their labels without `le`.
        let mut groups: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
        for s in e.find(&format!("{family}_bucket"), &[]) {
            let le = s
                .labels
                .get("le")
                .ok_or(format!("{family}: bucket without le"))?;
            let mut rest = s.labels.clone();
            rest.remove("le");
            groups
                .entry(format!("{rest:?}"))
                .or_default()
                .push((parse_value(le)?, s.value));
        }
        if groups.is_empty() {
            return Err(format!("{family}: no buckets"));
        }
        for (key, buckets) in groups {
            let mut last = (f64::NEG_INFINITY, 0.0);
            for &(le, c) in &buckets {
                if le <= last.0 || c < last.1 {
                    return Err(format!("{family}{key}: buckets not ascending/cumulative"));
                }
                last = (le, c);
            }
            if last.0 != f64::INFINITY {
                return Err(format!("{family}{key}: no +Inf bucket"));
            }
            let count = e
                .samples
                .iter()
                .find(|s| s.name == format!("{family}_count") && format!("{:?}", s.labels) == key)
                .ok_or(format!("{family}{key}: no _count"))?;
            if count.value != last.1 {
                return Err(format!("{family}{key}: _count differs from +Inf"));
            }
            if !e
                .samples
                .iter()
                .any(|s| s.name == format!("{family}_sum") && format!("{:?}", s.labels) == key)
            {
                return Err(format!("{family}{key}: no _sum"));
            }
        }
    }
    Ok(())
}

#[test]
fn the_reader_refuses_what_the_format_forbids() {
    let ok = "# HELP a_total A.\n# TYPE a_total counter\na_total{shard=\"0\"} 1\n";
    assert!(parse(ok).is_ok());
    for bad in [
        "a_total 1\n",                                    // no TYPE
        "# TYPE a_total counter\na_total{shard=0} 1\n",   // unquoted
        "# TYPE a_total counter\na_total 1\na_total 2\n", // repeated
        "# TYPE a gauge\na x\n",                          // value
        "# TYPE a_total counter\na_total 1",              // newline
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 0\nh_count 1\n",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 0\nh_count 1\n", // no +Inf
        "# TYPE a counter\na 1\n",                                        // counter name
    ] {
        assert!(parse(bad).is_err(), "accepted {bad:?}");
    }
}
