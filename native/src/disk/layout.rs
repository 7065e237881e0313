//! The SSD index's file layout: a header sector, then the nodes packed into 4 KiB sectors, then
//! the product-quantization region loaded into memory at open: the centre the codes are taken
//! around (`dim` floats), the codebooks, the codes; last the row of every node (`u32`s in node
//! order, with its own checksum), which filtered searches load to test a node's row without
//! reading the node.
//!
//! A node is its full-precision vector (`f32` or binary16), the row it was built from (`u32`),
//! its degree (`u32`) and `max_degree` neighbour ids (`u32`, unused ones zero). Nodes never
//! straddle a block when one fits in a block (`nodes_per_block` of them per block, the rest of
//! the block zero); a larger node takes whole sectors of its own. A block is one read: one
//! sector, or a few where a node fills little more than half a sector (a 1024-d binary16 node
//! of 2,312 bytes: one in 4 KiB, three in 8 KiB, and this kind of disk reads 8 KiB as fast as
//! 4). Every offset and count is a `u64`: nothing is limited to 32 bits but node ids (below
//! 2^32 - 1).

use neardb_core::vectors::VectorForm;
use neardb_core::{Metric, MAX_DIM};

use super::DiskError;

/// The unit of every read and of the layout.
pub const SECTOR: usize = 4096;
/// The first bytes of every SSD index file.
pub const MAGIC: [u8; 8] = *b"NEARDSK\0";
/// The layout version this code writes (version 1 had no row region; version 2 had one-sector
/// blocks only, and is still read).
pub const VERSION: u32 = 3;
/// The most sectors one block may span.
pub const MAX_BLOCK_SECTORS: u32 = 16;
/// The most neighbours a node may have.
pub const MAX_DEGREE: u32 = 1024;

/// The header sector's fields.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// How distances rank.
    pub metric: Metric,
    /// Vector dimension.
    pub dim: u32,
    /// The form of the vectors in the nodes (`F32` or `F16`).
    pub form: VectorForm,
    /// Nodes in the file.
    pub count: u64,
    /// Neighbour slots per node (R).
    pub max_degree: u32,
    /// Where searches start.
    pub medoid: u64,
    /// Bytes of PQ code per node (sub-quantizers of 8 bits each).
    pub pq_m: u32,
    /// The build's list size, α (bits) and seed, kept for `info`.
    pub build_l: u32,
    /// α as `f32` bits.
    pub build_alpha_bits: u32,
    /// The build's seed.
    pub build_seed: u64,
    /// CRC-32 of the PQ region (centre, codebooks, codes).
    pub pq_crc: u32,
    /// CRC-32 of the row region.
    pub rows_crc: u32,
    /// Every vector has length 1 (squared length within 0.002 of 1): inner products then rank as squared L2
    /// distances do, and searches steer with L2 codes, which err less near the query.
    pub unit_vectors: bool,
    /// Sectors per block (one read). More than one only where a node fits a sector.
    pub block_sectors: u32,
}

/// Where a node lies: the sector-aligned read that covers it, and where in that read it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeAt {
    /// Byte offset of the first sector to read.
    pub offset: u64,
    /// Bytes to read (whole sectors).
    pub len: usize,
    /// Where the node starts within them.
    pub within: usize,
}

fn form_code(form: VectorForm) -> u32 {
    match form {
        VectorForm::F32 => 0,
        VectorForm::F16 => 1,
        VectorForm::Absent => u32::MAX,
    }
}

impl Header {
    /// Bytes per vector value.
    pub fn value_bytes(&self) -> u64 {
        if self.form == VectorForm::F16 {
            2
        } else {
            4
        }
    }

    /// Bytes of one node: vector, row, degree, neighbour slots.
    pub fn node_bytes(&self) -> u64 {
        self.dim as u64 * self.value_bytes() + 8 + 4 * self.max_degree as u64
    }

    /// Bytes of one block (one read of nodes that fit in it).
    pub fn block_bytes(&self) -> u64 {
        self.block_sectors as u64 * SECTOR as u64
    }

    /// Nodes per block (0 when a node needs more than one sector).
    pub fn nodes_per_block(&self) -> u64 {
        self.block_bytes() / self.node_bytes()
    }

    /// Sectors one node takes when it does not fit in one.
    pub fn sectors_per_node(&self) -> u64 {
        self.node_bytes().div_ceil(SECTOR as u64)
    }

    /// Bytes of one read of the node region: a block, or one node's sectors when a node
    /// needs more than one.
    pub fn read_bytes(&self) -> usize {
        match self.nodes_per_block() {
            0 => self.sectors_per_node() as usize * SECTOR,
            _ => self.block_bytes() as usize,
        }
    }

    /// Sectors of the node region.
    pub fn node_sectors(&self) -> u64 {
        match self.nodes_per_block() {
            0 => self.count * self.sectors_per_node(),
            per => self.count.div_ceil(per) * self.block_sectors as u64,
        }
    }

    /// What is wrong with the block size for this node size, if anything (the rule the writer
    /// and the reader share).
    pub fn block_error(&self) -> Option<&'static str> {
        if self.block_sectors == 0 || self.block_sectors > MAX_BLOCK_SECTORS {
            Some("sectors per block must be 1 to 16")
        } else if self.block_sectors > 1 && self.node_bytes() > SECTOR as u64 {
            Some("a node larger than a sector takes whole sectors, not blocks")
        } else {
            None
        }
    }

    /// The block size a writer picks for a node of `node_bytes`: two sectors where a node
    /// fits a sector only once but two sectors three times or more (half a sector or more
    /// would be left empty in each read), else one.
    pub fn default_block_sectors(node_bytes: u64) -> u32 {
        let (one, two) = (SECTOR as u64 / node_bytes, 2 * SECTOR as u64 / node_bytes);
        if one == 1 && two >= 3 {
            2
        } else {
            1
        }
    }

    /// Byte offset of the PQ region: right after the nodes.
    pub fn pq_offset(&self) -> u64 {
        (1 + self.node_sectors()) * SECTOR as u64
    }

    /// Bytes of the PQ region: the `dim` floats of the centre, `dim × 256` codebook floats,
    /// then `count × pq_m` code bytes.
    pub fn pq_len(&self) -> u64 {
        self.dim as u64 * 4 + self.dim as u64 * 256 * 4 + self.count * self.pq_m as u64
    }

    /// Byte offset of the row region: right after the PQ region.
    pub fn rows_offset(&self) -> u64 {
        self.pq_offset() + self.pq_len()
    }

    /// Bytes of the row region: one `u32` per node.
    pub fn rows_len(&self) -> u64 {
        self.count * 4
    }

    /// Bytes of the whole file.
    pub fn file_len(&self) -> u64 {
        self.rows_offset() + self.rows_len()
    }

    /// Where node `id` lies.
    pub fn locate(&self, id: u64) -> NodeAt {
        match self.nodes_per_block() {
            0 => {
                let spn = self.sectors_per_node();
                NodeAt { offset: (1 + id * spn) * SECTOR as u64, len: (spn as usize) * SECTOR, within: 0 }
            }
            per => NodeAt {
                offset: SECTOR as u64 + id / per * self.block_bytes(),
                len: self.block_bytes() as usize,
                within: ((id % per) * self.node_bytes()) as usize,
            },
        }
    }

    /// The header sector.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; SECTOR];
        b[0..8].copy_from_slice(&MAGIC);
        let mut put32 = |at: usize, v: u32| b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        put32(8, VERSION);
        put32(12, self.metric.code() as u32);
        put32(16, self.dim);
        put32(20, form_code(self.form));
        put32(24, self.max_degree);
        put32(28, self.pq_m);
        put32(32, self.build_l);
        put32(36, self.build_alpha_bits);
        put32(40, self.pq_crc);
        put32(44, self.node_bytes() as u32);
        let mut put64 = |at: usize, v: u64| b[at..at + 8].copy_from_slice(&v.to_le_bytes());
        put64(48, self.count);
        put64(56, self.medoid);
        put64(64, self.build_seed);
        put64(72, self.nodes_per_block());
        put64(80, self.pq_offset());
        put64(88, self.pq_len());
        b[96..100].copy_from_slice(&u32::from(self.unit_vectors).to_le_bytes());
        b[100..104].copy_from_slice(&self.rows_crc.to_le_bytes());
        b[104..108].copy_from_slice(&self.block_sectors.to_le_bytes());
        let crc = crc32fast::hash(&b[..SECTOR - 4]);
        b[SECTOR - 4..].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Reads and checks a header sector against the file's length: every field in range, the
    /// derived sizes equal to what the header states, the file exactly as long as they say.
    pub fn decode(b: &[u8], file_len: u64) -> Result<Self, DiskError> {
        let bad = |reason: &'static str| DiskError::BadHeader { reason };
        if b.len() < SECTOR || file_len < SECTOR as u64 {
            return Err(bad("the file is shorter than its header sector"));
        }
        if b[0..8] != MAGIC {
            return Err(bad("not a NearDB SSD index (wrong magic bytes)"));
        }
        let u32_at = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        let u64_at = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[at..at + 8]);
            u64::from_le_bytes(w)
        };
        if crc32fast::hash(&b[..SECTOR - 4]) != u32_at(SECTOR - 4) {
            return Err(bad("header checksum mismatch"));
        }
        let version = u32_at(8);
        if version != VERSION && version != 2 {
            return Err(DiskError::UnsupportedVersion { version });
        }
        let metric =
            u8::try_from(u32_at(12)).ok().and_then(Metric::from_code).ok_or(bad("unknown metric"))?;
        let form = match u32_at(20) {
            0 => VectorForm::F32,
            1 => VectorForm::F16,
            _ => return Err(bad("unknown vector form")),
        };
        let h = Self {
            metric,
            dim: u32_at(16),
            form,
            count: u64_at(48),
            max_degree: u32_at(24),
            medoid: u64_at(56),
            pq_m: u32_at(28),
            build_l: u32_at(32),
            build_alpha_bits: u32_at(36),
            build_seed: u64_at(64),
            pq_crc: u32_at(40),
            rows_crc: u32_at(100),
            unit_vectors: match u32_at(96) {
                0 => false,
                1 => true,
                _ => return Err(bad("unknown flags")),
            },
            // Version 2 read one sector at a time, and left these bytes zero.
            block_sectors: if version == 2 { 1 } else { u32_at(104) },
        };
        if h.dim == 0 || h.dim as usize > MAX_DIM {
            return Err(bad("dimension must be 1 to 65536"));
        }
        if h.count == 0 || h.count >= u32::MAX as u64 {
            return Err(bad("node count must be 1 to 2^32 - 2"));
        }
        if h.max_degree == 0 || h.max_degree > MAX_DEGREE {
            return Err(bad("max degree must be 1 to 1024"));
        }
        if h.medoid >= h.count {
            return Err(bad("the medoid is not a node"));
        }
        if h.pq_m == 0 || !h.dim.is_multiple_of(h.pq_m) {
            return Err(bad("PQ bytes must divide the dimension"));
        }
        if let Some(reason) = h.block_error() {
            return Err(bad(reason));
        }
        // Derived fields must agree with the header's own statement of them.
        if u32_at(44) as u64 != h.node_bytes()
            || u64_at(72) != h.nodes_per_block()
            || u64_at(80) != h.pq_offset()
            || u64_at(88) != h.pq_len()
        {
            return Err(bad("node size, nodes per block or PQ region disagree with the dimensions"));
        }
        let reserved = if version == 2 { 104 } else { 108 };
        if b[reserved..SECTOR - 4].iter().any(|&x| x != 0) {
            return Err(bad("reserved bytes must be zero"));
        }
        if file_len != h.file_len() {
            return Err(DiskError::WrongLength { expected: h.file_len(), actual: file_len });
        }
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(dim: u32, form: VectorForm, count: u64, r: u32) -> Header {
        Header {
            metric: Metric::L2,
            dim,
            form,
            count,
            max_degree: r,
            medoid: 0,
            pq_m: 8,
            build_l: 100,
            build_alpha_bits: 1.2f32.to_bits(),
            build_seed: 1,
            pq_crc: 0,
            rows_crc: 0,
            unit_vectors: false,
            block_sectors: 1,
        }
    }

    #[test]
    fn nodes_pack_into_sectors_or_take_whole_ones() {
        // 128-d f32, R = 32: 512 + 8 + 128 = 648 bytes, six per sector.
        let h = header(128, VectorForm::F32, 100, 32);
        assert_eq!((h.node_bytes(), h.nodes_per_block()), (648, 6));
        assert_eq!(h.locate(7), NodeAt { offset: 2 * 4096, len: 4096, within: 648 });
        // 1024-d f32: 4096 + 8 + 256 bytes, two sectors each.
        let big = header(1024, VectorForm::F32, 10, 64);
        assert_eq!((big.nodes_per_block(), big.sectors_per_node()), (0, 2));
        assert_eq!(big.locate(3), NodeAt { offset: 7 * 4096, len: 8192, within: 0 });
        // The same in binary16 fits one sector.
        let half = header(1024, VectorForm::F16, 10, 64);
        assert_eq!(half.nodes_per_block(), 1);
    }

    #[test]
    fn two_sector_blocks_hold_three_half_sector_nodes() {
        // 1024-d binary16, R = 64: 2,312 bytes, once in 4 KiB, three times in 8 KiB.
        let mut h = header(1024, VectorForm::F16, 10, 64);
        assert_eq!(Header::default_block_sectors(h.node_bytes()), 2);
        h.block_sectors = 2;
        assert_eq!((h.nodes_per_block(), h.read_bytes()), (3, 8192));
        assert_eq!(h.locate(4), NodeAt { offset: 4096 + 8192, len: 8192, within: 2312 });
        // Ten nodes in four blocks of two sectors.
        assert_eq!(h.node_sectors(), 8);
        assert_eq!(Header::decode(&h.encode(), h.file_len()).unwrap(), h);
        // Nodes that fill a sector well keep one-sector blocks: 648 (six) and 1,800 (two).
        assert_eq!(Header::default_block_sectors(648), 1);
        assert_eq!(Header::default_block_sectors(1800), 1);
        assert_eq!(Header::default_block_sectors(4360), 1);
    }

    #[test]
    fn version_two_files_read_as_one_sector_blocks_and_bad_blocks_are_refused() {
        let h = header(64, VectorForm::F16, 1000, 16);
        let mut v2 = h.encode();
        v2[8..12].copy_from_slice(&2u32.to_le_bytes());
        v2[104..108].fill(0);
        let crc = crc32fast::hash(&v2[..SECTOR - 4]);
        v2[SECTOR - 4..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(Header::decode(&v2, h.file_len()).unwrap(), h);
        for (sectors, what) in [(0, "1 to 16"), (17, "1 to 16")] {
            let mut lie = header(64, VectorForm::F16, 1000, 16);
            lie.block_sectors = sectors;
            let err = Header::decode(&lie.encode(), 4096 * 1024).unwrap_err();
            assert!(err.to_string().contains(what), "{err}");
        }
        let mut big = header(1024, VectorForm::F32, 10, 64);
        big.block_sectors = 2;
        let err = Header::decode(&big.encode(), big.file_len()).unwrap_err();
        assert!(err.to_string().contains("whole sectors"), "{err}");
    }

    #[test]
    fn a_billion_nodes_address_past_four_gigabytes() {
        let h = header(1024, VectorForm::F32, 1_000_000_000, 64);
        let at = h.locate(900_000_000);
        assert_eq!(at.offset, (1 + 900_000_000u64 * 2) * 4096);
        assert!(at.offset > u32::MAX as u64 * 1000);
        assert_eq!(h.file_len(), h.pq_offset() + 1024 * 4 + 1024 * 256 * 4 + 8_000_000_000 + 4_000_000_000);
    }

    #[test]
    fn headers_round_trip_and_lies_are_refused() {
        let h = header(64, VectorForm::F16, 1000, 16);
        let b = h.encode();
        assert_eq!(Header::decode(&b, h.file_len()).unwrap(), h);
        assert!(matches!(Header::decode(&b, h.file_len() - 1), Err(DiskError::WrongLength { .. })));
        let mut flipped = b.clone();
        flipped[20] = 7;
        assert!(matches!(Header::decode(&flipped, h.file_len()), Err(DiskError::BadHeader { .. })));
        // A lie under a valid checksum: the medoid beyond the nodes.
        let mut lie = header(64, VectorForm::F16, 1000, 16);
        lie.medoid = 1000;
        let err = Header::decode(&lie.encode(), lie.file_len()).unwrap_err();
        assert!(err.to_string().contains("medoid"), "{err}");
        let mut odd = header(64, VectorForm::F32, 1000, 16);
        odd.pq_m = 7;
        assert!(Header::decode(&odd.encode(), odd.file_len()).unwrap_err().to_string().contains("divide"));
    }
}
