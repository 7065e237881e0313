//! Re-packing an SSD index without building its graph again: the same nodes, neighbours and
//! rows written with another block size or placement. A graph of a billion nodes takes hours
//! to build and minutes to re-pack, so a layout can be tried on the graph one already has.

use std::path::Path;

use neardb_core::vectors::VectorForm;
use neardb_core::{Metric, VamanaParams};

use super::read::ReaderKind;
use super::write::{write_nodes, NodeSource, PQ_TRAINING_ROWS};
use super::{DiskError, DiskIndex, DiskOpenOptions, DiskWriteParams, DiskWriteReport};

/// Writes the graph, vectors and rows of the SSD index at `input` again at `output` with
/// `params` (block size, placement, vector form, PQ bytes). The PQ codebooks are trained
/// again, on the file's own vectors (binary16 ones decoded); each node keeps its row, so
/// searches answer the same rows. `output` may be `input`: the new file replaces it only once
/// it is complete and synced.
pub fn relayout_disk_index(
    input: &Path,
    output: &Path,
    params: DiskWriteParams,
) -> Result<DiskWriteReport, DiskError> {
    // Through the page cache: every node is read three times, in three different orders.
    let opts = DiskOpenOptions {
        reader: ReaderKind::Pread,
        direct: false,
        cache_nodes: 0,
        sector_neighbors: false,
        sampled_entries: false,
    };
    let index = DiskIndex::open(input, opts)?;
    let mut rows = Vec::with_capacity(index.header.count as usize);
    index.for_each_vector(&mut |row, _| rows.push(row))?;
    let graph = FileGraph { index: &index, last: Default::default() };
    write_nodes(output, &graph, Some(&rows), params, PQ_TRAINING_ROWS)
}

/// An SSD index file read back as a graph: node ids are slots. The writer asks for a node's
/// vector and then its neighbours, so the last node read is kept and read once.
struct FileGraph<'a> {
    index: &'a DiskIndex,
    last: std::cell::RefCell<(Option<u32>, Vec<u8>)>,
}

impl FileGraph<'_> {
    fn with_node<T>(&self, slot: u32, f: impl FnOnce(&[u8]) -> Result<T, DiskError>) -> Result<T, DiskError> {
        let mut last = self.last.borrow_mut();
        if last.0 != Some(slot) {
            let (held, bytes) = &mut *last;
            *held = None;
            bytes.clear();
            self.index.read_nodes(&[slot], &mut |_, node| bytes.extend_from_slice(node))?;
            *held = Some(slot);
        }
        f(&last.1)
    }
}

impl NodeSource for FileGraph<'_> {
    fn count(&self) -> usize {
        self.index.header.count as usize
    }
    fn dim(&self) -> usize {
        self.index.header.dim as usize
    }
    fn metric(&self) -> Metric {
        self.index.header.metric
    }
    fn params(&self) -> VamanaParams {
        let h = &self.index.header;
        VamanaParams {
            r: h.max_degree as usize,
            l: h.build_l as usize,
            alpha: f32::from_bits(h.build_alpha_bits),
            seed: h.build_seed,
        }
    }
    fn medoid(&self) -> u32 {
        self.index.header.medoid as u32
    }
    fn stores_f16(&self) -> bool {
        self.index.header.form == VectorForm::F16
    }
    fn vector(&self, slot: u32, out: &mut Vec<f32>) -> Result<(), DiskError> {
        self.with_node(slot, |node| {
            let mut buf = Vec::new();
            let values = self.index.node_vector(node, &mut buf);
            out.clear();
            out.extend_from_slice(values);
            Ok(())
        })
    }
    fn neighbors(&self, slot: u32, out: &mut Vec<u32>) -> Result<(), DiskError> {
        self.with_node(slot, |node| {
            let (links, _) = self.index.parse_links(slot, node)?;
            out.clear();
            out.extend(links);
            Ok(())
        })
    }
}
