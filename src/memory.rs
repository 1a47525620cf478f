//! Large output buffers. Fresh anonymous memory costs a page fault for
//! every 4 KiB written (1.6 to 2.9 µs each on a small VM: a third of the
//! time of a fast decode). Column kernels therefore write their results
//! into [`Block`]s: mappings of their own that go back to a small
//! process-wide pool when their owner (an Arrow or Polars array) frees them,
//! so the next call writes into memory that is already there.
//!
//! The pool holds at most `pool_cap()`; once no call has taken memory from
//! it for `POOL_IDLE`, a reaper thread returns every mapping that waited
//! that long to the system. The reaper exists only while the pool is not
//! empty. No caller ever waits for the pool's lock (a busy pool means a
//! fresh mapping, or an immediate unmap), so a child forked while another
//! thread held it still makes progress, and it starts its own reaper.

use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buffers at least this long are served as blocks; smaller ones come from
/// the allocator, whose heap already reuses them.
pub const BLOCK_MIN_BYTES: usize = 8 << 20;
/// The pool keeps at most an eighth of physical memory for reuse, and
/// never less than the first or more than the second of these.
pub const POOL_CAP_RANGE: (usize, usize) = (256 << 20, 4 << 30);
/// How long the pool and a mapping in it must sit unused before the mapping
/// goes back to the system.
pub const POOL_IDLE: Duration = Duration::from_secs(1);
/// Mapping sizes are rounded up to this, so that similar outputs reuse
/// each other's mappings.
const GRANULE: usize = 2 << 20;

/// Writable memory of `len` bytes in a mapping of its own (`cap` bytes,
/// a multiple of `GRANULE`), returned to the pool when dropped.
pub struct Block {
    ptr: NonNull<u8>,
    cap: usize,
    len: usize,
}

// SAFETY: a block owns its mapping exclusively; `&Block` only reads it.
unsafe impl Send for Block {}
// SAFETY: as above.
unsafe impl Sync for Block {}
impl std::panic::RefUnwindSafe for Block {}

impl Block {
    /// A block with room for `cap` bytes and length 0: a mapping from the
    /// pool if one is large enough (its excess unmapped), else a fresh one.
    /// `None` when the system refuses the address space.
    pub fn with_capacity(cap: usize) -> Option<Block> {
        let cap = cap.max(1).checked_next_multiple_of(GRANULE)?;
        let (ptr, cap) = match take_pooled(cap) {
            Some(found) => found,
            // Idle mappings count against an address-space limit: when
            // the system refuses, give them back and ask once more.
            None => (
                map(cap).or_else(|| release_all().then(|| map(cap)).flatten())?,
                cap,
            ),
        };
        Some(Block { ptr, cap, len: 0 })
    }

    /// The whole capacity, written or not.
    pub fn spare_mut(&mut self) -> &mut [MaybeUninit<u8>] {
        // SAFETY: the mapping is `cap` bytes, readable and writable.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().cast(), self.cap) }
    }

    /// Sets the length.
    ///
    /// # Safety
    /// The first `len` bytes must have been written.
    pub unsafe fn set_len(&mut self, len: usize) {
        debug_assert!(len <= self.cap);
        self.len = len;
    }

    pub fn as_ptr(&self) -> NonNull<u8> {
        self.ptr
    }
}

impl std::ops::Deref for Block {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: the first `len` bytes were written (`set_len`).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl std::ops::DerefMut for Block {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `deref`; the block is borrowed exclusively.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl AsRef<[u8]> for Block {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Block({} of {} bytes)", self.len, self.cap)
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        give_back(self.ptr, self.cap);
    }
}

/// The pool: idle mappings, newest last.
struct Pool {
    idle: Vec<Idle>,
    bytes: usize,
    /// When a call last took a mapping: none expires while calls keep
    /// taking them (a slow call may take its last one seconds after the
    /// previous call gave it back).
    last_take: Option<Instant>,
    /// The process whose reaper is running, if one is.
    reaper: Option<u32>,
}

struct Idle {
    ptr: NonNull<u8>,
    cap: usize,
    since: Instant,
}

// SAFETY: idle mappings belong to the pool alone.
unsafe impl Send for Idle {}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    idle: Vec::new(),
    bytes: 0,
    last_take: None,
    reaper: None,
});

/// The smallest idle mapping of at least `cap` bytes, cut to `cap`.
fn take_pooled(cap: usize) -> Option<(NonNull<u8>, usize)> {
    let mut pool = POOL.try_lock().ok()?;
    pool.last_take = Some(Instant::now());
    let (at, _) = pool
        .idle
        .iter()
        .enumerate()
        .filter(|(_, m)| m.cap >= cap)
        .min_by_key(|(_, m)| m.cap)?;
    let found = pool.idle.swap_remove(at);
    pool.bytes -= found.cap;
    drop(pool);
    if found.cap > cap {
        // SAFETY: the tail is part of the mapping, and no longer pooled.
        unsafe { unmap(found.ptr.as_ptr().add(cap), found.cap - cap) };
    }
    Some((found.ptr, cap))
}

/// Keeps a freed mapping for reuse, or unmaps it when the pool is full or
/// busy.
fn give_back(ptr: NonNull<u8>, cap: usize) {
    if let Ok(mut pool) = POOL.try_lock() {
        if pool.bytes + cap <= pool_cap() && ensure_reaper(&mut pool) {
            pool.bytes += cap;
            pool.idle.push(Idle {
                ptr,
                cap,
                since: Instant::now(),
            });
            return;
        }
    }
    // SAFETY: the whole mapping, no longer used by anyone.
    unsafe { unmap(ptr.as_ptr(), cap) };
}

/// How much the pool may keep: an eighth of physical memory, within
/// `POOL_CAP_RANGE`. Read once, without a lock (fork-safe).
pub fn pool_cap() -> usize {
    static CAP: AtomicUsize = AtomicUsize::new(0);
    match CAP.load(Ordering::Relaxed) {
        0 => {
            let cap = (physical_memory() / 8).clamp(POOL_CAP_RANGE.0, POOL_CAP_RANGE.1);
            CAP.store(cap, Ordering::Relaxed);
            cap
        }
        cap => cap,
    }
}

#[cfg(unix)]
fn physical_memory() -> usize {
    // SAFETY: sysconf only reads system configuration.
    let (pages, page) = unsafe {
        (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        )
    };
    usize::try_from(pages)
        .unwrap_or(0)
        .saturating_mul(usize::try_from(page).unwrap_or(0))
}

#[cfg(not(unix))]
fn physical_memory() -> usize {
    0
}

/// Starts the reaper of this process unless it runs; false if it cannot.
fn ensure_reaper(pool: &mut Pool) -> bool {
    let pid = std::process::id();
    if pool.reaper == Some(pid) {
        return true;
    }
    let started = std::thread::Builder::new()
        .name("s4-codec-pool-reaper".into())
        .spawn(reap)
        .is_ok();
    pool.reaper = started.then_some(pid);
    started
}

/// Returns mappings to the system once they and the pool have both been
/// idle for `POOL_IDLE`; exits when the pool is empty.
fn reap() {
    loop {
        std::thread::sleep(POOL_IDLE / 4);
        let Ok(mut pool) = POOL.lock() else { return };
        let now = Instant::now();
        let quiet = pool
            .last_take
            .is_none_or(|at| now.duration_since(at) >= POOL_IDLE);
        let expired = take_idle(&mut pool, |m| {
            quiet && now.duration_since(m.since) >= POOL_IDLE
        });
        let done = pool.idle.is_empty();
        if done {
            pool.reaper = None;
        }
        drop(pool);
        unmap_all(expired);
        if done {
            return;
        }
    }
}

/// Takes the idle mappings `expired` picks out of the pool.
fn take_idle(pool: &mut Pool, expired: impl Fn(&Idle) -> bool) -> Vec<Idle> {
    let (gone, kept) = std::mem::take(&mut pool.idle)
        .into_iter()
        .partition(expired);
    pool.idle = kept;
    pool.bytes -= gone.iter().map(|m: &Idle| m.cap).sum::<usize>();
    gone
}

fn unmap_all(mappings: Vec<Idle>) {
    for m in mappings {
        // SAFETY: whole mappings, taken out of the pool.
        unsafe { unmap(m.ptr.as_ptr(), m.cap) };
    }
}

/// Returns every idle mapping to the system; false if there was none (or
/// the pool is busy).
fn release_all() -> bool {
    let Ok(mut pool) = POOL.try_lock() else {
        return false;
    };
    let all = take_idle(&mut pool, |_| true);
    drop(pool);
    let any = !all.is_empty();
    unmap_all(all);
    any
}

/// A fresh private mapping of `cap` bytes: address space only, committed
/// page by page where it is written. (Huge pages were measured and left
/// out: on a small VM a fresh 2 MiB page costs more than the 512 faults it
/// saves, 0.66 s against 0.44 s for a first 330 MB decode, and reused
/// memory is the same speed either way.)
#[cfg(unix)]
fn map(cap: usize) -> Option<NonNull<u8>> {
    // SAFETY: an anonymous mapping at an address of the kernel's choosing.
    let raw = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            cap,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if raw == libc::MAP_FAILED {
        return None;
    }
    NonNull::new(raw.cast())
}

#[cfg(not(unix))]
fn map(_cap: usize) -> Option<NonNull<u8>> {
    None
}

/// Unmaps `len` bytes at `ptr` (nothing when `len` is 0).
///
/// # Safety
/// The range must be mapped and unused.
#[cfg(unix)]
unsafe fn unmap(ptr: *mut u8, len: usize) {
    if len > 0 {
        // SAFETY: per the contract.
        unsafe { libc::munmap(ptr.cast(), len) };
    }
}

#[cfg(not(unix))]
unsafe fn unmap(_ptr: *mut u8, _len: usize) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_writable_and_reused_across_threads() {
        let mut block = Block::with_capacity(10 << 20).unwrap();
        let spare = block.spare_mut();
        assert!(spare.len() >= 10 << 20);
        for (i, b) in spare.iter_mut().enumerate().take(5 << 20) {
            b.write(i as u8);
        }
        // SAFETY: 5 MiB written above.
        unsafe { block.set_len(5 << 20) };
        assert_eq!(block.len(), 5 << 20);
        assert!(block.iter().enumerate().all(|(i, &b)| b == i as u8));
        let first = block.as_ptr();
        // Freed from another thread, reused here.
        std::thread::spawn(move || drop(block)).join().unwrap();
        let again = Block::with_capacity(4 << 20).unwrap();
        assert_eq!(again.as_ptr(), first);
        assert_eq!(again.len(), 0);
    }

    #[test]
    fn impossible_sizes_are_refused() {
        assert!(Block::with_capacity(usize::MAX - 8).is_none());
        assert!(Block::with_capacity(1 << 62).is_none());
    }
}
