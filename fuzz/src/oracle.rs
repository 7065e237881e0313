//! The index oracle: opens mutated bytes in memory as the native library would, and if they
//! open, searches them many ways and checks every answer against the search contract. Also
//! the pure invariant check on one result list, which the tests feed planted bugs.

use std::collections::HashSet;

use neardb::format::{AlignedBytes, OpenOptions, SectionKind};
use neardb::{AnyIndex, Bitset, Filter, IndexKind, Neighbor, Predicate, SearchParams, VectorSearch, NO_ID};

use crate::rng::Rng;

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// What kind of rule, the key findings are grouped by (`nan-distance`, `panic at f:l`…).
    pub cause: String,
    /// The particulars.
    pub detail: String,
}

impl Violation {
    fn new(cause: impl Into<String>, detail: impl Into<String>) -> Self {
        Self { cause: cause.into(), detail: detail.into() }
    }
}

/// A file opened in place from memory, whatever its kind: exactly as the native library opens
/// one (`neardb::open` maps the file and calls the same `AnyIndex::from_bytes`).
pub type Opened = AnyIndex<AlignedBytes>;

/// Opens `bytes` the way the library does; `Err` holds the refusal.
pub fn open(bytes: &[u8]) -> Result<Opened, String> {
    AnyIndex::from_bytes(AlignedBytes::copy_from(bytes), OpenOptions::default()).map_err(|e| e.to_string())
}

/// The `deleted` bitset the file declares, whichever kind reads it: a kind that ignores it
/// still must not answer with a slot the file says is gone.
fn deleted_words(opened: &Opened) -> Vec<u64> {
    opened
        .info()
        .section(opened.bytes(), SectionKind::DELETED)
        .map(|s| s.chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().unwrap_or([0; 8]))).collect())
        .unwrap_or_default()
}

/// What one result list must satisfy.
pub struct Expect<'a> {
    /// The k asked for.
    pub k: usize,
    /// Slots in the file (`count`): every id is below it.
    pub slots: u64,
    /// Slots the file or the view says are deleted.
    pub deleted: &'a dyn Fn(u32) -> bool,
    /// The file's caller ids, if any.
    pub ids: Option<&'a [u32]>,
    /// The filter the search ran with.
    pub filter: Option<&'a dyn Filter>,
}

/// Checks one successful search answer; one violation per broken rule.
pub fn check_hits(hits: &[Neighbor], e: &Expect<'_>) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut once = |cause: &str, detail: String| {
        if !out.iter().any(|v: &Violation| v.cause == cause) {
            out.push(Violation::new(cause, detail));
        }
    };
    if hits.len() > e.k {
        once("more-than-k", format!("{} hits for k = {}", hits.len(), e.k));
    }
    let mut seen = HashSet::new();
    let mut seen_ext = HashSet::new();
    for h in hits {
        if !seen.insert(h.id) {
            once("duplicate-id", format!("slot {} twice", h.id));
        }
        if h.id as u64 >= e.slots {
            once("id-not-a-slot", format!("slot {} with {} slots", h.id, e.slots));
        } else if (e.deleted)(h.id) {
            once("deleted-slot-returned", format!("slot {} is marked deleted", h.id));
        }
        if let Some(f) = e.filter {
            if !f.allows(h.id) {
                once("filter-ignored", format!("slot {} is not allowed by the filter", h.id));
            }
        }
        if let Some(ids) = e.ids {
            match ids.get(h.id as usize) {
                Some(&NO_ID) => once("external-id-no-id", format!("slot {} has id u32::MAX", h.id)),
                Some(&ext) if !seen_ext.insert(ext) => {
                    once("duplicate-external-id", format!("id {ext} reported twice (slot {})", h.id))
                }
                _ => {}
            }
        }
        if h.distance.is_nan() {
            once("nan-distance", format!("slot {}", h.id));
        } else if h.distance.is_infinite() {
            once("inf-distance", format!("slot {} at {}", h.id, h.distance));
        }
    }
    if let Some(w) = hits.windows(2).find(|w| w[0].distance > w[1].distance) {
        once("unsorted-distances", format!("{} before {}", w[0].distance, w[1].distance));
    }
    out
}

/// What an execution of the index oracle saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// `None` if the file opened, else why it was refused.
    pub refused: Option<String>,
    /// The kind the file opened as (a mutated header may name another than its seed's).
    pub kind: Option<IndexKind>,
    /// Every broken rule (a panic is one).
    pub violations: Vec<Violation>,
    /// Searches that returned `Ok`.
    pub answered: usize,
    /// The largest k any search asked for: a huge k is charged for its own buffers, so the
    /// runner keeps those executions' memory apart from what the file itself costs.
    pub max_k: usize,
}

/// The k of "more than anyone asks": the result buffers must not be sized by it.
pub const HUGE_K: usize = 1_000_000;
const KNOBS: [usize; 3] = [0, 1, 64];

/// Opens `bytes` and, if it opens, searches it with queries drawn from `rows` (the seed's
/// vectors) and at random. Does not catch panics: the caller wraps the whole execution.
pub fn exercise(bytes: &[u8], rows: &[f32], rng: &mut Rng) -> Outcome {
    let opened = match open(bytes) {
        Ok(o) => o,
        Err(e) => return Outcome { refused: Some(e), ..Outcome::default() },
    };
    let info = opened.info().clone();
    let mut out = Outcome { kind: Some(info.kind), ..Outcome::default() };
    let index = &opened;
    let (dim, len) = (index.dim(), index.len());
    // Accessors a caller reads right after opening must answer, not panic.
    let _ = (index.metric(), index.is_empty(), opened.external_ids().map(<[u32]>::len));
    let slots = info.count;
    let words = deleted_words(&opened);
    let hnsw = match &opened {
        AnyIndex::Hnsw(v) => Some(v),
        _ => None,
    };
    let deleted = |id: u32| {
        words.get(id as usize / 64).is_some_and(|w| (w >> (id % 64)) & 1 == 1)
            || hnsw.is_some_and(|v| v.is_deleted(id))
    };
    let ids = opened.external_ids();

    let queries = make_queries(rows, dim, rng);
    // The filter's universe: slots, capped so a hostile count cannot size the bitset.
    let universe = slots.min(1 << 22) as u32;
    let filters: Vec<Box<dyn Filter>> = vec![
        Box::new(Bitset::from_fn(universe, |i| i % 2 == 0)),
        Box::new(Bitset::from_fn(universe, |i| i % 10 == 3)),
        Box::new(Bitset::new(universe)),
        Box::new(Bitset::from_fn(universe / 2, |_| true)),
        Box::new(Predicate(|i: u32| i.is_multiple_of(3))),
    ];
    // One execution in four may ask for the huge k; the others show what the file costs.
    let huge = rng.chance(1, 4);
    let mut max_k = 0;
    let mut pick_k = |rng: &mut Rng| {
        let k = match rng.below(if huge { 4 } else { 3 }) {
            0 => 1,
            1 => 10,
            2 => len.saturating_add(5),
            _ => HUGE_K,
        };
        max_k = max_k.max(k);
        k
    };
    let pick_params = |rng: &mut Rng| {
        SearchParams::new()
            .with_ef(*rng.pick(&KNOBS))
            .with_nprobe(*rng.pick(&KNOBS))
            .with_rerank_factor(*rng.pick(&KNOBS))
    };

    let mut record = |hits: &[Neighbor], k: usize, filter: Option<&dyn Filter>, what: &str| {
        let expect = Expect { k, slots, deleted: &deleted, ids, filter };
        for mut v in check_hits(hits, &expect) {
            v.detail = format!("{what}: {}", v.detail);
            if !out.violations.iter().any(|o| o.cause == v.cause) {
                out.violations.push(v);
            }
        }
        for h in hits {
            let _ = opened.external_id(h.id);
        }
    };
    let mut answered = 0;
    for (qi, q) in queries.chunks_exact(dim).enumerate() {
        for _ in 0..2 {
            let k = pick_k(rng);
            let params = pick_params(rng);
            let fi = rng.below(filters.len() + 2);
            let filter = filters.get(fi).map(|f| f.as_ref());
            if let Ok(hits) = index.search(q, k, &params, filter) {
                answered += 1;
                let what = format!("query {qi} k {k} {params:?} filter {fi}");
                record(&hits, k, filter, &what);
            }
        }
    }
    if rng.chance(1, 4) {
        let k = pick_k(rng);
        let params = pick_params(rng);
        let fi = rng.below(filters.len() + 2);
        let filter = filters.get(fi).map(|f| f.as_ref());
        if let Ok(all) = opened.search_batch(&queries, k, &params, filter) {
            answered += 1;
            for (qi, hits) in all.iter().enumerate() {
                let what = format!("batch query {qi} k {k} {params:?} filter {fi}");
                record(hits, k, filter, &what);
            }
        }
    }
    // An accepted Vamana file must also survive what an owner does next: an owned copy that
    // consolidates its deletes, takes an insert and answers (small files only: it copies).
    if let AnyIndex::Vamana(v) = &opened {
        if slots <= 4096 && rng.chance(1, 4) {
            let mut owned = v.to_index();
            owned.consolidate();
            let row = &queries[..dim];
            if let Ok(new) = owned.add(row) {
                if let Ok(hits) = owned.search(row, 10, &SearchParams::new(), None) {
                    answered += 1;
                    let gone = |id: u32| owned.is_deleted(id);
                    let expect = Expect {
                        k: 10,
                        slots: owned.slot_count() as u64,
                        deleted: &gone,
                        ids: None,
                        filter: None,
                    };
                    for mut v in check_hits(&hits, &expect) {
                        v.detail =
                            format!("owned copy after consolidate + insert of slot {new:?}: {}", v.detail);
                        out.violations.push(v);
                    }
                }
            }
        }
    }
    out.answered = answered;
    out.max_k = max_k;
    out
}

/// Two of the seed's rows (re-cut to the file's dimension, which a mutation may have changed)
/// and one random query, row-major.
fn make_queries(rows: &[f32], dim: usize, rng: &mut Rng) -> Vec<f32> {
    let mut q = Vec::with_capacity(3 * dim);
    let n = rows.len() / dim.max(1);
    for _ in 0..2 {
        if n > 0 {
            let r = rng.below(n);
            q.extend_from_slice(&rows[r * dim..(r + 1) * dim]);
        } else {
            q.extend((0..dim).map(|_| rng.unit()));
        }
    }
    q.extend((0..dim).map(|_| rng.unit()));
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect<'a>(k: usize, ids: Option<&'a [u32]>, deleted: &'a dyn Fn(u32) -> bool) -> Expect<'a> {
        Expect { k, slots: 10, deleted, ids, filter: None }
    }

    fn causes(v: Vec<Violation>) -> Vec<String> {
        v.into_iter().map(|v| v.cause).collect()
    }

    #[test]
    fn a_correct_answer_passes() {
        let hits = [Neighbor::new(3, 0.0), Neighbor::new(1, 0.5), Neighbor::new(2, 0.5)];
        assert!(check_hits(&hits, &expect(3, Some(&[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]), &|_| false)).is_empty());
    }

    #[test]
    fn planted_bugs_are_reported() {
        let none = |_| false;
        let c = |hits: &[Neighbor], k, ids, del: &dyn Fn(u32) -> bool| {
            causes(check_hits(hits, &expect(k, ids, del)))
        };
        let dup = [Neighbor::new(1, 0.0), Neighbor::new(1, 0.1)];
        assert_eq!(c(&dup, 5, None, &none), ["duplicate-id"]);
        let nan = [Neighbor::new(1, 0.0), Neighbor::new(2, f32::NAN)];
        assert_eq!(c(&nan, 5, None, &none), ["nan-distance"]);
        let inf = [Neighbor::new(1, f32::INFINITY)];
        assert_eq!(c(&inf, 5, None, &none), ["inf-distance"]);
        let unsorted = [Neighbor::new(1, 2.0), Neighbor::new(2, 1.0)];
        assert_eq!(c(&unsorted, 5, None, &none), ["unsorted-distances"]);
        assert_eq!(c(&unsorted, 1, None, &none), ["more-than-k", "unsorted-distances"]);
        assert_eq!(c(&[Neighbor::new(10, 0.0)], 5, None, &none), ["id-not-a-slot"]);
        assert_eq!(c(&[Neighbor::new(4, 0.0)], 5, None, &|id| id == 4), ["deleted-slot-returned"]);
        let ids = [NO_ID, 5, 5, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(c(&[Neighbor::new(0, 0.0)], 5, Some(&ids), &none), ["external-id-no-id"]);
        let two = [Neighbor::new(1, 0.0), Neighbor::new(2, 0.0)];
        assert_eq!(c(&two, 5, Some(&ids), &none), ["duplicate-external-id"]);
        let even = Bitset::from_fn(10, |i| i % 2 == 0);
        let e = Expect { k: 5, slots: 10, deleted: &none, ids: None, filter: Some(&even) };
        assert_eq!(causes(check_hits(&[Neighbor::new(3, 0.0)], &e)), ["filter-ignored"]);
    }
}
