//! The one index file: a 64-byte header, a section table, and 64-byte aligned sections.
//!
//! ```text
//! offset  size  field
//!      0     4  magic "NRDB"
//!      4     2  format version (1)
//!      6     2  header length (64)
//!      8     2  index kind (IndexKind)
//!     10     1  metric (Metric::code)
//!     11     1  reserved, 0
//!     12     4  dim
//!     16     8  count (vectors)
//!     24     4  section count
//!     28     4  flags, 0 in version 1
//!     32     8  file length in bytes
//!     40    20  reserved, 0
//!     60     4  CRC-32 of bytes 0..60 followed by the whole section table
//!     64  32*s  section table: kind u32, reserved u32, offset u64, length u64, CRC-32 u32, reserved u32
//! ```
//! All integers are little-endian. Sections start at multiples of 64 so that natively a
//! memory map, and in the browser a copied `ArrayBuffer`, can be read in place as `f32`/`u32`
//! slices. Opening validates every field a hostile file could lie about before any section is
//! touched; section checksums are verified unless the caller opts out (for multi-GiB maps).

mod error;
mod layout;

pub use error::{FormatError, Region};
pub use layout::{
    cast_f32, cast_u16, cast_u32, ids_section, invalid, range_in, write_index, AlignedBytes, FileInfo,
    ParamsReader, SectionEntry, SectionRef,
};

use core::fmt;

/// File magic.
pub const MAGIC: [u8; 4] = *b"NRDB";
/// The format version this build writes, and the newest it reads.
pub const FORMAT_VERSION: u16 = 1;
/// Bytes of the fixed header.
pub const HEADER_LEN: usize = 64;
/// Bytes of one section-table entry.
pub const SECTION_ENTRY_LEN: usize = 32;
/// Alignment of every section, and of the buffer a file is read from.
pub const SECTION_ALIGN: usize = 64;
/// Alignment a buffer must have to be opened in place (the widest element type read from it).
pub const BUFFER_ALIGN: usize = 8;
/// Most sections a file may declare.
pub const MAX_SECTIONS: u32 = 64;

/// What kind of index a file holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum IndexKind {
    /// Exact search over all vectors.
    Flat = 1,
    /// Hierarchical navigable small world graph.
    Hnsw = 2,
    /// Inverted file over coarse centroids, residuals product-quantized.
    IvfPq = 3,
    /// Binary codes (random hyperplanes), Hamming scan or LSH tables, exact rerank.
    Binary = 4,
    /// Vamana (DiskANN) graph: one level, entered at the medoid.
    Vamana = 5,
    /// The SSD-resident Vamana: nodes in 4 KiB sectors on the SSD, PQ codes in memory. Native
    /// only (`neardb::disk`), in its own file layout: no file of this format holds it, so
    /// [`IndexKind::from_code`] never returns it.
    Disk = 6,
}

impl IndexKind {
    /// The code stored in the header.
    pub const fn code(self) -> u16 {
        self as u16
    }
    /// The kind stored as `code`, if known.
    pub const fn from_code(code: u16) -> Option<Self> {
        match code {
            1 => Some(Self::Flat),
            2 => Some(Self::Hnsw),
            3 => Some(Self::IvfPq),
            4 => Some(Self::Binary),
            5 => Some(Self::Vamana),
            _ => None,
        }
    }
    /// Lower-case name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Flat => "flat",
            Self::Hnsw => "hnsw",
            Self::IvfPq => "ivfpq",
            Self::Binary => "binary",
            Self::Vamana => "vamana",
            Self::Disk => "disk",
        }
    }
}

impl IndexKind {
    /// Every section a file of this kind may hold; any other is refused at open.
    pub const fn sections(self) -> &'static [SectionKind] {
        use SectionKind as S;
        match self {
            Self::Flat => &[S::VECTORS, S::VECTORS_F16, S::IDS],
            Self::Hnsw => &[
                S::PARAMS,
                S::VECTORS,
                S::VECTORS_F16,
                S::GRAPH_LEVEL0,
                S::GRAPH_UPPER,
                S::NODE_LEVELS,
                S::UPPER_OFFSETS,
                S::DELETED,
                S::IDS,
                S::SQ_RANGES,
                S::SQ_CODES,
            ],
            Self::IvfPq => &[
                S::PARAMS,
                S::VECTORS,
                S::VECTORS_F16,
                S::COARSE_CENTROIDS,
                S::PQ_CODEBOOKS,
                S::PQ_CODES,
                S::IVF_LISTS,
                S::IVF_IDS,
                S::IDS,
            ],
            Self::Binary => &[
                S::PARAMS,
                S::VECTORS,
                S::VECTORS_F16,
                S::BINARY_PLANES,
                S::BINARY_CODES,
                S::LSH_TABLES,
                S::IDS,
            ],
            // Not a kind of this format: nothing may be in such a file.
            Self::Disk => &[],
            Self::Vamana => &[
                S::PARAMS,
                S::VECTORS,
                S::VECTORS_F16,
                S::GRAPH_LEVEL0,
                S::DELETED,
                S::IDS,
                S::SQ_RANGES,
                S::SQ_CODES,
            ],
        }
    }
}

impl crate::Choice for IndexKind {
    const WHAT: &'static str = "index kind";
    const ALL: &'static [Self] =
        &[Self::Flat, Self::Hnsw, Self::IvfPq, Self::Binary, Self::Vamana, Self::Disk];
    fn name(self) -> &'static str {
        IndexKind::name(self)
    }
    fn about(self) -> &'static str {
        match self {
            Self::Flat => "exact search over every vector",
            Self::Hnsw => "hierarchical navigable small-world graph",
            Self::IvfPq => "inverted lists over product-quantized residuals",
            Self::Binary => "binary codes: Hamming scan or multi-probe LSH tables",
            Self::Vamana => "Vamana (DiskANN) graph: one level, entered at the medoid",
            Self::Disk => "SSD-resident Vamana: nodes read from the SSD, PQ codes in memory (native)",
        }
    }
}

impl core::str::FromStr for IndexKind {
    type Err = crate::UnknownChoice;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        <Self as crate::Choice>::from_name(s)
    }
}

impl fmt::Display for IndexKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a section holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SectionKind(pub u32);

impl SectionKind {
    /// Row-major `f32` vectors, `count × dim`.
    pub const VECTORS: Self = Self(1);
    /// Small fixed-layout parameters of the index kind.
    pub const PARAMS: Self = Self(2);
    /// Graph level 0: fixed-stride neighbour lists.
    pub const GRAPH_LEVEL0: Self = Self(3);
    /// Graph upper levels.
    pub const GRAPH_UPPER: Self = Self(4);
    /// Per-node levels of a hierarchical graph.
    pub const NODE_LEVELS: Self = Self(5);
    /// Per-node start of the upper-level link blocks.
    pub const UPPER_OFFSETS: Self = Self(6);
    /// Bitset (u64 words) of deleted slots.
    pub const DELETED: Self = Self(7);
    /// Caller ids of the slots (`u32` each, [`crate::NO_ID`] for empty slots); absent when
    /// every id equals its slot.
    pub const IDS: Self = Self(8);
    /// Scalar quantizer ranges: `dim` minima then `dim` step sizes (`f32`).
    pub const SQ_RANGES: Self = Self(9);
    /// Scalar-quantized vectors: `count × dim` bytes.
    pub const SQ_CODES: Self = Self(10);
    /// Coarse (IVF) centroids: `nlist × dim` `f32`.
    pub const COARSE_CENTROIDS: Self = Self(11);
    /// Product-quantizer codebooks: `m × ksub × dsub` `f32`.
    pub const PQ_CODEBOOKS: Self = Self(12);
    /// Product-quantized codes: `count × code_len` bytes.
    pub const PQ_CODES: Self = Self(13);
    /// Inverted lists: `nlist + 1` `u32` offsets into the list-ordered ids and codes.
    pub const IVF_LISTS: Self = Self(14);
    /// Inverted lists: the slot of each list entry (`u32`).
    pub const IVF_IDS: Self = Self(15);
    /// Binary-code hyperplanes: `bits × dim` `f32`.
    pub const BINARY_PLANES: Self = Self(16);
    /// Binary codes: `count × words` `u64`.
    pub const BINARY_CODES: Self = Self(17);
    /// LSH tables: bucket offsets and slots.
    pub const LSH_TABLES: Self = Self(18);
    /// Row-major binary16 vectors, `count × dim` (`u16` bit patterns), instead of `vectors`.
    pub const VECTORS_F16: Self = Self(19);

    const KNOWN: [(Self, &'static str); 19] = [
        (Self::VECTORS, "vectors"),
        (Self::PARAMS, "params"),
        (Self::GRAPH_LEVEL0, "graph-level0"),
        (Self::GRAPH_UPPER, "graph-upper"),
        (Self::NODE_LEVELS, "node-levels"),
        (Self::UPPER_OFFSETS, "upper-offsets"),
        (Self::DELETED, "deleted"),
        (Self::IDS, "ids"),
        (Self::SQ_RANGES, "sq-ranges"),
        (Self::SQ_CODES, "sq-codes"),
        (Self::COARSE_CENTROIDS, "coarse-centroids"),
        (Self::PQ_CODEBOOKS, "pq-codebooks"),
        (Self::PQ_CODES, "pq-codes"),
        (Self::IVF_LISTS, "ivf-lists"),
        (Self::IVF_IDS, "ivf-ids"),
        (Self::BINARY_PLANES, "binary-planes"),
        (Self::BINARY_CODES, "binary-codes"),
        (Self::LSH_TABLES, "lsh-tables"),
        (Self::VECTORS_F16, "vectors-f16"),
    ];

    /// Name of a known kind.
    pub fn name(self) -> Option<&'static str> {
        Self::KNOWN.iter().find(|(k, _)| *k == self).map(|(_, n)| *n)
    }
}

impl fmt::Display for SectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "unknown({})", self.0),
        }
    }
}

/// How much of a file to verify when opening it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOptions {
    /// Verify every section's CRC-32 (reads the whole file). Structure is always validated.
    pub verify_checksums: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self { verify_checksums: true }
    }
}
