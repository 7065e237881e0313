//! TEXMEX `.fvecs` / `.ivecs` / `.bvecs` layout: headerless files of records, each a
//! little-endian `i32` dimension followed by that many little-endian values. Owns validating a
//! file's first record against its length, and the record writer behind `write_fvecs`,
//! `write_ivecs`, `write_bvecs` and `FvecsWriter`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::{check_input, io_error, VecIoError, IO_BUFFER, MAX_FILE_DIM};

/// Reads the first record's dimension and checks that the file's length `len` is a whole
/// number of records of that dimension, whose values are `elem_size` bytes each. Leaves the
/// reader at the start of the file; returns the dimension and the number of records.
pub(super) fn read_layout(
    reader: &mut BufReader<File>,
    path: &Path,
    len: u64,
    elem_size: usize,
) -> Result<(usize, u64), VecIoError> {
    if len == 0 {
        return Err(VecIoError::Empty { path: path.to_path_buf() });
    }
    if len < 4 {
        return Err(VecIoError::Truncated { path: path.to_path_buf(), expected_bytes: 4, actual_bytes: len });
    }
    let mut head = [0u8; 4];
    reader.read_exact(&mut head).map_err(io_error(path))?;
    // Within the buffer just filled, so this costs no system call.
    reader.seek_relative(-4).map_err(io_error(path))?;
    let declared = i32::from_le_bytes(head);
    let dim =
        usize::try_from(declared).ok().filter(|dim| (1..=MAX_FILE_DIM).contains(dim)).ok_or_else(|| {
            VecIoError::BadDimension { path: path.to_path_buf(), vector: 0, dim: i64::from(declared) }
        })?;
    // At most 4 + 2^20 * 4 bytes: no overflow.
    let record = (4 + dim * elem_size) as u64;
    let partial = len % record;
    if partial != 0 {
        return Err(VecIoError::Truncated {
            path: path.to_path_buf(),
            expected_bytes: (len - partial).saturating_add(record),
            actual_bytes: len,
        });
    }
    Ok((dim, len / record))
}

/// A value TEXMEX and `.npy` files store little-endian.
pub(super) trait LeValue: Copy {
    /// Appends the values' little-endian bytes to `out`.
    fn put_all(values: &[Self], out: &mut Vec<u8>);
    /// Bytes per value.
    const SIZE: usize;
}

impl LeValue for f32 {
    const SIZE: usize = 4;
    fn put_all(values: &[Self], out: &mut Vec<u8>) {
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

impl LeValue for i32 {
    const SIZE: usize = 4;
    fn put_all(values: &[Self], out: &mut Vec<u8>) {
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

impl LeValue for u8 {
    const SIZE: usize = 1;
    fn put_all(values: &[Self], out: &mut Vec<u8>) {
        out.extend_from_slice(values);
    }
}

/// Writes a whole TEXMEX file. The input is checked before the file is created, so a bad call
/// leaves no empty file behind.
pub(super) fn write_file<T: LeValue>(path: &Path, data: &[T], dim: usize) -> Result<(), VecIoError> {
    check_input(data.len(), dim)?;
    let mut writer = RecordWriter::create(path, dim)?;
    writer.write(data)?;
    writer.finish().map(drop)
}

/// Appends TEXMEX records of one dimension to a file.
#[derive(Debug)]
pub(super) struct RecordWriter {
    writer: BufWriter<File>,
    path: PathBuf,
    dim: usize,
    /// The dimension as every record's little-endian `i32` prefix.
    header: [u8; 4],
    count: u64,
    /// Encoded bytes of the batch being written, kept to reuse its allocation.
    scratch: Vec<u8>,
}

impl RecordWriter {
    /// Creates (or truncates) `path` for records of dimension `dim`.
    pub(super) fn create(path: &Path, dim: usize) -> Result<Self, VecIoError> {
        check_input(0, dim)?;
        // check_input bounds dim by MAX_FILE_DIM, far inside i32.
        let header = i32::try_from(dim).map_err(|_| VecIoError::InvalidDimension { dim })?.to_le_bytes();
        let file = File::create(path).map_err(io_error(path))?;
        Ok(Self {
            writer: BufWriter::with_capacity(IO_BUFFER, file),
            path: path.to_path_buf(),
            dim,
            header,
            count: 0,
            scratch: Vec::new(),
        })
    }

    pub(super) fn dim(&self) -> usize {
        self.dim
    }

    pub(super) fn count(&self) -> u64 {
        self.count
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `data`, row-major vectors of the writer's dimension.
    pub(super) fn write<T: LeValue>(&mut self, data: &[T]) -> Result<(), VecIoError> {
        check_input(data.len(), self.dim)?;
        let record = 4 + self.dim * T::SIZE;
        // Encode about one buffer's worth at a time so each write_all moves a large block.
        let batch = (IO_BUFFER / record).max(1) * self.dim;
        for vectors in data.chunks(batch) {
            self.scratch.clear();
            for vector in vectors.chunks_exact(self.dim) {
                self.scratch.extend_from_slice(&self.header);
                T::put_all(vector, &mut self.scratch);
            }
            self.writer.write_all(&self.scratch).map_err(io_error(&self.path))?;
            self.count += (vectors.len() / self.dim) as u64;
        }
        Ok(())
    }

    /// Flushes the file; returns the number of records written.
    pub(super) fn finish(self) -> Result<u64, VecIoError> {
        let path = self.path;
        self.writer.into_inner().map_err(|e| VecIoError::Io { path, source: e.into_error() })?;
        Ok(self.count)
    }
}
