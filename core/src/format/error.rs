//! Why a byte buffer is not a valid index file.

use super::{IndexKind, SectionKind};

/// One variant per thing a file can get wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FormatError {
    /// Fewer bytes than the header says the file has.
    #[error("truncated index file: {needed} bytes expected, {available} present")]
    Truncated {
        /// Bytes the file should have.
        needed: u64,
        /// Bytes present.
        available: u64,
    },
    /// More bytes than the header says the file has.
    #[error("index file has {actual} bytes but its header declares {expected}")]
    TrailingBytes {
        /// Bytes declared.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// Not a NearDB index file.
    #[error("not a NearDB index: magic is {found:?}, expected \"NRDB\"")]
    BadMagic {
        /// The first four bytes.
        found: [u8; 4],
    },
    /// Written by a newer NearDB.
    #[error(
        "index file format version {found} is newer than this build reads (up to {newest}); upgrade NearDB"
    )]
    UnsupportedVersion {
        /// Version in the file.
        found: u16,
        /// Newest version this build reads.
        newest: u16,
    },
    /// Bytes that belong to no section and are not the padding that aligns one.
    #[error(
        "bytes {offset}..{} of the index file belong to no section (no checksum covers them)",
        offset + len
    )]
    UncoveredBytes {
        /// First uncovered byte.
        offset: u64,
        /// How many.
        len: u64,
    },
    /// Alignment padding between sections that is not zero.
    #[error("the padding at byte {offset} of the index file is not zero (no checksum covers it)")]
    NonZeroPadding {
        /// Where the padding starts.
        offset: u64,
    },
    /// A section this kind of index never reads.
    #[error("a {index} index file has no use for a {kind} section")]
    UnusedSection {
        /// The section.
        kind: SectionKind,
        /// The index kind of the file.
        index: IndexKind,
    },
    /// A header field with an impossible value.
    #[error("invalid header field {field}: {reason}")]
    BadHeader {
        /// Field name.
        field: &'static str,
        /// What is wrong.
        reason: &'static str,
    },
    /// Header or section table corrupted.
    #[error(
        "header checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): the file is corrupted"
    )]
    HeaderChecksum {
        /// CRC in the file.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// An index kind this build does not know.
    #[error("unknown index kind code {code}")]
    UnknownIndexKind {
        /// The code.
        code: u16,
    },
    /// A metric code this build does not know.
    #[error("unknown metric code {code}")]
    UnknownMetric {
        /// The code.
        code: u8,
    },
    /// Dimension zero or too large.
    #[error("invalid dimension {dim} in header")]
    InvalidDimension {
        /// The dimension.
        dim: u32,
    },
    /// Too many sections declared.
    #[error("the file declares {count} sections; at most {max} are allowed")]
    TooManySections {
        /// Sections declared.
        count: u32,
        /// Most allowed.
        max: u32,
    },
    /// A section kind this build does not know.
    #[error("unknown section kind {kind}")]
    UnknownSection {
        /// The kind code.
        kind: u32,
    },
    /// Two entries for the same section.
    #[error("section {kind} appears twice")]
    DuplicateSection {
        /// The kind.
        kind: SectionKind,
    },
    /// A section the index kind needs is absent.
    #[error("required section {kind} is missing")]
    MissingSection {
        /// The kind.
        kind: SectionKind,
    },
    /// Section not on a 64-byte boundary.
    #[error("section {kind} starts at offset {offset}, not a multiple of 64")]
    MisalignedSection {
        /// The kind.
        kind: SectionKind,
        /// Its offset.
        offset: u64,
    },
    /// Section extends past the end of the file.
    #[error(
        "section {kind} (offset {offset}, length {len}) extends past the end of the {file_len}-byte file"
    )]
    SectionOutOfBounds {
        /// The kind.
        kind: SectionKind,
        /// Its offset.
        offset: u64,
        /// Its length.
        len: u64,
        /// File length.
        file_len: u64,
    },
    /// Two sections (or a section and the header) share bytes.
    #[error("section {second} overlaps {first}")]
    OverlappingSections {
        /// The earlier region (`None` = header and section table).
        first: Region,
        /// The later section.
        second: SectionKind,
    },
    /// Section contents corrupted.
    #[error("section {kind} checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): the file is corrupted")]
    SectionChecksum {
        /// The kind.
        kind: SectionKind,
        /// CRC in the table.
        stored: u32,
        /// CRC of the bytes.
        computed: u32,
    },
    /// A section whose length does not match what the header implies.
    #[error("section {kind} has {actual} bytes, expected {expected}")]
    SectionSize {
        /// The kind.
        kind: SectionKind,
        /// Bytes expected.
        expected: u64,
        /// Bytes present.
        actual: u64,
    },
    /// A section whose contents are inconsistent.
    #[error("invalid section {kind}: {reason}")]
    InvalidSection {
        /// The kind.
        kind: SectionKind,
        /// What is wrong.
        reason: &'static str,
    },
    /// Opened as one kind of index, holds another.
    #[error("the file holds a {found} index, not a {expected} index")]
    KindMismatch {
        /// Kind asked for.
        expected: IndexKind,
        /// Kind in the file.
        found: IndexKind,
    },
    /// The buffer's address is not aligned enough to read sections in place.
    #[error("buffer is not {align}-byte aligned; copy it into AlignedBytes to open it")]
    UnalignedBuffer {
        /// Alignment needed.
        align: usize,
    },
    /// Sizes in the header overflow this platform's address space.
    #[error("{what} is too large for this platform")]
    TooLarge {
        /// What overflowed.
        what: &'static str,
    },
}

/// A region of the file, for overlap errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// The header and the section table.
    Header,
    /// A section.
    Section(SectionKind),
}

impl core::fmt::Display for Region {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Header => f.write_str("the header and section table"),
            Self::Section(k) => write!(f, "section {k}"),
        }
    }
}
