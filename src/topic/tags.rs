//! Tags: normalisation (`{set tags}`, sign-up, group creation), the restricted namespaces users
//! cannot change themselves, and the `fnd` query language.
//!
//! Pure functions over strings; the store keeps the tag index, the topics decide who may
//! change what.

pub use crate::routing::{
    is_restricted_tag as is_restricted, normalize_tags as normalize, tag_namespace as namespace,
    valid_tag as valid, MAX_TAG_LEN, MIN_TAG_LEN,
};

/// Applies a user's new tag list over `old`. Restricted tags cannot be added or removed by the
/// user: the request must repeat exactly the restricted tags `old` has (as the reference
/// demands); anything else in those namespaces is refused. Tags beyond `max_count` are
/// dropped, as normalisation does. Returns the merged, normalised list.
pub fn merge_user_tags(
    old: &[String],
    requested: Vec<String>,
    restricted: &[String],
    max_count: usize,
) -> Result<Vec<String>, TagError> {
    let requested = normalize(requested, usize::MAX);
    let old_restricted: Vec<&String> = old
        .iter()
        .filter(|t| is_restricted(t, restricted))
        .collect();
    let new_restricted: Vec<&String> = requested
        .iter()
        .filter(|t| is_restricted(t, restricted))
        .collect();
    if new_restricted != old_restricted {
        return Err(TagError::Restricted);
    }
    // Restricted tags are kept first; the user's own fill what is left of `max_count`.
    let room = max_count.saturating_sub(old_restricted.len());
    let mut merged: Vec<String> = requested
        .into_iter()
        .filter(|t| !is_restricted(t, restricted))
        .take(room)
        .collect();
    merged.extend(old_restricted.into_iter().cloned());
    merged.sort();
    Ok(merged)
}

/// Why a tag change is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagError {
    /// A restricted namespace would change (403).
    Restricted,
}

/// A parsed `fnd` query: every group must match (AND), any tag within a group suffices (OR).
pub type Query = Vec<Vec<String>>;

/// Parses the `fnd` query language: terms separated by spaces are ANDed, terms joined by
/// commas are ORed (OR binds tighter), double quotes keep spaces inside one term. Terms are
/// lowercased; each unprefixed term also matches its `basic:` (login), `email:` (when it looks
/// like an address) and `tel:` (when it looks like a phone number) forms. Invalid terms are
/// dropped; an empty result means "no query".
/// Most terms a query may hold; the rest are ignored (a `fnd` query is client input of up to
/// the maximum message size, and every term is an index lookup).
pub const MAX_QUERY_TERMS: usize = 32;

pub fn parse_query(q: &str) -> Query {
    let mut groups: Query = Vec::new();
    let mut group: Vec<String> = Vec::new();
    let mut term = String::new();
    let mut quoted = false;
    let mut joined = false; // the last separator was a comma
    let flush_term = |term: &mut String, group: &mut Vec<String>| {
        let t = term.trim().to_lowercase();
        term.clear();
        if valid(&t) {
            group.extend(expand(&t));
        }
    };
    for c in q.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                flush_term(&mut term, &mut group);
                joined = true;
            }
            c if c.is_whitespace() && !quoted => {
                if term.trim().is_empty() {
                    continue;
                }
                flush_term(&mut term, &mut group);
                joined = false;
            }
            c => {
                if !joined && term.is_empty() && !group.is_empty() {
                    groups.push(std::mem::take(&mut group));
                }
                joined = false;
                term.push(c);
            }
        }
    }
    flush_term(&mut term, &mut group);
    if !group.is_empty() {
        groups.push(group);
    }
    let mut budget = MAX_QUERY_TERMS;
    groups.retain_mut(|g| {
        g.sort();
        g.dedup();
        g.truncate(budget);
        budget -= g.len();
        !g.is_empty()
    });
    groups
}

/// A term and the forms it also matches.
fn expand(t: &str) -> Vec<String> {
    let mut out = vec![t.to_owned()];
    if namespace(t).is_some() {
        return out;
    }
    out.push(format!("basic:{t}"));
    if t.contains('@') {
        out.push(format!("email:{t}"));
    }
    let digits: String = t.chars().filter(|c| c.is_ascii_digit()).collect();
    let phone_like = t
        .chars()
        .all(|c| c.is_ascii_digit() || "+-() .".contains(c));
    if phone_like && digits.len() >= 6 {
        out.push(format!("tel:+{digits}"));
    }
    out
}

/// Every distinct tag a query mentions (what to look up in the index).
pub fn query_tags(q: &Query) -> Vec<String> {
    let mut all: Vec<String> = q.iter().flatten().cloned().collect();
    all.sort();
    all.dedup();
    all
}

/// True when an owner carrying `matched` satisfies every group of the query.
pub fn satisfies(q: &Query, matched: &[String]) -> bool {
    q.iter().all(|g| g.iter().any(|t| matched.contains(t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn normalisation_trims_lowercases_sorts_dedups_and_caps() {
        let out = normalize(v(&[" Travel ", "travel", "x", "Zebra", "_bad", "café"]), 16);
        assert_eq!(out, v(&["café", "travel", "zebra"]));
        assert_eq!(normalize(v(&["aa", "bb", "cc"]), 2), v(&["aa", "bb"]));
        assert!(normalize(v(&[&"a".repeat(97)]), 16).is_empty());
    }

    #[test]
    fn restricted_namespaces_cannot_be_changed_by_users() {
        let r = v(&["basic", "email"]);
        let old = v(&["basic:alice", "hiking"]);
        // Dropping a restricted tag is refused.
        assert_eq!(
            merge_user_tags(&old, v(&["Chess"]), &r, 16),
            Err(TagError::Restricted)
        );
        // Adding or changing one is refused.
        assert_eq!(
            merge_user_tags(&old, v(&["email:x@y.z"]), &r, 16),
            Err(TagError::Restricted)
        );
        // Repeating the existing ones is fine.
        assert_eq!(
            merge_user_tags(&old, v(&["basic:alice", "go"]), &r, 16),
            Ok(v(&["basic:alice", "go"]))
        );
        assert_eq!(
            merge_user_tags(&old, v(&["basic:alice", "a1", "a2"]), &r, 2),
            Ok(v(&["a1", "basic:alice"]))
        );
    }

    #[test]
    fn query_language_and_or_quotes() {
        let q = parse_query("travel hiking,Chess");
        assert_eq!(q.len(), 2);
        assert!(q[0].contains(&"travel".to_string()));
        assert!(q[1].contains(&"hiking".to_string()) && q[1].contains(&"chess".to_string()));
        let q = parse_query("\"new york\" basic:bob");
        assert_eq!(q.len(), 2);
        assert!(q.iter().any(|g| g.contains(&"new york".to_string())));
        assert!(q.iter().any(|g| g == &v(&["basic:bob"])));
        assert!(parse_query("   ").is_empty());
        let q = parse_query("bob@example.com");
        assert!(q[0].contains(&"email:bob@example.com".to_string()));
    }

    #[test]
    fn huge_queries_are_capped() {
        let q = parse_query(&"word ".repeat(10_000));
        assert!(query_tags(&q).len() <= MAX_QUERY_TERMS);
        let many: String = (0..500).map(|i| format!("t{i} ")).collect();
        let q = parse_query(&many);
        assert!(q.iter().map(Vec::len).sum::<usize>() <= MAX_QUERY_TERMS);
    }

    #[test]
    fn satisfaction_needs_every_group() {
        let q = parse_query("travel hiking,chess");
        assert!(satisfies(&q, &v(&["travel", "chess"])));
        assert!(!satisfies(&q, &v(&["travel"])));
        assert!(!satisfies(&q, &v(&["chess", "hiking"])));
    }
}
