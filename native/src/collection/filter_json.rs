//! Filters written as JSON, in Qdrant's syntax (what its clients send and the server will
//! accept): `{"must": [..], "should": [..], "must_not": [..]}` of conditions
//! `{"key": "tag", "match": {"value": "t1"}}`, `{"key": "tag", "match": {"any": ["a", "b"]}}`,
//! `{"key": "tag", "match": {"except": ["a"]}}`, `{"key": "n", "range": {"gte": 1, "lt": 5}}`,
//! `{"is_empty": {"key": "k"}}`, `{"is_null": {"key": "k"}}`, `{"has_id": [1, "a"]}`, a nested
//! filter object, and NearDB's `{"exists": {"key": "k"}}`. Every mistake is an error naming
//! where it is (`must[2].range.gt: expected a number`), never a silently ignored field.

use neardb_core::payload::{Condition, Keyword, PayloadFilter, Range};
use serde_json::{Map, Value};

use super::record::RecordId;

/// The hidden payload field holding each record's id, so `has_id` is a keyword match.
pub const ID_FIELD: &str = "$id";

/// The keyword a record id is indexed under in [`ID_FIELD`].
pub fn id_keyword(id: &RecordId) -> Keyword {
    match id {
        // Most numeric ids fit an i64 and take no allocation; the rest, and string ids, are
        // prefixed so no two ids share a keyword.
        RecordId::Num(n) => i64::try_from(*n).map_or_else(|_| Keyword::Text(format!("n{n}")), Keyword::Int),
        RecordId::Text(s) => Keyword::Text(format!("s{s}")),
    }
}

/// A filter that is not valid: where and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("filter{at}: {reason}")]
pub struct FilterError {
    /// Path within the filter (`.must[0].range`), empty for the top.
    pub at: String,
    /// What is wrong.
    pub reason: String,
}

fn fail<T>(at: &str, reason: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError { at: at.to_owned(), reason: reason.into() })
}

/// Parses JSON text into a filter.
pub fn parse_filter(text: &str) -> Result<PayloadFilter, FilterError> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| FilterError { at: String::new(), reason: format!("not JSON: {e}") })?;
    filter_from_json(&v)
}

/// A filter from its JSON value (`null` is the empty filter).
pub fn filter_from_json(v: &Value) -> Result<PayloadFilter, FilterError> {
    match v {
        Value::Null => Ok(PayloadFilter::default()),
        Value::Object(map) => filter_object(map, ""),
        other => fail("", format!("expected an object with must/should/must_not, got {}", json_kind(other))),
    }
}

/// How a JSON value reads in an error message.
pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn filter_object(map: &Map<String, Value>, at: &str) -> Result<PayloadFilter, FilterError> {
    let mut f = PayloadFilter::default();
    for (key, value) in map {
        let here = format!("{at}.{key}");
        let list = match key.as_str() {
            "must" => &mut f.must,
            "should" => &mut f.should,
            "must_not" => &mut f.must_not,
            // Qdrant's `min_should` is a count of `should` conditions; not supported yet.
            _ => return fail(&here, "unknown clause (expected must, should or must_not)"),
        };
        match value {
            Value::Null => {}
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    list.push(condition(item, &format!("{here}[{i}]"))?);
                }
            }
            // Qdrant accepts a single condition in place of a list.
            Value::Object(_) => list.push(condition(value, &here)?),
            other => return fail(&here, format!("expected a list of conditions, got {}", json_kind(other))),
        }
    }
    Ok(f)
}

fn condition(v: &Value, at: &str) -> Result<Condition, FilterError> {
    let Value::Object(map) = v else {
        return fail(at, format!("expected a condition object, got {}", json_kind(v)));
    };
    if map.contains_key("must") || map.contains_key("should") || map.contains_key("must_not") {
        return Ok(Condition::Nested(filter_object(map, at)?));
    }
    if let Some(ids) = map.get("has_id") {
        only(map, &["has_id"], at)?;
        let Value::Array(ids) = ids else { return fail(&format!("{at}.has_id"), "expected a list of ids") };
        let mut any = Vec::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            let id = match id {
                Value::Number(n) => n.as_u64().map(RecordId::Num),
                Value::String(s) if !s.is_empty() => Some(RecordId::Text(s.clone())),
                _ => None,
            };
            match id {
                Some(id) => any.push(id_keyword(&id)),
                None => {
                    return fail(&format!("{at}.has_id[{i}]"), "expected an unsigned integer or a string id")
                }
            }
        }
        return Ok(Condition::MatchAny { field: ID_FIELD.into(), any });
    }
    for (name, negate) in [("is_empty", true), ("is_null", true), ("exists", false)] {
        if let Some(inner) = map.get(name) {
            only(map, &[name], at)?;
            let here = format!("{at}.{name}");
            let Value::Object(inner) = inner else { return fail(&here, "expected {\"key\": ...}") };
            only(inner, &["key"], &here)?;
            let field = key(inner, &here)?;
            let exists = Condition::Exists { field };
            // is_empty / is_null: the field holds no value. (Our index does not tell an
            // explicit null from a missing field, so both mean "no value".)
            return Ok(if negate {
                Condition::Nested(PayloadFilter { must_not: vec![exists], ..Default::default() })
            } else {
                exists
            });
        }
    }
    let field = key(map, at)?;
    if field == ID_FIELD {
        return fail(&format!("{at}.key"), "\"$id\" is reserved: use has_id");
    }
    match (map.get("match"), map.get("range")) {
        (Some(m), None) => {
            only(map, &["key", "match"], at)?;
            let here = format!("{at}.match");
            let Value::Object(m) = m else {
                return fail(&here, "expected {\"value\": ..} or {\"any\": [..]}");
            };
            if let Some(v) = m.get("value") {
                only(m, &["value"], &here)?;
                return Ok(Condition::Match { field, value: keyword(v, &format!("{here}.value"))? });
            }
            if let Some(v) = m.get("any") {
                only(m, &["any"], &here)?;
                return Ok(Condition::MatchAny { field, any: keywords(v, &format!("{here}.any"))? });
            }
            if let Some(v) = m.get("except") {
                only(m, &["except"], &here)?;
                // Qdrant: the field exists and holds none of these.
                let any = keywords(v, &format!("{here}.except"))?;
                return Ok(Condition::Nested(PayloadFilter {
                    must: vec![Condition::Exists { field: field.clone() }],
                    must_not: vec![Condition::MatchAny { field, any }],
                    ..Default::default()
                }));
            }
            if m.contains_key("text") {
                return fail(&here, "full-text match is not supported (use value, any or except)");
            }
            fail(&here, "expected value, any or except")
        }
        (None, Some(r)) => {
            only(map, &["key", "range"], at)?;
            let here = format!("{at}.range");
            let Value::Object(r) = r else {
                return fail(&here, "expected {\"gt\"|\"gte\"|\"lt\"|\"lte\": number}");
            };
            let mut range = Range::default();
            for (k, v) in r {
                let slot = match k.as_str() {
                    "gt" => &mut range.gt,
                    "gte" => &mut range.gte,
                    "lt" => &mut range.lt,
                    "lte" => &mut range.lte,
                    _ => return fail(&format!("{here}.{k}"), "unknown bound (expected gt, gte, lt or lte)"),
                };
                *slot = match v {
                    Value::Null => None,
                    Value::Number(n) => n.as_f64(),
                    other => {
                        return fail(
                            &format!("{here}.{k}"),
                            format!("expected a number, got {}", json_kind(other)),
                        )
                    }
                };
            }
            Ok(Condition::Range { field, range })
        }
        (Some(_), Some(_)) => fail(at, "a condition has either match or range, not both"),
        (None, None) => {
            fail(at, "expected match or range with the key (or has_id, is_empty, is_null, exists)")
        }
    }
}

fn only(map: &Map<String, Value>, allowed: &[&str], at: &str) -> Result<(), FilterError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => fail(&format!("{at}.{k}"), "unexpected field here"),
        None => Ok(()),
    }
}

fn key(map: &Map<String, Value>, at: &str) -> Result<String, FilterError> {
    match map.get("key") {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(other) => fail(&format!("{at}.key"), format!("expected a field name, got {}", json_kind(other))),
        None => fail(at, "missing key"),
    }
}

fn keyword(v: &Value, at: &str) -> Result<Keyword, FilterError> {
    match v {
        Value::String(s) => Ok(Keyword::Text(s.clone())),
        Value::Bool(b) => Ok(Keyword::Bool(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Ok(Keyword::Int(i)),
            None => fail(at, "match takes strings, integers or booleans (use range for other numbers)"),
        },
        other => fail(at, format!("expected a string, integer or boolean, got {}", json_kind(other))),
    }
}

fn keywords(v: &Value, at: &str) -> Result<Vec<Keyword>, FilterError> {
    let Value::Array(items) = v else { return fail(at, format!("expected a list, got {}", json_kind(v))) };
    items.iter().enumerate().map(|(i, x)| keyword(x, &format!("{at}[{i}]"))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qdrant_filters_parse_and_mistakes_are_named() {
        let f = parse_filter(
            r#"{"must": [{"key": "tag", "match": {"value": "t1"}}, {"key": "n", "range": {"gte": 1, "lt": 5.5}}],
                "should": [{"has_id": [3, "abc"]}, {"must": [{"key": "b", "match": {"value": true}}]}],
                "must_not": {"is_empty": {"key": "x"}}}"#,
        )
        .unwrap();
        assert_eq!(f.must.len(), 2);
        assert_eq!(
            f.must[1],
            Condition::Range {
                field: "n".into(),
                range: Range { gte: Some(1.0), lt: Some(5.5), ..Default::default() }
            }
        );
        assert_eq!(
            f.should[0],
            Condition::MatchAny {
                field: ID_FIELD.into(),
                any: vec![Keyword::Int(3), Keyword::Text("sabc".into())]
            }
        );
        assert!(matches!(f.should[1], Condition::Nested(_)));
        assert_eq!(f.must_not.len(), 1);
        assert_eq!(parse_filter("null").unwrap(), PayloadFilter::default());
        let err = |t: &str| parse_filter(t).unwrap_err().to_string();
        assert_eq!(err("[1]"), "filter: expected an object with must/should/must_not, got an array");
        assert_eq!(
            err(r#"{"musts": []}"#),
            "filter.musts: unknown clause (expected must, should or must_not)"
        );
        assert_eq!(
            err(r#"{"must": [{"key": "n", "range": {"gt": "1"}}]}"#),
            "filter.must[0].range.gt: expected a number, got a string"
        );
        assert!(err(r#"{"must": [{"key": "n", "match": {"value": 1.5}}]}"#).contains("use range"));
        assert_eq!(
            err(r#"{"must": [{"key": "n", "match": {"value": 1}, "extra": 2}]}"#),
            "filter.must[0].extra: unexpected field here"
        );
        assert_eq!(err(r#"{"must": [{"match": {"value": 1}}]}"#), "filter.must[0]: missing key");
        assert_eq!(
            err(r#"{"must": [{"has_id": [-1]}]}"#),
            "filter.must[0].has_id[0]: expected an unsigned integer or a string id"
        );
        assert!(err(r#"{"must": [{"key": "t", "match": {"text": "x"}}]}"#).contains("not supported"));
        assert!(err(r#"{"must": [{"key": "$id", "match": {"value": "x"}}]}"#).contains("reserved"));
        assert!(err("{").starts_with("filter: not JSON"));
    }
}
