//! A small pool of persistent worker threads and a spinning barrier, for
//! splitting one recurrence across cores with one light barrier per step.
//!
//! `std::thread::scope` would spawn threads on every call (tens of
//! microseconds); a stream that steps every few microseconds needs workers
//! that are already running and wake in well under a microsecond. Workers
//! spin briefly for the next job, then park, so an idle pool costs nothing.
//!
//! A forked child has none of its parent's threads: a pool made before
//! `fork()` is *orphaned* there ([`Pool::is_orphaned`], one atomic load,
//! counted by a `pthread_atfork` child handler). [`crate::State`] replaces an
//! orphaned pool with a new one before its next run (Dask, Spark and
//! `multiprocessing` workers fork), and dropping one never waits for the
//! workers it does not have.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::thread::JoinHandle;
use std::time::Duration;

/// Spins this many times (each a CPU pause hint) before yielding or parking.
const SPINS: u32 = 1 << 14;

/// A job for every participant: called with the participant's index
/// (0 = the calling thread) and the participant count.
type Job<'a> = &'a (dyn Fn(usize) + Sync);

struct Shared {
    participants: usize,
    /// The current job, set by `Pool::run` before it bumps `epoch`.
    job: Mutex<Option<JobPtr>>,
    /// Incremented once per job; workers run a job when it changes.
    epoch: AtomicU64,
    /// Workers that finished the current job.
    done: AtomicUsize,
    shutdown: AtomicBool,
    barrier: SpinBarrier,
    /// The first panic of a worker in the current job, handed to the caller.
    panic: Mutex<Option<Box<dyn std::any::Any + Send>>>,
}

/// The job with its lifetime erased. Sound because `Pool::run` does not return
/// before every worker has finished with it (it waits on `done`).
#[derive(Clone, Copy)]
struct JobPtr(*const (dyn Fn(usize) + Sync + 'static));
// SAFETY: the pointee is `Sync`, and is only used while `Pool::run` keeps it alive.
unsafe impl Send for JobPtr {}

/// Forks this process descends through: 0 in the process that loaded
/// lstmrt, +1 in each child (of any depth) since [`watch_forks`].
static FORKS: AtomicU64 = AtomicU64::new(0);

#[cfg(all(unix, not(miri)))]
extern "C" fn count_fork_in_child() {
    // Async-signal-safe: one atomic add, no allocation or lock.
    FORKS.fetch_add(1, Ordering::Relaxed);
}

/// Registers the fork counter once per process (before the first pool).
fn watch_forks() {
    static WATCH: Once = Once::new();
    WATCH.call_once(|| {
        // (Miri runs no foreign functions, and forks nothing.)
        #[cfg(all(unix, not(miri)))]
        {
            unsafe extern "C" {
                fn pthread_atfork(
                    prepare: Option<extern "C" fn()>,
                    parent: Option<extern "C" fn()>,
                    child: Option<extern "C" fn()>,
                ) -> std::ffi::c_int;
            }
            // SAFETY: POSIX signature; the handler is a plain function that
            // lives as long as the process and is async-signal-safe. A
            // failure (ENOMEM) leaves pools unaware of forks, as before.
            // Tested by tests/fork.rs (a pool used in a forked child).
            let _ = unsafe { pthread_atfork(None, None, Some(count_fork_in_child)) };
        }
    });
}

/// [`crate::max_threads`], read once per process.
pub(crate) fn max_threads() -> usize {
    static MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        cores.saturating_mul(crate::THREADS_PER_CORE)
    })
}

/// Persistent workers that run one job at a time together with the caller.
pub(crate) struct Pool {
    shared: Arc<Shared>,
    /// [`FORKS`] when the workers were started.
    born: u64,
    workers: Vec<JoinHandle<()>>,
    /// Serialises `run` (a pool shared by cloned states runs one job at a time).
    running: Mutex<()>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pool({} threads)", self.shared.participants)
    }
}

impl Pool {
    /// A pool in which `threads` participants (the caller and `threads - 1`
    /// workers) run each job. `None` if a thread could not be started.
    pub fn new(threads: usize) -> Option<Pool> {
        watch_forks();
        let born = FORKS.load(Ordering::Relaxed);
        let shared = Arc::new(Shared {
            participants: threads.max(1),
            job: Mutex::new(None),
            epoch: AtomicU64::new(0),
            done: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            barrier: SpinBarrier::new(threads.max(1)),
            panic: Mutex::new(None),
        });
        let mut workers = Vec::new();
        for index in 1..threads.max(1) {
            let shared = Arc::clone(&shared);
            let handle = std::thread::Builder::new()
                .name(format!("lstmrt-{index}"))
                .spawn(move || worker(shared, index))
                .ok()?;
            workers.push(handle);
        }
        let pool = Pool { shared, born, workers, running: Mutex::new(()) };
        // One empty job, so whatever each worker sets up lazily on its first
        // job happens now and not inside a caller's step.
        pool.run(&|_| {});
        Some(pool)
    }

    /// Whether this process is a fork of the one that started the workers
    /// (so they do not exist here). Such a pool must not run; drop it.
    pub fn is_orphaned(&self) -> bool {
        FORKS.load(Ordering::Relaxed) != self.born
    }

    /// Number of participants, the caller included.
    pub fn threads(&self) -> usize {
        self.shared.participants
    }

    /// The barrier all participants of a job share.
    pub fn barrier(&self) -> &SpinBarrier {
        &self.shared.barrier
    }

    /// Runs `job(i)` on every participant `i` (the caller runs `job(0)`) and
    /// returns when all are done. If any participant panics, the others are
    /// released from the barrier (they panic there too), every worker is
    /// waited for, and then the first panic continues in the caller: the job
    /// is never used after this returns or unwinds.
    pub fn run(&self, job: Job<'_>) {
        // Its workers stayed in the parent: waiting for them would hang.
        assert!(!self.is_orphaned(), "lstmrt: a thread pool made before fork() was run in the child");
        let _one_at_a_time = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if self.workers.is_empty() {
            job(0);
            return;
        }
        self.shared.barrier.reset();
        // SAFETY: only the lifetime is erased; the job outlives every use
        // because this function waits for all workers below, also when the
        // caller's part panics (it is caught until then).
        let ptr: *const (dyn Fn(usize) + Sync + 'static) = unsafe { std::mem::transmute(job as *const _) };
        *self.shared.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(JobPtr(ptr));
        self.shared.done.store(0, Ordering::Relaxed);
        self.shared.epoch.fetch_add(1, Ordering::Release);
        for w in &self.workers {
            w.thread().unpark();
        }
        let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(0)));
        if mine.is_err() {
            self.shared.barrier.poison();
        }
        let mut spins = 0u32;
        while self.shared.done.load(Ordering::Acquire) < self.workers.len() {
            spin_or_yield(&mut spins);
        }
        *self.shared.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
        let theirs = self.shared.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
        match (mine, theirs) {
            // The original panic, not the echo of it at the barrier.
            (Err(p), Some(w)) if p.is::<Poisoned>() => std::panic::resume_unwind(w),
            (Err(p), _) | (Ok(()), Some(p)) => std::panic::resume_unwind(p),
            (Ok(()), None) => {}
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        if self.is_orphaned() {
            // The handles name the parent's threads: joining or detaching
            // them here would act on threads this process does not have.
            self.workers.drain(..).for_each(std::mem::forget);
            return;
        }
        self.shared.shutdown.store(true, Ordering::Release);
        self.shared.epoch.fetch_add(1, Ordering::Release);
        for w in self.workers.drain(..) {
            w.thread().unpark();
            let _ = w.join();
        }
    }
}

fn worker(shared: Arc<Shared>, index: usize) {
    let mut seen = 0u64;
    loop {
        let mut spins = 0u32;
        let epoch = loop {
            let e = shared.epoch.load(Ordering::Acquire);
            if e != seen {
                break e;
            }
            if spins < SPINS {
                spins += 1;
                std::hint::spin_loop();
            } else {
                std::thread::park_timeout(Duration::from_millis(10));
            }
        };
        seen = epoch;
        if shared.shutdown.load(Ordering::Acquire) {
            return;
        }
        let job = *shared.job.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(JobPtr(ptr)) = job {
            // SAFETY: `Pool::run` keeps the job alive until `done` counts this worker.
            let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { (*ptr)(index) }));
            if let Err(payload) = ran {
                // Hand the panic to the caller, then release whoever waits at
                // the barrier (in this order, so an echo never comes first).
                shared.panic.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(payload);
                shared.barrier.poison();
            }
        }
        shared.done.fetch_add(1, Ordering::Release);
    }
}

fn spin_or_yield(spins: &mut u32) {
    if *spins < SPINS {
        *spins += 1;
        std::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// The panic a participant raises at a poisoned barrier: the echo of
/// another participant's panic, which is the one the caller sees.
struct Poisoned;

/// A reusable barrier for a fixed number of threads that spins (then
/// yields) instead of sleeping: a step's wait is a few hundred nanoseconds.
pub(crate) struct SpinBarrier {
    n: usize,
    count: AtomicUsize,
    generation: AtomicUsize,
    /// A participant of the current job panicked: nobody waits any more.
    poisoned: AtomicBool,
}

impl SpinBarrier {
    pub fn new(n: usize) -> SpinBarrier {
        SpinBarrier { n, count: AtomicUsize::new(0), generation: AtomicUsize::new(0), poisoned: AtomicBool::new(false) }
    }

    /// Makes every `wait` of this job panic instead of waiting for a
    /// participant that will never come.
    fn poison(&self) {
        self.poisoned.store(true, Ordering::Release);
    }

    /// Clears a poisoned barrier before the next job (no one is waiting).
    fn reset(&self) {
        self.count.store(0, Ordering::Relaxed);
        self.poisoned.store(false, Ordering::Release);
    }

    /// Returns when all `n` threads have called `wait` (for this round).
    pub fn wait(&self) {
        if self.n <= 1 {
            return;
        }
        let generation = self.generation.load(Ordering::Acquire);
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 == self.n {
            self.count.store(0, Ordering::Relaxed);
            self.generation.fetch_add(1, Ordering::Release);
        } else {
            let mut spins = 0u32;
            while self.generation.load(Ordering::Acquire) == generation {
                if self.poisoned.load(Ordering::Acquire) {
                    std::panic::panic_any(Poisoned);
                }
                spin_or_yield(&mut spins);
            }
        }
    }
}

/// Splits `0..n` into `parts` contiguous ranges as equal as possible; part `i`.
pub(crate) fn share(n: usize, parts: usize, i: usize) -> std::ops::Range<usize> {
    let (base, extra) = (n / parts, n % parts);
    let start = i * base + i.min(extra);
    start..start + base + usize::from(i < extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_participant_runs_each_job_once() {
        let pool = Pool::new(3).unwrap();
        let hits: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
        for _ in 0..100 {
            pool.run(&|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
        }
        assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 100));
    }

    #[test]
    fn a_panic_on_any_participant_reaches_the_caller_after_everyone_is_done() {
        let pool = Pool::new(2).unwrap();
        for panicking in [0, 1] {
            let finished = AtomicUsize::new(0);
            let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pool.run(&|i| {
                    if i == panicking {
                        panic!("participant {i} fails");
                    }
                    // The other one waits at the barrier for it: released, not hung.
                    pool.barrier().wait();
                    finished.fetch_add(1, Ordering::Relaxed);
                })
            }));
            let payload = caught.expect_err("the panic reaches the caller");
            let message = payload.downcast_ref::<String>().cloned().unwrap_or_default();
            assert_eq!(message, format!("participant {panicking} fails"), "the original panic, not its echo");
            assert_eq!(finished.load(Ordering::Relaxed), 0);
            // The pool still works.
            let hits = AtomicUsize::new(0);
            pool.run(&|_| {
                hits.fetch_add(1, Ordering::Relaxed);
                pool.barrier().wait();
            });
            assert_eq!(hits.load(Ordering::Relaxed), 2);
        }
    }

    #[test]
    fn barrier_orders_phases_across_threads() {
        let pool = Pool::new(2).unwrap();
        let slots = [AtomicUsize::new(0), AtomicUsize::new(0)];
        let seen_other = AtomicUsize::new(0);
        pool.run(&|i| {
            for round in 1..=1000 {
                slots[i].store(round, Ordering::Relaxed);
                pool.barrier().wait();
                // After the barrier the other thread has written this round.
                if slots[1 - i].load(Ordering::Relaxed) >= round {
                    seen_other.fetch_add(1, Ordering::Relaxed);
                }
                pool.barrier().wait();
            }
        });
        assert_eq!(seen_other.load(Ordering::Relaxed), 2000);
    }

    #[test]
    fn share_covers_the_range_in_order() {
        for (n, parts) in [(10, 3), (3, 5), (32, 2), (0, 2)] {
            let ranges: Vec<_> = (0..parts).map(|i| share(n, parts, i)).collect();
            assert_eq!(ranges.iter().map(|r| r.len()).sum::<usize>(), n);
            assert!(ranges.windows(2).all(|w| w[0].end == w[1].start));
            assert!(ranges.iter().map(|r| r.len()).max().unwrap() - ranges.iter().map(|r| r.len()).min().unwrap() <= 1);
        }
    }
}
