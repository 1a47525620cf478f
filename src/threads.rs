//! The one thread policy of the library.
//!
//! * All parallel work runs on one pool per process ([`pool`]), sized once
//!   to the machine's parallelism (`RAYON_NUM_THREADS` overrides it). No
//!   other pool is ever created, and rayon's global pool is never used.
//! * `threads=` bounds how many of those pool threads one call's work runs
//!   on; it is clamped to the pool's size. The calling thread waits.
//! * Concurrent calls (several Python threads, or an engine such as Polars'
//!   streaming executor calling our kernels from all its threads) queue their
//!   work on the same pool, so however many callers there are, at most the
//!   pool's threads are busy with it.
//! * zstd's own worker threads (large single-frame compression) come from one
//!   shared context, used by one call at a time (see `zstd::compress`).
//! * A forked child has none of its parent's threads. A `pthread_atfork`
//!   handler counts forks ([`generation`]); the first parallel call in a
//!   child builds the child's own pool (and zstd context), and the parent's,
//!   whose threads exist only in the parent, are left untouched, never
//!   waited on.

use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

/// Forks this process descends through; bumped in each child.
static GENERATION: AtomicU64 = AtomicU64::new(0);
static WATCH_FORKS: Once = Once::new();

extern "C" fn forked_child() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// How many forks lie between the process that loaded the library and this
/// one: state holding threads (a pool, a zstd context) is valid only in the
/// generation that made it.
pub fn generation() -> u64 {
    WATCH_FORKS.call_once(|| {
        // SAFETY: registers a handler that only bumps an atomic, which is
        // async-signal-safe as a child handler must be. Failure (ENOMEM)
        // leaves the counter still, as before this handler existed.
        unsafe { libc::pthread_atfork(None, None, Some(forked_child)) };
    });
    GENERATION.load(Ordering::Relaxed)
}

struct ProcessPool {
    generation: u64,
    pool: rayon::ThreadPool,
}

/// This process's pool; earlier generations' are leaked (their threads are
/// not in this process, so they can neither be used nor dropped).
static POOL: AtomicPtr<ProcessPool> = AtomicPtr::new(std::ptr::null_mut());

/// The pool of this process, built on first use (and first use after a
/// fork); `None` when no thread can be started, and then work runs serially.
pub fn pool() -> Option<&'static rayon::ThreadPool> {
    let generation = generation();
    let current = POOL.load(Ordering::Acquire);
    // SAFETY: published entries are leaked boxes, never freed.
    if let Some(entry) = unsafe { current.as_ref() } {
        if entry.generation == generation {
            return Some(&entry.pool);
        }
    }
    let built = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("s4-codec-{i}"))
        .build()
        .ok()?;
    let entry = Box::into_raw(Box::new(ProcessPool {
        generation,
        pool: built,
    }));
    match POOL.compare_exchange(current, entry, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: just published; leaked from here on.
        Ok(_) => Some(unsafe { &(*entry).pool }),
        Err(winner) => {
            // Another caller of this generation built one first: ours was
            // never shared, so it can be dropped here, in its own process.
            // SAFETY: `entry` is ours alone; `winner` is a published entry.
            drop(unsafe { Box::from_raw(entry) });
            Some(unsafe { &(*winner).pool })
        }
    }
}

/// The most threads a call may use: the size of the shared pool.
pub fn max_threads() -> usize {
    pool().map_or(1, |pool| pool.current_num_threads().max(1))
}

/// `threads` clamped to `1..=max_threads()`.
pub fn clamp(threads: usize) -> usize {
    threads.clamp(1, max_threads())
}

/// `a` and `b` at once on the process pool.
pub fn join<A: Send, B: Send>(
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    match pool() {
        Some(pool) => pool.join(a, b),
        None => (a(), b()),
    }
}

/// Runs `work(i)` for every `i` in `0..items` on up to `threads` threads and
/// returns the results in index order. Workers take indices from a shared
/// counter, so uneven items balance out. With `stop_after` returning true for
/// a result, items after that one are skipped (their slots are `None`).
pub fn map_indexed<T: Send>(
    items: usize,
    threads: usize,
    work: impl Fn(usize) -> T + Sync,
    stop_after: impl Fn(&T) -> bool + Sync,
) -> Vec<Option<T>> {
    let workers = clamp(threads).min(items);
    let pool = pool().filter(|_| workers > 1);
    let Some(pool) = pool else {
        let mut out = Vec::with_capacity(items);
        for i in 0..items {
            let result = work(i);
            let stop = stop_after(&result);
            out.push(Some(result));
            if stop {
                break;
            }
        }
        out.resize_with(items, || None);
        return out;
    };
    let next = AtomicUsize::new(0);
    let stop_at = AtomicUsize::new(usize::MAX);
    // One slot per item, each written once by the worker that ran it.
    let slots: Vec<Mutex<Option<T>>> = (0..items).map(|_| Mutex::new(None)).collect();
    let drain = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= items || i > stop_at.load(Ordering::Relaxed) {
            break;
        }
        let result = work(i);
        if stop_after(&result) {
            stop_at.fetch_min(i, Ordering::Relaxed);
        }
        *slots[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
    };
    pool.scope(|scope| {
        for _ in 1..workers {
            scope.spawn(|_| drain());
        }
        drain();
    });
    slots
        .into_iter()
        .map(|slot| slot.into_inner().unwrap_or_else(|e| e.into_inner()))
        .collect()
}

/// Like [`map_indexed`], stopping at the first error, which is the lowest
/// index's error (every item before it ran).
pub fn try_map_indexed<T: Send, E: Send>(
    items: usize,
    threads: usize,
    work: impl Fn(usize) -> Result<T, E> + Sync,
) -> Result<Vec<T>, E> {
    map_indexed(items, threads, work, Result::is_err)
        .into_iter()
        .map_while(|slot| slot)
        .collect()
}

/// Consecutive, disjoint parts of one buffer, for parallel workers that each
/// fill their own part (`map_indexed` hands every index to one worker).
pub struct Slots<'a, T> {
    parts: Vec<(*mut T, usize)>,
    _buffer: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: parts never overlap, and `part` requires each to be used by one
// worker at a time, so sharing the list is like sharing `&mut` to each part.
unsafe impl<T: Send> Sync for Slots<'_, T> {}

impl<'a, T> Slots<'a, T> {
    /// Cuts `buffer` into consecutive parts of `lens` (which must fit).
    pub fn new(buffer: &'a mut [T], lens: impl IntoIterator<Item = usize>) -> Self {
        let mut parts = Vec::new();
        let mut rest = buffer;
        for len in lens {
            let (part, tail) = std::mem::take(&mut rest).split_at_mut(len);
            parts.push((part.as_mut_ptr(), len));
            rest = tail;
        }
        Slots {
            parts,
            _buffer: std::marker::PhantomData,
        }
    }

    /// Part `i`.
    ///
    /// # Safety
    /// No two callers may hold part `i` at the same time.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn part(&self, i: usize) -> &mut [T] {
        let (ptr, len) = self.parts[i];
        // SAFETY: a part of the borrowed buffer, exclusive per the contract.
        unsafe { std::slice::from_raw_parts_mut(ptr, len) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_index_order_for_any_thread_count() {
        for threads in [1, 2, 3, 64] {
            let out: Vec<usize> = map_indexed(1000, threads, |i| i * 2, |_| false)
                .into_iter()
                .map(Option::unwrap)
                .collect();
            assert_eq!(out, (0..1000).map(|i| i * 2).collect::<Vec<_>>());
        }
    }

    #[test]
    fn the_first_error_is_the_lowest_index() {
        for threads in [1, 2, 4] {
            let result =
                try_map_indexed(500, threads, |i| if i % 97 == 96 { Err(i) } else { Ok(i) });
            assert_eq!(result, Err(96));
        }
    }

    #[test]
    fn threads_are_clamped() {
        assert_eq!(clamp(0), 1);
        assert_eq!(clamp(usize::MAX), max_threads());
    }
}
