//! The structure-aware mutator of index files: from a valid seed and one `u64`, a hostile file
//! that differs in 1–4 places chosen with the format in mind (header fields, table entries,
//! words inside sections, whole sections added, dropped, moved or resized), usually with every
//! checksum recomputed so the change reaches the structure checks behind them.

use neardb::format::{SectionKind, HEADER_LEN, MAX_SECTIONS, SECTION_ENTRY_LEN};

use crate::layout::{self, align_up, entry_at, get, put, Layout, ENTRY_FIELDS, HEADER_FIELDS};
use crate::rng::Rng;

/// Which checksums the mutant carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checksums {
    /// Every section CRC and the header CRC recomputed after the mutations.
    Fixed,
    /// Only the section CRCs recomputed: the header CRC is stale.
    SectionsOnly,
    /// Left as the seed had them.
    Stale,
}

/// A mutated file and how it was made.
#[derive(Clone, Debug)]
pub struct Mutant {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// Which checksums are valid.
    pub checksums: Checksums,
    /// One line per mutation, for the findings log.
    pub ops: Vec<String>,
}

/// Mutates `seed` as `rng` decides.
pub fn mutate(seed: &[u8], rng: &mut Rng) -> Mutant {
    let mut bytes = seed.to_vec();
    // Mostly one change: every extra one multiplies the odds that the file is refused at the
    // first check, and the deep checks only run on files that open.
    let n = match rng.below(20) {
        0..=9 => 1,
        10..=14 => 2,
        15..=17 => 3,
        _ => 4,
    };
    let ops = (0..n).map(|_| mutate_once(&mut bytes, rng)).collect();
    // Mostly fixed: a stale checksum stops every other mutation at the first gate, so it
    // gets a small share of its own.
    let checksums = match rng.below(20) {
        0 => Checksums::Stale,
        1 => {
            layout::fix_section_checksums(&mut bytes);
            Checksums::SectionsOnly
        }
        _ => {
            layout::fix_checksums(&mut bytes);
            Checksums::Fixed
        }
    };
    Mutant { bytes, checksums, ops }
}

fn mutate_once(b: &mut Vec<u8>, rng: &mut Rng) -> String {
    match rng.below(100) {
        0..=17 => header_field(b, rng),
        18..=35 => entry_field(b, rng),
        36..=63 => section_words(b, rng),
        64..=71 => fill_run(b, rng),
        72..=73 => random_bytes(b, rng),
        74..=76 => padding_bytes(b, rng),
        77..=82 => shuffle_table(b, rng),
        83..=88 => add_section(b, rng),
        89..=94 => resize_file(b, rng),
        _ => insert_gap(b, rng),
    }
}

/// An interesting value for an integer field holding `cur` in a file described by `l`.
fn interesting_int(rng: &mut Rng, cur: u64, l: &Layout) -> u64 {
    let others: Vec<u64> = l.entries.iter().flat_map(|e| [e.offset, e.len]).collect();
    match rng.below(24) {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => u64::MAX,
        4 => u32::MAX as u64,
        5 => u16::MAX as u64,
        6 => 1 << 31,
        7 => (1 << 31) - 1,
        8 => 1 << 32,
        9 => cur.wrapping_add(1),
        10 => cur.wrapping_sub(1),
        11 => cur.wrapping_mul(2),
        12 => cur / 2,
        13 => l.count.wrapping_add(1),
        14 => l.count.wrapping_sub(1),
        15 => l.count,
        16 => (l.dim as u64).wrapping_add(1),
        17 => (l.dim as u64).wrapping_sub(1),
        18 => l.file_len.wrapping_add(64),
        19 => l.file_len.wrapping_sub(64),
        20 if !others.is_empty() => *rng.pick(&others),
        21 => rng.below(256) as u64,
        22 => u64::MAX - 63,
        _ => rng.next_u32() as u64,
    }
}

fn header_field(b: &mut Vec<u8>, rng: &mut Rng) -> String {
    if b.len() < HEADER_LEN {
        return random_bytes(b, rng);
    }
    let l = Layout::read(b);
    let (name, at, width) = *rng.pick(&HEADER_FIELDS);
    let cur = get(b, at, width);
    let value = match name {
        // Small codes deserve their neighbours more than random words.
        "kind" | "metric" | "version" if rng.chance(2, 3) => rng.below(6) as u64,
        "section-count" if rng.chance(1, 2) => {
            *rng.pick(&[0, cur.wrapping_sub(1), cur + 1, MAX_SECTIONS as u64, MAX_SECTIONS as u64 + 1])
        }
        _ => interesting_int(rng, cur, &l),
    };
    put(b, at, width, value);
    format!("header.{name}: {cur} -> {}", get(b, at, width))
}

fn entry_field(b: &mut Vec<u8>, rng: &mut Rng) -> String {
    let l = Layout::read(b);
    if l.entries.is_empty() {
        return header_field(b, rng);
    }
    let e = *rng.pick(&l.entries);
    let (name, off, width) = *rng.pick(&ENTRY_FIELDS);
    let at = entry_at(e.index) + off;
    let cur = get(b, at, width);
    let others: Vec<&layout::Entry> = l.entries.iter().filter(|o| o.index != e.index).collect();
    let value = match (name, rng.below(3)) {
        ("kind", 0) => u64::from(*rng.pick(&[0u32, 20, 255, u32::MAX])),
        ("kind", _) => rng.range(1, 19) as u64,
        ("offset", 0) if !others.is_empty() => rng.pick(&others).offset,
        ("offset", 1) => {
            let end = align_up(b.len()) as u64;
            *rng.pick(&[
                cur.wrapping_add(64),
                cur.wrapping_sub(64),
                cur.wrapping_add(1),
                0,
                64,
                end,
                end.wrapping_sub(64),
                (b.len() as u64).wrapping_sub(e.len),
            ])
        }
        ("len", 0) => {
            let d = *rng.pick(&[1u64, 4, 8, 64]);
            if rng.chance(1, 2) {
                cur.wrapping_add(d)
            } else {
                cur.wrapping_sub(d)
            }
        }
        ("len", 1) => *rng.pick(&[
            0,
            l.count.wrapping_mul(4),
            l.count.div_ceil(64) * 8,
            l.count.wrapping_mul(l.dim as u64).wrapping_mul(4),
            (b.len() as u64).wrapping_sub(e.offset),
            others.first().map_or(0, |o| o.len),
        ]),
        _ => interesting_int(rng, cur, &l),
    };
    put(b, at, width, value);
    format!("entry[{}]({}).{name}: {cur} -> {}", e.index, kind_name(e.kind), get(b, at, width))
}

fn kind_name(code: u32) -> String {
    SectionKind(code).to_string()
}

/// The element type a section is mostly made of, to choose values of the right shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Elem {
    F32,
    U32,
    U16,
    U8,
    U64,
}

impl Elem {
    fn width(self) -> usize {
        match self {
            Self::U8 => 1,
            Self::U16 => 2,
            Self::F32 | Self::U32 => 4,
            Self::U64 => 8,
        }
    }

    fn of_section(kind: u32, rng: &mut Rng) -> Self {
        let natural = match SectionKind(kind) {
            SectionKind::VECTORS
            | SectionKind::SQ_RANGES
            | SectionKind::COARSE_CENTROIDS
            | SectionKind::PQ_CODEBOOKS
            | SectionKind::BINARY_PLANES => Self::F32,
            SectionKind::VECTORS_F16 => Self::U16,
            SectionKind::SQ_CODES | SectionKind::PQ_CODES | SectionKind::NODE_LEVELS => Self::U8,
            SectionKind::DELETED | SectionKind::BINARY_CODES => Self::U64,
            _ => Self::U32,
        };
        if rng.chance(3, 4) {
            natural
        } else {
            *rng.pick(&[Self::F32, Self::U32, Self::U16, Self::U8, Self::U64])
        }
    }

    /// An interesting value of this type, as little-endian bits.
    fn value(self, rng: &mut Rng, l: &Layout) -> u64 {
        match self {
            Self::F32 => {
                let f = *rng.pick(&[
                    f32::NAN,
                    f32::INFINITY,
                    f32::NEG_INFINITY,
                    f32::MAX,
                    -f32::MAX,
                    1e30,
                    -1e30,
                    1e20,
                    -0.0,
                    0.0,
                    f32::from_bits(1),
                    f32::MIN_POSITIVE / 2.0,
                    f32::MIN_POSITIVE,
                    1e-30,
                    1.0,
                    -1.0,
                    65504.0,
                ]);
                f.to_bits() as u64
            }
            Self::U32 => {
                let count = l.count as u32;
                let (some_slot, any) = (rng.below(l.count.clamp(1, 1 << 20) as usize) as u32, rng.next_u32());
                *rng.pick(&[
                    0,
                    1,
                    2,
                    u32::MAX,
                    u32::MAX - 1,
                    count,
                    count.wrapping_sub(1),
                    count.wrapping_add(1),
                    l.dim,
                    1 << 31,
                    (1 << 31) - 1,
                    255,
                    256,
                    65535,
                    65536,
                    some_slot,
                    any,
                ]) as u64
            }
            Self::U16 => {
                // Binary16: infinity, NaN, the largest finite, sign bit, subnormals.
                *rng.pick(&[0u16, 1, 0xffff, 0x7c00, 0xfc00, 0x7e00, 0x7bff, 0xfbff, 0x8000, 0x03ff]) as u64
            }
            Self::U8 => *rng.pick(&[0u8, 1, 2, 15, 16, 31, 63, 64, 127, 128, 255]) as u64,
            Self::U64 => {
                let any = rng.next_u64();
                *rng.pick(&[0, u64::MAX, 1 << 63, 1, any, u64::MAX >> 1])
            }
        }
    }
}

/// A random entry whose section lies inside the file and holds at least one byte.
fn pick_section(b: &[u8], rng: &mut Rng) -> Option<(layout::Entry, std::ops::Range<usize>)> {
    let l = Layout::read(b);
    let live: Vec<_> = l
        .entries
        .iter()
        .filter_map(|e| e.range(b.len()).filter(|r| !r.is_empty()).map(|r| (*e, r)))
        .collect();
    (!live.is_empty()).then(|| rng.pick(&live).clone())
}

/// A section picked for word-wise edits: its entry and byte range, the file's layout, the
/// element type its words hold, that type's width and how many whole elements fit.
struct Words {
    e: layout::Entry,
    r: std::ops::Range<usize>,
    l: Layout,
    elem: Elem,
    w: usize,
    slots: usize,
}

fn pick_words(b: &[u8], rng: &mut Rng) -> Option<Words> {
    let (e, r) = pick_section(b, rng)?;
    let l = Layout::read(b);
    let elem = Elem::of_section(e.kind, rng);
    let w = elem.width();
    let slots = r.len() / w;
    (slots > 0).then_some(Words { e, r, l, elem, w, slots })
}

fn section_words(b: &mut Vec<u8>, rng: &mut Rng) -> String {
    let Some(Words { e, r, l, elem, w, slots }) = pick_words(b, rng) else {
        return random_bytes(b, rng);
    };
    let n = if rng.chance(1, 8) { rng.range(5, 16) } else { rng.range(1, 4) };
    let mut changed = Vec::new();
    for _ in 0..n {
        let at = r.start + rng.below(slots) * w;
        let value = if rng.chance(1, 10) {
            // Another element of the same section: duplicates ids, links, offsets.
            get(b, r.start + rng.below(slots) * w, w)
        } else {
            elem.value(rng, &l)
        };
        put(b, at, w, value);
        changed.push(format!("@{}={value:#x}", at - r.start));
    }
    format!("section {} {elem:?} words {}", kind_name(e.kind), changed.join(" "))
}

fn fill_run(b: &mut Vec<u8>, rng: &mut Rng) -> String {
    let Some(Words { e, r, l, elem, w, slots }) = pick_words(b, rng) else {
        return random_bytes(b, rng);
    };
    let (first, n) = if rng.chance(1, 2) {
        (0, slots)
    } else {
        let first = rng.below(slots);
        (first, rng.range(1, slots - first))
    };
    let value = if rng.chance(1, 4) { get(b, r.start + first * w, w) } else { elem.value(rng, &l) };
    for i in first..first + n {
        put(b, r.start + i * w, w, value);
    }
    format!("section {} {elem:?} [{first}..{}] = {value:#x}", kind_name(e.kind), first + n)
}

fn random_bytes(b: &mut Vec<u8>, rng: &mut Rng) -> String {
    if b.is_empty() {
        b.extend(rng.bytes(64));
        return "random 64 bytes into an empty file".into();
    }
    let n = rng.range(1, 8);
    let prefix = (HEADER_LEN + SECTION_ENTRY_LEN * Layout::read(b).entries.len()).min(b.len());
    let mut at_list = Vec::new();
    for _ in 0..n {
        // Half in the header and table, where one byte matters most.
        let at = if rng.chance(1, 2) { rng.below(prefix) } else { rng.below(b.len()) };
        if rng.chance(1, 2) {
            b[at] ^= 1 << rng.below(8);
        } else {
            b[at] = rng.next_u32() as u8;
        }
        at_list.push(at.to_string());
    }
    format!("random bytes at {}", at_list.join(","))
}

/// Overwrites bytes in the alignment padding: covered by no section, so with fresh checksums
/// the file must still work, and with stale ones it must be refused.
fn padding_bytes(b: &mut Vec<u8>, rng: &mut Rng) -> String {
    let l = Layout::read(b);
    let mut gaps = Vec::new();
    let mut at = entry_at(l.entries.len()).min(b.len());
    let mut spans: Vec<(usize, usize)> =
        l.entries.iter().filter_map(|e| e.range(b.len())).map(|r| (r.start, r.end)).collect();
    spans.sort_unstable();
    for (start, end) in spans {
        if start > at {
            gaps.push(at..start);
        }
        at = at.max(end);
    }
    if gaps.is_empty() {
        return random_bytes(b, rng);
    }
    let gap = rng.pick(&gaps).clone();
    let pos = gap.start + rng.below(gap.len());
    let value = if rng.chance(1, 2) { 0xff } else { rng.range(1, 255) as u8 };
    b[pos] = value;
    format!("padding byte {pos} = {value:#x}")
}

fn set_file_len(b: &mut [u8]) {
    let len = b.len() as u64;
    put(b, 32, 8, len);
}

fn set_section_count(b: &mut [u8], n: usize) {
    put(b, 24, 4, n as u64);
}

fn shuffle_table(b: &mut Vec<u8>, rng: &mut Rng) -> String {
    let l = Layout::read(b);
    let n = l.entries.len();
    if n < 2 {
        return entry_field(b, rng);
    }
    let i = rng.below(n);
    let j = (i + rng.range(1, n - 1)) % n;
    let (ai, aj) = (entry_at(i), entry_at(j));
    match rng.below(3) {
        0 => {
            for k in 0..SECTION_ENTRY_LEN {
                b.swap(ai + k, aj + k);
            }
            format!("swap entries {i} and {j}")
        }
        1 => {
            b.copy_within(ai..ai + SECTION_ENTRY_LEN, aj);
            format!("duplicate entry {i} over {j}")
        }
        _ => {
            // Later entries move up; the freed slot stays behind as bytes outside any section.
            b.copy_within(entry_at(i + 1)..entry_at(n), ai);
            b[entry_at(n - 1)..entry_at(n)].fill(0);
            set_section_count(b, n - 1);
            format!("drop entry {i} ({})", kind_name(l.entries[i].kind))
        }
    }
}

/// Section kinds worth adding to a file: the optional ones first.
const ADDABLE: [SectionKind; 8] = [
    SectionKind::IDS,
    SectionKind::DELETED,
    SectionKind::IDS,
    SectionKind::DELETED,
    SectionKind::VECTORS,
    SectionKind::VECTORS_F16,
    SectionKind::SQ_RANGES,
    SectionKind::LSH_TABLES,
];

fn add_section(b: &mut Vec<u8>, rng: &mut Rng) -> String {
    if b.len() < HEADER_LEN {
        return random_bytes(b, rng);
    }
    let l = Layout::read(b);
    let s = l.entries.len();
    if s >= MAX_SECTIONS as usize || s != get(b, 24, 4) as usize {
        return entry_field(b, rng);
    }
    let kind = if rng.chance(4, 5) { *rng.pick(&ADDABLE) } else { SectionKind(rng.range(1, 19) as u32) };
    // Make room for one more entry when the table runs into the first section.
    let table_end = entry_at(s + 1);
    let first = l.entries.iter().map(|e| e.offset).min().unwrap_or(b.len() as u64);
    if (table_end as u64) > first {
        let at = entry_at(s);
        if b.len() < at {
            b.resize(at, 0);
        }
        b.splice(at..at, std::iter::repeat_n(0u8, 64));
        for e in &l.entries {
            if e.offset >= at as u64 {
                put(b, entry_at(e.index) + 8, 8, e.offset.wrapping_add(64));
            }
        }
    }
    let (count, dim) = (l.count.min(1 << 20) as usize, (l.dim as usize).min(1 << 12));
    let len = match rng.below(8) {
        0 | 1 => count * 4,
        2 | 3 => count.div_ceil(64) * 8,
        4 => count * dim * 4,
        5 => count * dim * 2,
        6 => dim * 8,
        _ => rng.below(64) * 4,
    }
    // A hostile count or dim must not make the mutant itself huge.
    .min(1 << 20);
    let offset = align_up(b.len());
    let pattern = rng.below(6);
    let mut body = vec![0u8; len];
    for (i, w) in body.chunks_mut(4).enumerate() {
        let v: u32 = match pattern {
            0 => 0,
            1 => u32::MAX,
            2 => 7,
            3 => i as u32,
            4 => rng.next_u32(),
            _ => (count as u32).wrapping_sub(1 + i as u32),
        };
        let bytes = v.to_le_bytes();
        w.copy_from_slice(&bytes[..w.len()]);
    }
    b.resize(offset, 0);
    b.extend_from_slice(&body);
    let at = entry_at(s);
    // An earlier mutation may have cut the file short of its own table.
    if b.len() < at + SECTION_ENTRY_LEN {
        b.resize(at + SECTION_ENTRY_LEN, 0);
    }
    b[at..at + SECTION_ENTRY_LEN].fill(0);
    put(b, at, 4, kind.0 as u64);
    put(b, at + 8, 8, offset as u64);
    put(b, at + 16, 8, len as u64);
    set_section_count(b, s + 1);
    set_file_len(b);
    format!("add section {kind} len {len} pattern {pattern}")
}

fn resize_file(b: &mut Vec<u8>, rng: &mut Rng) -> String {
    let old = b.len();
    let l = Layout::read(b);
    if rng.chance(1, 2) && old > 0 {
        let starts: Vec<usize> = l.entries.iter().map(|e| e.offset as usize).filter(|&o| o < old).collect();
        let new = match rng.below(4) {
            0 => old - 1,
            1 => old.saturating_sub(64),
            2 if !starts.is_empty() => *rng.pick(&starts),
            _ => rng.below(old),
        };
        b.truncate(new);
    } else {
        let any = rng.range(1, 200);
        let n = *rng.pick(&[1, 4, 64, 128, any]);
        if rng.chance(1, 2) {
            b.resize(old + n, 0);
        } else {
            b.extend(rng.bytes(n));
        }
    }
    let declared = rng.chance(1, 2);
    if declared {
        set_file_len(b);
    }
    format!("resize {old} -> {} (file-len field {})", b.len(), if declared { "updated" } else { "kept" })
}

fn insert_gap(b: &mut Vec<u8>, rng: &mut Rng) -> String {
    let l = Layout::read(b);
    let mut starts: Vec<usize> =
        l.entries.iter().filter_map(|e| usize::try_from(e.offset).ok()).filter(|&o| o <= b.len()).collect();
    starts.push(entry_at(l.entries.len()).min(b.len()));
    let at = *rng.pick(&starts);
    let n = if rng.chance(3, 4) { 64 * rng.range(1, 3) } else { rng.range(1, 63) };
    b.splice(at..at, std::iter::repeat_n(if rng.chance(1, 2) { 0 } else { 0xA5 }, n));
    let moved = rng.chance(4, 5);
    if moved {
        for e in &l.entries {
            if e.offset >= at as u64 {
                put(b, entry_at(e.index) + 8, 8, e.offset.wrapping_add(n as u64));
            }
        }
        set_file_len(b);
    }
    format!("insert {n} bytes at {at} (offsets {})", if moved { "moved" } else { "kept" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutation_is_a_function_of_the_seed() {
        let seed: Vec<u8> = (0..1024u32).map(|i| i as u8).collect();
        let a = mutate(&seed, &mut Rng::new(42));
        let b = mutate(&seed, &mut Rng::new(42));
        assert_eq!(a.bytes, b.bytes);
        assert_eq!(a.ops, b.ops);
    }
}
