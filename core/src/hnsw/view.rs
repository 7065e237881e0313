//! HNSW files: the parameters section, and opening a file in place with every graph field
//! validated (neighbour ids, degrees, levels, offsets) so a hostile file cannot make a search
//! read out of bounds or loop on garbage.

use core::ops::Range;
use core::sync::atomic::AtomicU32;

use super::{HnswIndex, HnswParams, VamanaParams, MAX_LEVEL, NONE};
use crate::format::{cast_u32, FileInfo, FormatError, IndexKind, OpenOptions, SectionKind};
use crate::format::{invalid as bad, range_in as range_of, ParamsReader};
use crate::graph::{LinkWords, Packed24, ScratchPool};
use crate::rng::Rng;
use crate::vectors::{Allowed, VectorsAt};
use crate::{Kernels, Result};

const PARAMS_LEN: usize = 48;

/// The PARAMS section: m, m0, ef_construction, entry, max_level, SQ re-rank factor (u32 each),
/// seed, upper word count, reserved (u64 each). The re-rank factor is 0 unless the file has
/// scalar-quantized codes; with codes, 0 means the file keeps no `f32` vectors.
pub(super) fn encode_params(
    p: &HnswParams,
    m0: usize,
    entry: u32,
    max_level: u8,
    upper_words: u64,
    sq_rerank: u32,
) -> [u8; PARAMS_LEN] {
    let mut b = [0u8; PARAMS_LEN];
    b[0..4].copy_from_slice(&(p.m as u32).to_le_bytes());
    b[4..8].copy_from_slice(&(m0 as u32).to_le_bytes());
    b[8..12].copy_from_slice(&(p.ef_construction as u32).to_le_bytes());
    b[12..16].copy_from_slice(&entry.to_le_bytes());
    b[16..20].copy_from_slice(&(max_level as u32).to_le_bytes());
    b[20..24].copy_from_slice(&sq_rerank.to_le_bytes());
    b[24..32].copy_from_slice(&p.seed.to_le_bytes());
    b[32..40].copy_from_slice(&upper_words.to_le_bytes());
    b
}

/// Vamana's PARAMS section: R, L, α (`f32` bits), medoid, SQ re-rank factor, link-word width
/// (u32 each), seed, reserved, reserved (u64 each). The medoid is the entry point. The width
/// is 3 when the level-0 lists are packed in three-byte words ([`Packed24`]); 0 (files written
/// before packing) means four-byte words.
pub(super) fn encode_vamana_params(
    p: &VamanaParams,
    medoid: u32,
    sq_rerank: u32,
    link_width: LinkWidth,
) -> [u8; PARAMS_LEN] {
    let mut b = [0u8; PARAMS_LEN];
    b[0..4].copy_from_slice(&(p.r as u32).to_le_bytes());
    b[4..8].copy_from_slice(&(p.l as u32).to_le_bytes());
    b[8..12].copy_from_slice(&p.alpha.to_bits().to_le_bytes());
    b[12..16].copy_from_slice(&medoid.to_le_bytes());
    b[16..20].copy_from_slice(&sq_rerank.to_le_bytes());
    let width: u32 = match link_width {
        LinkWidth::Four => 0,
        LinkWidth::Three => Packed24::WIDTH as u32,
    };
    b[20..24].copy_from_slice(&width.to_le_bytes());
    b[24..32].copy_from_slice(&p.seed.to_le_bytes());
    b
}

fn decode_vamana_params(b: &[u8]) -> Result<(Decoded, VamanaParams), FormatError> {
    let k = SectionKind::PARAMS;
    let b = ParamsReader::<PARAMS_LEN>::new(b)?;
    let (u32_at, u64_at) = (|i| b.u32(i), |i| b.u64(i));
    if u64_at(32) != 0 || u64_at(40) != 0 {
        return Err(bad(k, "reserved fields must be zero"));
    }
    let link_width = match u32_at(20) {
        0 => LinkWidth::Four,
        3 => LinkWidth::Three,
        _ => return Err(bad(k, "link words must be 3 or 4 bytes")),
    };
    let params = VamanaParams {
        r: u32_at(0) as usize,
        l: u32_at(4) as usize,
        alpha: f32::from_bits(u32_at(8)),
        seed: u64_at(24),
    };
    if params.check().is_err() {
        return Err(bad(k, "R must be 2 to 512, L at least 1 and alpha between 1 and 4"));
    }
    let sq_rerank = u32_at(16);
    if sq_rerank > MAX_RERANK {
        return Err(bad(k, "re-rank factor above 65536"));
    }
    let decoded = Decoded {
        params: HnswParams { m: params.r.min(256), ef_construction: params.l, seed: params.seed },
        m0: params.r,
        entry: u32_at(12),
        max_level: 0,
        upper_words: 0,
        sq_rerank,
        link_width,
    };
    Ok((decoded, params))
}

struct Decoded {
    params: HnswParams,
    m0: usize,
    entry: u32,
    max_level: u8,
    upper_words: u64,
    sq_rerank: u32,
    link_width: LinkWidth,
}

/// How wide a file's level-0 link words are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LinkWidth {
    Four,
    /// [`Packed24`]: flat (Vamana) graphs of fewer than 2^24 nodes.
    Three,
}

impl LinkWidth {
    /// The width a flat graph of `count` nodes is written with.
    pub(crate) fn for_flat_graph(count: usize) -> Self {
        if count <= Packed24::MAX as usize {
            Self::Three
        } else {
            Self::Four
        }
    }

    fn word_bytes(self) -> usize {
        match self {
            Self::Four => 4,
            Self::Three => Packed24::WIDTH,
        }
    }

    /// Bytes of a level-0 section of `words` words (padded to whole four-byte words).
    fn section_bytes(self, words: usize) -> Option<usize> {
        Some(words.checked_mul(self.word_bytes())?.next_multiple_of(4))
    }
}

/// The largest default re-rank factor a file may ask for.
const MAX_RERANK: u32 = 1 << 16;

fn decode_params(b: &[u8]) -> Result<Decoded, FormatError> {
    let k = SectionKind::PARAMS;
    let b = ParamsReader::<PARAMS_LEN>::new(b)?;
    let (u32_at, u64_at) = (|i| b.u32(i), |i| b.u64(i));
    let m = u32_at(0) as usize;
    let m0 = u32_at(4) as usize;
    if !(2..=256).contains(&m) {
        return Err(bad(k, "m must be between 2 and 256"));
    }
    if m0 != 2 * m {
        return Err(bad(k, "m0 must be 2 × m"));
    }
    let ef_construction = u32_at(8) as usize;
    if ef_construction == 0 {
        return Err(bad(k, "ef_construction must be at least 1"));
    }
    let max_level = u32_at(16);
    if max_level > MAX_LEVEL as u32 {
        return Err(bad(k, "max level above 31"));
    }
    if u64_at(40) != 0 {
        return Err(bad(k, "reserved fields must be zero"));
    }
    let sq_rerank = u32_at(20);
    if sq_rerank > MAX_RERANK {
        return Err(bad(k, "re-rank factor above 65536"));
    }
    Ok(Decoded {
        params: HnswParams { m, ef_construction, seed: u64_at(24) },
        m0,
        entry: u32_at(12),
        max_level: max_level as u8,
        upper_words: u64_at(32),
        sq_rerank,
        link_width: LinkWidth::Four,
    })
}

/// An HNSW (or Vamana) index read in place from file bytes (a memory map natively, a buffer in
/// the browser): the owned index's type over the [`Mapped`] store. Searches never copy the
/// vectors or the graph; the view cannot be mutated ([`HnswView::to_index`] copies it out).
pub type HnswView<B> = HnswIndex<Mapped<B>>;

/// The store of an index opened in place: the file's bytes and where each section lies in them
/// (every range validated at open: in bounds, aligned, whole words).
pub struct Mapped<B> {
    bytes: B,
    info: FileInfo,
    /// The rows (`f32` or binary16; none in a codes-only file) and SQ8 codes.
    vectors: VectorsAt,
    levels: Range<usize>,
    offsets: Range<usize>,
    links0: Range<usize>,
    link_width: LinkWidth,
    upper: Range<usize>,
    /// The deleted-slot bitset, when the file has one.
    deleted: Option<Range<usize>>,
    ids: Option<Range<usize>>,
}

impl<B: AsRef<[u8]>> super::GraphStore for Mapped<B> {}

impl<B: AsRef<[u8]>> super::store::Sealed for Mapped<B> {
    fn rows(&self) -> super::store::Rows<'_> {
        let raw = self.bytes.as_ref();
        let count = self.info.count as usize;
        // Validated at open: in bounds, aligned, whole elements.
        super::store::Rows {
            vectors: self.vectors.view(raw),
            levels: &raw[self.levels.clone()][..self.levels.len().min(count)],
            upper_offsets: bytemuck::cast_slice(&raw[self.offsets.clone()]),
            deleted: self.deleted(),
            count,
        }
    }
    fn count(&self) -> usize {
        self.info.count as usize
    }
    fn deleted(&self) -> &[u64] {
        // Validated at open: in bounds and 8-byte aligned.
        self.deleted.as_ref().map_or(&[], |r| bytemuck::cast_slice(&self.bytes.as_ref()[r.clone()]))
    }
    fn links(&self) -> super::store::Links<'_> {
        let raw = self.bytes.as_ref();
        // Validated at open: in bounds, aligned, whole words.
        match self.link_width {
            LinkWidth::Four => super::store::Links::Plain(
                bytemuck::cast_slice(&raw[self.links0.clone()]),
                bytemuck::cast_slice(&raw[self.upper.clone()]),
            ),
            // A packed graph is flat: no upper lists.
            LinkWidth::Three => super::store::Links::Packed(
                Packed24::new(&raw[self.links0.clone()]),
                Packed24::new(&raw[..0]),
            ),
        }
    }
}

impl<B: AsRef<[u8]>> HnswView<B> {
    /// Validates `bytes` and opens it for search without copying.
    pub fn open(bytes: B) -> Result<Self> {
        Self::open_with(bytes, OpenOptions::default())
    }

    /// Like [`HnswView::open`]; structure and graph are always validated, checksums and vector
    /// values only when `opts.verify_checksums`.
    pub fn open_with(bytes: B, opts: OpenOptions) -> Result<Self> {
        Self::open_kind(bytes, opts, IndexKind::Hnsw)
    }

    /// Opens an HNSW file, or (`kind` Vamana) a flat graph's file.
    pub(crate) fn open_kind(bytes: B, opts: OpenOptions, kind: IndexKind) -> Result<Self> {
        let raw = bytes.as_ref();
        let info = FileInfo::parse(raw, opts)?;
        info.expect_kind(kind)?;
        let params = info.section(raw, SectionKind::PARAMS)?;
        let (d, vamana) = match kind {
            IndexKind::Vamana => {
                let (d, v) = decode_vamana_params(params)?;
                (d, Some(v))
            }
            _ => (decode_params(params)?, None),
        };
        let dim = info.dim as usize;
        let count = usize::try_from(info.count).map_err(|_| FormatError::TooLarge { what: "node count" })?;
        if count >= NONE as usize {
            return Err(FormatError::TooLarge { what: "node count" }.into());
        }
        let size = |n: usize, each: usize| -> Result<u64, FormatError> {
            n.checked_mul(each).map(|b| b as u64).ok_or(FormatError::TooLarge { what: "section size" })
        };
        let allowed = Allowed { sq_rerank: Some(d.sq_rerank as usize), no_rows: false };
        let vectors = VectorsAt::find(&info, raw, count, dim, opts, allowed)?;
        // A flat graph's file has no levels, offsets or upper lists: they read as empty.
        let (levels, offsets_b, upper_b): (&[u8], &[u8], &[u8]) = if vamana.is_some() {
            (&raw[..0], &raw[..0], &raw[..0])
        } else {
            let upper_len =
                usize::try_from(d.upper_words).map_err(|_| FormatError::TooLarge { what: "upper graph" })?;
            (
                info.section_sized(raw, SectionKind::NODE_LEVELS, size(count.div_ceil(4), 4)?)?,
                info.section_sized(raw, SectionKind::UPPER_OFFSETS, size(count, 4)?)?,
                info.section_sized(raw, SectionKind::GRAPH_UPPER, size(upper_len, 4)?)?,
            )
        };
        let offsets = cast_u32(SectionKind::UPPER_OFFSETS, offsets_b)?;
        let upper = cast_u32(SectionKind::GRAPH_UPPER, upper_b)?;
        let words = count.checked_mul(d.m0 + 1).ok_or(FormatError::TooLarge { what: "section size" })?;
        let level0_bytes =
            d.link_width.section_bytes(words).ok_or(FormatError::TooLarge { what: "section size" })?;
        let links0_b = info.section_sized(raw, SectionKind::GRAPH_LEVEL0, level0_bytes as u64)?;
        let (deleted, dead) = match info.entry(SectionKind::DELETED) {
            None => (None, 0),
            Some(_) => {
                let kd = SectionKind::DELETED;
                let b = info.section_sized(raw, kd, size(count.div_ceil(64), 8)?)?;
                let words: &[u64] =
                    bytemuck::try_cast_slice(b).map_err(|_| FormatError::UnalignedBuffer { align: 8 })?;
                if count % 64 != 0 && words.last().is_some_and(|w| w >> (count % 64) != 0) {
                    return Err(bad(kd, "bits set beyond the last slot").into());
                }
                let dead: usize = words.iter().map(|w| w.count_ones() as usize).sum();
                let entry_dead =
                    (d.entry as usize) < count && (words[d.entry as usize / 64] >> (d.entry % 64)) & 1 == 1;
                // A Vamana graph's deleted nodes stay traversable until consolidation, its
                // medoid among them.
                if entry_dead && vamana.is_none() {
                    return Err(bad(kd, "the entry point is deleted").into());
                }
                (Some(range_of(raw, b)), dead)
            }
        };
        let (node_levels, padding) = if vamana.is_some() { (levels, levels) } else { levels.split_at(count) };
        match d.link_width {
            LinkWidth::Four => {
                let links0 = cast_u32(SectionKind::GRAPH_LEVEL0, links0_b)?;
                validate_graph(&d, count, dead == count, node_levels, padding, offsets, links0, upper)?;
            }
            LinkWidth::Three => {
                let (packed, pad) = links0_b.split_at(words * Packed24::WIDTH);
                if pad.iter().any(|&b| b != 0) {
                    return Err(bad(SectionKind::GRAPH_LEVEL0, "padding must be zero").into());
                }
                let links0 = Packed24::new(packed);
                validate_graph(&d, count, dead == count, node_levels, padding, offsets, links0, upper)?;
            }
        }
        let deleted_words: &[u64] = match &deleted {
            Some(r) => bytemuck::try_cast_slice(&raw[r.clone()])
                .map_err(|_| FormatError::UnalignedBuffer { align: 8 })?,
            None => &[],
        };
        let live =
            |slot: u32| deleted_words.get(slot as usize / 64).is_none_or(|w| (w >> (slot % 64)) & 1 == 0);
        let ids = crate::format::ids_section(&info, raw, live)?;
        let store = Mapped {
            vectors,
            levels: range_of(raw, levels),
            offsets: range_of(raw, offsets_b),
            links0: range_of(raw, &links0_b[..words * d.link_width.word_bytes()]),
            link_width: d.link_width,
            upper: range_of(raw, upper_b),
            deleted,
            ids,
            info,
            bytes,
        };
        Ok(Self {
            dim,
            metric: store.info.metric,
            kernels: Kernels::best(),
            params: d.params,
            m0: d.m0,
            entry: d.entry,
            max_level: d.max_level,
            dead,
            vamana,
            scratch: ScratchPool::default(),
            store,
        })
    }

    /// The validated header and section table.
    pub fn info(&self) -> &FileInfo {
        &self.store.info
    }

    /// The file's caller ids, one per slot, when it has an `ids` section (else ids are slots).
    pub fn ids(&self) -> Option<&[u32]> {
        // Validated at open: in bounds, aligned, one u32 per slot.
        self.store.ids.as_ref().map(|r| bytemuck::cast_slice(&self.store.bytes.as_ref()[r.clone()]))
    }

    /// The underlying file bytes.
    pub fn bytes(&self) -> &[u8] {
        self.store.bytes.as_ref()
    }

    /// An owned copy that can take more inserts.
    pub fn to_index(&self) -> HnswIndex {
        use super::store::{Links, Sealed};
        let rows = self.store.rows();
        let count = rows.count;
        let flat = self.vamana.is_some();
        let (links0, upper) = match self.store.links() {
            Links::Plain(l0, up) => (atomics(l0), atomics(up)),
            Links::Packed(l0, up) => (atomics(l0), atomics(up)),
            Links::Atomic(l0, up) => (atomics(l0), atomics(up)),
        };
        let degree = |i: u32| links0[i as usize * (self.m0 + 1)].load(core::sync::atomic::Ordering::Relaxed);
        let free = (0..count as u32).filter(|&i| self.is_deleted(i) && (!flat || degree(i) == 0)).collect();
        HnswIndex {
            dim: self.dim,
            metric: self.metric,
            kernels: self.kernels,
            params: self.params,
            m0: self.m0,
            entry: self.entry,
            max_level: self.max_level,
            dead: self.dead,
            vamana: self.vamana,
            scratch: ScratchPool::default(),
            store: super::Owned {
                vectors: self.vectors().to_store(),
                // A flat graph's nodes are all on level 0, with no upper blocks.
                levels: if flat { alloc::vec![0; count] } else { rows.levels[..count].to_vec() },
                upper_offsets: if flat { alloc::vec![0; count] } else { rows.upper_offsets.to_vec() },
                links0,
                upper,
                // Continue with a stream derived from the seed and the count: deterministic,
                // though not the stream an uninterrupted build would have used.
                rng: Rng::derive(self.params.seed, count as u64),
                deleted: rows.deleted.to_vec(),
                // A Vamana graph's deleted nodes are free once consolidation has emptied their
                // lists; until then they stay traversable.
                free,
            },
        }
    }
}

/// `words` as atomics an owned graph links with.
fn atomics<L: ?Sized + LinkWords>(words: &L) -> alloc::vec::Vec<AtomicU32> {
    (0..words.len()).map(|i| AtomicU32::new(words.word(i))).collect()
}

#[allow(clippy::too_many_arguments)]
fn validate_graph<L: ?Sized + LinkWords>(
    d: &Decoded,
    count: usize,
    all_deleted: bool,
    levels: &[u8],
    padding: &[u8],
    offsets: &[u32],
    links0: &L,
    upper: &[u32],
) -> Result<(), FormatError> {
    let kl = SectionKind::NODE_LEVELS;
    if padding.iter().any(|&b| b != 0) {
        return Err(bad(kl, "padding must be zero"));
    }
    if count == 0 {
        if d.entry != NONE || !upper.is_empty() {
            return Err(bad(SectionKind::PARAMS, "an empty graph has no entry point"));
        }
        return Ok(());
    }
    if d.entry == NONE && all_deleted {
        // Every slot deleted: no entry point, but the graph must still be well formed.
    } else if d.entry as usize >= count {
        return Err(bad(SectionKind::PARAMS, "entry point is not a node"));
    } else if levels.get(d.entry as usize).is_some_and(|&l| l != d.max_level) {
        return Err(bad(SectionKind::PARAMS, "entry point is not on the top level"));
    }
    let block = d.params.m + 1;
    let mut expected: u64 = 0;
    for (&level, &off) in levels.iter().zip(offsets) {
        if level > d.max_level {
            return Err(bad(kl, "a node is above the top level"));
        }
        if off as u64 != expected {
            return Err(bad(SectionKind::UPPER_OFFSETS, "offsets are not the running sum of upper blocks"));
        }
        expected += level as u64 * block as u64;
    }
    if expected != upper.len() as u64 {
        return Err(bad(SectionKind::GRAPH_UPPER, "length does not match the node levels"));
    }
    let k0 = SectionKind::GRAPH_LEVEL0;
    for node in 0..count {
        let base = node * (d.m0 + 1);
        let len = links0.word(base) as usize;
        if len > d.m0 {
            return Err(bad(k0, "a node has more than m0 neighbours"));
        }
        if (base + 1..=base + len).any(|i| links0.word(i) as usize >= count) {
            return Err(bad(k0, "a neighbour id is not a node"));
        }
    }
    let ku = SectionKind::GRAPH_UPPER;
    for (&level, &off) in levels.iter().zip(offsets) {
        for l in 1..=level as usize {
            let start = off as usize + (l - 1) * block;
            let list = &upper[start..start + block];
            let len = list[0] as usize;
            if len > d.params.m {
                return Err(bad(ku, "a node has more than m neighbours on an upper level"));
            }
            for &n in &list[1..=len] {
                if n as usize >= count {
                    return Err(bad(ku, "a neighbour id is not a node"));
                }
                if (levels[n as usize] as usize) < l {
                    return Err(bad(ku, "a neighbour is not on that level"));
                }
            }
        }
    }
    Ok(())
}
