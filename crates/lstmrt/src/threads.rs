//! A small pool of persistent worker threads and a spinning barrier, for
//! splitting one recurrence across cores with one light barrier per step.
//!
//! `std::thread::scope` would spawn threads on every call (tens of
//! microseconds); a stream that steps every few microseconds needs workers
//! that are already running and wake in well under a microsecond. Workers
//! spin briefly for the next job, then park, so an idle pool costs nothing.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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
}

/// The job with its lifetime erased. Sound because `Pool::run` does not return
/// before every worker has finished with it (it waits on `done`).
#[derive(Clone, Copy)]
struct JobPtr(*const (dyn Fn(usize) + Sync + 'static));
// SAFETY: the pointee is `Sync`, and is only used while `Pool::run` keeps it alive.
unsafe impl Send for JobPtr {}

/// Persistent workers that run one job at a time together with the caller.
pub(crate) struct Pool {
    shared: Arc<Shared>,
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
        let shared = Arc::new(Shared {
            participants: threads.max(1),
            job: Mutex::new(None),
            epoch: AtomicU64::new(0),
            done: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
            barrier: SpinBarrier::new(threads.max(1)),
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
        let pool = Pool { shared, workers, running: Mutex::new(()) };
        // One empty job, so whatever each worker sets up lazily on its first
        // job happens now and not inside a caller's step.
        pool.run(&|_| {});
        Some(pool)
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
    /// returns when all are done.
    pub fn run(&self, job: Job<'_>) {
        let _one_at_a_time = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if self.workers.is_empty() {
            job(0);
            return;
        }
        // SAFETY: only the lifetime is erased; the job outlives every use
        // because this function waits for all workers below.
        let ptr: *const (dyn Fn(usize) + Sync + 'static) = unsafe { std::mem::transmute(job as *const _) };
        *self.shared.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(JobPtr(ptr));
        self.shared.done.store(0, Ordering::Relaxed);
        self.shared.epoch.fetch_add(1, Ordering::Release);
        for w in &self.workers {
            w.thread().unpark();
        }
        job(0);
        let mut spins = 0u32;
        while self.shared.done.load(Ordering::Acquire) < self.workers.len() {
            spin_or_yield(&mut spins);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
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
            unsafe { (*ptr)(index) };
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

/// A reusable barrier for a fixed number of threads that spins (then
/// yields) instead of sleeping: a step's wait is a few hundred nanoseconds.
pub(crate) struct SpinBarrier {
    n: usize,
    count: AtomicUsize,
    generation: AtomicUsize,
}

impl SpinBarrier {
    pub fn new(n: usize) -> SpinBarrier {
        SpinBarrier { n, count: AtomicUsize::new(0), generation: AtomicUsize::new(0) }
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
