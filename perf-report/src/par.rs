//! Mapping over many callsites on every core: decoding 10,000 histograms is
//! most of a large report's time, and each one is independent of the others.

use std::num::NonZeroUsize;
use std::thread;

/// Below this many items per thread, starting threads costs more than it saves.
const MIN_ITEMS_PER_THREAD: usize = 256;

/// `items.iter().map(f).collect()`, in order, split into contiguous chunks
/// over the available cores.
pub(crate) fn map<T, R, F>(items: &[T], f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(&T) -> R + Sync,
{
    let threads = thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min(items.len() / MIN_ITEMS_PER_THREAD)
        .max(1);
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let chunk = items.len().div_ceil(threads);
    let f = &f;
    thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .skip(1)
            .map(|part| scope.spawn(move || part.iter().map(f).collect::<Vec<R>>()))
            .collect();
        // This thread takes the first chunk instead of waiting idle.
        let mut out: Vec<R> = items[..chunk].iter().map(f).collect();
        out.reserve(items.len() - chunk);
        for worker in workers {
            match worker.join() {
                Ok(part) => out.extend(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        out
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_order_of_the_items() {
        let items: Vec<u32> = (0..5_000).collect();
        let doubled = super::map(&items, |&i| i * 2);
        assert_eq!(doubled, items.iter().map(|&i| i * 2).collect::<Vec<_>>());
        assert!(super::map(&[] as &[u32], |&i| i).is_empty());
    }
}
