//! How the SSD index reads sectors: one batch per search round, through io_uring (one
//! submission for the whole batch) or, where io_uring is refused, `pread` one request after
//! another. Both read with `O_DIRECT` when the file system allows it (no page cache: what a
//! search reads is what the device delivers) into 4 KiB-aligned buffers they own, and both
//! treat a read that ends early as an error.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Mutex;

use super::layout::SECTOR;

/// A batch reader of sector-aligned ranges of one file.
pub trait SectorReader: Send + Sync {
    /// Reads every `(offset, len)` of `requests` (both multiples of 4096) and calls
    /// `visit(i, bytes)` for each request `i` as it arrives, in any order: a caller works on
    /// the first sectors while the device still reads the others. After an error some
    /// requests may have been visited and others not.
    fn read_batch(&self, requests: &[(u64, usize)], visit: &mut dyn FnMut(usize, &[u8])) -> io::Result<()>;
    /// Which reader this is, for `info` and benchmark output.
    fn name(&self) -> &'static str;
    /// Whether reads bypass the page cache.
    fn direct(&self) -> bool;
}

/// Which reader to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReaderKind {
    /// io_uring where the kernel allows it, else `pread`.
    #[default]
    Auto,
    /// `pread`, one request at a time.
    Pread,
    /// io_uring; an error where it is refused.
    Uring,
    /// A memory map of the file: reads are page-cache hits or page faults (no `O_DIRECT`).
    /// For files that fit in memory; a file cut short while mapped faults the process.
    Mmap,
}

/// A byte buffer whose usable part starts on a 4 KiB boundary (what `O_DIRECT` needs), made
/// without `unsafe`: the allocation is a sector larger and the slice starts at the boundary.
#[derive(Default)]
pub(crate) struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    /// Makes room for `len` bytes (contents unspecified).
    pub fn reserve(&mut self, len: usize) {
        if self.raw.len() < len + SECTOR {
            self.raw = vec![0u8; len + SECTOR];
            self.start = self.raw.as_ptr().align_offset(SECTOR);
        }
        self.len = len;
    }
    pub fn as_mut(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }
    pub fn as_ref(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }
}

/// Opens `path` for reading, with `O_DIRECT` when `direct` and the file system takes it.
/// Returns the file and whether it is direct.
fn open_read(path: &Path, direct: bool) -> io::Result<(File, bool)> {
    #[cfg(target_os = "linux")]
    if direct {
        use std::os::unix::fs::OpenOptionsExt;
        match std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(path) {
            Ok(f) => return Ok((f, true)),
            // tmpfs and some others refuse O_DIRECT: read through the page cache there.
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    let _ = direct;
    Ok((File::open(path)?, false))
}

/// Reads exactly `buf.len()` bytes at `offset`, retrying partial reads; the end of the file
/// before that is an `UnexpectedEof` naming the offset.
fn pread_exact(file: &File, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
    use std::os::unix::fs::FileExt;
    while !buf.is_empty() {
        match file.read_at(buf, offset) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("short read: the file ends before byte {}", offset + buf.len() as u64),
                ))
            }
            Ok(n) => {
                offset += n as u64;
                buf = &mut buf[n..];
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn check_aligned(requests: &[(u64, usize)]) -> io::Result<usize> {
    let mut total = 0usize;
    for &(offset, len) in requests {
        if offset % SECTOR as u64 != 0 || len % SECTOR != 0 || len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "reads must be whole, aligned sectors"));
        }
        total = total
            .checked_add(len)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a batch larger than memory"))?;
    }
    Ok(total)
}

/// `pread`, one request after another, into pooled aligned buffers.
pub struct PreadReader {
    file: File,
    direct: bool,
    buffers: Mutex<Vec<AlignedBuf>>,
}

impl PreadReader {
    /// Opens `path`; `direct` asks for `O_DIRECT` (taken where the file system allows it).
    pub fn open(path: &Path, direct: bool) -> io::Result<Self> {
        let (file, direct) = open_read(path, direct)?;
        Ok(Self { file, direct, buffers: Mutex::new(Vec::new()) })
    }
}

impl SectorReader for PreadReader {
    fn read_batch(&self, requests: &[(u64, usize)], visit: &mut dyn FnMut(usize, &[u8])) -> io::Result<()> {
        let total = check_aligned(requests)?;
        let mut buf = self.buffers.lock().map(|mut p| p.pop()).unwrap_or_default().unwrap_or_default();
        buf.reserve(total);
        let mut result = Ok(());
        let mut at = 0;
        for (i, &(offset, len)) in requests.iter().enumerate() {
            let bytes = &mut buf.as_mut()[at..at + len];
            if let Err(e) = pread_exact(&self.file, offset, bytes) {
                result = Err(e);
                break;
            }
            visit(i, bytes);
            at += len;
        }
        if let Ok(mut pool) = self.buffers.lock() {
            pool.push(buf);
        }
        result
    }
    fn name(&self) -> &'static str {
        "pread"
    }
    fn direct(&self) -> bool {
        self.direct
    }
}

#[cfg(target_os = "linux")]
pub use uring::UringReader;

#[cfg(target_os = "linux")]
mod uring {
    use std::fs::File;
    use std::io;
    use std::os::unix::io::AsRawFd;
    use std::path::Path;
    use std::sync::Mutex;

    use io_uring::{opcode, types, IoUring};

    use super::{check_aligned, open_read, pread_exact, AlignedBuf, SectorReader};

    /// Entries per ring: more requests than this in one batch are submitted in turns.
    const RING_ENTRIES: u32 = 64;

    /// One ring and the buffer its reads land in; a search thread takes one from the pool.
    struct Ring {
        ring: IoUring,
        buf: AlignedBuf,
    }

    /// io_uring: every batch is one submission (per `RING_ENTRIES` requests) and one wait.
    pub struct UringReader {
        file: File,
        direct: bool,
        rings: Mutex<Vec<Ring>>,
    }

    impl UringReader {
        /// Opens `path` and sets up a first ring; fails where io_uring is refused (old kernels,
        /// sandboxes that block it), which [`super::ReaderKind::Auto`] takes as the cue to use
        /// `pread`.
        pub fn open(path: &Path, direct: bool) -> io::Result<Self> {
            let (file, direct) = open_read(path, direct)?;
            let ring = Ring { ring: IoUring::new(RING_ENTRIES)?, buf: AlignedBuf::default() };
            Ok(Self { file, direct, rings: Mutex::new(vec![ring]) })
        }

        fn take(&self) -> io::Result<Ring> {
            match self.rings.lock().ok().and_then(|mut p| p.pop()) {
                Some(r) => Ok(r),
                None => Ok(Ring { ring: IoUring::new(RING_ENTRIES)?, buf: AlignedBuf::default() }),
            }
        }

        /// Reads `requests` into `ring.buf`, one submission per turn of up to RING_ENTRIES,
        /// calling `visit` with each read as it completes (a read that ends early, after it
        /// has been finished by `pread`). `Err(fatal)` means reads may still be in flight: the
        /// caller must not reuse or free the buffer.
        fn read_into(
            &self,
            ring: &mut Ring,
            requests: &[(u64, usize)],
            visit: &mut dyn FnMut(usize, &[u8]),
        ) -> Result<io::Result<()>, io::Error> {
            let fd = types::Fd(self.file.as_raw_fd());
            let mut starts = Vec::with_capacity(requests.len());
            let mut at = 0usize;
            for &(_, len) in requests {
                starts.push(at);
                at += len;
            }
            for (turn, chunk) in requests.chunks(RING_ENTRIES as usize).enumerate() {
                // Taken afresh each turn: a partial read's `pread` below borrows the buffer.
                let base = ring.buf.as_mut().as_mut_ptr();
                let first = turn * RING_ENTRIES as usize;
                for (j, &(offset, len)) in chunk.iter().enumerate() {
                    let i = first + j;
                    // Lengths are sector multiples of a batch that fits in memory: below 2^32
                    // per request is checked by the caller's sizes (nodes are at most a few
                    // sectors).
                    let entry = opcode::Read::new(fd, base.wrapping_add(starts[i]), len as u32)
                        .offset(offset)
                        .build()
                        .user_data(i as u64);
                    // SAFETY: the entry points into `ring.buf`, which is at least `at` bytes
                    // long and stays alive and untouched until every completion of this turn
                    // has been reaped below (or, if waiting fails, is leaked by the caller).
                    // The file descriptor outlives the reader, which owns the file.
                    let pushed = unsafe { ring.ring.submission().push(&entry) };
                    if pushed.is_err() {
                        return Err(io::Error::other("io_uring submission queue full"));
                    }
                }
                let mut pending = chunk.len();
                let mut partial: Vec<(usize, usize)> = Vec::new();
                let mut failed: Option<io::Error> = None;
                // Every read of the turn is reaped before anything is judged: none may still
                // be writing into the buffer when this returns. Waiting for one completion at
                // a time hands each read to `visit` as soon as it lands.
                while pending > 0 {
                    match ring.ring.submit_and_wait(1) {
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(e),
                    }
                    for cqe in ring.ring.completion() {
                        pending -= 1;
                        let i = cqe.user_data() as usize;
                        let res = cqe.result();
                        if res < 0 {
                            failed.get_or_insert(io::Error::from_raw_os_error(-res));
                        } else if (res as usize) < requests[i].1 {
                            partial.push((i, res as usize));
                        } else if failed.is_none() {
                            // SAFETY: request i's bytes (starts[i]..starts[i] + len, within
                            // the buffer) are complete: its completion has been reaped. Reads
                            // still in flight write only other requests' disjoint ranges, and
                            // no other reference to the buffer is alive while this one is.
                            let bytes = unsafe {
                                std::slice::from_raw_parts(base.wrapping_add(starts[i]), requests[i].1)
                            };
                            visit(i, bytes);
                        }
                    }
                }
                if let Some(e) = failed {
                    return Ok(Err(e));
                }
                for (i, done) in partial {
                    // The rest of a partial read synchronously; a read that meets the end of
                    // the file becomes the short-read error there.
                    let (offset, len) = requests[i];
                    let dst = &mut ring.buf.as_mut()[starts[i] + done..starts[i] + len];
                    if let Err(e) = pread_exact(&self.file, offset + done as u64, dst) {
                        return Ok(Err(e));
                    }
                    visit(i, &ring.buf.as_ref()[starts[i]..starts[i] + len]);
                }
            }
            Ok(Ok(()))
        }
    }

    impl SectorReader for UringReader {
        fn read_batch(
            &self,
            requests: &[(u64, usize)],
            visit: &mut dyn FnMut(usize, &[u8]),
        ) -> io::Result<()> {
            let total = check_aligned(requests)?;
            if requests.iter().any(|&(_, len)| len > u32::MAX as usize) {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "one read above 4 GiB"));
            }
            let mut ring = self.take()?;
            ring.buf.reserve(total);
            match self.read_into(&mut ring, requests, visit) {
                Ok(result) => {
                    if let Ok(mut pool) = self.rings.lock() {
                        pool.push(ring);
                    }
                    result
                }
                Err(fatal) => {
                    // Reads may still land in this ring's buffer: never free or reuse it.
                    std::mem::forget(ring);
                    Err(fatal)
                }
            }
        }
        fn name(&self) -> &'static str {
            "io_uring"
        }
        fn direct(&self) -> bool {
            self.direct
        }
    }
}

/// The file mapped into memory; a batch is slices of the map.
pub struct MmapReader {
    map: memmap2::Mmap,
}

impl MmapReader {
    /// Maps `path` read-only.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        // SAFETY: the map is read-only and private to this reader; as with every memory map,
        // another process truncating the file while it is mapped would fault this one, which
        // the `pread` and io_uring readers (the defaults) are not exposed to.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(Self { map })
    }
}

impl SectorReader for MmapReader {
    fn read_batch(&self, requests: &[(u64, usize)], visit: &mut dyn FnMut(usize, &[u8])) -> io::Result<()> {
        check_aligned(requests)?;
        for (i, &(offset, len)) in requests.iter().enumerate() {
            let bytes = usize::try_from(offset)
                .ok()
                .and_then(|start| self.map.get(start..start.checked_add(len)?))
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!("short read: the file ends before byte {}", offset + len as u64),
                    )
                })?;
            visit(i, bytes);
        }
        Ok(())
    }
    fn name(&self) -> &'static str {
        "mmap"
    }
    fn direct(&self) -> bool {
        false
    }
}

/// Opens the reader `kind` asks for; `Auto` falls back to `pread` where io_uring is refused.
pub fn open_reader(path: &Path, kind: ReaderKind, direct: bool) -> io::Result<Box<dyn SectorReader>> {
    match kind {
        ReaderKind::Mmap => Ok(Box::new(MmapReader::open(path)?)),
        ReaderKind::Pread => Ok(Box::new(PreadReader::open(path, direct)?)),
        #[cfg(target_os = "linux")]
        ReaderKind::Uring => Ok(Box::new(UringReader::open(path, direct)?)),
        #[cfg(target_os = "linux")]
        ReaderKind::Auto => match UringReader::open(path, direct) {
            Ok(r) => Ok(Box::new(r)),
            Err(_) => Ok(Box::new(PreadReader::open(path, direct)?)),
        },
        #[cfg(not(target_os = "linux"))]
        ReaderKind::Uring => Err(io::Error::new(io::ErrorKind::Unsupported, "io_uring exists on Linux only")),
        #[cfg(not(target_os = "linux"))]
        ReaderKind::Auto => Ok(Box::new(PreadReader::open(path, direct)?)),
    }
}
