//! Records as a collection stores them: an external id (an unsigned integer or a string), a
//! vector and a JSON object of metadata; their binary encoding in the log and in segment
//! files; and the flattening of metadata into the payload index's field values.

use std::borrow::Cow;
use std::fmt;

use neardb_core::payload::{FieldValue, Keyword};
use serde_json::Value;

use super::CollectionError;

/// A record's external id: an unsigned integer or a string (UUIDs are strings).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RecordId {
    /// An unsigned integer.
    Num(u64),
    /// A string of 1 to [`MAX_ID_BYTES`] bytes.
    Text(String),
}

/// The longest string id, in bytes.
pub const MAX_ID_BYTES: usize = 1024;

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Num(n) => write!(f, "{n}"),
            Self::Text(s) => write!(f, "{s:?}"),
        }
    }
}

impl From<u64> for RecordId {
    fn from(n: u64) -> Self {
        Self::Num(n)
    }
}

impl From<&str> for RecordId {
    fn from(s: &str) -> Self {
        Self::Text(s.to_owned())
    }
}

impl From<String> for RecordId {
    fn from(s: String) -> Self {
        Self::Text(s)
    }
}

impl RecordId {
    /// Refuses an empty or too long string id.
    pub(crate) fn check(&self) -> Result<(), CollectionError> {
        match self {
            Self::Text(s) if s.is_empty() || s.len() > MAX_ID_BYTES => Err(CollectionError::InvalidId {
                id: self.clone(),
                reason: "a string id must have 1 to 1024 bytes",
            }),
            _ => Ok(()),
        }
    }
}

/// One record: id, vector, metadata (a JSON object, or null for none).
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// The external id.
    pub id: RecordId,
    /// The vector (a cosine collection returns it normalised, as it stores it).
    pub vector: Vec<f32>,
    /// A JSON object, or `Value::Null` for none.
    pub metadata: Value,
}

impl Record {
    /// A record without metadata.
    pub fn new(id: impl Into<RecordId>, vector: Vec<f32>) -> Self {
        Self { id: id.into(), vector, metadata: Value::Null }
    }

    /// The same record with `metadata`.
    pub fn with_metadata(mut self, metadata: Value) -> Self {
        self.metadata = metadata;
        self
    }
}

/// The field values of a metadata object, flattened: nested objects as dotted paths (`a.b`),
/// arrays as one value per element, nulls dropped.
pub fn field_values(metadata: &Value) -> Vec<(String, FieldValue)> {
    field_refs(metadata).into_iter().map(|(n, v)| (n.into_owned(), v)).collect()
}

/// [`field_values`] with top-level names borrowed from the object (no allocation for them).
pub(crate) fn field_refs(metadata: &Value) -> Vec<(Cow<'_, str>, FieldValue)> {
    let mut out = Vec::new();
    if let Value::Object(map) = metadata {
        for (k, v) in map {
            flatten(Cow::Borrowed(k.as_str()), v, &mut out);
        }
    }
    out
}

fn flatten<'a>(path: Cow<'a, str>, v: &'a Value, out: &mut Vec<(Cow<'a, str>, FieldValue)>) {
    match v {
        Value::Null => {}
        Value::Bool(b) => out.push((path, FieldValue::Keyword(Keyword::Bool(*b)))),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push((path, FieldValue::Int(i)));
            } else if let Some(x) = n.as_f64() {
                out.push((path, FieldValue::Number(x)));
            }
        }
        Value::String(s) => out.push((path, FieldValue::Keyword(Keyword::Text(s.clone())))),
        Value::Array(items) => {
            for item in items {
                flatten(path.clone(), item, out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                flatten(Cow::Owned(format!("{path}.{k}")), v, out);
            }
        }
    }
}

/// Appends the binary form of an id: a tag byte, then a u64 or a u32 length and the bytes.
pub(crate) fn encode_id(id: &RecordId, out: &mut Vec<u8>) {
    match id {
        RecordId::Num(n) => {
            out.push(0);
            out.extend_from_slice(&n.to_le_bytes());
        }
        RecordId::Text(s) => {
            out.push(1);
            out.extend_from_slice(&(s.len() as u32).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        }
    }
}

/// A bounds-checked reader over bytes whose structure may lie: every read says what it
/// expected when the bytes run out or hold nonsense.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    pub fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], &'static str> {
        if self.remaining() < n {
            return Err(what);
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub fn u8(&mut self, what: &'static str) -> Result<u8, &'static str> {
        Ok(self.take(1, what)?[0])
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, &'static str> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, &'static str> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub fn id(&mut self) -> Result<RecordId, &'static str> {
        match self.u8("an id tag")? {
            0 => Ok(RecordId::Num(self.u64("a numeric id")?)),
            1 => {
                let len = self.u32("a string id's length")? as usize;
                if len == 0 || len > MAX_ID_BYTES {
                    return Err("a string id of 1 to 1024 bytes");
                }
                let b = self.take(len, "a string id")?;
                std::str::from_utf8(b).map(|s| RecordId::Text(s.to_owned())).map_err(|_| "a UTF-8 string id")
            }
            _ => Err("an id tag of 0 or 1"),
        }
    }

    /// `dim` little-endian f32 values.
    pub fn floats(&mut self, dim: usize, out: &mut Vec<f32>) -> Result<(), &'static str> {
        let b = self.take(dim.checked_mul(4).ok_or("a vector")?, "a vector")?;
        out.extend(b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])));
        Ok(())
    }

    /// [`Reader::metadata`] that also gives the JSON text it read.
    pub fn metadata_with_bytes(&mut self) -> Result<(&'a [u8], Value), &'static str> {
        let len = self.u32("a metadata length")? as usize;
        if len == 0 {
            return Ok((&[], Value::Null));
        }
        let b = self.take(len, "metadata")?;
        serde_json::from_slice(b).map(|v| (b, v)).map_err(|_| "metadata as JSON")
    }

    /// A u32 length and that many bytes of JSON text (empty: no metadata).
    #[cfg(test)]
    pub fn metadata(&mut self) -> Result<Value, &'static str> {
        let len = self.u32("a metadata length")? as usize;
        if len == 0 {
            return Ok(Value::Null);
        }
        let b = self.take(len, "metadata")?;
        serde_json::from_slice(b).map_err(|_| "metadata as JSON")
    }
}

/// Appends metadata as a u32 length and its JSON text (nothing for null).
pub(crate) fn encode_metadata(metadata: &Value, out: &mut Vec<u8>) {
    if metadata.is_null() {
        out.extend_from_slice(&0u32.to_le_bytes());
        return;
    }
    let at = out.len();
    out.extend_from_slice(&0u32.to_le_bytes());
    // Writing a `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, metadata);
    let len = (out.len() - at - 4) as u32;
    out[at..at + 4].copy_from_slice(&len.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_metadata_round_trip_and_lying_bytes_are_refused() {
        let mut b = Vec::new();
        encode_id(&RecordId::Num(u64::MAX), &mut b);
        encode_id(&RecordId::from("ünïcode"), &mut b);
        encode_metadata(&serde_json::json!({"a": [1, 2.5, "x"], "b": {"c": null}}), &mut b);
        encode_metadata(&Value::Null, &mut b);
        let mut r = Reader::new(&b);
        assert_eq!(r.id().unwrap(), RecordId::Num(u64::MAX));
        assert_eq!(r.id().unwrap(), RecordId::from("ünïcode"));
        assert_eq!(r.metadata().unwrap(), serde_json::json!({"a": [1, 2.5, "x"], "b": {"c": null}}));
        assert_eq!(r.metadata().unwrap(), Value::Null);
        assert_eq!(r.remaining(), 0);
        // Every prefix fails cleanly.
        for cut in 0..b.len() {
            let mut r = Reader::new(&b[..cut]);
            let ok = r.id().is_ok() && r.id().is_ok() && r.metadata().is_ok() && r.metadata().is_ok();
            assert!(!ok, "prefix {cut} read as whole");
        }
        // A string id claiming 4 GB, a bad tag.
        assert!(Reader::new(&[1, 255, 255, 255, 255, b'a']).id().is_err());
        assert!(Reader::new(&[7]).id().is_err());
    }

    #[test]
    fn metadata_flattens_to_dotted_fields() {
        let v = serde_json::json!({"tag": "t1", "n": 3, "x": 0.5, "arr": ["a", "b"], "o": {"p": true, "q": null}});
        let mut f = field_values(&v);
        f.sort_by(|a, b| a.0.cmp(&b.0));
        let names: Vec<&str> = f.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["arr", "arr", "n", "o.p", "tag", "x"]);
        assert!(f.contains(&("n".into(), FieldValue::Int(3))));
        assert!(f.contains(&("x".into(), FieldValue::Number(0.5))));
    }
}
