//! Metadata ("payload") filters over the rows of one segment: the condition tree a collection's
//! search takes (must / should / must_not of match, any-of, numeric range, exists) and the
//! payload index that answers it with the exact set of matching rows. No JSON here: a face
//! parses its own syntax into [`PayloadFilter`] and a record's fields into [`FieldValue`]s.
//!
//! The index keeps, per field, the rows of each keyword (sorted posting lists), the numeric
//! values with their rows sorted by value, and the rows where the field is present. Evaluating
//! a filter costs the postings it touches plus one pass over a bitset per boolean step, and the
//! count of the result is exact, so the search planner never has to guess.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use crate::filter::Bitset;

/// A value matched exactly: a string, an integer or a boolean (Qdrant's keyword, integer and
/// bool match). Integers match integers only; `"1"` does not match `1`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Keyword {
    /// A boolean.
    Bool(bool),
    /// A whole number.
    Int(i64),
    /// A string.
    Text(String),
}

/// One value of a record's field, as the index keeps it. A field holding an array has one
/// value per element; a null (or an empty array) has none, so the field does not exist.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldValue {
    /// Matched exactly (strings and booleans).
    Keyword(Keyword),
    /// A whole number: matched exactly and compared in ranges.
    Int(i64),
    /// A number with a fraction (or beyond `i64`): compared in ranges only.
    Number(f64),
}

/// Bounds of a numeric range; `None` leaves a side open. NaN bounds match nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Range {
    /// Greater than.
    pub gt: Option<f64>,
    /// Greater than or equal.
    pub gte: Option<f64>,
    /// Less than.
    pub lt: Option<f64>,
    /// Less than or equal.
    pub lte: Option<f64>,
}

impl Range {
    /// Whether `x` lies within every given bound.
    pub fn contains(&self, x: f64) -> bool {
        self.gt.is_none_or(|b| x > b)
            && self.gte.is_none_or(|b| x >= b)
            && self.lt.is_none_or(|b| x < b)
            && self.lte.is_none_or(|b| x <= b)
    }

    /// The tightest lower bound as (value, inclusive).
    fn lower(&self) -> Option<(f64, bool)> {
        match (self.gt, self.gte) {
            (Some(a), Some(b)) => Some(if a >= b { (a, false) } else { (b, true) }),
            (Some(a), None) => Some((a, false)),
            (None, Some(b)) => Some((b, true)),
            (None, None) => None,
        }
    }

    /// The tightest upper bound as (value, inclusive).
    fn upper(&self) -> Option<(f64, bool)> {
        match (self.lt, self.lte) {
            (Some(a), Some(b)) => Some(if a <= b { (a, false) } else { (b, true) }),
            (Some(a), None) => Some((a, false)),
            (None, Some(b)) => Some((b, true)),
            (None, None) => None,
        }
    }
}

/// One condition on a record's payload.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    /// The field holds this value (or, for an array, an element equal to it).
    Match {
        /// Field name (nested objects as dotted paths, `a.b`).
        field: String,
        /// The value.
        value: Keyword,
    },
    /// The field holds any of these values.
    MatchAny {
        /// Field name.
        field: String,
        /// The values.
        any: Vec<Keyword>,
    },
    /// The field holds a number within the range.
    Range {
        /// Field name.
        field: String,
        /// The bounds.
        range: Range,
    },
    /// The field exists and holds at least one value (not null, not an empty array).
    Exists {
        /// Field name.
        field: String,
    },
    /// A nested filter.
    Nested(PayloadFilter),
}

/// A filter over payloads: every `must` condition, at least one `should` condition (when there
/// are any) and no `must_not` condition. The empty filter matches every row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PayloadFilter {
    /// Conditions that must all hold.
    pub must: Vec<Condition>,
    /// Conditions of which at least one must hold (ignored when empty).
    pub should: Vec<Condition>,
    /// Conditions none of which may hold.
    pub must_not: Vec<Condition>,
}

impl PayloadFilter {
    /// Whether the filter has no condition (matches everything).
    pub fn is_empty(&self) -> bool {
        self.must.is_empty() && self.should.is_empty() && self.must_not.is_empty()
    }

    /// Whether a record whose fields are `fields` (name, value; a field may repeat) matches:
    /// the definition the index must agree with, and the evaluation for rows not yet indexed.
    pub fn matches<'a>(&self, fields: &(impl Fn(&str) -> FieldValues<'a> + ?Sized)) -> bool {
        self.must.iter().all(|c| c.matches(fields))
            && (self.should.is_empty() || self.should.iter().any(|c| c.matches(fields)))
            && !self.must_not.iter().any(|c| c.matches(fields))
    }
}

/// The values of one field of one record.
pub type FieldValues<'a> = &'a [FieldValue];

impl Condition {
    fn matches<'a>(&self, fields: &(impl Fn(&str) -> FieldValues<'a> + ?Sized)) -> bool {
        match self {
            Self::Match { field, value } => fields(field).iter().any(|v| keyword_equals(v, value)),
            Self::MatchAny { field, any } => {
                fields(field).iter().any(|v| any.iter().any(|k| keyword_equals(v, k)))
            }
            Self::Range { field, range } => fields(field).iter().any(|v| match v {
                FieldValue::Int(i) => range.contains(*i as f64),
                FieldValue::Number(x) => range.contains(*x),
                FieldValue::Keyword(_) => false,
            }),
            Self::Exists { field } => !fields(field).is_empty(),
            Self::Nested(f) => f.matches(fields),
        }
    }
}

fn keyword_equals(v: &FieldValue, k: &Keyword) -> bool {
    match (v, k) {
        (FieldValue::Keyword(a), b) => a == b,
        (FieldValue::Int(a), Keyword::Int(b)) => a == b,
        _ => false,
    }
}

/// The index of one field.
#[derive(Clone, Debug, Default)]
struct FieldIndex {
    /// Rows holding each keyword (integers too), ascending, no repeats.
    keywords: BTreeMap<Keyword, Vec<u32>>,
    /// (value, row) of every numeric value, sorted by value (`sorted` of them; the rest were
    /// appended since and are scanned).
    numbers: Vec<(f64, u32)>,
    sorted: usize,
    /// Rows holding any value, ascending.
    present: Vec<u32>,
}

/// The payload index of a set of rows `0..rows()`, appended row by row.
#[derive(Clone, Debug, Default)]
pub struct PayloadIndex {
    rows: u32,
    fields: BTreeMap<String, FieldIndex>,
    /// A field whose every value names one row (a record id): kept as value → row, without
    /// a posting list per value. A value given again names its newest row.
    unique: Option<(String, BTreeMap<Keyword, u32>)>,
}

impl PayloadIndex {
    /// An index of no rows.
    pub fn new() -> Self {
        Self::default()
    }

    /// An index of no rows in which `field`'s values are unique row names (ids): matched by
    /// value, never by range.
    pub fn with_unique_field(field: &str) -> Self {
        Self { unique: Some((String::from(field), BTreeMap::new())), ..Self::default() }
    }

    /// Rows indexed.
    pub fn rows(&self) -> u32 {
        self.rows
    }

    /// Appends the next row (number `rows()`) with its field values; a field may repeat.
    pub fn push_row<'a>(&mut self, values: impl IntoIterator<Item = (&'a str, &'a FieldValue)>) -> u32 {
        let row = self.rows;
        self.rows += 1;
        for (name, value) in values {
            if let Some((unique, rows)) = &mut self.unique {
                if unique == name {
                    let key = match value {
                        FieldValue::Keyword(k) => k.clone(),
                        FieldValue::Int(i) => Keyword::Int(*i),
                        FieldValue::Number(_) => continue,
                    };
                    rows.insert(key, row);
                    continue;
                }
            }
            let field = match self.fields.get_mut(name) {
                Some(f) => f,
                None => self.fields.entry(String::from(name)).or_default(),
            };
            if field.present.last() != Some(&row) {
                field.present.push(row);
            }
            let keyword = match value {
                FieldValue::Keyword(k) => Some(k.clone()),
                FieldValue::Int(i) => Some(Keyword::Int(*i)),
                FieldValue::Number(_) => None,
            };
            if let Some(k) = keyword {
                let rows = field.keywords.entry(k).or_default();
                if rows.last() != Some(&row) {
                    rows.push(row);
                }
            }
            match value {
                FieldValue::Int(i) => field.numbers.push((*i as f64, row)),
                FieldValue::Number(x) if !x.is_nan() => field.numbers.push((*x, row)),
                _ => {}
            }
        }
        row
    }

    /// Sorts values appended since the last call, so ranges over them are binary searches.
    /// Cheap when nothing was appended; call it once a batch of rows is in.
    pub fn seal(&mut self) {
        for f in self.fields.values_mut() {
            if f.sorted < f.numbers.len() {
                f.numbers.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                f.sorted = f.numbers.len();
            }
        }
    }

    /// The rows that match `filter`, exactly.
    pub fn evaluate(&self, filter: &PayloadFilter) -> Bitset {
        let mut out = Bitset::new(self.rows);
        out.fill();
        self.apply(filter, &mut out);
        out
    }

    /// Keeps in `set` only the rows matching `filter`.
    fn apply(&self, filter: &PayloadFilter, set: &mut Bitset) {
        for c in &filter.must {
            set.intersect_with(&self.condition(c));
        }
        if !filter.should.is_empty() {
            let mut any = Bitset::new(self.rows);
            for c in &filter.should {
                any.union_with(&self.condition(c));
            }
            set.intersect_with(&any);
        }
        for c in &filter.must_not {
            set.subtract(&self.condition(c));
        }
    }

    /// The rows for which one condition holds.
    fn condition(&self, c: &Condition) -> Bitset {
        let mut set = Bitset::new(self.rows);
        if let Some((unique, rows)) = &self.unique {
            let named = |v: &Keyword| rows.get(v).copied();
            match c {
                Condition::Match { field, value } if field == unique => {
                    if let Some(row) = named(value) {
                        set.insert(row);
                    }
                    return set;
                }
                Condition::MatchAny { field, any } if field == unique => {
                    for row in any.iter().filter_map(named) {
                        set.insert(row);
                    }
                    return set;
                }
                Condition::Exists { field } if field == unique => {
                    for &row in rows.values() {
                        set.insert(row);
                    }
                    return set;
                }
                Condition::Range { field, .. } if field == unique => return set,
                _ => {}
            }
        }
        match c {
            Condition::Match { field, value } => {
                if let Some(rows) = self.fields.get(field).and_then(|f| f.keywords.get(value)) {
                    set.insert_all(rows);
                }
            }
            Condition::MatchAny { field, any } => {
                if let Some(f) = self.fields.get(field) {
                    for v in any {
                        if let Some(rows) = f.keywords.get(v) {
                            set.insert_all(rows);
                        }
                    }
                }
            }
            Condition::Range { field, range } => {
                if let Some(f) = self.fields.get(field) {
                    let sorted = &f.numbers[..f.sorted];
                    let lo = match range.lower() {
                        Some((b, true)) => sorted.partition_point(|&(x, _)| x < b),
                        Some((b, false)) => sorted.partition_point(|&(x, _)| x <= b),
                        None => 0,
                    };
                    let hi = match range.upper() {
                        Some((b, true)) => sorted.partition_point(|&(x, _)| x <= b),
                        Some((b, false)) => sorted.partition_point(|&(x, _)| x < b),
                        None => sorted.len(),
                    };
                    // NaN bounds: `contains` is false for every value; the partition points
                    // above are then arbitrary, so the slice is filtered again.
                    let nan = [range.gt, range.gte, range.lt, range.lte].iter().flatten().any(|b| b.is_nan());
                    if !nan {
                        for &(_, row) in sorted.get(lo..hi.max(lo)).unwrap_or(&[]) {
                            set.insert(row);
                        }
                        for &(x, row) in &f.numbers[f.sorted..] {
                            if range.contains(x) {
                                set.insert(row);
                            }
                        }
                    }
                }
            }
            Condition::Exists { field } => {
                if let Some(f) = self.fields.get(field) {
                    set.insert_all(&f.present);
                }
            }
            Condition::Nested(inner) => {
                set.fill();
                self.apply(inner, &mut set);
            }
        }
        set
    }

    /// How many rows hold `value` in `field` (the length of its posting list).
    pub fn keyword_count(&self, field: &str, value: &Keyword) -> usize {
        self.fields.get(field).and_then(|f| f.keywords.get(value)).map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::vec;

    fn text(s: &str) -> FieldValue {
        FieldValue::Keyword(Keyword::Text(String::from(s)))
    }

    #[test]
    fn index_agrees_with_the_definition_on_every_kind_of_condition() {
        // Row r: tag "t{r % 5}", num r / 10 (integers on even rows), tags array on every third
        // row, no fields at all on rows divisible by 7.
        let mut rows: Vec<Vec<(String, FieldValue)>> = Vec::new();
        for r in 0..300u32 {
            let mut f = Vec::new();
            if r % 7 != 0 {
                f.push((String::from("tag"), text(&format!("t{}", r % 5))));
                if r % 2 == 0 {
                    f.push((String::from("num"), FieldValue::Int(i64::from(r / 10))));
                } else {
                    f.push((String::from("num"), FieldValue::Number(f64::from(r) / 10.0)));
                }
                if r % 3 == 0 {
                    f.push((String::from("labels"), text("a")));
                    f.push((String::from("labels"), text("b")));
                    f.push((String::from("flag"), FieldValue::Keyword(Keyword::Bool(r % 2 == 0))));
                }
            }
            rows.push(f);
        }
        let mut index = PayloadIndex::new();
        for (i, f) in rows.iter().enumerate() {
            index.push_row(f.iter().map(|(n, v)| (n.as_str(), v)));
            // Half the rows sealed, half left in the unsorted tail.
            if i == 150 {
                index.seal();
            }
        }
        let m = |field: &str, v: Keyword| Condition::Match { field: field.into(), value: v };
        let t = |s: &str| Keyword::Text(s.into());
        let range =
            |gt, gte, lt, lte| Condition::Range { field: "num".into(), range: Range { gt, gte, lt, lte } };
        let filters = vec![
            PayloadFilter::default(),
            PayloadFilter { must: vec![m("tag", t("t2"))], ..Default::default() },
            PayloadFilter { must: vec![m("num", Keyword::Int(4))], ..Default::default() },
            PayloadFilter { must: vec![range(None, Some(3.0), Some(12.5), None)], ..Default::default() },
            PayloadFilter { must: vec![range(Some(3.0), None, None, Some(12.0))], ..Default::default() },
            PayloadFilter { must: vec![range(Some(f64::NAN), None, None, None)], ..Default::default() },
            PayloadFilter {
                must: vec![Condition::MatchAny { field: "tag".into(), any: vec![t("t1"), t("t3"), t("zz")] }],
                must_not: vec![m("labels", t("b"))],
                ..Default::default()
            },
            PayloadFilter {
                should: vec![m("flag", Keyword::Bool(true)), range(None, None, Some(2.0), None)],
                ..Default::default()
            },
            PayloadFilter { must_not: vec![Condition::Exists { field: "tag".into() }], ..Default::default() },
            PayloadFilter {
                must: vec![Condition::Nested(PayloadFilter {
                    should: vec![m("tag", t("t0")), m("tag", t("t4"))],
                    ..Default::default()
                })],
                must_not: vec![Condition::Nested(PayloadFilter {
                    must: vec![range(None, Some(20.0), None, None)],
                    ..Default::default()
                })],
                ..Default::default()
            },
            PayloadFilter { must: vec![m("missing", t("x"))], ..Default::default() },
        ];
        for filter in &filters {
            let got = index.evaluate(filter);
            for (r, f) in rows.iter().enumerate() {
                let lookup = |name: &str| {
                    let vals: Vec<FieldValue> =
                        f.iter().filter(|(n, _)| n == name).map(|(_, v)| v.clone()).collect();
                    vals
                };
                // The definition, over owned values (a closure returning borrowed slices of a
                // temporary would not live long enough).
                let cache: Vec<(String, Vec<FieldValue>)> = ["tag", "num", "labels", "flag", "missing"]
                    .iter()
                    .map(|n| (String::from(*n), lookup(n)))
                    .collect();
                let fields = |name: &str| -> FieldValues<'_> {
                    cache.iter().find(|(n, _)| n == name).map_or(&[][..], |(_, v)| &v[..])
                };
                assert_eq!(got.contains(r as u32), filter.matches(&fields), "row {r}, filter {filter:?}");
            }
        }
        assert_eq!(
            index.keyword_count("tag", &t("t2")),
            (0..300).filter(|r| r % 7 != 0 && r % 5 == 2).count()
        );
    }

    #[test]
    fn a_unique_field_names_its_newest_row() {
        let mut index = PayloadIndex::with_unique_field("id");
        for r in 0..10i64 {
            let id = FieldValue::Int(r % 7);
            let tag = text(if r % 2 == 0 { "even" } else { "odd" });
            index.push_row([("id", &id), ("tag", &tag)]);
        }
        let any = |ids: &[i64]| PayloadFilter {
            must: vec![Condition::MatchAny {
                field: "id".into(),
                any: ids.iter().map(|&i| Keyword::Int(i)).collect(),
            }],
            ..Default::default()
        };
        // Ids 0..2 were given again at rows 7..9: the newest row answers.
        assert_eq!(index.evaluate(&any(&[1, 5, 99])).iter().collect::<Vec<_>>(), [5, 8]);
        let mut f = any(&[0, 1, 2, 3]);
        f.must.push(Condition::Match { field: "tag".into(), value: Keyword::Text("odd".into()) });
        assert_eq!(index.evaluate(&f).iter().collect::<Vec<_>>(), [3, 7, 9]);
        let exists =
            PayloadFilter { must: vec![Condition::Exists { field: "id".into() }], ..Default::default() };
        assert_eq!(index.evaluate(&exists).count(), 7);
    }
}
