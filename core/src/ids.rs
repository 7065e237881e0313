//! Caller-chosen ids ("external ids") over an index's dense slots.
//!
//! Indexes number their vectors by slot (`0..count`), which is what the graph and the file
//! layout need. Applications have their own ids (a row key, a document number). [`IdMap`]
//! keeps the two apart: it maps slot → id for results and id → slot for removal and filters,
//! and it is stored in a file's optional `ids` section, so a file written with custom ids
//! answers with them wherever it is opened. While every id equals its slot (the common case:
//! ids never given, nothing removed) the map is the identity and costs nothing, and the file
//! carries no `ids` section.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::{Error, Result};

/// The one id value that names no vector: deleted slots carry it in the `ids` section.
pub const NO_ID: u32 = u32::MAX;

/// Maps slots to caller ids and back. See the module documentation.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IdMap {
    /// Slots in use (live or deleted-but-not-reused), the length of the slot space.
    slots: u32,
    /// `None` while every id equals its slot.
    explicit: Option<Explicit>,
    /// The id an added vector gets when the caller gives none.
    next: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Explicit {
    /// Id of each slot, [`NO_ID`] for a slot holding no live vector.
    by_slot: Vec<u32>,
    /// Slot of each live id.
    by_id: BTreeMap<u32, u32>,
}

impl IdMap {
    /// The identity over `slots` slots (ids `0..slots`).
    pub fn identity(slots: u32) -> Self {
        Self { slots, explicit: None, next: slots as u64 }
    }

    /// The map stored in a file's `ids` section: `by_slot[s]` is the id of slot `s`, [`NO_ID`]
    /// where `live(s)` is false. Fails if a live slot has no id or two live slots share one.
    pub fn from_ids(by_slot: &[u32], live: impl Fn(u32) -> bool) -> Result<Self> {
        let slots = u32::try_from(by_slot.len()).map_err(|_| Error::CapacityExceeded {
            count: by_slot.len() as u64,
            adding: 0,
            max: u32::MAX as u64,
        })?;
        let mut by_id = BTreeMap::new();
        let mut ids = Vec::with_capacity(by_slot.len());
        let mut next = 0u64;
        for (slot, &id) in (0u32..).zip(by_slot) {
            if !live(slot) {
                ids.push(NO_ID);
                continue;
            }
            if id == NO_ID {
                return Err(Error::ReservedId { id });
            }
            if by_id.insert(id, slot).is_some() {
                return Err(Error::DuplicateId { id: id as u64 });
            }
            ids.push(id);
            next = next.max(id as u64 + 1);
        }
        Ok(Self { slots, explicit: Some(Explicit { by_slot: ids, by_id }), next })
    }

    /// The same ids after the index renamed its slots (`old_of_new[new]` is the slot `new` had
    /// before, as `HnswIndex::reorder_for_locality` returns it); `live` says which new slots
    /// hold vectors. The next automatic id stays where it was.
    pub fn permuted(&self, old_of_new: &[u32], live: impl Fn(u32) -> bool) -> Result<Self> {
        let by_slot: Vec<u32> = old_of_new.iter().map(|&old| self.id_of(old)).collect();
        let mut out = Self::from_ids(&by_slot, live)?;
        out.next = out.next.max(self.next);
        Ok(out)
    }

    /// The caller id of `slot` (the slot itself under the identity).
    #[inline]
    pub fn id_of(&self, slot: u32) -> u32 {
        match &self.explicit {
            None => slot,
            Some(e) => e.by_slot.get(slot as usize).copied().unwrap_or(NO_ID),
        }
    }

    /// The slot holding `id`, if any. Under the identity this is `id` itself whenever it is
    /// below the slot count; the caller still has to ask its index whether the slot is live.
    #[inline]
    pub fn slot_of(&self, id: u32) -> Option<u32> {
        match &self.explicit {
            None => (id < self.slots).then_some(id),
            Some(e) => e.by_id.get(&id).copied(),
        }
    }

    /// Whether every id equals its slot.
    pub fn is_identity(&self) -> bool {
        self.explicit.is_none()
    }

    /// The id the next vector added without an id gets: one past the largest id ever used.
    pub fn next_id(&self) -> u64 {
        self.next
    }

    /// The `ids` section to store, `None` under the identity.
    pub fn section(&self) -> Option<&[u32]> {
        self.explicit.as_ref().map(|e| e.by_slot.as_slice())
    }

    /// Checks a batch of `n` ids before anything is added: one id per vector, no id twice,
    /// none in use, none equal to [`NO_ID`]. Without ids, checks the automatic ids fit.
    pub fn check_new(&self, n: usize, ids: Option<&[u32]>) -> Result<()> {
        let Some(ids) = ids else {
            if self.next + n as u64 > NO_ID as u64 {
                return Err(Error::CapacityExceeded {
                    count: self.next,
                    adding: n as u64,
                    max: NO_ID as u64,
                });
            }
            return Ok(());
        };
        if ids.len() != n {
            return Err(Error::IdCountMismatch { vectors: n, ids: ids.len() });
        }
        let mut seen = BTreeMap::new();
        for &id in ids {
            if id == NO_ID {
                return Err(Error::ReservedId { id });
            }
            if self.contains(id) || seen.insert(id, ()).is_some() {
                return Err(Error::DuplicateId { id: id as u64 });
            }
        }
        Ok(())
    }

    /// Whether `id` names a live vector. Under the identity every id below the slot count is
    /// taken to be live, so `check_new` stays conservative: a removed slot's id is not handed
    /// out again.
    fn contains(&self, id: u32) -> bool {
        match &self.explicit {
            None => id < self.slots,
            Some(e) => e.by_id.contains_key(&id),
        }
    }

    /// Records that the index stored a batch in `slots` (new slots are `>=` the slot count,
    /// reused ones below it), under `ids` or the automatic ids. Call after
    /// [`check_new`](Self::check_new) and a successful add.
    pub fn record_add(&mut self, slots: &[u32], ids: Option<&[u32]>) {
        let start = self.slots;
        let auto = |i: usize| (self.next + i as u64) as u32;
        let stays_identity = self.explicit.is_none()
            && slots.iter().enumerate().all(|(i, &s)| {
                let id = ids.map_or_else(|| auto(i), |ids| ids[i]);
                s == start + i as u32 && id == s
            });
        let new_ids: Vec<u32> = (0..slots.len()).map(|i| ids.map_or_else(|| auto(i), |ids| ids[i])).collect();
        let top = slots.iter().map(|&s| s + 1).max().unwrap_or(0).max(start);
        if stays_identity {
            self.slots = top;
            self.next = self.next.max(top as u64);
            return;
        }
        let e = self.materialize();
        if e.by_slot.len() < top as usize {
            e.by_slot.resize(top as usize, NO_ID);
        }
        for (&slot, &id) in slots.iter().zip(&new_ids) {
            let old = core::mem::replace(&mut e.by_slot[slot as usize], id);
            if old != NO_ID {
                e.by_id.remove(&old);
            }
            e.by_id.insert(id, slot);
        }
        self.slots = top;
        let max_new = new_ids.iter().map(|&id| id as u64 + 1).max().unwrap_or(0);
        self.next = self.next.max(max_new);
    }

    /// Records that the vector `id` was removed and its slot left empty (to be reused).
    pub fn record_remove(&mut self, id: u32) {
        if let Some(slot) = self.slot_of(id) {
            let e = self.materialize();
            e.by_id.remove(&id);
            e.by_slot[slot as usize] = NO_ID;
        }
    }

    /// Records a swap-remove: the vector in `slot` is gone and the last slot's vector moved
    /// into `slot` (nothing moves when `slot` is the last one); the slot space shrinks by one.
    pub fn record_swap_remove(&mut self, slot: u32) {
        if slot >= self.slots {
            return;
        }
        let last = self.slots - 1;
        let e = self.materialize();
        let gone = e.by_slot[slot as usize];
        if gone != NO_ID {
            e.by_id.remove(&gone);
        }
        let moved = e.by_slot[last as usize];
        if slot != last {
            e.by_slot[slot as usize] = moved;
            if moved != NO_ID {
                e.by_id.insert(moved, slot);
            }
        }
        e.by_slot.pop();
        self.slots = last;
    }

    fn materialize(&mut self) -> &mut Explicit {
        let slots = self.slots;
        self.explicit.get_or_insert_with(|| Explicit {
            by_slot: (0..slots).collect(),
            by_id: (0..slots).map(|s| (s, s)).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_until_an_id_differs_from_its_slot() {
        let mut m = IdMap::identity(0);
        m.check_new(3, None).unwrap();
        m.record_add(&[0, 1, 2], None);
        assert!(m.is_identity());
        assert_eq!(m.section(), None);
        m.check_new(2, Some(&[3, 4])).unwrap();
        m.record_add(&[3, 4], Some(&[3, 4]));
        assert!(m.is_identity());
        m.check_new(1, Some(&[100])).unwrap();
        m.record_add(&[5], Some(&[100]));
        assert!(!m.is_identity());
        assert_eq!(m.section(), Some(&[0, 1, 2, 3, 4, 100][..]));
        assert_eq!(m.slot_of(100), Some(5));
        assert_eq!(m.id_of(5), 100);
        assert_eq!(m.next_id(), 101);
    }

    #[test]
    fn duplicates_reserved_and_mismatched_counts_are_rejected() {
        let mut m = IdMap::identity(0);
        m.record_add(&[0, 1], Some(&[10, 20]));
        assert_eq!(m.check_new(1, Some(&[10])), Err(Error::DuplicateId { id: 10 }));
        assert_eq!(m.check_new(2, Some(&[7, 7])), Err(Error::DuplicateId { id: 7 }));
        assert_eq!(m.check_new(1, Some(&[NO_ID])), Err(Error::ReservedId { id: NO_ID }));
        assert_eq!(m.check_new(2, Some(&[1])), Err(Error::IdCountMismatch { vectors: 2, ids: 1 }));
        m.check_new(1, Some(&[11])).unwrap();
    }

    #[test]
    fn remove_then_reuse_and_swap_move() {
        let mut m = IdMap::identity(0);
        m.record_add(&[0, 1, 2], None);
        m.record_remove(1);
        assert_eq!(m.slot_of(1), None);
        assert_eq!(m.id_of(1), NO_ID);
        // A reused slot gets a fresh automatic id, never the removed one.
        m.check_new(1, None).unwrap();
        m.record_add(&[1], None);
        assert_eq!(m.id_of(1), 3);
        assert_eq!(m.slot_of(3), Some(1));
        // Swap-remove: id 0 leaves slot 0, the last slot's vector (id 2) moves in.
        m.record_swap_remove(0);
        assert_eq!(m.slot_of(2), Some(0));
        assert_eq!(m.slot_of(0), None);
        assert_eq!(m.section(), Some(&[2, 3][..]));
        // Removing the last slot moves nothing.
        m.record_swap_remove(1);
        assert_eq!(m.section(), Some(&[2][..]));
        assert_eq!(m.slot_of(3), None);
    }

    fn to_vec(write: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<(), ()>) -> Result<u64, ()>) -> Vec<u8> {
        let mut out = Vec::new();
        write(&mut |b: &[u8]| {
            out.extend_from_slice(b);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn ids_section_round_trips_through_files_and_a_wrong_size_is_rejected() {
        use crate::format::{write_index, AlignedBytes, FormatError, IndexKind, SectionKind, SectionRef};
        use crate::{FlatIndex, FlatView, HnswIndex, HnswParams, HnswView, Metric};
        let data = [0.0f32, 0.0, 1.0, 1.0, 2.0, 2.0];
        let mut m = IdMap::identity(0);
        m.record_add(&[0, 1, 2], Some(&[30, 10, 20]));

        let mut flat = FlatIndex::new(2, Metric::L2).unwrap();
        flat.add(&data).unwrap();
        let bytes = AlignedBytes::copy_from(&to_vec(|sink| flat.write_with_ids(&m, sink)));
        assert_eq!(FlatView::open(bytes.as_slice()).unwrap().ids(), Some(&[30, 10, 20][..]));
        // The identity writes no section at all: the plain file.
        let plain = to_vec(|sink| flat.write_with_ids(&IdMap::identity(3), sink));
        assert_eq!(plain, flat.to_bytes());

        let mut hnsw = HnswIndex::new(2, Metric::L2, HnswParams::default()).unwrap();
        hnsw.add(&data).unwrap();
        let bytes = AlignedBytes::copy_from(&to_vec(|sink| hnsw.write_with_ids(&m, sink)));
        let view = HnswView::open(bytes.as_slice()).unwrap();
        assert_eq!(view.ids(), Some(&[30, 10, 20][..]));
        assert_eq!(IdMap::from_ids(view.ids().unwrap(), |_| true).unwrap().slot_of(10), Some(1));

        // Two ids for three vectors.
        let two = [30u32, 10];
        let sections = [
            SectionRef { kind: SectionKind::VECTORS, bytes: bytemuck::cast_slice(&data) },
            SectionRef { kind: SectionKind::IDS, bytes: bytemuck::cast_slice(&two) },
        ];
        let bad = to_vec(|sink| write_index(IndexKind::Flat, Metric::L2, 2, 3, &sections, sink));
        let bad = AlignedBytes::copy_from(&bad);
        match FlatView::open(bad.as_slice()) {
            Err(Error::Format(FormatError::SectionSize { kind, expected: 12, actual: 8 })) => {
                assert_eq!(kind, SectionKind::IDS)
            }
            other => panic!("expected a section size error, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn from_ids_validates_live_slots() {
        let m = IdMap::from_ids(&[5, NO_ID, 9], |s| s != 1).unwrap();
        assert_eq!(m.slot_of(9), Some(2));
        assert_eq!(m.next_id(), 10);
        assert_eq!(IdMap::from_ids(&[5, 5], |_| true), Err(Error::DuplicateId { id: 5 }));
        assert_eq!(IdMap::from_ids(&[NO_ID], |_| true), Err(Error::ReservedId { id: NO_ID }));
    }

    #[test]
    fn a_permutation_of_slots_keeps_every_id_and_the_next_one() {
        // Identity over 4 slots, slot 2 dead; new slot k held old slot [3, 0, 2, 1][k].
        let m = IdMap::identity(4).permuted(&[3, 0, 2, 1], |s| s != 2).unwrap();
        assert_eq!((0..4).map(|s| m.id_of(s)).collect::<Vec<_>>(), [3, 0, NO_ID, 1]);
        assert_eq!((m.slot_of(3), m.slot_of(1), m.slot_of(2)), (Some(0), Some(3), None));
        assert_eq!(m.next_id(), 4, "the dead slot's id is not handed out again");
        // Explicit ids move with their slots.
        let e = IdMap::from_ids(&[70, 80, 90], |_| true).unwrap().permuted(&[2, 0, 1], |_| true).unwrap();
        assert_eq!(e.section(), Some(&[90, 70, 80][..]));
    }
}
