//! Whether this thread is an async runtime's worker: its name, read once
//! per thread (when its shard is made), is a runtime's, and it polls tasks
//! (a span entered on it more than once: `Shard::polls_async`). tokio gives
//! its blocking pool's threads its workers' name; they run closures, not
//! tasks, and are not counted, even where a closure enters the span of the
//! task that handed it over (`span.in_scope` in `spawn_blocking`): that
//! span, opened on another thread, is entered once. A span another thread
//! opened counted as a poll at its first interval here until a fresh
//! service's blocking calls, run so in a pool of two, read "called inside
//! the polls of async `request`, so it stalls a runtime worker", and their
//! first fix was to move them into `spawn_blocking`.
//!
//! A span closed on a worker ran inside a task's poll, however it looks
//! from its own intervals: a plain function called from an `async fn`, or
//! an `async fn` that never awaits, is entered once a span, like any
//! synchronous call, yet holds the worker while it runs. The report reads
//! [`CallsiteStats::runtime_worker_calls`](crate::dump::CallsiteStats)
//! to tell such a span's stall from a thread's ordinary work.
//!
//! Known by the names runtimes give their threads by default: tokio's
//! `tokio-rt-worker` (`tokio-runtime-worker` in older releases) and actix's
//! `actix-rt|system:…`; and, with the `tokio` feature, by an interval
//! ended inside a tokio task ([`super::task`]): a runtime built with its
//! own `thread_name`, and a current-thread runtime (its tasks run on the
//! thread that called `block_on`). Not recognised: a worker on which no
//! span is ever entered twice (every task done in one poll).

/// The worker names, as the kernel keeps them: at most 15 bytes on Linux.
const WORKER_NAMES: [&[u8]; 3] = [b"tokio-rt-worker", b"tokio-runtime-w", b"actix-rt|system"];

/// Whether the calling thread's name is a runtime's threads'. One system call
/// (`prctl(PR_GET_NAME)` under `pthread_getname_np`), made once per thread
/// and never on the span path after it; `false` where names cannot be read.
pub(crate) fn named_as_one() -> bool {
    is_worker_name(&this_thread_name())
}

fn is_worker_name(name: &[u8]) -> bool {
    WORKER_NAMES.iter().any(|w| name.starts_with(w))
}

/// The thread's name as the OS keeps it (empty when unknown). Not through
/// `std::thread::current()`, which panics once the thread's locals are
/// being destroyed, where a span may still close.
#[cfg(any(target_os = "linux", target_os = "macos"))]
fn this_thread_name() -> Vec<u8> {
    let mut buf = [0u8; 64];
    // SAFETY: `buf` is writable for its length, and the thread is this one.
    let rc = unsafe {
        libc::pthread_getname_np(libc::pthread_self(), buf.as_mut_ptr().cast(), buf.len())
    };
    if rc != 0 {
        return Vec::new();
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    buf[..len].to_vec()
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn this_thread_name() -> Vec<u8> {
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokio_and_actix_workers_are_known_by_their_names() {
        assert!(is_worker_name(b"tokio-rt-worker"));
        assert!(is_worker_name(b"tokio-runtime-w"));
        assert!(is_worker_name(b"actix-rt|system:0|arbiter:1"));
        assert!(!is_worker_name(b"main"));
        assert!(!is_worker_name(b"tokio-runtime-b"));
        assert!(!is_worker_name(b""));
    }

    #[cfg(any(target_os = "linux", target_os = "macos"))]
    #[test]
    fn a_thread_named_as_tokio_names_its_workers_is_one() {
        let named = |name: &str| {
            std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(named_as_one)
                .unwrap()
                .join()
                .unwrap()
        };
        assert!(named("tokio-rt-worker"));
        assert!(named("tokio-runtime-worker"));
        assert!(!named("tokio-runtime-blocking"));
        assert!(!named("worker"));
    }
}
