//! The one vector store every index kind keeps its vectors in — flat, HNSW, Vamana, IVF-PQ and
//! binary alike: each slot's row in `f32` or in binary16 (half the bytes; distances from the
//! `f32` query are bit-identical on every ISA and in the browser), or no rows at all (a file
//! that answers from codes alone), plus optional SQ8 codes that a graph walk scores on before
//! re-ranking from the rows. Owned ([`VectorStore`], growable) and borrowed ([`Vectors`], over
//! owned memory or a file's bytes in place), with one file section per form (`vectors`,
//! `vectors-f16`, `sq-ranges` + `sq-codes`) and one validation when a file is opened.

use alloc::vec::Vec;
use core::ops::Range;

use crate::format::{
    cast_f32, cast_u16, invalid as bad, range_in, FileInfo, FormatError, OpenOptions, SectionKind, SectionRef,
};
use crate::quant::sq::ScalarQuantizer;
use crate::simd::half::{self, HalfKernels};
use crate::{memory, Error, Result};

/// How a store keeps its rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VectorForm {
    /// Four bytes per dimension, exact.
    F32,
    /// Two bytes per dimension, each value rounded to the nearest binary16.
    F16,
    /// No rows: the store answers from its codes alone (a codes-only file).
    Absent,
}

/// A store's rows, borrowed from its memory or from a file's bytes.
#[derive(Clone, Copy, Debug)]
pub enum Rows<'a> {
    /// Row-major `f32`.
    F32(&'a [f32]),
    /// Row-major binary16.
    F16(&'a [u16]),
    /// No rows.
    Absent,
}

impl<'a> Rows<'a> {
    /// The form of the rows.
    pub fn form(&self) -> VectorForm {
        match self {
            Self::F32(_) => VectorForm::F32,
            Self::F16(_) => VectorForm::F16,
            Self::Absent => VectorForm::Absent,
        }
    }

    /// The `f32` rows, when the store keeps them in `f32`.
    pub fn f32(&self) -> Option<&'a [f32]> {
        match *self {
            Self::F32(r) => Some(r),
            _ => None,
        }
    }

    /// The binary16 rows, when the store keeps them in binary16.
    pub fn f16(&self) -> Option<&'a [u16]> {
        match *self {
            Self::F16(r) => Some(r),
            _ => None,
        }
    }

    /// Values stored (rows × dimension; 0 without rows).
    pub fn len(&self) -> usize {
        match self {
            Self::F32(r) => r.len(),
            Self::F16(r) => r.len(),
            Self::Absent => 0,
        }
    }

    /// Whether no value is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the rows occupy.
    pub fn bytes(&self) -> usize {
        match self {
            Self::F32(r) => r.len() * 4,
            Self::F16(r) => r.len() * 2,
            Self::Absent => 0,
        }
    }

    /// The rows of slots `range` (each `dim` values wide).
    pub fn slots(&self, dim: usize, range: Range<usize>) -> Rows<'a> {
        let values = range.start * dim..range.end * dim;
        match *self {
            Self::F32(r) => Self::F32(&r[values]),
            Self::F16(r) => Self::F16(&r[values]),
            Self::Absent => Self::Absent,
        }
    }

    /// Row `slot` of `dim` values appended to `out` as `f32` (exact: binary16 widens without
    /// rounding); `false`, appending nothing, without rows or for a slot beyond them.
    pub fn decode_into(&self, half: &HalfKernels, dim: usize, slot: usize, out: &mut Vec<f32>) -> bool {
        let at = slot.saturating_mul(dim);
        match *self {
            Self::F32(r) => r.get(at..at + dim).map(|row| out.extend_from_slice(row)).is_some(),
            Self::F16(r) => r.get(at..at + dim).map(|row| half.decode_into(row, out)).is_some(),
            Self::Absent => false,
        }
    }

    /// Row `slot` of `slots` lent in place as `f32`. Binary16 rows and no rows have none to
    /// lend (`get_decoded` copies a row out); a slot beyond the rows is unknown.
    pub(crate) fn lend(self, dim: usize, slot: u32, slots: usize) -> Result<&'a [f32]> {
        match self {
            Self::F32(r) if (slot as usize) < slots => {
                let at = slot as usize * dim;
                r.get(at..at + dim).ok_or(Error::UnknownId { id: slot as u64, count: slots as u64 })
            }
            Self::F32(_) => Err(Error::UnknownId { id: slot as u64, count: slots as u64 }),
            Self::F16(_) => Err(Error::InvalidParameter {
                name: "id",
                reason: "this index stores binary16 vectors; read them with get_decoded",
            }),
            Self::Absent => Err(ROWS_ABSENT),
        }
    }

    /// A copy of row `slot` of `slots` as `f32` (binary16 widens exactly).
    pub(crate) fn copy_row(
        self,
        half: &HalfKernels,
        dim: usize,
        slot: u32,
        slots: usize,
    ) -> Result<Vec<f32>> {
        if self.form() == VectorForm::Absent {
            return Err(ROWS_ABSENT);
        }
        let mut out = Vec::with_capacity(dim);
        if (slot as usize) < slots && self.decode_into(half, dim, slot as usize, &mut out) {
            Ok(out)
        } else {
            Err(Error::UnknownId { id: slot as u64, count: slots as u64 })
        }
    }

    /// The file section holding these rows (`None` without rows).
    pub(crate) fn section(&self) -> Option<SectionRef<'a>> {
        match *self {
            Self::F32(r) => Some(SectionRef { kind: SectionKind::VECTORS, bytes: bytemuck::cast_slice(r) }),
            Self::F16(r) => {
                Some(SectionRef { kind: SectionKind::VECTORS_F16, bytes: bytemuck::cast_slice(r) })
            }
            Self::Absent => None,
        }
    }

    /// An owned copy.
    pub(crate) fn to_store(self) -> RowVec {
        match self {
            Self::F32(r) => RowVec::F32(r.to_vec()),
            Self::F16(r) => RowVec::F16(r.to_vec()),
            Self::Absent => RowVec::Absent,
        }
    }
}

/// Asking for a row of a store that keeps only codes.
const ROWS_ABSENT: Error =
    Error::InvalidParameter { name: "id", reason: "this index keeps no full vectors, only codes" };

/// Owned, growable rows.
#[derive(Clone, Debug)]
pub enum RowVec {
    /// Row-major `f32`.
    F32(Vec<f32>),
    /// Row-major binary16.
    F16(Vec<u16>),
    /// No rows.
    Absent,
}

impl Default for RowVec {
    fn default() -> Self {
        Self::F32(Vec::new())
    }
}

impl RowVec {
    /// The rows, borrowed.
    pub fn rows(&self) -> Rows<'_> {
        match self {
            Self::F32(r) => Rows::F32(r),
            Self::F16(r) => Rows::F16(r),
            Self::Absent => Rows::Absent,
        }
    }

    /// Appends prepared rows (normalised for cosine; in range for binary16), each in the
    /// store's form. Nothing is kept without rows.
    pub(crate) fn extend(&mut self, data: &[f32]) {
        match self {
            Self::F32(r) => {
                memory::reserve_huge(r, data.len());
                r.extend_from_slice(data);
            }
            Self::F16(r) => {
                memory::reserve_huge(r, data.len());
                half::encode_into(data, r);
            }
            Self::Absent => {}
        }
    }

    /// Appends `dim`-wide f32 rows and normalises them in place (f32 rows only; others get
    /// nothing). On a zero row nothing stays appended and its index in `data` is returned.
    pub(crate) fn extend_normalized(
        &mut self,
        data: &[f32],
        dim: usize,
        kernels: &crate::Kernels,
    ) -> core::result::Result<(), usize> {
        let Self::F32(r) = self else { return Ok(()) };
        let before = r.len();
        memory::reserve_huge(r, data.len());
        r.extend_from_slice(data);
        for (i, v) in r[before..].chunks_exact_mut(dim).enumerate() {
            if !kernels.normalize(v) {
                r.truncate(before);
                return Err(i);
            }
        }
        Ok(())
    }

    /// Overwrites the row at value offset `at` with `row`.
    pub(crate) fn set(&mut self, at: usize, row: &[f32]) {
        match self {
            Self::F32(r) => r[at..at + row.len()].copy_from_slice(row),
            Self::F16(r) => {
                for (h, &x) in r[at..at + row.len()].iter_mut().zip(row) {
                    *h = half::to_f16(x);
                }
            }
            Self::Absent => {}
        }
    }

    /// Moves the last `dim`-wide row into row `slot` and drops the last row.
    pub(crate) fn swap_remove(&mut self, dim: usize, slot: usize) {
        fn go<T: Copy>(r: &mut Vec<T>, dim: usize, slot: usize) {
            let last = r.len() / dim - 1;
            if slot != last {
                let (head, tail) = r.split_at_mut(last * dim);
                head[slot * dim..(slot + 1) * dim].copy_from_slice(tail);
            }
            r.truncate(last * dim);
        }
        match self {
            Self::F32(r) => go(r, dim, slot),
            Self::F16(r) => go(r, dim, slot),
            Self::Absent => {}
        }
    }

    /// The rows in the order `old_of_new` (new row `i` is old row `old_of_new[i]`).
    pub(crate) fn permute(&mut self, dim: usize, old_of_new: &[u32]) {
        match self {
            Self::F32(r) if !r.is_empty() => *r = permute_rows(r, dim, old_of_new),
            Self::F16(r) if !r.is_empty() => *r = permute_rows(r, dim, old_of_new),
            _ => {}
        }
    }

    /// Fills the reserved capacity with zeros and drops them again (see
    /// `FlatIndex::touch_reserved`).
    pub(crate) fn touch_reserved(&mut self) {
        fn go<T: Copy + Default>(r: &mut Vec<T>) {
            let len = r.len();
            r.resize(r.capacity(), T::default());
            r.truncate(len);
        }
        match self {
            Self::F32(r) => go(r),
            Self::F16(r) => go(r),
            Self::Absent => {}
        }
    }

    /// Reserves room for `values` more values, failing (not aborting) when it cannot be had.
    pub(crate) fn try_reserve_more(&mut self, values: usize) -> Result<()> {
        use crate::scratch::try_reserve_more;
        match self {
            Self::F32(r) => try_reserve_more(r, values, "the vectors"),
            Self::F16(r) => try_reserve_more(r, values, "the binary16 vectors"),
            Self::Absent => Ok(()),
        }
    }

    /// Reserves exactly `values` more values (after [`RowVec::try_reserve_more`] succeeded).
    pub(crate) fn reserve_exact(&mut self, values: usize) {
        match self {
            Self::F32(r) => memory::reserve_exact_huge(r, values),
            Self::F16(r) => memory::reserve_exact_huge(r, values),
            Self::Absent => {}
        }
    }

    /// Rounds `f32` rows to binary16 and keeps only those. Fails, changing nothing, when a
    /// value lies beyond ±65504; binary16 rows and no rows stay as they are.
    pub(crate) fn make_f16(&mut self, dim: usize) -> Result<()> {
        let Self::F32(r) = self else { return Ok(()) };
        check_half_range(r, dim)?;
        let mut rows = Vec::new();
        memory::reserve_exact_huge(&mut rows, r.capacity());
        half::encode_into(r, &mut rows);
        *self = Self::F16(rows);
        Ok(())
    }
}

/// Refuses values binary16 cannot hold, naming the first.
pub(crate) fn check_half_range(data: &[f32], dim: usize) -> Result<()> {
    match data.iter().position(|x| x.abs() > half::MAX) {
        None => Ok(()),
        Some(at) => Err(Error::OutOfHalfRange { vector: at / dim, component: at % dim, value: data[at] }),
    }
}

/// `data`'s `dim`-wide rows in the order `old_of_new`.
pub(crate) fn permute_rows<T: Copy>(data: &[T], dim: usize, old_of_new: &[u32]) -> Vec<T> {
    let mut out = Vec::new();
    memory::reserve_exact_huge(&mut out, data.len());
    for &old in old_of_new {
        out.extend_from_slice(&data[old as usize * dim..(old as usize + 1) * dim]);
    }
    out
}

/// Scalar-quantized codes of every slot, beside (or, in a file, instead of) the rows.
#[derive(Clone, Copy, Debug)]
pub struct SqData<'a> {
    /// The per-dimension ranges.
    pub quantizer: &'a ScalarQuantizer,
    /// One byte per dimension per slot.
    pub codes: &'a [u8],
    /// Default re-rank factor; 0 answers from codes alone (a file then keeps no rows).
    pub rerank: usize,
}

/// Owned scalar-quantized codes and their default re-rank factor.
#[derive(Clone, Debug)]
pub(crate) struct SqStore {
    pub quantizer: ScalarQuantizer,
    pub codes: Vec<u8>,
    pub rerank: usize,
}

/// A store's rows and codes, borrowed.
#[derive(Clone, Copy, Debug)]
pub struct Vectors<'a> {
    /// The rows.
    pub rows: Rows<'a>,
    /// The SQ8 codes searches walk over, when the store has them.
    pub sq: Option<SqData<'a>>,
}

impl<'a> Vectors<'a> {
    /// The section of the rows a file keeps: none when the codes stand alone (re-rank factor
    /// 0) — the point of that choice is a file without the rows.
    pub(crate) fn row_section(&self) -> Option<SectionRef<'a>> {
        if self.sq.is_some_and(|sq| sq.rerank == 0) {
            return None;
        }
        self.rows.section()
    }

    /// The SQ ranges and codes sections (none without codes); `ranges` holds the encoded
    /// ranges for the borrow's sake (filled here).
    pub(crate) fn code_sections(&self, ranges: &'a mut Vec<f32>) -> Vec<SectionRef<'a>> {
        let Some(sq) = self.sq else { return Vec::new() };
        *ranges = sq.quantizer.to_section();
        alloc::vec![
            SectionRef { kind: SectionKind::SQ_RANGES, bytes: bytemuck::cast_slice(ranges) },
            SectionRef { kind: SectionKind::SQ_CODES, bytes: sq.codes },
        ]
    }
}

impl Vectors<'_> {
    /// An owned copy. A codes-only file's rows are its decoded codes: an owned index always
    /// keeps rows, which later inserts link against.
    pub(crate) fn to_store(self) -> VectorStore {
        let rows = match (self.rows, self.sq) {
            (Rows::Absent, Some(sq)) => RowVec::F32(sq.quantizer.decode(sq.codes)),
            (rows, _) => rows.to_store(),
        };
        let sq = self.sq.map(|sq| SqStore {
            quantizer: sq.quantizer.clone(),
            codes: sq.codes.to_vec(),
            rerank: sq.rerank,
        });
        VectorStore { rows, sq }
    }
}

/// Owned rows and optional SQ8 codes.
#[derive(Clone, Debug, Default)]
pub(crate) struct VectorStore {
    pub rows: RowVec,
    pub sq: Option<SqStore>,
}

impl VectorStore {
    /// Borrowed.
    pub fn view(&self) -> Vectors<'_> {
        Vectors {
            rows: self.rows.rows(),
            sq: self.sq.as_ref().map(|s| SqData {
                quantizer: &s.quantizer,
                codes: &s.codes,
                rerank: s.rerank,
            }),
        }
    }

    /// Appends prepared rows and their codes.
    pub fn extend(&mut self, data: &[f32], dim: usize) {
        self.rows.extend(data);
        if let Some(sq) = &mut self.sq {
            let at = sq.codes.len();
            sq.codes.resize(at + data.len(), 0);
            for (v, c) in data.chunks_exact(dim).zip(sq.codes[at..].chunks_exact_mut(dim)) {
                sq.quantizer.encode_into(v, c);
            }
        }
    }

    /// Overwrites slot `slot`'s row and code with the prepared `row`.
    pub fn set(&mut self, slot: usize, row: &[f32]) {
        let at = slot * row.len();
        self.rows.set(at, row);
        if let Some(sq) = &mut self.sq {
            sq.quantizer.encode_into(row, &mut sq.codes[at..at + row.len()]);
        }
    }

    /// Rows and codes in the order `old_of_new`.
    pub fn permute(&mut self, dim: usize, old_of_new: &[u32]) {
        self.rows.permute(dim, old_of_new);
        if let Some(sq) = &mut self.sq {
            sq.codes = permute_rows(&sq.codes, dim, old_of_new);
        }
    }

    /// Learns SQ8 ranges from the live rows (`live(slot)`) and encodes every slot; rows are
    /// read in place (binary16 decoded one row at a time), never copied whole.
    pub fn quantize_sq8(
        &mut self,
        dim: usize,
        half: &HalfKernels,
        live: impl Fn(usize) -> bool,
        rerank: usize,
    ) -> Result<()> {
        let (quantizer, codes) = match &self.rows {
            RowVec::F32(rows) => {
                let live_rows = rows.chunks_exact(dim).enumerate().filter(|&(i, _)| live(i)).map(|(_, r)| r);
                let quantizer = ScalarQuantizer::train_rows(live_rows)?;
                let codes = quantizer.encode(rows);
                (quantizer, codes)
            }
            RowVec::F16(rows) => {
                let decode = |row: &[u16]| {
                    let mut out = Vec::with_capacity(dim);
                    half.decode_into(row, &mut out);
                    out
                };
                let live_rows =
                    rows.chunks_exact(dim).enumerate().filter(|&(i, _)| live(i)).map(|(_, r)| decode(r));
                let quantizer = ScalarQuantizer::train_rows(live_rows)?;
                let mut codes = alloc::vec![0u8; rows.len()];
                for (row, c) in rows.chunks_exact(dim).zip(codes.chunks_exact_mut(dim)) {
                    quantizer.encode_into(&decode(row), c);
                }
                (quantizer, codes)
            }
            RowVec::Absent => {
                return Err(Error::InvalidParameter { name: "quantize", reason: "the index keeps no rows" })
            }
        };
        self.sq = Some(SqStore { quantizer, codes, rerank });
        Ok(())
    }
}

/// Where a file's rows and codes lie (every range validated at open: in bounds, aligned,
/// whole elements).
#[derive(Clone, Debug)]
pub(crate) struct VectorsAt {
    rows: Option<(VectorForm, Range<usize>)>,
    sq: Option<(ScalarQuantizer, Range<usize>, usize)>,
}

/// What a kind's file may hold besides `f32` rows.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Allowed {
    /// SQ8 codes, with the file's default re-rank factor (0: codes only, no rows).
    pub sq_rerank: Option<usize>,
    /// No rows at all (an IVF-PQ or binary file that keeps only its codes).
    pub no_rows: bool,
}

impl VectorsAt {
    /// Finds and checks a file's vector sections: one form of rows (`vectors` or
    /// `vectors-f16`, never both) of `count × dim` values, and — when the kind allows them —
    /// the SQ ranges and codes. With `opts.verify_checksums`, every value is checked too.
    pub(crate) fn find(
        info: &FileInfo,
        raw: &[u8],
        count: usize,
        dim: usize,
        opts: OpenOptions,
        allowed: Allowed,
    ) -> Result<Self, FormatError> {
        let size = |each: usize| -> Result<u64, FormatError> {
            count.checked_mul(each).map(|b| b as u64).ok_or(FormatError::TooLarge { what: "section size" })
        };
        let sq_sections = (info.entry(SectionKind::SQ_RANGES), info.entry(SectionKind::SQ_CODES));
        let sq = match (allowed.sq_rerank, sq_sections) {
            (_, (None, None)) => None,
            (None, _) => return Err(bad(SectionKind::SQ_CODES, "not part of this index kind")),
            (Some(rerank), (Some(_), Some(_))) => {
                let ranges_b = info.section_sized(raw, SectionKind::SQ_RANGES, dim as u64 * 8)?;
                let ranges = cast_f32(SectionKind::SQ_RANGES, ranges_b)?;
                let quantizer = ScalarQuantizer::from_section(ranges, dim)?;
                let codes = info.section_sized(raw, SectionKind::SQ_CODES, size(dim)?)?;
                Some((quantizer, range_in(raw, codes), rerank))
            }
            (Some(_), (Some(_), None)) => {
                return Err(FormatError::MissingSection { kind: SectionKind::SQ_CODES })
            }
            (Some(_), (None, Some(_))) => {
                return Err(FormatError::MissingSection { kind: SectionKind::SQ_RANGES })
            }
        };
        if sq.is_none() && allowed.sq_rerank.is_some_and(|r| r != 0) {
            return Err(bad(SectionKind::PARAMS, "re-rank factor set without quantized codes"));
        }
        // A codes-only file (re-rank factor 0) has no rows; every other file of a graph kind has.
        let codes_only = sq.is_some() && allowed.sq_rerank == Some(0);
        let (full, halfs) = (info.entry(SectionKind::VECTORS), info.entry(SectionKind::VECTORS_F16));
        let rows = match (full, halfs) {
            (Some(_), Some(_)) => {
                return Err(bad(SectionKind::VECTORS_F16, "beside f32 vectors (a file keeps one kind)"))
            }
            (Some(_), None) | (None, Some(_)) if codes_only => {
                let kind = if full.is_some() { SectionKind::VECTORS } else { SectionKind::VECTORS_F16 };
                return Err(bad(kind, "present in a codes-only file (re-rank factor 0)"));
            }
            (None, None) if codes_only || allowed.no_rows => None,
            (None, None) => return Err(FormatError::MissingSection { kind: SectionKind::VECTORS }),
            (None, Some(_)) => {
                let kind = SectionKind::VECTORS_F16;
                let b = info.section_sized(raw, kind, size(dim * 2)?)?;
                let rows = cast_u16(kind, b)?;
                // Exponent 31 is infinity or NaN.
                if opts.verify_checksums && rows.iter().any(|h| h & 0x7c00 == 0x7c00) {
                    return Err(bad(kind, "holds NaN, infinity or a value beyond ±2^50"));
                }
                Some((VectorForm::F16, range_in(raw, b)))
            }
            (Some(_), None) => {
                let kind = SectionKind::VECTORS;
                let b = info.section_sized(raw, kind, size(dim * 4)?)?;
                let rows = cast_f32(kind, b)?;
                if opts.verify_checksums && rows.iter().any(|&x| !crate::in_range(x)) {
                    return Err(bad(kind, "holds NaN, infinity or a value beyond ±2^50"));
                }
                Some((VectorForm::F32, range_in(raw, b)))
            }
        };
        Ok(Self { rows, sq })
    }

    /// The form of the rows found.
    pub(crate) fn form(&self) -> VectorForm {
        self.rows.as_ref().map_or(VectorForm::Absent, |(form, _)| *form)
    }

    /// The rows and codes in `raw` (the bytes [`VectorsAt::find`] checked).
    pub(crate) fn view<'a>(&'a self, raw: &'a [u8]) -> Vectors<'a> {
        let rows = match &self.rows {
            Some((VectorForm::F32, r)) => Rows::F32(bytemuck::cast_slice(&raw[r.clone()])),
            Some((VectorForm::F16, r)) => Rows::F16(bytemuck::cast_slice(&raw[r.clone()])),
            _ => Rows::Absent,
        };
        let sq = self.sq.as_ref().map(|(quantizer, codes, rerank)| SqData {
            quantizer,
            codes: &raw[codes.clone()],
            rerank: *rerank,
        });
        Vectors { rows, sq }
    }
}
