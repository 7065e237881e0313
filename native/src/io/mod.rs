//! Vector files of vector-search benchmarks: TEXMEX `.fvecs` / `.ivecs` / `.bvecs` and NumPy
//! `.npy`, read whole, streamed in chunks, or written.
//!
//! This file owns the public API, the format detection and the chunked record reading every
//! reader shares; the per-format layouts live in `texmex` and `npy`, the error type in `error`.
//!
//! Every length a file declares is checked against the file's actual length before anything is
//! allocated, so a hostile or corrupt file yields an error, never a huge allocation or a panic.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

mod error;
mod npy;
#[cfg(test)]
mod tests;
mod texmex;

pub use error::VecIoError;

/// Largest vector dimension a vector file may declare, read or written. It is a sanity bound
/// on files, looser than the crate's index limit `MAX_DIM`: it lets a corrupt dimension
/// header be rejected before it sizes any buffer, while still reading files an index would
/// refuse (so the caller, not this module, reports that).
pub const MAX_FILE_DIM: usize = 1 << 20;

/// Capacity of the file buffers and size of the byte batches decoded at once: large enough
/// that per-call overhead vanishes next to the copying, small enough to stay cheap to hold.
const IO_BUFFER: usize = 1 << 20;

/// Which vector file format a path holds, from its extension (case-insensitive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VecFormat {
    /// TEXMEX `.fvecs`: records of a little-endian `i32` dimension then that many `f32`.
    Fvecs,
    /// TEXMEX `.ivecs`: records of a little-endian `i32` dimension then that many `i32`.
    Ivecs,
    /// TEXMEX `.bvecs`: records of a little-endian `i32` dimension then that many `u8`.
    Bvecs,
    /// NumPy `.npy` holding a 2-D C-order array.
    Npy,
}

impl VecFormat {
    /// The format named by `path`'s extension (`fvecs`, `ivecs`, `bvecs` or `npy`, in any
    /// letter case).
    pub fn from_path(path: &Path) -> Result<Self, VecIoError> {
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        [("fvecs", Self::Fvecs), ("ivecs", Self::Ivecs), ("bvecs", Self::Bvecs), ("npy", Self::Npy)]
            .into_iter()
            .find(|(name, _)| ext.eq_ignore_ascii_case(name))
            .map(|(_, format)| format)
            .ok_or_else(|| VecIoError::UnknownExtension { path: path.to_path_buf() })
    }

    /// The format's usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Fvecs => "fvecs",
            Self::Ivecs => "ivecs",
            Self::Bvecs => "bvecs",
            Self::Npy => "npy",
        }
    }
}

/// Shape of a vector file, read from its first bytes and its length only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VecFileInfo {
    /// The file's format.
    pub format: VecFormat,
    /// Dimension of every vector.
    pub dim: usize,
    /// Number of vectors.
    pub count: usize,
}

/// Shape of the vector file at `path`, from its header and its length, without reading the
/// vectors. For TEXMEX files only the first record's dimension is read; a later record with
/// another dimension is caught when the vectors are read.
pub fn probe(path: &Path) -> Result<VecFileInfo, VecIoError> {
    let format = VecFormat::from_path(path)?;
    Records::open(path, format).map(|records| records.info)
}

/// All vectors of an `.fvecs`, `.bvecs` (`u8` converted to `f32`) or `.npy` (`f32`, `f64` or
/// `u8`, converted to `f32`) file as one row-major buffer, plus the dimension.
pub fn read_f32_vectors(path: &Path) -> Result<(Vec<f32>, usize), VecIoError> {
    read_f32_vectors_limit(path, usize::MAX)
}

/// Same as [`read_f32_vectors`], but at most `limit` vectors (the first ones): for sampling
/// big files. The whole file's layout is still validated against its length.
pub fn read_f32_vectors_limit(path: &Path, limit: usize) -> Result<(Vec<f32>, usize), VecIoError> {
    let mut reader = VecReader::open(path)?;
    let mut data = Vec::new();
    reader.read_chunk(limit, &mut data)?;
    Ok((data, reader.info().dim))
}

/// All vectors of an `.ivecs` file (e.g. ground-truth neighbour ids), row-major, plus the
/// dimension.
pub fn read_ivecs(path: &Path) -> Result<(Vec<i32>, usize), VecIoError> {
    let format = VecFormat::from_path(path)?;
    if format != VecFormat::Ivecs {
        return Err(VecIoError::WrongFormat { path: path.to_path_buf(), expected: "an .ivecs file" });
    }
    let mut records = Records::open(path, format)?;
    let mut data = Vec::new();
    records.read(usize::MAX, &mut data, decode_i32)?;
    Ok((data, records.info.dim))
}

/// Writes `data` (row-major vectors of dimension `dim`) as an `.fvecs` file, whatever the
/// path's extension.
pub fn write_fvecs(path: &Path, data: &[f32], dim: usize) -> Result<(), VecIoError> {
    texmex::write_file(path, data, dim)
}

/// Writes `data` (row-major vectors of dimension `dim`) as an `.ivecs` file, whatever the
/// path's extension.
pub fn write_ivecs(path: &Path, data: &[i32], dim: usize) -> Result<(), VecIoError> {
    texmex::write_file(path, data, dim)
}

/// Writes `data` (row-major vectors of dimension `dim`) as a `.bvecs` file, whatever the
/// path's extension.
pub fn write_bvecs(path: &Path, data: &[u8], dim: usize) -> Result<(), VecIoError> {
    texmex::write_file(path, data, dim)
}

/// Writes `data` (row-major vectors of dimension `dim`) as a version 1.0 `.npy` file of
/// dtype `<f4` and shape `(data.len() / dim, dim)`, whatever the path's extension.
pub fn write_npy_f32(path: &Path, data: &[f32], dim: usize) -> Result<(), VecIoError> {
    npy::write_f32(path, data, dim)
}

/// Writes `f32` vectors in the format the path's extension names (`.fvecs` or `.npy`).
pub fn write_f32_vectors(path: &Path, data: &[f32], dim: usize) -> Result<(), VecIoError> {
    match VecFormat::from_path(path)? {
        VecFormat::Fvecs => write_fvecs(path, data, dim),
        VecFormat::Npy => write_npy_f32(path, data, dim),
        VecFormat::Ivecs | VecFormat::Bvecs => {
            Err(VecIoError::WrongFormat { path: path.to_path_buf(), expected: "an .fvecs or .npy file" })
        }
    }
}

/// Streaming reader for big `f32`-convertible files (`.fvecs`, `.bvecs`, `.npy`) that never
/// holds more than one chunk of vectors (plus a fixed 1 MiB of buffers).
#[derive(Debug)]
pub struct VecReader {
    records: Records,
    decode: fn(&[u8], &mut Vec<f32>),
}

impl VecReader {
    /// Opens `path` and validates its layout against its length.
    pub fn open(path: &Path) -> Result<Self, VecIoError> {
        let format = VecFormat::from_path(path)?;
        if format == VecFormat::Ivecs {
            return Err(VecIoError::WrongFormat {
                path: path.to_path_buf(),
                expected: "an .fvecs, .bvecs or .npy file",
            });
        }
        let records = Records::open(path, format)?;
        let decode = records.elem.f32_decoder();
        Ok(Self { records, decode })
    }

    /// Format, dimension and vector count of the file.
    pub fn info(&self) -> VecFileInfo {
        self.records.info
    }

    /// Number of vectors not yet read.
    pub fn remaining(&self) -> usize {
        self.records.remaining()
    }

    /// Clears `buf`, appends up to `max_vectors` next vectors (row-major `f32`) and returns how
    /// many (0 at the end of the file, or when `max_vectors` is 0).
    ///
    /// After an error `buf` holds an unspecified prefix and the reader is exhausted: later
    /// calls return 0, so a loop never resumes from the middle of a broken record.
    pub fn read_chunk(&mut self, max_vectors: usize, buf: &mut Vec<f32>) -> Result<usize, VecIoError> {
        buf.clear();
        self.records.read(max_vectors, buf, self.decode)
    }
}

/// Random access to the rows of a big `f32`-convertible file (`.fvecs`, `.bvecs`, `.npy`) by
/// positional reads, for builds that cannot hold the file: no buffer beyond the caller's, and
/// `&self` methods, so several threads may read at once.
#[cfg(unix)]
#[derive(Debug)]
pub struct VecRows {
    file: File,
    path: PathBuf,
    info: VecFileInfo,
    headered: bool,
    /// Bytes of one record (the TEXMEX dimension word included).
    record: usize,
    /// Offset of the first record (after an `.npy` header).
    data_start: u64,
    decode: fn(&[u8], &mut Vec<f32>),
}

#[cfg(unix)]
impl VecRows {
    /// Opens `path` and validates its layout against its length.
    pub fn open(path: &Path) -> Result<Self, VecIoError> {
        let reader = VecReader::open(path)?;
        let records = reader.records;
        let file = records.reader.into_inner();
        let len = file.metadata().map_err(io_error(path))?.len();
        let record = records.info.dim * records.elem.size() + if records.headered { 4 } else { 0 };
        // The layout was checked to end exactly at the file's end.
        let data_start = len - (records.info.count as u64) * record as u64;
        Ok(Self {
            file,
            path: records.path,
            info: records.info,
            headered: records.headered,
            record,
            data_start,
            decode: reader.decode,
        })
    }

    /// Format, dimension and vector count of the file.
    pub fn info(&self) -> VecFileInfo {
        self.info
    }

    /// Appends rows `first .. first + count` (row-major `f32`) to `out`, reading them through
    /// `raw` (a reusable byte buffer). Rows past the end are an error.
    pub fn read_rows(
        &self,
        first: usize,
        count: usize,
        out: &mut Vec<f32>,
        raw: &mut Vec<u8>,
    ) -> Result<(), VecIoError> {
        use std::os::unix::fs::FileExt;
        let end = first.checked_add(count).filter(|&end| end <= self.info.count);
        if end.is_none() {
            return Err(VecIoError::RowsOutOfRange {
                path: self.path.clone(),
                first,
                count,
                rows: self.info.count,
            });
        }
        raw.resize(count * self.record, 0);
        let at = self.data_start + first as u64 * self.record as u64;
        self.file.read_exact_at(raw, at).map_err(io_error(&self.path))?;
        decode_records(raw, self.record, self.headered, self.info.dim, &self.path, first, out, self.decode)
    }
}

/// Streaming writer for `.fvecs` / `.ivecs` files bigger than memory: vectors are appended in
/// as many calls as needed.
///
/// The format comes from the path's extension: [`FvecsWriter::write`] appends to `.fvecs`,
/// [`FvecsWriter::write_i32`] to `.ivecs`. Call [`FvecsWriter::finish`]: dropping the writer
/// instead still flushes, but any error doing so is lost.
#[derive(Debug)]
pub struct FvecsWriter {
    records: texmex::RecordWriter,
    format: VecFormat,
}

impl FvecsWriter {
    /// Creates (or truncates) the `.fvecs` or `.ivecs` file at `path` for vectors of
    /// dimension `dim`.
    pub fn create(path: &Path, dim: usize) -> Result<Self, VecIoError> {
        let format = VecFormat::from_path(path)?;
        if !matches!(format, VecFormat::Fvecs | VecFormat::Ivecs) {
            return Err(VecIoError::WrongFormat {
                path: path.to_path_buf(),
                expected: "an .fvecs or .ivecs file",
            });
        }
        let records = texmex::RecordWriter::create(path, dim)?;
        Ok(Self { records, format })
    }

    /// Dimension of the vectors this writer appends.
    pub fn dim(&self) -> usize {
        self.records.dim()
    }

    /// Number of vectors appended so far.
    pub fn count(&self) -> u64 {
        self.records.count()
    }

    /// Appends `data`, row-major vectors of the writer's dimension, to an `.fvecs` file.
    pub fn write(&mut self, data: &[f32]) -> Result<(), VecIoError> {
        self.expect_format(VecFormat::Fvecs, "an .fvecs file")?;
        self.records.write(data)
    }

    /// Appends `data`, row-major vectors of the writer's dimension, to an `.ivecs` file.
    pub fn write_i32(&mut self, data: &[i32]) -> Result<(), VecIoError> {
        self.expect_format(VecFormat::Ivecs, "an .ivecs file")?;
        self.records.write(data)
    }

    /// Flushes the file and returns the number of vectors written.
    pub fn finish(self) -> Result<u64, VecIoError> {
        self.records.finish()
    }

    fn expect_format(&self, format: VecFormat, expected: &'static str) -> Result<(), VecIoError> {
        if self.format == format {
            Ok(())
        } else {
            Err(VecIoError::WrongFormat { path: self.records.path().to_path_buf(), expected })
        }
    }
}

/// How one value is stored in a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Elem {
    F32,
    F64,
    I32,
    U8,
}

impl Elem {
    fn size(self) -> usize {
        match self {
            Self::F32 | Self::I32 => 4,
            Self::F64 => 8,
            Self::U8 => 1,
        }
    }

    fn f32_decoder(self) -> fn(&[u8], &mut Vec<f32>) {
        match self {
            Self::F32 => decode_f32,
            Self::F64 => decode_f64_as_f32,
            Self::I32 => decode_i32_as_f32,
            Self::U8 => decode_u8_as_f32,
        }
    }
}

// The decoders index inside chunks_exact chunks, which always have exactly the element size,
// so the indexing cannot fail; the fixed pattern lets the compiler drop the bounds checks and
// turn each loop into plain loads. Bytes past the last whole element are ignored, and callers
// only pass whole elements.

fn decode_f32(bytes: &[u8], out: &mut Vec<f32>) {
    out.extend(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
}

fn decode_f64_as_f32(bytes: &[u8], out: &mut Vec<f32>) {
    out.extend(
        bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32),
    );
}

fn decode_i32_as_f32(bytes: &[u8], out: &mut Vec<f32>) {
    out.extend(bytes.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32));
}

fn decode_u8_as_f32(bytes: &[u8], out: &mut Vec<f32>) {
    out.extend(bytes.iter().map(|&b| f32::from(b)));
}

fn decode_i32(bytes: &[u8], out: &mut Vec<i32>) {
    out.extend(bytes.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]])));
}

/// Decodes whole records of `record` bytes (`first` is the file position of the first, for
/// errors), checking each TEXMEX record's own dimension.
#[allow(clippy::too_many_arguments)]
fn decode_records<T>(
    bytes: &[u8],
    record: usize,
    headered: bool,
    dim: usize,
    path: &Path,
    first: usize,
    out: &mut Vec<T>,
    decode: fn(&[u8], &mut Vec<T>),
) -> Result<(), VecIoError> {
    if !headered {
        decode(bytes, out);
        return Ok(());
    }
    for (i, rec) in bytes.chunks_exact(record).enumerate() {
        // Every chunk is exactly `record` = 4 + payload bytes, so the split succeeds.
        if let Some((head, values)) = rec.split_first_chunk::<4>() {
            let found = i32::from_le_bytes(*head);
            if usize::try_from(found).ok() != Some(dim) {
                return Err(VecIoError::InconsistentDimension {
                    path: path.to_path_buf(),
                    vector: (first + i) as u64,
                    expected: dim,
                    found: i64::from(found),
                });
            }
            decode(values, out);
        }
    }
    Ok(())
}

/// Writer input check shared by every writer: a dimension a reader accepts, and whole vectors.
fn check_input(len: usize, dim: usize) -> Result<(), VecIoError> {
    if dim == 0 || dim > MAX_FILE_DIM {
        return Err(VecIoError::InvalidDimension { dim });
    }
    let partial = len % dim;
    if partial != 0 {
        return Err(VecIoError::RaggedData { len, dim });
    }
    Ok(())
}

/// Wraps an I/O failure with the file it happened on.
fn io_error(path: &Path) -> impl Fn(std::io::Error) -> VecIoError + '_ {
    move |source| VecIoError::Io { path: path.to_path_buf(), source }
}

/// An open vector file whose layout has been validated, read record batch by record batch.
#[derive(Debug)]
struct Records {
    reader: BufReader<File>,
    path: PathBuf,
    info: VecFileInfo,
    elem: Elem,
    /// TEXMEX records carry their own dimension in front of the values; `.npy` rows are bare.
    headered: bool,
    /// Index of the next vector to read.
    next: usize,
    /// Raw bytes of the batch being decoded, kept to reuse its allocation.
    scratch: Vec<u8>,
}

impl Records {
    fn open(path: &Path, format: VecFormat) -> Result<Self, VecIoError> {
        let file = File::open(path).map_err(io_error(path))?;
        let len = file.metadata().map_err(io_error(path))?.len();
        let mut reader = BufReader::with_capacity(IO_BUFFER, file);
        let (dim, count, elem, headered) = match format {
            VecFormat::Npy => {
                let layout = npy::read_layout(&mut reader, path, len)?;
                (layout.dim, layout.rows, layout.elem, false)
            }
            VecFormat::Fvecs | VecFormat::Ivecs | VecFormat::Bvecs => {
                let elem = match format {
                    VecFormat::Ivecs => Elem::I32,
                    VecFormat::Bvecs => Elem::U8,
                    _ => Elem::F32,
                };
                let (dim, count) = texmex::read_layout(&mut reader, path, len, elem.size())?;
                (dim, count, elem, true)
            }
        };
        // The layout fits the file, so on 64-bit targets the whole file always fits one
        // buffer of 4-byte values; on 32-bit ones a large file may not.
        let fits = usize::try_from(count).ok().filter(|&count| {
            count
                .checked_mul(dim)
                .and_then(|values| values.checked_mul(4))
                .is_some_and(|bytes| isize::try_from(bytes).is_ok())
        });
        let Some(count) = fits else {
            return Err(VecIoError::TooLarge { path: path.to_path_buf(), count, dim });
        };
        Ok(Self {
            reader,
            path: path.to_path_buf(),
            info: VecFileInfo { format, dim, count },
            elem,
            headered,
            next: 0,
            scratch: Vec::new(),
        })
    }

    fn remaining(&self) -> usize {
        self.info.count.saturating_sub(self.next)
    }

    /// Appends up to `max` next vectors to `out` through `decode`; returns how many.
    fn read<T>(
        &mut self,
        max: usize,
        out: &mut Vec<T>,
        decode: fn(&[u8], &mut Vec<T>),
    ) -> Result<usize, VecIoError> {
        let result = self.read_batches(max, out, decode);
        if result.is_err() {
            // The file position is now somewhere inside a record; reading on would misparse.
            self.next = self.info.count;
        }
        result
    }

    fn read_batches<T>(
        &mut self,
        max: usize,
        out: &mut Vec<T>,
        decode: fn(&[u8], &mut Vec<T>),
    ) -> Result<usize, VecIoError> {
        let n = max.min(self.remaining());
        if n == 0 {
            return Ok(0);
        }
        let dim = self.info.dim;
        // n * dim values are backed by at least that many bytes of the file (checked in open).
        out.reserve(n.saturating_mul(dim));
        let payload = dim * self.elem.size();
        let record = payload + if self.headered { 4 } else { 0 };
        let batch = (IO_BUFFER / record).max(1);
        let mut done = 0;
        while done < n {
            let k = batch.min(n - done);
            self.scratch.resize(k * record, 0);
            self.reader.read_exact(&mut self.scratch).map_err(io_error(&self.path))?;
            decode_records(
                &self.scratch,
                record,
                self.headered,
                dim,
                &self.path,
                self.next + done,
                out,
                decode,
            )?;
            done += k;
        }
        self.next += n;
        Ok(n)
    }
}
