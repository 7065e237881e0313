//! A lenient reading of an index file's header and section table (it never fails: hostile
//! bytes are what it reads), the field positions the mutator writes, and the checksum fix-up
//! that lets a mutation get past the CRCs to the structure checks behind them.

use neardb::format::{HEADER_LEN, MAX_SECTIONS, SECTION_ALIGN, SECTION_ENTRY_LEN};

/// Header fields the mutator sets: name, byte offset, width in bytes.
pub const HEADER_FIELDS: [(&str, usize, usize); 9] = [
    ("version", 4, 2),
    ("header-len", 6, 2),
    ("kind", 8, 2),
    ("metric", 10, 1),
    ("dim", 12, 4),
    ("count", 16, 8),
    ("section-count", 24, 4),
    ("flags", 28, 4),
    ("file-len", 32, 8),
];

/// Section-table entry fields the mutator sets: name, offset within the entry, width.
pub const ENTRY_FIELDS: [(&str, usize, usize); 3] = [("kind", 0, 4), ("offset", 8, 8), ("len", 16, 8)];

/// One section-table entry as the bytes say, whether or not it is valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Position of the entry in the table.
    pub index: usize,
    /// Section kind code.
    pub kind: u32,
    /// Declared offset.
    pub offset: u64,
    /// Declared length.
    pub len: u64,
}

impl Entry {
    /// The declared byte range, if it lies inside a buffer of `available` bytes.
    pub fn range(&self, available: usize) -> Option<std::ops::Range<usize>> {
        let start = usize::try_from(self.offset).ok()?;
        let end = start.checked_add(usize::try_from(self.len).ok()?)?;
        (end <= available).then_some(start..end)
    }
}

/// Header values and table entries of a (possibly broken) file.
#[derive(Clone, Debug, Default)]
pub struct Layout {
    /// Index kind code.
    pub kind: u16,
    /// Dimension.
    pub dim: u32,
    /// Vector count.
    pub count: u64,
    /// Declared file length.
    pub file_len: u64,
    /// Entries whose 32 bytes are present (at most [`MAX_SECTIONS`]).
    pub entries: Vec<Entry>,
}

/// Little-endian read of `width` bytes at `at`, zero where the buffer ends.
pub fn get(bytes: &[u8], at: usize, width: usize) -> u64 {
    let mut v = [0u8; 8];
    for (i, b) in v.iter_mut().enumerate().take(width) {
        *b = bytes.get(at + i).copied().unwrap_or(0);
    }
    u64::from_le_bytes(v)
}

/// Little-endian write of the low `width` bytes of `value` at `at`, dropping what falls past
/// the end of the buffer.
pub fn put(bytes: &mut [u8], at: usize, width: usize, value: u64) {
    for (i, b) in value.to_le_bytes().iter().enumerate().take(width) {
        if let Some(slot) = bytes.get_mut(at + i) {
            *slot = *b;
        }
    }
}

/// Byte position of table entry `i`.
pub fn entry_at(i: usize) -> usize {
    HEADER_LEN + i * SECTION_ENTRY_LEN
}

/// Rounds up to the section alignment.
pub fn align_up(x: usize) -> usize {
    x.div_ceil(SECTION_ALIGN) * SECTION_ALIGN
}

impl Layout {
    /// Reads what `bytes` declare.
    pub fn read(bytes: &[u8]) -> Self {
        if bytes.len() < HEADER_LEN {
            return Self::default();
        }
        let declared = get(bytes, 24, 4) as usize;
        let fit = (bytes.len() - HEADER_LEN) / SECTION_ENTRY_LEN;
        let n = declared.min(MAX_SECTIONS as usize).min(fit);
        let entries = (0..n)
            .map(|i| {
                let at = entry_at(i);
                Entry {
                    index: i,
                    kind: get(bytes, at, 4) as u32,
                    offset: get(bytes, at + 8, 8),
                    len: get(bytes, at + 16, 8),
                }
            })
            .collect();
        Self {
            kind: get(bytes, 8, 2) as u16,
            dim: get(bytes, 12, 4) as u32,
            count: get(bytes, 16, 8),
            file_len: get(bytes, 32, 8),
            entries,
        }
    }

    /// The entry of section kind `kind`, if the table names it.
    pub fn find(&self, kind: u32) -> Option<&Entry> {
        self.entries.iter().find(|e| e.kind == kind)
    }
}

/// The header checksum the format defines: bytes 0..60, then the declared section table.
pub fn header_crc(bytes: &[u8]) -> Option<u32> {
    if bytes.len() < HEADER_LEN {
        return None;
    }
    let declared = get(bytes, 24, 4) as usize;
    let table_end = HEADER_LEN.checked_add(declared.checked_mul(SECTION_ENTRY_LEN)?)?;
    let table = bytes.get(HEADER_LEN..table_end)?;
    let mut h = crc32fast::Hasher::new();
    h.update(&bytes[..60]);
    h.update(table);
    Some(h.finalize())
}

/// Recomputes every in-bounds section's CRC, then the header CRC (which covers the section
/// CRCs, so the order matters). Fields that cannot be computed (a table past the end, a
/// section out of bounds) are left as they are: the file is refused before they are read.
pub fn fix_checksums(bytes: &mut [u8]) {
    fix_section_checksums(bytes);
    fix_header_checksum(bytes);
}

/// Recomputes the CRC of every section that lies inside the buffer.
pub fn fix_section_checksums(bytes: &mut [u8]) {
    for e in Layout::read(bytes).entries {
        if let Some(r) = e.range(bytes.len()) {
            let crc = crc32fast::hash(&bytes[r]);
            put(bytes, entry_at(e.index) + 24, 4, crc as u64);
        }
    }
}

/// Recomputes the header CRC, if the declared table lies inside the buffer.
pub fn fix_header_checksum(bytes: &mut [u8]) {
    if let Some(crc) = header_crc(bytes) {
        put(bytes, 60, 4, crc as u64);
    }
}

/// Whether byte `at` lies in the header, the declared table or a declared section: the bytes
/// some checksum covers.
pub fn is_covered(layout: &Layout, declared_sections: usize, at: usize) -> bool {
    if at < HEADER_LEN + declared_sections * SECTION_ENTRY_LEN {
        return true;
    }
    layout.entries.iter().any(|e| {
        let (start, len) = (e.offset as u128, e.len as u128);
        (start..start + len).contains(&(at as u128))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_and_write_little_endian_within_bounds() {
        let mut b = vec![0u8; 6];
        put(&mut b, 2, 4, 0x0102_0304);
        assert_eq!(b, [0, 0, 4, 3, 2, 1]);
        assert_eq!(get(&b, 2, 4), 0x0102_0304);
        put(&mut b, 4, 8, u64::MAX);
        assert_eq!(b, [0, 0, 4, 3, 255, 255]);
        assert_eq!(get(&b, 4, 4), 0xffff);
    }
}
