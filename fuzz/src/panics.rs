//! Turning panics into findings: a hook that records where a panic happened (silently while an
//! execution runs, so thousands of caught panics do not flood the terminal) and a wrapper
//! around `catch_unwind` that returns that record.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Mutex, Once};

static INSTALL: Once = Once::new();
/// The last panic seen while some thread was inside [`catch`]. Global, not thread-local: the
/// panic may happen on a rayon worker and be re-raised on the calling thread.
static LAST: Mutex<Option<String>> = Mutex::new(None);
static CATCHING: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

thread_local! {
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

fn install() {
    INSTALL.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let inside = DEPTH.with(Cell::get) > 0 || CATCHING.load(std::sync::atomic::Ordering::Relaxed) > 0;
            if !inside {
                default(info);
                return;
            }
            let payload = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string payload".into());
            let place =
                info.location().map_or("unknown place".into(), |l| format!("{}:{}", l.file(), l.line()));
            let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
            *last = Some(format!("{place}: {payload}"));
        }));
    });
}

/// Runs `f`, returning `Err("file:line: message")` if it panics (on this thread or on a worker
/// thread whose panic it re-raises).
pub fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install();
    DEPTH.with(|d| d.set(d.get() + 1));
    CATCHING.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    DEPTH.with(|d| d.set(d.get() - 1));
    result.map_err(|_| {
        LAST.lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| "panic without a record".into())
    })
}

/// The `file:line` part of a message from [`catch`]: panics at one place are one cause.
pub fn place(message: &str) -> &str {
    message.split(": ").next().unwrap_or(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_messages_with_their_place() {
        assert_eq!(catch(|| 3), Ok(3));
        let e = catch(|| -> u32 { panic!("planted {}", 7) }).unwrap_err();
        assert!(e.contains("planted 7") && e.contains("panics.rs:"), "{e}");
        assert!(place(&e).ends_with(|c: char| c.is_ascii_digit()), "{e}");
    }
}
