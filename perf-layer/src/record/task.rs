//! Which async task is running on this thread, read at each exit: a span's
//! intervals are told apart by the task that entered them
//! ([`super::open_spans::Sums`]).
//!
//! A task spawned inside a request with `.in_current_span()` holds a clone
//! of the request's span and enters it at every poll. Seen through span
//! callbacks alone, the request then lives, and is entered, until that
//! task ends: exactly a request awaiting it. The task that entered a span
//! first is its owner, and the span ends at the owner's last exit when a
//! child outlived that (`crate::layer`'s `on_close`).
//!
//! With the `tokio` feature, tokio's [`try_id`](tokio::task::try_id): a
//! thread-local read. Without it, or outside a task (a `block_on`, a plain
//! thread), 0: every interval is the owner's, as before tasks were told.

/// The task running on this thread as a number, 0 for none.
#[inline]
pub(crate) fn current() -> u64 {
    #[cfg(feature = "tokio")]
    {
        tokio::task::try_id().map_or(0, number)
    }
    #[cfg(not(feature = "tokio"))]
    {
        0
    }
}

/// A tokio task id as the number inside it. `Id` keeps that number private
/// and hashes it whole, so a hasher that keeps what it is given reads it
/// back: no allocation (its `Display` would format a string).
#[cfg(feature = "tokio")]
fn number(id: tokio::task::Id) -> u64 {
    use std::hash::{Hash, Hasher};

    /// Keeps the words it is given, folded: one `u64` for a task id.
    struct Kept(u64);

    impl Hasher for Kept {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            for &b in bytes {
                self.0 = self.0.rotate_left(8) ^ u64::from(b);
            }
        }
        fn write_u64(&mut self, n: u64) {
            self.0 = self.0.rotate_left(17) ^ n;
        }
    }

    let mut kept = Kept(0);
    id.hash(&mut kept);
    // Never 0, which means "no task".
    kept.finish().max(1)
}

#[cfg(all(test, feature = "tokio"))]
mod tests {
    use super::*;

    #[test]
    fn tasks_are_told_apart_and_no_task_is_zero() {
        assert_eq!(current(), 0);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (a, b) = rt.block_on(async {
            let a = tokio::spawn(async { current() });
            let b = tokio::spawn(async { current() });
            (a.await.unwrap(), b.await.unwrap())
        });
        assert_ne!(a, 0);
        assert_ne!(b, 0);
        assert_ne!(a, b);
        // The same task reads the same number at every poll.
        let same = rt.block_on(rt.spawn(async {
            let first = current();
            tokio::task::yield_now().await;
            first == current()
        }));
        assert!(same.unwrap());
    }
}
