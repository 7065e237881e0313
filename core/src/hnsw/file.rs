//! Writing HNSW and Vamana graphs in the index file format (opening them is `view`).

use alloc::vec::Vec;
use core::sync::atomic::Ordering::Relaxed;

use super::view::{self, LinkWidth};
use super::HnswIndex;
use crate::format::{write_index, IndexKind, SectionKind, SectionRef};
use crate::graph::Packed24;

impl HnswIndex {
    /// Writes the index in the file format to `sink`; returns the bytes written.
    pub fn write<E>(
        &self,
        sink: &mut dyn FnMut(&[u8]) -> core::result::Result<(), E>,
    ) -> core::result::Result<u64, E> {
        self.write_with_ids(&crate::IdMap::identity(self.store.levels.len() as u32), sink)
    }

    /// Like [`write`](Self::write), storing caller ids (an `ids` section unless `ids` is the
    /// identity). `ids` must cover exactly this index's slots.
    pub fn write_with_ids<E>(
        &self,
        ids: &crate::IdMap,
        sink: &mut dyn FnMut(&[u8]) -> core::result::Result<(), E>,
    ) -> core::result::Result<u64, E> {
        debug_assert!(ids.section().is_none_or(|s| s.len() == self.store.levels.len()));
        let links0: Vec<u32> = self.store.links0.iter().map(|a| a.load(Relaxed)).collect();
        let upper: Vec<u32> = self.store.upper.iter().map(|a| a.load(Relaxed)).collect();
        let vectors = self.store.vectors.view();
        let rerank = vectors.sq.map_or(0, |s| s.rerank) as u32;
        // A flat graph of fewer than 2^24 nodes keeps its lists in three-byte words.
        let width = match self.vamana {
            Some(_) => LinkWidth::for_flat_graph(self.store.levels.len()),
            None => LinkWidth::Four,
        };
        let (kind, params) = match &self.vamana {
            Some(v) => (IndexKind::Vamana, view::encode_vamana_params(v, self.entry, rerank, width)),
            None => {
                let p = view::encode_params(
                    &self.params,
                    self.m0,
                    self.entry,
                    self.max_level,
                    upper.len() as u64,
                    rerank,
                );
                (IndexKind::Hnsw, p)
            }
        };
        let mut levels = self.store.levels.clone();
        // Sections hold whole words; pad the byte array.
        levels.resize(self.store.levels.len().div_ceil(4) * 4, 0);
        let mut sections = alloc::vec![SectionRef { kind: SectionKind::PARAMS, bytes: &params }];
        sections.extend(vectors.row_section());
        if self.vamana.is_none() {
            // A flat graph has no levels: every node is on level 0.
            sections.extend([
                SectionRef { kind: SectionKind::NODE_LEVELS, bytes: &levels },
                SectionRef {
                    kind: SectionKind::UPPER_OFFSETS,
                    bytes: bytemuck::cast_slice(&self.store.upper_offsets),
                },
            ]);
        }
        let packed;
        let level0: &[u8] = match width {
            LinkWidth::Four => bytemuck::cast_slice(&links0),
            LinkWidth::Three => {
                packed = Packed24::pack(&links0);
                &packed
            }
        };
        sections.push(SectionRef { kind: SectionKind::GRAPH_LEVEL0, bytes: level0 });
        if self.vamana.is_none() {
            sections.push(SectionRef { kind: SectionKind::GRAPH_UPPER, bytes: bytemuck::cast_slice(&upper) });
        }
        // The deleted section is written only when something was deleted.
        if self.store.deleted.iter().any(|&w| w != 0) {
            sections.push(SectionRef {
                kind: SectionKind::DELETED,
                bytes: bytemuck::cast_slice(&self.store.deleted),
            });
        }
        let mut ranges = Vec::new();
        sections.extend(vectors.code_sections(&mut ranges));
        if let Some(ids) = ids.section() {
            sections.push(SectionRef { kind: SectionKind::IDS, bytes: bytemuck::cast_slice(ids) });
        }
        write_index(kind, self.metric, self.dim as u32, self.store.levels.len() as u64, &sections, sink)
    }

    /// The index as file-format bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = self.write(&mut |b: &[u8]| -> core::result::Result<(), core::convert::Infallible> {
            out.extend_from_slice(b);
            Ok(())
        });
        out
    }
}
