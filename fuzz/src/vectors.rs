//! The vector-file target: small `.fvecs`/`.ivecs`/`.bvecs`/`.npy` seeds written once by the
//! library's own writers, a mutator that knows TEXMEX record headers and the `.npy` header
//! dict, and an oracle that reads each mutant back through every reader and checks that an
//! `Ok` answer is a whole number of rows of the dimension it reports.

use std::path::{Path, PathBuf};

use neardb::io::{self, VecReader};

use crate::oracle::Violation;
use crate::rng::Rng;

/// Extensions the readers know.
pub const EXTENSIONS: [&str; 4] = ["fvecs", "ivecs", "bvecs", "npy"];

/// One valid vector file.
#[derive(Clone, Debug)]
pub struct VecSeed {
    /// Variant, e.g. `npy-f8`.
    pub name: String,
    /// Its extension.
    pub ext: &'static str,
    /// The file.
    pub bytes: Vec<u8>,
    /// Its dimension.
    pub dim: usize,
    /// Its row count.
    pub rows: usize,
    /// Bytes per value.
    pub elem: usize,
}

/// The seeds and the directory mutants are written to.
#[derive(Debug)]
pub struct VecCorpus {
    /// Where the seeds were written and each mutant is written (one reused file per
    /// extension).
    pub dir: PathBuf,
    /// The seeds.
    pub seeds: Vec<VecSeed>,
}

/// An `.npy` file as NumPy writes it: magic, version, header length, the dict padded with
/// spaces to a 64-byte boundary and ended by a newline, then `data`.
pub fn npy_bytes(version: (u8, u8), dict: &str, data: &[u8]) -> Vec<u8> {
    let len_bytes = if version.0 >= 2 { 4 } else { 2 };
    let preamble = 8 + len_bytes;
    let total = (preamble + dict.len() + 1).div_ceil(64) * 64;
    let header_len = total - preamble;
    let mut out = b"\x93NUMPY".to_vec();
    out.extend_from_slice(&[version.0, version.1]);
    out.extend_from_slice(&(header_len as u32).to_le_bytes()[..len_bytes]);
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out.extend_from_slice(data);
    out
}

fn npy_dict(descr: &str, fortran: &str, shape: &str) -> String {
    format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}")
}

impl VecCorpus {
    /// Writes the seeds into `dir` with the library's writers and reads them back.
    pub fn create(dir: &Path) -> Result<Self, String> {
        let data = crate::seeds::data(99, 20, 7);
        let ints: Vec<i32> = (0..15 * 5).map(|i| i * 37 - 900).collect();
        let bytes: Vec<u8> = (0..10 * 16).map(|i| (i * 13) as u8).collect();
        let write =
            |name: &str, f: &dyn Fn(&Path) -> Result<(), io::VecIoError>| -> Result<Vec<u8>, String> {
                let path = dir.join(name);
                f(&path).map_err(|e| e.to_string())?;
                std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
            };
        let seed = |name: &str, ext, bytes, dim, rows, elem| VecSeed {
            name: name.to_string(),
            ext,
            bytes,
            dim,
            rows,
            elem,
        };
        let mut seeds = vec![
            seed("fvecs", "fvecs", write("seed.fvecs", &|p| io::write_fvecs(p, &data, 7))?, 7, 20, 4),
            seed("ivecs", "ivecs", write("seed.ivecs", &|p| io::write_ivecs(p, &ints, 5))?, 5, 15, 4),
            seed("bvecs", "bvecs", write("seed.bvecs", &|p| io::write_bvecs(p, &bytes, 16))?, 16, 10, 1),
            seed(
                "npy-f4",
                "npy",
                write("seed.npy", &|p| io::write_npy_f32(p, &data[..12 * 6], 6))?,
                6,
                12,
                4,
            ),
        ];
        // Dtypes the reader converts but no writer produces.
        let f8: Vec<u8> = data[..9 * 3].iter().flat_map(|&x| f64::from(x).to_le_bytes()).collect();
        let dict = npy_dict("<f8", "False", "(9, 3)");
        seeds.push(seed("npy-f8", "npy", npy_bytes((1, 0), &dict, &f8), 3, 9, 8));
        let dict = npy_dict("|u1", "False", "(10, 16)");
        seeds.push(seed("npy-u1-v2", "npy", npy_bytes((2, 0), &dict, &bytes), 16, 10, 1));
        Ok(Self { dir: dir.to_path_buf(), seeds })
    }
}

/// Sets 1 to `most - 1` bytes at random places to random values; says what it did.
pub fn random_bytes(b: &mut [u8], rng: &mut Rng, most: usize) -> String {
    let n = rng.range(1, most);
    for _ in 0..n {
        if !b.is_empty() {
            let at = rng.below(b.len());
            b[at] = rng.next_u32() as u8;
        }
    }
    format!("{n} random bytes")
}

/// Cuts the file at a random length; says where.
pub fn truncate(b: &mut Vec<u8>, rng: &mut Rng) -> String {
    let new = if b.is_empty() { 0 } else { rng.below(b.len()) };
    b.truncate(new);
    format!("truncate to {new}")
}

/// A mutated vector file: its bytes, the extension it is read as, what was done.
#[derive(Clone, Debug)]
pub struct VecMutant {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The extension the readers see.
    pub ext: &'static str,
    /// One line per mutation.
    pub ops: Vec<String>,
}

/// Mutates `seed` as `rng` decides.
pub fn mutate(seed: &VecSeed, rng: &mut Rng) -> VecMutant {
    let mut b = seed.bytes.clone();
    let mut ops = Vec::new();
    for _ in 0..rng.range(1, 3) {
        let op = match rng.below(10) {
            0..=4 if seed.ext == "npy" => npy_header(&mut b, seed, rng),
            0..=4 => record_dims(&mut b, seed, rng),
            5 | 6 => random_bytes(&mut b, rng, 4),
            7 => truncate(&mut b, rng),
            8 => {
                let n = *rng.pick(&[1, 4, seed.elem, 4 + seed.dim * seed.elem]);
                let fill = rng.bytes(n);
                let at = rng.below(b.len() + 1);
                b.splice(at..at, fill);
                format!("insert {n} bytes at {at}")
            }
            _ => {
                let n = rng.range(1, 64).min(b.len());
                let from = rng.below(b.len() - n + 1);
                let chunk = b[from..from + n].to_vec();
                b.extend_from_slice(&chunk);
                format!("append a copy of {n} bytes from {from}")
            }
        };
        ops.push(op);
    }
    let ext = if rng.chance(1, 8) { *rng.pick(&EXTENSIONS) } else { seed.ext };
    VecMutant { bytes: b, ext, ops }
}

fn interesting_i32(rng: &mut Rng, dim: usize) -> i32 {
    let dim = dim as i32;
    *rng.pick(&[0, -1, 1, 2, dim - 1, dim + 1, dim * 2, i32::MAX, i32::MIN, 1 << 20, (1 << 20) + 1, 1 << 30])
}

fn record_dims(b: &mut [u8], seed: &VecSeed, rng: &mut Rng) -> String {
    let record = 4 + seed.dim * seed.elem;
    let records = b.len() / record;
    if records == 0 {
        return "no record to change".into();
    }
    if rng.chance(1, 3) {
        // Every record header at once: the layout check then sees a consistent file.
        let d = interesting_i32(rng, seed.dim);
        for r in 0..records {
            b[r * record..r * record + 4].copy_from_slice(&d.to_le_bytes());
        }
        format!("every record dim = {d}")
    } else {
        let r = rng.below(records);
        let d = interesting_i32(rng, seed.dim);
        b[r * record..r * record + 4].copy_from_slice(&d.to_le_bytes());
        format!("record {r} dim = {d}")
    }
}

fn npy_header(b: &mut Vec<u8>, seed: &VecSeed, rng: &mut Rng) -> String {
    let data_start = b.iter().position(|&c| c == b'\n').map_or(b.len(), |p| p + 1);
    let data = b[data_start.min(b.len())..].to_vec();
    let descr = if rng.chance(1, 2) {
        match seed.elem {
            8 => "<f8",
            1 => "|u1",
            _ => "<f4",
        }
    } else {
        *rng.pick(&["<f4", "<f8", "|u1", "<i4", ">f4", "<f2", "<u8", "|b1", "<c8", "O", "<f4<", "f4", ""])
    };
    let fortran = if rng.chance(5, 6) { "False" } else { *rng.pick(&["True", "0", "'x'", "None"]) };
    let (r, d) = (seed.rows, seed.dim);
    let shapes = [
        format!("({r}, {d})"),
        format!("({}, {d})", r + 1),
        format!("({}, {d})", r.saturating_sub(1)),
        format!("(0, {d})"),
        format!("({r}, 0)"),
        format!("({d}, {r})"),
        format!("({},)", r * d),
        "()".into(),
        format!("({r}, {d}, 1)"),
        format!("(1, {r}, {d})"),
        "(4611686018427387904, 8)".into(),
        "(4611686018427387904, 4611686018427387904)".into(),
        "(18446744073709551615, 1)".into(),
        "(99999999999999999999999, 1)".into(),
        format!("(-1, {d})"),
        format!("({r}, 1048577)"),
        format!("({r}L, {d}L)"),
        format!("(({r}, {d}), 1)"),
        format!("[{r}, {d}]"),
        format!("({r}, {d}"),
    ];
    let shape = if rng.chance(1, 3) { shapes[0].clone() } else { rng.pick(&shapes).clone() };
    let mut dict = npy_dict(descr, fortran, &shape);
    match rng.below(12) {
        0 => dict = dict.replace("'fortran_order': False, ", ""),
        1 => dict = dict.replace("}", "'extra': 1, }"),
        2 => dict = dict.replace("{", "{'descr': '<f4', "),
        3 => dict.truncate(rng.below(dict.len())),
        4 => dict = "[".repeat(rng.range(30, 40)) + &dict,
        _ => {}
    }
    let version = if rng.chance(3, 4) { (1, 0) } else { *rng.pick(&[(2, 0), (3, 0), (0, 0), (1, 1)]) };
    let mut out = npy_bytes(version, &dict, &data);
    if rng.chance(1, 6) {
        let len_bytes = if version.0 >= 2 { 4 } else { 2 };
        let v = *rng.pick(&[0u32, 1, 0xffff, 0xffff_ffff, (out.len() - data.len()) as u32]);
        out[8..8 + len_bytes].copy_from_slice(&v.to_le_bytes()[..len_bytes]);
    }
    *b = out;
    format!("npy header v{}.{} {dict:?}", version.0, version.1)
}

/// What reading one mutant saw.
#[derive(Debug, Default)]
pub struct VecOutcome {
    /// `None` if the main reader accepted the file, else its error.
    pub refused: Option<String>,
    /// Broken rules.
    pub violations: Vec<Violation>,
}

fn check_shape(len: usize, dim: usize, rows: Option<usize>, what: &str, out: &mut Vec<Violation>) {
    let bad = |detail: String| Violation { cause: "vector-length-not-rows-times-dim".into(), detail };
    if dim == 0 {
        out.push(Violation { cause: "vector-zero-dim".into(), detail: format!("{what}: Ok with dim 0") });
    } else if !len.is_multiple_of(dim) {
        out.push(bad(format!("{what}: {len} values with dim {dim}")));
    } else if let Some(rows) = rows.filter(|&r| r.checked_mul(dim) != Some(len)) {
        out.push(bad(format!("{what}: {len} values, probe says {rows} rows × {dim}")));
    }
}

/// Reads the file at `path` (named with its extension) through every reader that accepts its
/// format. Does not catch panics: the caller wraps the execution.
pub fn exercise(path: &Path) -> VecOutcome {
    let mut out = VecOutcome::default();
    let probe = io::probe(path).ok();
    let probed = |dim: usize| probe.filter(|p| p.dim == dim).map(|p| p.count);
    if let Some(p) = probe {
        if p.dim == 0 {
            out.violations.push(Violation { cause: "vector-zero-dim".into(), detail: "probe".into() });
        }
    }
    let is_ivecs = path.extension().is_some_and(|e| e == "ivecs");
    if is_ivecs {
        match io::read_ivecs(path) {
            Ok((data, dim)) => check_shape(data.len(), dim, probed(dim), "read_ivecs", &mut out.violations),
            Err(e) => out.refused = Some(e.to_string()),
        }
        return out;
    }
    match io::read_f32_vectors(path) {
        Ok((data, dim)) => {
            check_shape(data.len(), dim, probed(dim), "read_f32_vectors", &mut out.violations);
            if probe.is_some_and(|p| p.dim != dim) {
                out.violations.push(Violation {
                    cause: "vector-dim-disagrees-with-probe".into(),
                    detail: format!("read {dim}, probe {:?}", probe),
                });
            }
        }
        Err(e) => out.refused = Some(e.to_string()),
    }
    if let Ok((data, dim)) = io::read_f32_vectors_limit(path, 3) {
        check_shape(data.len(), dim, None, "read_f32_vectors_limit", &mut out.violations);
        if dim > 0 && data.len() / dim > 3 {
            out.violations.push(Violation {
                cause: "vector-limit-exceeded".into(),
                detail: format!("{} rows for limit 3", data.len() / dim),
            });
        }
    }
    if let Ok(mut reader) = VecReader::open(path) {
        let info = reader.info();
        let mut buf = Vec::new();
        let mut total = 0usize;
        let mut clean = true;
        // Bounded: a reader that never reports the end is a finding, not a hang.
        for _ in 0..info.count.saturating_add(2).min(1 << 20) {
            match reader.read_chunk(4, &mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if buf.len() != n * info.dim {
                        check_shape(buf.len(), info.dim, Some(n), "read_chunk", &mut out.violations);
                    }
                    total += n;
                }
                Err(_) => {
                    clean = false;
                    break;
                }
            }
        }
        if clean && total != info.count {
            out.violations.push(Violation {
                cause: "vector-stream-count-mismatch".into(),
                detail: format!("streamed {total} rows, info says {}", info.count),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let corpus = VecCorpus::create(dir.path()).unwrap();
        for s in &corpus.seeds {
            let path = dir.path().join(format!("check.{}", s.ext));
            std::fs::write(&path, &s.bytes).unwrap();
            let out = exercise(&path);
            assert_eq!(out.refused, None, "{}", s.name);
            assert!(out.violations.is_empty(), "{}: {:?}", s.name, out.violations);
            let info = io::probe(&path).unwrap();
            assert_eq!((info.dim, info.count), (s.dim, s.rows), "{}", s.name);
        }
    }

    #[test]
    fn a_wrong_length_is_reported() {
        let mut v = Vec::new();
        check_shape(10, 3, None, "planted", &mut v);
        check_shape(12, 3, Some(5), "planted", &mut v);
        check_shape(12, 0, None, "planted", &mut v);
        let causes: Vec<_> = v.iter().map(|v| v.cause.as_str()).collect();
        assert_eq!(
            causes,
            ["vector-length-not-rows-times-dim", "vector-length-not-rows-times-dim", "vector-zero-dim"]
        );
    }
}
