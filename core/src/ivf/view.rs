//! IVF-PQ files: the parameters section, and opening a file in place with every list field
//! validated (offsets, slots, sizes, codebooks) so a hostile file cannot make a search read
//! out of bounds or return an id twice.
//!
//! Codes, list offsets, slots and full vectors are read in place. The codebooks (`dim × ksub`
//! floats) are copied into a [`ProductQuantizer`], and the L2 term table is recomputed from
//! them at open with the same code the owned index uses, so both search bit-identically.

use alloc::vec;
use core::ops::Range;

use super::search::{InvertedLists, ScratchPool};
use super::store::Sealed as _;
use super::{residual_terms_for, IvfPqIndex, IvfPqParams, List, MAX_NLIST};
use crate::format::{cast_f32, cast_u32, FileInfo, FormatError, IndexKind, OpenOptions, SectionKind};
use crate::format::{invalid as bad, range_in as range_of, ParamsReader};
use crate::quant::ProductQuantizer;
use crate::vectors::{Allowed, Rows, VectorForm, VectorsAt};
use crate::{Kernels, Metric, Result};

const PARAMS_LEN: usize = 64;
const FLAG_TRAINED: u32 = 1;
const FLAG_VECTORS: u32 = 2;

/// The PARAMS section (little-endian):
/// `0` nlist u32, `4` pq_m u32, `8` nbits u32, `12` flags u32 (bit 0 trained, bit 1 full
/// vectors kept), `16` seed u64, `24` kmeans_iterations u32, `28` pq_iterations u32,
/// `32` train_sample u64, `40..64` reserved; reserved bytes are zero.
pub(super) fn encode_params(p: &IvfPqParams, trained: bool) -> [u8; PARAMS_LEN] {
    let mut b = [0u8; PARAMS_LEN];
    let flags = if trained { FLAG_TRAINED } else { 0 } | if p.keep_vectors { FLAG_VECTORS } else { 0 };
    b[0..4].copy_from_slice(&(p.nlist as u32).to_le_bytes());
    b[4..8].copy_from_slice(&(p.pq_m as u32).to_le_bytes());
    b[8..12].copy_from_slice(&(p.nbits as u32).to_le_bytes());
    b[12..16].copy_from_slice(&flags.to_le_bytes());
    b[16..24].copy_from_slice(&p.seed.to_le_bytes());
    b[24..28].copy_from_slice(&(p.kmeans_iterations as u32).to_le_bytes());
    b[28..32].copy_from_slice(&(p.pq_iterations as u32).to_le_bytes());
    b[32..40].copy_from_slice(&(p.train_sample as u64).to_le_bytes());
    b
}

fn decode_params(b: &[u8]) -> Result<(IvfPqParams, bool), FormatError> {
    let k = SectionKind::PARAMS;
    let b = ParamsReader::<PARAMS_LEN>::new(b)?;
    let (u32_at, u64_at) = (|i| b.u32(i), |i| b.u64(i));
    let nlist = u32_at(0) as usize;
    if nlist == 0 || nlist > MAX_NLIST {
        return Err(bad(k, "nlist must be between 1 and 2^22"));
    }
    let nbits = u32_at(8);
    if nbits != 4 && nbits != 8 {
        return Err(bad(k, "nbits must be 4 or 8"));
    }
    let flags = u32_at(12);
    if flags & !(FLAG_TRAINED | FLAG_VECTORS) != 0 {
        return Err(bad(k, "unknown flags set"));
    }
    let kmeans_iterations = u32_at(24) as usize;
    let pq_iterations = u32_at(28) as usize;
    if kmeans_iterations == 0 || pq_iterations == 0 {
        return Err(bad(k, "k-means iterations must be at least 1"));
    }
    if !b.zero_from(40) {
        return Err(bad(k, "reserved fields must be zero"));
    }
    let train_sample =
        usize::try_from(u64_at(32)).map_err(|_| FormatError::TooLarge { what: "train sample" })?;
    let params = IvfPqParams {
        nlist,
        pq_m: u32_at(4) as usize,
        nbits: nbits as u8,
        seed: u64_at(16),
        train_sample,
        kmeans_iterations,
        pq_iterations,
        keep_vectors: flags & FLAG_VECTORS != 0,
    };
    Ok((params, flags & FLAG_TRAINED != 0))
}

/// Lists read from file bytes; offsets validated at open (monotonic, ending at the count).
pub struct FileLists<'a> {
    offsets: &'a [u32],
    slots: &'a [u32],
    codes: &'a [u8],
    code_len: usize,
}

impl InvertedLists for FileLists<'_> {
    #[inline]
    fn list(&self, i: usize) -> (&[u32], &[u8]) {
        let (Some(&start), Some(&end)) = (self.offsets.get(i), self.offsets.get(i + 1)) else {
            return (&[], &[]);
        };
        let (start, end) = (start as usize, end as usize);
        match (self.slots.get(start..end), self.codes.get(start * self.code_len..end * self.code_len)) {
            (Some(s), Some(c)) => (s, c),
            _ => (&[], &[]),
        }
    }
}

/// An IVF-PQ index read in place from file bytes (a memory map natively, a buffer in the
/// browser): the owned index's type over the [`Mapped`] store. It searches exactly as the
/// [`IvfPqIndex`] it was written from and cannot be mutated.
pub type IvfPqView<B> = IvfPqIndex<Mapped<B>>;

/// The store of an IVF-PQ file read in place: its bytes and where each section lies (every
/// range validated at open).
pub struct Mapped<B> {
    bytes: B,
    info: FileInfo,
    centroids: Range<usize>,
    offsets: Range<usize>,
    slots: Range<usize>,
    codes: Range<usize>,
    vectors: VectorsAt,
    ids: Option<Range<usize>>,
}

impl<B: AsRef<[u8]>> super::IvfStore for Mapped<B> {}

// Every range was validated at open: in bounds, aligned, whole elements.
impl<B: AsRef<[u8]>> super::store::Sealed for Mapped<B> {
    type Lists<'a>
        = FileLists<'a>
    where
        Self: 'a;
    fn centroids(&self) -> &[f32] {
        bytemuck::cast_slice(&self.bytes.as_ref()[self.centroids.clone()])
    }
    fn lists(&self, code_len: usize) -> FileLists<'_> {
        let raw = self.bytes.as_ref();
        FileLists {
            offsets: bytemuck::cast_slice(&raw[self.offsets.clone()]),
            slots: bytemuck::cast_slice(&raw[self.slots.clone()]),
            codes: &raw[self.codes.clone()],
            code_len,
        }
    }
    fn vectors(&self) -> Rows<'_> {
        self.vectors.view(self.bytes.as_ref()).rows
    }
}

impl<B: AsRef<[u8]>> IvfPqView<B> {
    /// Validates `bytes` and opens it for search without copying codes or vectors.
    pub fn open(bytes: B) -> Result<Self> {
        Self::open_with(bytes, OpenOptions::default())
    }

    /// Like [`IvfPqView::open`]. Structure, lists, centroids and codebooks are always
    /// validated; checksums and full-vector values only when `opts.verify_checksums`.
    pub fn open_with(bytes: B, opts: OpenOptions) -> Result<Self> {
        let raw = bytes.as_ref();
        let info = FileInfo::parse(raw, opts)?;
        info.expect_kind(IndexKind::IvfPq)?;
        let (params, trained) = decode_params(info.section(raw, SectionKind::PARAMS)?)?;
        let dim = info.dim as usize;
        if info.metric == Metric::L1 {
            return Err(
                FormatError::BadHeader { field: "metric", reason: "IVF-PQ files never use l1" }.into()
            );
        }
        let pq_shape = ProductQuantizer::new(dim, params.pq_m, params.nbits)
            .map_err(|_| bad(SectionKind::PARAMS, "pq_m must divide the dimension"))?;
        let count =
            usize::try_from(info.count).map_err(|_| FormatError::TooLarge { what: "vector count" })?;
        if count >= u32::MAX as usize {
            return Err(FormatError::TooLarge { what: "vector count" }.into());
        }
        if !trained && count > 0 {
            return Err(bad(SectionKind::PARAMS, "an untrained index holds no vectors").into());
        }
        let size = |n: usize, each: usize| -> Result<u64, FormatError> {
            n.checked_mul(each).map(|b| b as u64).ok_or(FormatError::TooLarge { what: "section size" })
        };
        let trained_size = |n: usize, each: usize| if trained { size(n, each) } else { Ok(0) };
        let kc = SectionKind::COARSE_CENTROIDS;
        let centroid_bytes = info.section_sized(raw, kc, trained_size(params.nlist, dim * 4)?)?;
        let centroids = cast_f32(kc, centroid_bytes)?;
        if centroids.iter().any(|&x| !crate::in_range(x)) {
            return Err(bad(kc, "holds NaN, infinity or a value beyond ±2^50").into());
        }
        let kb = SectionKind::PQ_CODEBOOKS;
        let book_bytes = info.section_sized(raw, kb, trained_size(pq_shape.ksub(), dim * 4)?)?;
        let books = cast_f32(kb, book_bytes)?;
        let pq = if trained {
            ProductQuantizer::from_codebooks(dim, params.pq_m, params.nbits, books.to_vec())
                .map_err(|_| bad(kb, "holds NaN, infinity or a value beyond ±2^50"))?
        } else {
            pq_shape
        };
        let kl = SectionKind::IVF_LISTS;
        let offset_bytes = info.section_sized(raw, kl, size(params.nlist + 1, 4)?)?;
        let offsets = cast_u32(kl, offset_bytes)?;
        if offsets.first() != Some(&0) {
            return Err(bad(kl, "the first list must start at 0").into());
        }
        if offsets.windows(2).any(|w| w[0] > w[1]) {
            return Err(bad(kl, "list offsets decrease").into());
        }
        if offsets.last().map(|&o| o as usize) != Some(count) {
            return Err(bad(kl, "the last list must end at the vector count").into());
        }
        let ki = SectionKind::IVF_IDS;
        let slot_bytes = info.section_sized(raw, ki, size(count, 4)?)?;
        let slots = cast_u32(ki, slot_bytes)?;
        let mut seen = vec![false; count];
        for &slot in slots {
            match seen.get_mut(slot as usize) {
                None => return Err(bad(ki, "a slot is not below the vector count").into()),
                Some(true) => return Err(bad(ki, "a slot appears in the lists twice").into()),
                Some(s) => *s = true,
            }
        }
        let code_bytes = info.section_sized(raw, SectionKind::PQ_CODES, size(count, pq.code_len())?)?;
        let allowed = Allowed { sq_rerank: None, no_rows: !params.keep_vectors };
        let vectors = VectorsAt::find(&info, raw, count, dim, opts, allowed)?;
        if !params.keep_vectors && vectors.form() != VectorForm::Absent {
            return Err(
                bad(SectionKind::VECTORS, "present although the params say vectors are dropped").into()
            );
        }
        let ids = crate::format::ids_section(&info, raw, |_| true)?;
        let residual_terms = residual_terms_for(info.metric, &pq, centroids);
        let count = info.count as usize;
        let metric = info.metric;
        let store = Mapped {
            centroids: range_of(raw, centroid_bytes),
            offsets: range_of(raw, offset_bytes),
            slots: range_of(raw, slot_bytes),
            codes: range_of(raw, code_bytes),
            vectors,
            ids,
            info,
            bytes,
        };
        Ok(Self {
            dim,
            metric,
            kernels: Kernels::best(),
            params,
            pq,
            residual_terms,
            count,
            scratch: ScratchPool::default(),
            store,
        })
    }

    /// The validated header and section table.
    pub fn info(&self) -> &FileInfo {
        &self.store.info
    }

    /// The underlying bytes.
    pub fn bytes(&self) -> &[u8] {
        self.store.bytes.as_ref()
    }

    /// The file's caller ids, one per slot, when it has an `ids` section (else ids are slots).
    pub fn ids(&self) -> Option<&[u32]> {
        // Validated at open: in bounds, aligned, one u32 per slot.
        self.store.ids.as_ref().map(|r| bytemuck::cast_slice(&self.store.bytes.as_ref()[r.clone()]))
    }

    /// An owned copy that can take more vectors.
    pub fn to_index(&self) -> IvfPqIndex {
        let file_lists = self.store.lists(self.pq.code_len());
        let lists = (0..self.params.nlist)
            .map(|i| {
                let (slots, codes) = file_lists.list(i);
                List { slots: slots.to_vec(), codes: codes.to_vec() }
            })
            .collect();
        IvfPqIndex {
            dim: self.dim,
            metric: self.metric,
            kernels: self.kernels,
            params: self.params,
            pq: self.pq.clone(),
            residual_terms: self.residual_terms.clone(),
            count: self.count,
            scratch: ScratchPool::default(),
            store: super::Owned {
                centroids: self.store.centroids().to_vec(),
                lists,
                vectors: self.store.vectors().to_store(),
            },
        }
    }
}
