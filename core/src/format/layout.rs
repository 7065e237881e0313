//! Writing a file from sections, and parsing + validating one from bytes.

use alloc::vec;
use alloc::vec::Vec;

use super::{
    FormatError, IndexKind, OpenOptions, Region, SectionKind, BUFFER_ALIGN, FORMAT_VERSION, HEADER_LEN,
    MAGIC, MAX_SECTIONS, SECTION_ALIGN, SECTION_ENTRY_LEN,
};
use crate::{Metric, MAX_DIM};

/// A section to write: its kind and bytes.
#[derive(Clone, Copy, Debug)]
pub struct SectionRef<'a> {
    /// What the bytes are.
    pub kind: SectionKind,
    /// The contents.
    pub bytes: &'a [u8],
}

/// One validated entry of a file's section table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SectionEntry {
    /// What the section holds.
    pub kind: SectionKind,
    /// Byte offset from the start of the file (a multiple of 64).
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
    /// CRC-32 of the contents.
    pub crc: u32,
}

/// The validated header and section table of a file. Holds no borrow, so an index can keep it
/// beside the bytes (a `Vec`, an mmap, a JS buffer) it describes.
#[derive(Clone, Debug, PartialEq)]
pub struct FileInfo {
    /// Format version of the file.
    pub version: u16,
    /// Index kind.
    pub kind: IndexKind,
    /// Metric.
    pub metric: Metric,
    /// Vector dimension.
    pub dim: u32,
    /// Number of vectors.
    pub count: u64,
    /// Total length in bytes.
    pub file_len: u64,
    /// Sections, in table order.
    pub sections: Vec<SectionEntry>,
}

const fn align_up(x: u64) -> u64 {
    x.div_ceil(SECTION_ALIGN as u64) * SECTION_ALIGN as u64
}

/// Writes a complete index file to `sink` (header, table, sections, zero padding) and returns
/// its length. Sections are laid out in the order given. Checksums are computed in a first
/// pass over the sections so the header can go first and the file streams out in one pass.
pub fn write_index<E>(
    kind: IndexKind,
    metric: Metric,
    dim: u32,
    count: u64,
    sections: &[SectionRef<'_>],
    sink: &mut dyn FnMut(&[u8]) -> Result<(), E>,
) -> Result<u64, E> {
    let table_end = (HEADER_LEN + SECTION_ENTRY_LEN * sections.len()) as u64;
    let mut entries = Vec::with_capacity(sections.len());
    let mut end = table_end;
    for s in sections {
        let offset = align_up(end);
        let len = s.bytes.len() as u64;
        entries.push(SectionEntry { kind: s.kind, offset, len, crc: crc32fast::hash(s.bytes) });
        end = offset + len;
    }
    let file_len = end;

    let mut prefix = vec![0u8; table_end as usize];
    prefix[0..4].copy_from_slice(&MAGIC);
    prefix[4..6].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    prefix[6..8].copy_from_slice(&(HEADER_LEN as u16).to_le_bytes());
    prefix[8..10].copy_from_slice(&kind.code().to_le_bytes());
    prefix[10] = metric.code();
    prefix[12..16].copy_from_slice(&dim.to_le_bytes());
    prefix[16..24].copy_from_slice(&count.to_le_bytes());
    prefix[24..28].copy_from_slice(&(sections.len() as u32).to_le_bytes());
    prefix[32..40].copy_from_slice(&file_len.to_le_bytes());
    for (i, e) in entries.iter().enumerate() {
        let at = HEADER_LEN + i * SECTION_ENTRY_LEN;
        let slot = &mut prefix[at..at + SECTION_ENTRY_LEN];
        slot[0..4].copy_from_slice(&e.kind.0.to_le_bytes());
        slot[8..16].copy_from_slice(&e.offset.to_le_bytes());
        slot[16..24].copy_from_slice(&e.len.to_le_bytes());
        slot[24..28].copy_from_slice(&e.crc.to_le_bytes());
    }
    let crc = header_crc(&prefix[..60], &prefix[HEADER_LEN..]);
    prefix[60..64].copy_from_slice(&crc.to_le_bytes());
    sink(&prefix)?;

    let zeros = [0u8; SECTION_ALIGN];
    let mut pos = table_end;
    for (s, e) in sections.iter().zip(&entries) {
        let pad = (e.offset - pos) as usize;
        if pad > 0 {
            sink(&zeros[..pad])?;
        }
        sink(s.bytes)?;
        pos = e.offset + e.len;
    }
    Ok(file_len)
}

fn header_crc(header: &[u8], table: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(header);
    h.update(table);
    h.finalize()
}

/// Reads little-endian fields, answering `Truncated` instead of panicking past the end.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn bytes<const N: usize>(&self, at: usize) -> Result<[u8; N], FormatError> {
        self.0
            .get(at..at + N)
            .and_then(|s| s.try_into().ok())
            .ok_or(FormatError::Truncated { needed: (at + N) as u64, available: self.0.len() as u64 })
    }
    fn u16(&self, at: usize) -> Result<u16, FormatError> {
        self.bytes::<2>(at).map(u16::from_le_bytes)
    }
    fn u32(&self, at: usize) -> Result<u32, FormatError> {
        self.bytes::<4>(at).map(u32::from_le_bytes)
    }
    fn u64(&self, at: usize) -> Result<u64, FormatError> {
        self.bytes::<8>(at).map(u64::from_le_bytes)
    }
}

impl FileInfo {
    /// Validates `bytes` as an index file: header, section table, bounds, alignment, overlaps
    /// and (unless `opts` says otherwise) every checksum. Reads nothing out of bounds.
    pub fn parse(bytes: &[u8], opts: OpenOptions) -> Result<Self, FormatError> {
        let f = Fields(bytes);
        let available = bytes.len() as u64;
        if bytes.len() < HEADER_LEN {
            // Say "not ours" rather than "truncated" when even the magic is wrong.
            if bytes.len() >= 4 && bytes[..4] != MAGIC {
                return Err(FormatError::BadMagic { found: f.bytes::<4>(0)? });
            }
            return Err(FormatError::Truncated { needed: HEADER_LEN as u64, available });
        }
        let magic = f.bytes::<4>(0)?;
        if magic != MAGIC {
            return Err(FormatError::BadMagic { found: magic });
        }
        let version = f.u16(4)?;
        if version == 0 {
            return Err(FormatError::BadHeader { field: "version", reason: "version 0 was never written" });
        }
        if version > FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion { found: version, newest: FORMAT_VERSION });
        }
        if f.u16(6)? as usize != HEADER_LEN {
            return Err(FormatError::BadHeader { field: "header length", reason: "must be 64 in version 1" });
        }
        let file_len = f.u64(32)?;
        if available < file_len {
            return Err(FormatError::Truncated { needed: file_len, available });
        }
        if available > file_len {
            return Err(FormatError::TrailingBytes { expected: file_len, actual: available });
        }
        let section_count = f.u32(24)?;
        if section_count > MAX_SECTIONS {
            return Err(FormatError::TooManySections { count: section_count, max: MAX_SECTIONS });
        }
        let table_end = HEADER_LEN + SECTION_ENTRY_LEN * section_count as usize;
        if table_end as u64 > file_len {
            return Err(FormatError::Truncated { needed: table_end as u64, available });
        }
        let stored = f.u32(60)?;
        let computed = header_crc(&bytes[..60], &bytes[HEADER_LEN..table_end]);
        if stored != computed {
            return Err(FormatError::HeaderChecksum { stored, computed });
        }
        // Checked after the checksum: with a valid CRC, a bad field is a writer bug or a
        // deliberate forgery, and the message should name the field.
        if bytes[11] != 0 || f.u32(28)? != 0 || bytes[40..60].iter().any(|&b| b != 0) {
            return Err(FormatError::BadHeader {
                field: "reserved",
                reason: "reserved bytes and flags must be zero",
            });
        }
        let kind_code = f.u16(8)?;
        let kind =
            IndexKind::from_code(kind_code).ok_or(FormatError::UnknownIndexKind { code: kind_code })?;
        let metric = Metric::from_code(bytes[10]).ok_or(FormatError::UnknownMetric { code: bytes[10] })?;
        let dim = f.u32(12)?;
        if dim == 0 || dim as usize > MAX_DIM {
            return Err(FormatError::InvalidDimension { dim });
        }
        let count = f.u64(16)?;

        let mut sections: Vec<SectionEntry> = Vec::with_capacity(section_count as usize);
        for i in 0..section_count as usize {
            let at = HEADER_LEN + i * SECTION_ENTRY_LEN;
            let kind = SectionKind(f.u32(at)?);
            if kind.name().is_none() {
                return Err(FormatError::UnknownSection { kind: kind.0 });
            }
            if f.u32(at + 4)? != 0 || f.u32(at + 28)? != 0 {
                return Err(FormatError::BadHeader {
                    field: "section entry",
                    reason: "reserved fields must be zero",
                });
            }
            let offset = f.u64(at + 8)?;
            let len = f.u64(at + 16)?;
            let crc = f.u32(at + 24)?;
            if sections.iter().any(|s| s.kind == kind) {
                return Err(FormatError::DuplicateSection { kind });
            }
            if offset % SECTION_ALIGN as u64 != 0 {
                return Err(FormatError::MisalignedSection { kind, offset });
            }
            match offset.checked_add(len) {
                Some(end) if end <= file_len => {}
                _ => return Err(FormatError::SectionOutOfBounds { kind, offset, len, file_len }),
            }
            if offset < table_end as u64 {
                return Err(FormatError::OverlappingSections { first: Region::Header, second: kind });
            }
            sections.push(SectionEntry { kind, offset, len, crc });
        }
        let mut by_offset: Vec<&SectionEntry> = sections.iter().collect();
        by_offset.sort_by_key(|s| s.offset);
        for pair in by_offset.windows(2) {
            if pair[0].offset + pair[0].len > pair[1].offset {
                return Err(FormatError::OverlappingSections {
                    first: Region::Section(pair[0].kind),
                    second: pair[1].kind,
                });
            }
        }
        // Every byte is the header, the table, a section (each under a checksum), or the
        // zero padding that aligns the next section: a file carries nothing nobody checks.
        let mut covered = table_end as u64;
        for s in &by_offset {
            let aligned = align_up(covered);
            if s.offset > aligned {
                return Err(FormatError::UncoveredBytes { offset: covered, len: s.offset - covered });
            }
            // In bounds: offsets were checked against file_len == bytes.len() above.
            if bytes[covered as usize..s.offset as usize].iter().any(|&b| b != 0) {
                return Err(FormatError::NonZeroPadding { offset: covered });
            }
            covered = s.offset + s.len;
        }
        if file_len > covered {
            return Err(FormatError::UncoveredBytes { offset: covered, len: file_len - covered });
        }
        if let Some(s) = sections.iter().find(|s| !kind.sections().contains(&s.kind)) {
            return Err(FormatError::UnusedSection { kind: s.kind, index: kind });
        }
        if opts.verify_checksums {
            for s in &sections {
                // In bounds: checked above against file_len == bytes.len().
                let computed = crc32fast::hash(&bytes[s.offset as usize..(s.offset + s.len) as usize]);
                if computed != s.crc {
                    return Err(FormatError::SectionChecksum { kind: s.kind, stored: s.crc, computed });
                }
            }
        }
        if !(bytes.as_ptr() as usize).is_multiple_of(BUFFER_ALIGN) {
            return Err(FormatError::UnalignedBuffer { align: BUFFER_ALIGN });
        }
        Ok(Self { version, kind, metric, dim, count, file_len, sections })
    }

    /// Fails unless the file holds a `kind` index.
    pub fn expect_kind(&self, kind: IndexKind) -> Result<(), FormatError> {
        if self.kind != kind {
            return Err(FormatError::KindMismatch { expected: kind, found: self.kind });
        }
        Ok(())
    }

    /// The table entry of section `kind`, if present.
    pub fn entry(&self, kind: SectionKind) -> Option<&SectionEntry> {
        self.sections.iter().find(|s| s.kind == kind)
    }

    /// The bytes of section `kind` within `bytes` (the buffer this info was parsed from).
    pub fn section<'b>(&self, bytes: &'b [u8], kind: SectionKind) -> Result<&'b [u8], FormatError> {
        let e = self.entry(kind).ok_or(FormatError::MissingSection { kind })?;
        let start =
            usize::try_from(e.offset).map_err(|_| FormatError::TooLarge { what: "section offset" })?;
        let end =
            usize::try_from(e.offset + e.len).map_err(|_| FormatError::TooLarge { what: "section end" })?;
        bytes.get(start..end).ok_or(FormatError::SectionOutOfBounds {
            kind,
            offset: e.offset,
            len: e.len,
            file_len: bytes.len() as u64,
        })
    }

    /// Like [`FileInfo::section`], also checking the section has exactly `expected` bytes.
    pub fn section_sized<'b>(
        &self,
        bytes: &'b [u8],
        kind: SectionKind,
        expected: u64,
    ) -> Result<&'b [u8], FormatError> {
        let s = self.section(bytes, kind)?;
        if s.len() as u64 != expected {
            return Err(FormatError::SectionSize { kind, expected, actual: s.len() as u64 });
        }
        Ok(s)
    }
}

/// Views section bytes as `f32`s in place.
pub fn cast_f32(kind: SectionKind, bytes: &[u8]) -> Result<&[f32], FormatError> {
    bytemuck::try_cast_slice(bytes).map_err(|e| cast_error(kind, bytes, e, 4))
}

/// Views section bytes as `u16`s in place.
pub fn cast_u16(kind: SectionKind, bytes: &[u8]) -> Result<&[u16], FormatError> {
    bytemuck::try_cast_slice(bytes).map_err(|e| cast_error(kind, bytes, e, 2))
}

/// Views section bytes as `u32`s in place.
pub fn cast_u32(kind: SectionKind, bytes: &[u8]) -> Result<&[u32], FormatError> {
    bytemuck::try_cast_slice(bytes).map_err(|e| cast_error(kind, bytes, e, 4))
}

fn cast_error(kind: SectionKind, bytes: &[u8], e: bytemuck::PodCastError, size: usize) -> FormatError {
    match e {
        bytemuck::PodCastError::TargetAlignmentGreaterAndInputNotAligned => {
            FormatError::UnalignedBuffer { align: size }
        }
        _ => FormatError::SectionSize {
            kind,
            expected: (bytes.len() / size * size) as u64,
            actual: bytes.len() as u64,
        },
    }
}

/// A heap buffer aligned for in-place reading (backed by `u64`s). Use it to hold a file read
/// into memory or bytes received from JavaScript.
#[derive(Clone, Default)]
pub struct AlignedBytes {
    words: Vec<u64>,
    len: usize,
}

impl AlignedBytes {
    /// `len` zero bytes.
    pub fn zeroed(len: usize) -> Self {
        Self { words: vec![0; len.div_ceil(8)], len }
    }

    /// A copy of `bytes`.
    pub fn copy_from(bytes: &[u8]) -> Self {
        let mut out = Self::zeroed(bytes.len());
        out.as_mut_slice().copy_from_slice(bytes);
        out
    }

    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &bytemuck::cast_slice(&self.words)[..self.len]
    }

    /// The bytes, writable (to read a file into).
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut bytemuck::cast_slice_mut(&mut self.words)[..self.len]
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds no byte.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl AsRef<[u8]> for AlignedBytes {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl core::fmt::Debug for AlignedBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "AlignedBytes({} bytes)", self.len)
    }
}

/// The `ids` section of a file, if it has one, as a byte range of `bytes`: checked to hold one
/// `u32` per slot, and every live slot (`live(slot)`) to have its own id, none of them the
/// reserved [`crate::NO_ID`]. Every face reads this one validation (natively the CLI maps
/// result slots through it; in the browser `fromBytes` builds its id map from it). Costs a
/// sorted copy of the live ids: 4 bytes per slot, once, at open.
pub fn ids_section(
    info: &FileInfo,
    bytes: &[u8],
    live: impl Fn(u32) -> bool,
) -> Result<Option<core::ops::Range<usize>>, FormatError> {
    if info.entry(SectionKind::IDS).is_none() {
        return Ok(None);
    }
    let expected = info.count.checked_mul(4).ok_or(FormatError::TooLarge { what: "ids section" })?;
    let s = info.section_sized(bytes, SectionKind::IDS, expected)?;
    let ids = cast_u32(SectionKind::IDS, s)?;
    let mut sorted = Vec::new();
    sorted.try_reserve_exact(ids.len()).map_err(|_| FormatError::TooLarge { what: "ids section" })?;
    sorted.extend((0u32..).zip(ids).filter(|&(slot, _)| live(slot)).map(|(_, &id)| id));
    if sorted.contains(&crate::NO_ID) {
        return Err(invalid(SectionKind::IDS, "a live slot has the reserved id u32::MAX"));
    }
    sorted.sort_unstable();
    if sorted.windows(2).any(|w| w[0] == w[1]) {
        return Err(invalid(SectionKind::IDS, "two live slots have the same id"));
    }
    let start = s.as_ptr() as usize - bytes.as_ptr() as usize;
    Ok(Some(start..start + s.len()))
}

/// Where `section` (a slice of `bytes`, as [`FileInfo::section`] returns) lies in `bytes`:
/// views keep ranges, not borrows, so they can own the bytes they read.
pub fn range_in(bytes: &[u8], section: &[u8]) -> core::ops::Range<usize> {
    let start = section.as_ptr() as usize - bytes.as_ptr() as usize;
    start..start + section.len()
}

/// A section whose contents break a rule of its index kind.
pub fn invalid(kind: SectionKind, reason: &'static str) -> FormatError {
    FormatError::InvalidSection { kind, reason }
}

/// A fixed-length `params` section, read field by field (little-endian). Checks the length
/// once, so every field read at a constant offset below `N` is in bounds.
pub struct ParamsReader<'a, const N: usize>(&'a [u8; N]);

impl<'a, const N: usize> ParamsReader<'a, N> {
    /// The section's bytes, which must be exactly `N` long.
    pub fn new(bytes: &'a [u8]) -> Result<Self, FormatError> {
        bytes.try_into().map(Self).map_err(|_| FormatError::SectionSize {
            kind: SectionKind::PARAMS,
            expected: N as u64,
            actual: bytes.len() as u64,
        })
    }
    /// The `u32` at byte `at`.
    pub fn u32(&self, at: usize) -> u32 {
        u32::from_le_bytes([self.0[at], self.0[at + 1], self.0[at + 2], self.0[at + 3]])
    }
    /// Whether every byte from `at` to the end is zero (reserved space).
    pub fn zero_from(&self, at: usize) -> bool {
        self.0[at..].iter().all(|&x| x == 0)
    }
    /// The `u64` at byte `at`.
    pub fn u64(&self, at: usize) -> u64 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&self.0[at..at + 8]);
        u64::from_le_bytes(w)
    }
}
