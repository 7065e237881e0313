//! The manifest: the collection's commit point. It names the collection's shape (dimension,
//! metric, index options), every version kept (its segments and the deletion bitmap each uses)
//! and the log generation whose records are not yet in segments. It is replaced atomically:
//! written to a temporary file, synced, renamed over the old one, and the directory synced; a
//! checksum line after the JSON catches a damaged file.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::segment::write_durably;
use super::{sync_dir, CollectionError};

/// The manifest's file name.
pub const FILE: &str = "MANIFEST";
/// The manifest format this code writes and reads.
pub const FORMAT: u32 = 1;

/// The whole manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format of this file.
    pub format: u32,
    /// Vector dimension.
    pub dim: usize,
    /// Metric name.
    pub metric: String,
    /// Index options (`IndexSpec::from_options` keys).
    pub index: BTreeMap<String, String>,
    /// The number the next segment gets.
    pub next_segment: u64,
    /// The log generation holding changes not yet in any segment.
    pub wal_generation: u64,
    /// Versions kept, oldest first; the last is the newest.
    pub versions: Vec<Version>,
}

/// One committed version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Version {
    /// Its number, increasing from 1.
    pub version: u64,
    /// The name given at commit, if any (unique among kept versions).
    pub name: Option<String>,
    /// When it was committed, milliseconds since the Unix epoch.
    pub committed_unix_ms: u64,
    /// Live records.
    pub records: u64,
    /// Its segments.
    pub segments: Vec<SegmentRef>,
}

/// A segment as one version sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentRef {
    /// Segment number.
    pub id: u64,
    /// Rows in the segment.
    pub rows: u32,
    /// Rows this version deleted.
    pub deleted: u32,
    /// The version whose deletion bitmap file applies (none: nothing deleted).
    pub deletes: Option<u64>,
}

impl Manifest {
    /// Reads and checks the manifest of `dir`.
    pub fn read(dir: &Path) -> Result<Self, CollectionError> {
        let path = dir.join(FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| CollectionError::io(&path, e))?;
        let corrupt = |reason: String| CollectionError::Corrupt { path: path.clone(), reason };
        let (json, crc_line) =
            text.trim_end().rsplit_once('\n').ok_or_else(|| corrupt("no checksum line".into()))?;
        let want = crc_line
            .strip_prefix("crc32 ")
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| corrupt("a malformed checksum line".into()))?;
        if crc32fast::hash(json.as_bytes()) != want {
            return Err(corrupt("checksum mismatch".into()));
        }
        let m: Manifest = serde_json::from_str(json).map_err(|e| corrupt(format!("{e}")))?;
        if m.format != FORMAT {
            return Err(corrupt(format!("format {} (this NearDB reads format {FORMAT})", m.format)));
        }
        m.check().map_err(|r| corrupt(r.into()))?;
        Ok(m)
    }

    /// Structure a hostile file could break: versions increasing, names unique, segment
    /// numbers below `next_segment`, deletion counts within rows.
    fn check(&self) -> Result<(), &'static str> {
        let mut last = 0;
        let mut names = std::collections::HashSet::new();
        for v in &self.versions {
            if v.version <= last {
                return Err("versions out of order");
            }
            last = v.version;
            if let Some(n) = &v.name {
                if !names.insert(n) {
                    return Err("a version name used twice");
                }
            }
            for s in &v.segments {
                if s.id >= self.next_segment || s.deleted > s.rows || s.deletes.is_some_and(|d| d > v.version)
                {
                    return Err("a segment reference beyond what was written");
                }
            }
        }
        if self.dim == 0 || self.dim > neardb_core::MAX_DIM {
            return Err("a dimension out of range");
        }
        Ok(())
    }

    /// Writes this manifest to `dir` atomically and durably.
    pub fn write(&self, dir: &Path) -> Result<(), CollectionError> {
        // Serializing plain data into a string cannot fail.
        let json = serde_json::to_string(self).unwrap_or_default();
        let text = format!("{json}\ncrc32 {:08x}\n", crc32fast::hash(json.as_bytes()));
        write_durably(&dir.join(FILE), text.as_bytes())?;
        sync_dir(dir)
    }

    /// The newest version.
    pub fn head(&self) -> Option<&Version> {
        self.versions.last()
    }
}
