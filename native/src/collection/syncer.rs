//! The log's `fdatasync`, on a thread of its own: a writer asks for its frame to be synced as
//! soon as the frame is written, applies its change in memory while the disk works, then waits.
//! One sync covers every frame asked for before it started, so writers arriving together share
//! it (group commit).

use std::fs::File;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use super::lock;

/// A position in the log: (generation, bytes). Later generations come after every byte of
/// earlier ones.
pub(super) type LogPos = (u64, u64);

pub(super) struct Syncer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the thread: a sync was asked for, or stop.
    work: Condvar,
    /// Wakes writers: a sync finished or failed.
    done: Condvar,
}

#[derive(Default)]
struct State {
    /// The furthest position asked for, with the file of its generation.
    wanted: Option<(LogPos, Arc<File>)>,
    /// What is known to be on disk.
    synced: LogPos,
    /// A sync failed (its message): the log may hold less than memory from then on.
    failed: Option<String>,
    stop: bool,
}

impl Syncer {
    /// A syncer for a log already on disk up to `synced`.
    pub fn start(synced: LogPos) -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        lock(&shared.state).synced = synced;
        let theirs = shared.clone();
        let thread =
            std::thread::Builder::new().name("neardb-log-sync".into()).spawn(move || run(&theirs))?;
        Ok(Self { shared, thread: Some(thread) })
    }

    /// Asks for the log to be synced up to `pos` (in `file`, the log of `pos`'s generation).
    pub fn request(&self, pos: LogPos, file: &Arc<File>) {
        let mut state = lock(&self.shared.state);
        if state.synced >= pos || state.wanted.as_ref().is_some_and(|(w, _)| *w >= pos) {
            return;
        }
        state.wanted = Some((pos, file.clone()));
        self.shared.work.notify_one();
    }

    /// Waits until the log is on disk up to `pos`; the error of a failed sync otherwise.
    pub fn wait(&self, pos: LogPos) -> Result<(), String> {
        let mut state = lock(&self.shared.state);
        loop {
            if let Some(e) = &state.failed {
                return Err(e.clone());
            }
            if state.synced >= pos {
                return Ok(());
            }
            state = self.shared.done.wait(state).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Records that the log was cut back to `pos` (a frame whose change was refused, after its
    /// sync finished): positions past it hold other frames from now on, not yet on disk.
    pub fn rewound(&self, pos: LogPos) {
        let mut state = lock(&self.shared.state);
        state.synced = state.synced.min(pos);
        if state.wanted.as_ref().is_some_and(|(w, _)| *w > pos) {
            state.wanted = None;
        }
    }

    /// Records that the log is on disk up to `pos` (synced by someone else: a commit).
    pub fn mark_synced(&self, pos: LogPos) {
        let mut state = lock(&self.shared.state);
        if pos > state.synced {
            state.synced = pos;
        }
        if state.wanted.as_ref().is_some_and(|(w, _)| *w <= pos) {
            state.wanted = None;
        }
        self.shared.done.notify_all();
    }
}

fn run(shared: &Shared) {
    loop {
        let (pos, file) = {
            let mut state = lock(&shared.state);
            loop {
                if state.stop {
                    return;
                }
                if let Some(w) = state.wanted.take() {
                    if w.0 > state.synced {
                        break w;
                    }
                }
                state = shared.work.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        };
        let result = file.sync_data();
        let mut state = lock(&shared.state);
        match result {
            Ok(()) if pos > state.synced => state.synced = pos,
            Ok(()) => {}
            Err(e) => {
                state.failed.get_or_insert_with(|| e.to_string());
            }
        }
        shared.done.notify_all();
    }
}

impl Drop for Syncer {
    fn drop(&mut self) {
        lock(&self.shared.state).stop = true;
        self.shared.work.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
