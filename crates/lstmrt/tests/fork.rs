//! A state with worker threads keeps working in a forked child (Dask, Spark
//! and `multiprocessing` workers fork): the child has none of the parent's
//! threads, so its pool is started again instead of waiting for workers
//! that are not there. Also when another thread of the parent was in the
//! middle of a threaded run at the moment of the fork.
//!
//! Runs without the test harness (`harness = false`): the fork happens from
//! a process whose threads this file knows, and the child leaves with
//! `_exit` so nothing of the harness runs twice. A child that hangs is
//! killed after a minute and fails the test.

#[cfg(target_os = "linux")]
mod linux {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use lstmrt::format::{Architecture, CellKind, DType, Metadata};
    use lstmrt::{Model, ModelWriter};
    use lstmrt_testkit::{Rng, random_weights};

    unsafe extern "C" {
        fn fork() -> i32;
        fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
        fn kill(pid: i32, signal: i32) -> i32;
        fn _exit(code: i32) -> !;
    }
    const WNOHANG: i32 = 1;
    const SIGKILL: i32 = 9;

    fn model(dtype: DType) -> Model {
        let meta = Metadata::new(Architecture::new(CellKind::Lstm, 16, 256, 2));
        let w = random_weights(&meta, &mut Rng::new(11), 1.0);
        Model::from_bytes(&ModelWriter::new(&meta, &w).dtype(dtype).to_bytes().unwrap()).unwrap()
    }

    /// Runs `child` in a forked process; its return value is the exit code.
    /// Fails if the child does not exit 0 within a minute.
    fn in_child(what: &str, child: impl FnOnce() -> i32) {
        // SAFETY: the child only runs lstmrt (which allocates and starts
        // threads, as Python's forked workers do) and leaves with `_exit`.
        let pid = unsafe { fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
            // SAFETY: ends the child at once, without the parent's exit handlers.
            unsafe { _exit(code) }
        }
        let started = Instant::now();
        let mut status = 0;
        loop {
            // SAFETY: `status` is a valid out-pointer; `pid` is our child.
            let done = unsafe { waitpid(pid, &mut status, WNOHANG) };
            assert!(done >= 0, "waitpid failed");
            if done == pid {
                break;
            }
            if started.elapsed() > Duration::from_secs(60) {
                // SAFETY: signals our own child, then reaps it.
                unsafe {
                    kill(pid, SIGKILL);
                    waitpid(pid, &mut status, 0);
                }
                panic!("{what}: the child hung (a thread pool waiting for workers it does not have)");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let exited = status & 0x7f == 0;
        let code = (status >> 8) & 0xff;
        assert!(exited && code == 0, "{what}: the child failed (wait status {status:#x})");
        println!("fork: {what}: the child ran and matched");
    }

    pub fn states_and_stream_batches_with_threads_work_in_a_forked_child() {
        for dtype in [DType::F32, DType::I8] {
            let m = model(dtype);
            let (steps, batch) = (40, 4);
            let xs: Vec<f32> = (0..steps * batch * 16).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
            let mut state = m.new_batch_state(batch).unwrap();
            state.set_threads(2);
            let fresh = state.clone();
            let want = m.run(&mut state, &xs).unwrap().to_vec();
            // A single stream split by panels of units (the barrier path).
            let mut one = m.new_state();
            one.set_threads(2);
            let one_fresh = one.clone();
            let want_one = m.run(&mut one, &xs[..steps * 16]).unwrap().to_vec();
            let mut streams = m.new_stream_batch(4).unwrap();
            streams.set_threads(2);
            let ids: Vec<_> = (0..4).map(|_| streams.join().unwrap()).collect();
            let want_streams = streams.step(&m, &ids, &xs[..4 * 16]).unwrap().to_vec();
            for id in &ids {
                streams.reset(*id).unwrap();
            }
            let name = format!("{} batch {batch}, single stream and stream batch, 2 threads", dtype.name());
            in_child(&name, move || {
                let (mut state, mut one) = (fresh, one_fresh);
                let got = m.run(&mut state, &xs).unwrap().to_vec();
                let got_one = m.run(&mut one, &xs[..steps * 16]).unwrap().to_vec();
                let got_streams = streams.step(&m, &ids, &xs[..4 * 16]).unwrap().to_vec();
                let same = got == want && got_one == want_one && got_streams == want_streams;
                let threads = state.threads() == 2 && one.threads() == 2;
                if same && threads { 0 } else { 1 }
            });
        }
    }

    pub fn a_fork_during_another_threads_run_leaves_the_child_working() {
        let m = Arc::new(model(DType::F32));
        let stop = Arc::new(AtomicBool::new(false));
        let xs = vec![0.5f32; 200 * 16];
        let busy = {
            let (m, stop, xs) = (Arc::clone(&m), Arc::clone(&stop), xs.clone());
            std::thread::spawn(move || {
                let mut state = m.new_state();
                state.set_threads(2);
                while !stop.load(Ordering::Relaxed) {
                    m.run(&mut state, &xs).unwrap();
                }
            })
        };
        let mut reference = m.new_state();
        let want = m.run(&mut reference, &xs).unwrap().to_vec();
        let mut mine = m.new_state();
        mine.set_threads(2);
        std::thread::sleep(Duration::from_millis(50));
        for round in 0..5 {
            let (m, mut state) = (Arc::clone(&m), mine.clone());
            let (xs, want) = (xs.clone(), want.clone());
            in_child(&format!("fork {round} while another thread runs on 2 threads"), move || {
                let got = m.run(&mut state, &xs).unwrap().to_vec();
                let close = got.iter().zip(&want).all(|(a, b)| (a - b).abs() <= 1e-5);
                if close { 0 } else { 1 }
            });
        }
        stop.store(true, Ordering::Relaxed);
        busy.join().unwrap();
    }
}

fn main() {
    #[cfg(target_os = "linux")]
    {
        linux::states_and_stream_batches_with_threads_work_in_a_forked_child();
        linux::a_fork_during_another_threads_run_leaves_the_child_working();
        println!("fork: 2 checks passed");
    }
    #[cfg(not(target_os = "linux"))]
    println!("fork: skipped (the test uses Linux's fork and wait constants)");
}
