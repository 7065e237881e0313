//! The write-ahead log: every change is appended as one frame (body length, CRC-32 of the body,
//! the body) before it is applied, and a change is acknowledged only once the frame is on disk
//! (under the default policy). A batch is one frame, so it is replayed whole or not at all.
//! Replay stops at the first frame that is cut short or fails its checksum, reports where and
//! why, and the log is truncated there so later appends start clean.
//!
//! A log file is an 8-byte magic and the u64 generation it belongs to, then frames. Each commit
//! starts the next generation's file; the manifest names the generation whose records are not
//! yet in segments.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::CollectionError;

const MAGIC: &[u8; 8] = b"NEARWAL1";
const HEADER: u64 = 16;
/// A frame's header: body length and CRC-32.
const FRAME: u64 = 8;
/// The largest body a frame may hold (a batch of 1,000 records of 65,536 dimensions is 256 MB).
pub const MAX_FRAME: u64 = 1 << 30;

/// The name of generation `generation`'s log file.
pub fn file_name(generation: u64) -> String {
    format!("wal-{generation:08}.log")
}

/// An open log file being appended to.
pub struct Wal {
    file: File,
    path: PathBuf,
    /// Bytes in the file (header and whole frames).
    len: u64,
    generation: u64,
}

/// Where and why replay stopped before the end of a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    /// The log file.
    pub path: PathBuf,
    /// Offset of the first frame not replayed (the file is truncated here).
    pub offset: u64,
    /// Bytes dropped.
    pub dropped: u64,
    /// What was wrong.
    pub reason: &'static str,
}

impl Wal {
    /// Creates generation `generation`'s log in `dir` (replacing a leftover file of that name)
    /// and makes it durable, with its directory entry.
    pub fn create(dir: &Path, generation: u64) -> Result<Self, CollectionError> {
        let path = dir.join(file_name(generation));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| CollectionError::io(&path, e))?;
        let mut header = Vec::with_capacity(HEADER as usize);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&generation.to_le_bytes());
        file.write_all(&header).map_err(|e| CollectionError::io(&path, e))?;
        file.sync_all().map_err(|e| CollectionError::io(&path, e))?;
        super::sync_dir(dir)?;
        Ok(Self { file, path, len: HEADER, generation })
    }

    /// Whether generation `generation`'s log holds no more than its header's length and not
    /// a whole valid header: what a crash inside [`Wal::create`] leaves.
    pub fn cut_short_at_creation(dir: &Path, generation: u64) -> Result<bool, CollectionError> {
        let path = dir.join(file_name(generation));
        let bytes = std::fs::read(&path).map_err(|e| CollectionError::io(&path, e))?;
        if bytes.len() as u64 > HEADER {
            return Ok(false);
        }
        let whole =
            bytes.len() as u64 == HEADER && &bytes[..8] == MAGIC && bytes[8..16] == generation.to_le_bytes();
        Ok(!whole)
    }

    /// Opens generation `generation`'s log, calls `apply` with each whole frame's body in order,
    /// truncates a torn or corrupt tail and returns the log ready for appends, with what was
    /// dropped. An error from `apply` (a frame whose checksum holds but whose content is
    /// invalid) stops replay the same way.
    pub fn replay(
        dir: &Path,
        generation: u64,
        mut apply: impl FnMut(&[u8]) -> Result<(), &'static str>,
    ) -> Result<(Self, Option<TornTail>), CollectionError> {
        let path = dir.join(file_name(generation));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| CollectionError::io(&path, e))?;
        let size = file.metadata().map_err(|e| CollectionError::io(&path, e))?.len();
        let mut reader = BufReader::with_capacity(1 << 20, &file);
        let mut header = [0u8; HEADER as usize];
        if size < HEADER || reader.read_exact(&mut header).is_err() || &header[..8] != MAGIC {
            return Err(CollectionError::Corrupt { path, reason: "not a NearDB log (bad header)".into() });
        }
        let mut stored_generation = [0u8; 8];
        stored_generation.copy_from_slice(&header[8..]);
        if u64::from_le_bytes(stored_generation) != generation {
            return Err(CollectionError::Corrupt {
                path,
                reason: "the log's generation differs from its name".into(),
            });
        }
        let mut offset = HEADER;
        let mut body = Vec::new();
        let mut torn = None;
        while offset < size {
            let stop = |reason| TornTail { path: path.clone(), offset, dropped: size - offset, reason };
            if size - offset < FRAME {
                torn = Some(stop("a frame header cut short"));
                break;
            }
            let mut frame = [0u8; FRAME as usize];
            if reader.read_exact(&mut frame).is_err() {
                torn = Some(stop("a frame header that could not be read"));
                break;
            }
            let len = u64::from(u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]));
            let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
            if len > size - offset - FRAME {
                torn = Some(stop("a frame cut short"));
                break;
            }
            if len > MAX_FRAME {
                torn = Some(stop("a frame longer than any write makes"));
                break;
            }
            body.resize(len as usize, 0);
            if reader.read_exact(&mut body).is_err() {
                torn = Some(stop("a frame that could not be read"));
                break;
            }
            if crc32fast::hash(&body) != crc {
                torn = Some(stop("a frame whose checksum does not match"));
                break;
            }
            if let Err(reason) = apply(&body) {
                torn = Some(stop(reason));
                break;
            }
            offset += FRAME + len;
        }
        drop(reader);
        let mut file = file;
        if torn.is_some() {
            file.set_len(offset).map_err(|e| CollectionError::io(&path, e))?;
            file.sync_all().map_err(|e| CollectionError::io(&path, e))?;
        }
        file.seek(SeekFrom::Start(offset)).map_err(|e| CollectionError::io(&path, e))?;
        Ok((Self { file, path, len: offset, generation }, torn))
    }

    /// The generation this log belongs to.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Bytes in the log.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Appends one frame holding `body` (not yet synced) and returns the log's new length.
    /// A failed write is undone by truncating back, so the log never keeps half a frame that
    /// later frames would follow.
    pub fn append(&mut self, body: &[u8]) -> Result<u64, CollectionError> {
        if body.len() as u64 > MAX_FRAME {
            return Err(CollectionError::TooLarge { bytes: body.len() as u64, max: MAX_FRAME });
        }
        let mut header = [0u8; FRAME as usize];
        header[..4].copy_from_slice(&(body.len() as u32).to_le_bytes());
        header[4..].copy_from_slice(&crc32fast::hash(body).to_le_bytes());
        // Header and body written apart: a batch's body is megabytes, not worth copying behind
        // eight bytes.
        if let Err(e) = self.file.write_all(&header).and_then(|()| self.file.write_all(body)) {
            let _ = self.file.set_len(self.len);
            let _ = self.file.seek(SeekFrom::Start(self.len));
            return Err(CollectionError::io(&self.path, e));
        }
        self.len += FRAME + body.len() as u64;
        Ok(self.len)
    }

    /// Cuts the log back to `len` bytes (a frame just appended whose change was refused).
    pub fn rewind(&mut self, len: u64) -> Result<(), CollectionError> {
        self.file.set_len(len).map_err(|e| CollectionError::io(&self.path, e))?;
        self.file.seek(SeekFrom::Start(len)).map_err(|e| CollectionError::io(&self.path, e))?;
        self.len = len;
        Ok(())
    }

    /// A handle for `fdatasync` that does not hold the log (so appends go on during a sync).
    pub fn sync_handle(&self) -> Result<File, CollectionError> {
        self.file.try_clone().map_err(|e| CollectionError::io(&self.path, e))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(dir: &Path, generation: u64) -> (Vec<Vec<u8>>, Option<TornTail>) {
        let mut got = Vec::new();
        let (_, torn) = Wal::replay(dir, generation, |b| {
            got.push(b.to_vec());
            Ok(())
        })
        .unwrap();
        (got, torn)
    }

    #[test]
    fn a_log_torn_at_every_byte_replays_exactly_its_whole_frames() {
        let dir = tempfile::tempdir().unwrap();
        let bodies: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 3 + 7 * i as usize]).collect();
        let mut wal = Wal::create(dir.path(), 4).unwrap();
        let mut ends = vec![wal.len()];
        for b in &bodies {
            ends.push(wal.append(b).unwrap());
        }
        drop(wal);
        let whole = std::fs::read(dir.path().join(file_name(4))).unwrap();
        for cut in HEADER as usize..=whole.len() {
            std::fs::write(dir.path().join(file_name(4)), &whole[..cut]).unwrap();
            let (got, torn) = frames(dir.path(), 4);
            let complete = ends.iter().filter(|&&e| e as usize <= cut).count() - 1;
            assert_eq!(got, bodies[..complete], "cut at {cut}");
            assert_eq!(torn.is_some(), cut != ends[complete] as usize, "cut at {cut}");
            // The log was truncated to its whole frames, and appends continue from there.
            let len = std::fs::metadata(dir.path().join(file_name(4))).unwrap().len();
            assert_eq!(len, ends[complete]);
        }
        // After a torn tail, an append lands where the tail was and replays.
        std::fs::write(dir.path().join(file_name(4)), &whole[..whole.len() - 2]).unwrap();
        let (mut wal, torn) = Wal::replay(dir.path(), 4, |_| Ok(())).unwrap();
        assert_eq!(torn.unwrap().reason, "a frame cut short");
        wal.append(b"after").unwrap();
        drop(wal);
        let (got, torn) = frames(dir.path(), 4);
        assert!(torn.is_none());
        assert_eq!(got.len(), 5);
        assert_eq!(got[4], b"after");
    }

    #[test]
    fn a_flipped_bit_stops_replay_at_its_frame() {
        let dir = tempfile::tempdir().unwrap();
        let mut wal = Wal::create(dir.path(), 1).unwrap();
        let first = wal.append(b"first").unwrap();
        wal.append(b"second").unwrap();
        wal.append(b"third").unwrap();
        drop(wal);
        let path = dir.path().join(file_name(1));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[first as usize + FRAME as usize + 2] ^= 0x10;
        std::fs::write(&path, &bytes).unwrap();
        let (got, torn) = frames(dir.path(), 1);
        assert_eq!(got, [b"first".to_vec()]);
        let torn = torn.unwrap();
        assert_eq!((torn.offset, torn.reason), (first, "a frame whose checksum does not match"));
        // A frame header claiming more than the file holds.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
        std::fs::write(&path, &bytes).unwrap();
        let (got, torn) = frames(dir.path(), 1);
        assert_eq!((got.len(), torn.unwrap().reason), (1, "a frame cut short"));
        // Not a log at all, or a log renamed to another generation.
        std::fs::write(&path, b"garbage!garbage!garbage").unwrap();
        assert!(matches!(Wal::replay(dir.path(), 1, |_| Ok(())), Err(CollectionError::Corrupt { .. })));
        Wal::create(dir.path(), 2).unwrap();
        std::fs::rename(dir.path().join(file_name(2)), &path).unwrap();
        assert!(matches!(Wal::replay(dir.path(), 1, |_| Ok(())), Err(CollectionError::Corrupt { .. })));
    }
}
