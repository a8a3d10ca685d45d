//! Client JSON applied over stored JSON: the `␡` (U+2421) "delete this value" marker and the
//! key-by-key merge of objects that `{set}` and group creation use for public, private,
//! trusted and aux data. Pure functions over JSON text.

use serde_json::{Map, Value};

use crate::store::JsonText;

/// The "delete this value" marker, U+2421.
pub(crate) const DEL_CHAR: &str = "\u{2421}";

/// Applies a client value over a stored one: `␡` clears, objects merge key by key (a `␡`
/// value removes the key), anything else replaces. `None`: nothing changes.
pub(crate) fn merge_json(old: Option<&JsonText>, new: &str) -> Option<Option<JsonText>> {
    let new_v: Value = serde_json::from_str(new).ok()?;
    if new_v.as_str() == Some(DEL_CHAR) {
        return old.is_some().then_some(None);
    }
    let merged = match (
        old.and_then(|o| serde_json::from_str::<Value>(o).ok()),
        new_v,
    ) {
        (Some(Value::Object(mut base)), Value::Object(patch)) => {
            merge_map(&mut base, patch);
            Value::Object(base)
        }
        (_, v) => v,
    };
    let text = merged.to_string();
    (old.map(String::as_str) != Some(text.as_str())).then_some(Some(text))
}

fn merge_map(base: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (k, v) in patch {
        if v.as_str() == Some(DEL_CHAR) {
            base.remove(&k);
        } else if let (Some(Value::Object(b)), Value::Object(p)) = (base.get_mut(&k), &v) {
            merge_map(b, p.clone());
        } else {
            base.insert(k, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_merge_replaces_merges_and_clears() {
        let old = r#"{"fn":"Alice","note":"x"}"#.to_string();
        assert_eq!(
            merge_json(Some(&old), r#"{"note":"␡","photo":"p"}"#),
            Some(Some(r#"{"fn":"Alice","photo":"p"}"#.into()))
        );
        assert_eq!(merge_json(Some(&old), r#""␡""#), Some(None));
        assert_eq!(merge_json(None, r#""␡""#), None);
        assert_eq!(merge_json(Some(&old), r#"{"fn":"Alice"}"#), None);
        assert_eq!(
            merge_json(None, r#""text""#),
            Some(Some(r#""text""#.into()))
        );
    }
}
