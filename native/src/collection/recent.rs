//! The recent records' graph: an HNSW over the rows of the table of recent records, grown by a
//! background thread while writes and searches go on. A search reads the indexed rows through
//! the graph and scans only the newest ones exactly (under a steady stream of writes that is a
//! few hundred rows, not the tens of thousands since the last commit), and a commit whose rows
//! are all indexed writes this graph as its segment's index instead of building one.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use neardb_core::{HnswIndex, HnswParams, Metric};

use super::lock;
use crate::ConcurrentHnsw;

/// Rows the indexer feeds per step: searches wait for one slot reservation per step, and a
/// commit that takes over the table waits at most one step.
pub(super) const FEED_ROWS: u32 = 256;

/// An HNSW over rows `0..indexed()` of one table of recent records (node `i` is row `i`).
pub(super) struct RecentGraph {
    pub hnsw: ConcurrentHnsw,
    /// Rows linked into the graph: searches read rows below this through the graph.
    indexed: AtomicU32,
    /// Held by whoever feeds rows (the indexer, or a commit finishing a frozen table), so each
    /// row goes in once, in order.
    feeding: Mutex<()>,
    /// A feed failed (it should not: rows are checked before they are written); the graph is
    /// then ignored and the table scanned.
    failed: AtomicBool,
    /// Indexed rows from which searches use the graph (below, a scan of every row is as fast).
    use_from: u32,
}

impl RecentGraph {
    /// An empty graph for rows of `dim` floats, stored in binary16 when `f16`.
    pub fn new(
        dim: usize,
        metric: Metric,
        params: HnswParams,
        f16: bool,
        use_from: u32,
    ) -> Result<Self, neardb_core::Error> {
        let mut index = HnswIndex::new(dim, metric, params)?;
        if f16 {
            index.store_f16()?;
        }
        Ok(Self {
            hnsw: ConcurrentHnsw::new(index),
            indexed: AtomicU32::new(0),
            feeding: Mutex::new(()),
            failed: AtomicBool::new(false),
            use_from,
        })
    }

    /// Rows linked so far (`0..indexed()`), whatever searches use.
    pub fn indexed(&self) -> u32 {
        self.indexed.load(Ordering::Acquire)
    }

    /// Whether the graph can still be used (no feed failed).
    pub fn usable(&self) -> bool {
        !self.failed.load(Ordering::Acquire)
    }

    /// Indexed rows from which searches use the graph.
    pub fn use_from(&self) -> u32 {
        self.use_from
    }

    /// Rows a search reads through the graph: the indexed ones, once there are enough of them.
    pub fn searchable(&self) -> u32 {
        let n = self.indexed();
        if self.usable() && n >= self.use_from {
            n
        } else {
            0
        }
    }

    /// Links rows `first..` (their vectors as the table stores them, row-major) except those
    /// someone else linked meanwhile. Rows must come in order: a gap links nothing.
    pub fn feed(&self, first: u32, vectors: &[f32], dim: usize) {
        let _one = lock(&self.feeding);
        let have = self.indexed();
        if !self.usable() || have < first {
            return;
        }
        let rest = vectors.get((have - first) as usize * dim..).unwrap_or(&[]);
        if rest.is_empty() {
            return;
        }
        match self.hnsw.insert_batch(rest) {
            Ok(ids) if ids.first() == Some(&have) => {
                self.indexed.store(have + ids.len() as u32, Ordering::Release);
            }
            _ => self.failed.store(true, Ordering::Release),
        }
    }
}

/// A background thread running `step` while it finds work, and sleeping until kicked when it
/// does not; stopped and joined on drop.
pub(super) struct Indexer {
    signal: Arc<Signal>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Signal {
    /// (stop, kicked)
    state: Mutex<(bool, bool)>,
    wake: Condvar,
}

impl Indexer {
    /// Starts the thread; `None` if the system refuses one (searches then scan the recent
    /// records, as before any graph).
    pub fn start(mut step: impl FnMut() -> bool + Send + 'static) -> Option<Self> {
        let signal = Arc::new(Signal::default());
        let theirs = signal.clone();
        let thread = std::thread::Builder::new()
            .name("neardb-indexer".into())
            .spawn(move || {
                let mut worked = true;
                loop {
                    {
                        let mut state = lock(&theirs.state);
                        if !worked && !state.0 && !state.1 {
                            // The timeout only bounds a wake-up that was somehow missed.
                            state = theirs
                                .wake
                                .wait_timeout(state, Duration::from_secs(1))
                                .map_or_else(|e| e.into_inner().0, |(s, _)| s);
                        }
                        if state.0 {
                            return;
                        }
                        state.1 = false;
                    }
                    worked = step();
                }
            })
            .ok()?;
        Some(Self { signal, thread: Some(thread) })
    }

    /// Tells the thread there may be new work.
    pub fn kick(&self) {
        let mut state = lock(&self.signal.state);
        if !state.1 {
            state.1 = true;
            self.signal.wake.notify_one();
        }
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        lock(&self.signal.state).0 = true;
        self.signal.wake.notify_one();
        if let Some(t) = self.thread.take() {
            // A step never panics on data; if it did, the panic has nowhere better to go.
            let _ = t.join();
        }
    }
}
