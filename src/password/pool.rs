//! A bounded pool of password-hashing threads, each with one reusable arena.
//!
//! Argon2 at 64 MiB is mostly memory traffic: allocating and faulting in a
//! fresh arena costs about as much as the hash itself. Each worker keeps its
//! [`Engine`] (one arena) between jobs and gives the memory back after
//! `idle_release` without work. At most `threads` hashes run at once; further
//! calls queue instead of allocating, so memory stays at
//! `threads * 64 MiB` however many logins arrive together.
//!
//! Jobs are closures; the caller gets a `tokio::sync::oneshot` receiver, which
//! any executor (or a blocking `recv`) can wait on. A panic inside a job is
//! caught and returned as an `INTERNAL_ERROR`; the worker carries on with a
//! fresh engine.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::Duration;

use tokio::sync::oneshot;

use super::Engine;
use crate::error::{Error, ErrorCode, Result};

/// A job computes on the worker's engine and returns the step that delivers
/// its result, so the pool's bookkeeping is done before the caller wakes up.
type Job = Box<dyn FnOnce(&mut Engine) -> Reply + Send + 'static>;
type Reply = Box<dyn FnOnce() + Send + 'static>;

/// Default time a worker keeps its arena with nothing to do.
pub const DEFAULT_IDLE_RELEASE: Duration = Duration::from_secs(10);

/// A snapshot of the pool, for tests and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// Upper bound on worker threads.
    pub max_threads: usize,
    /// Worker threads started so far.
    pub threads: usize,
    /// Workers currently holding an arena.
    pub arenas: usize,
    /// Jobs waiting for a worker.
    pub queued: usize,
}

struct State {
    jobs: VecDeque<Job>,
    spawned: usize,
    idle: usize,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    max_threads: usize,
    idle_release: Duration,
    arenas: AtomicUsize,
}

/// The pool. Cloning shares it.
#[derive(Clone)]
pub struct HashPool {
    shared: Arc<Shared>,
}

impl HashPool {
    /// A pool of at most `max_threads` workers (at least 1).
    pub fn new(max_threads: usize, idle_release: Duration) -> Self {
        HashPool {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    jobs: VecDeque::new(),
                    spawned: 0,
                    idle: 0,
                }),
                wake: Condvar::new(),
                max_threads: max_threads.max(1),
                idle_release,
                arenas: AtomicUsize::new(0),
            }),
        }
    }

    /// The process-wide pool: one worker per CPU unless
    /// `BLITZ_AUTH_HASH_THREADS` says otherwise.
    pub fn global() -> &'static HashPool {
        static GLOBAL: OnceLock<HashPool> = OnceLock::new();
        GLOBAL.get_or_init(|| {
            let threads = crate::thread_count_from_env("BLITZ_AUTH_HASH_THREADS")
                .unwrap_or_else(|| thread::available_parallelism().map_or(2, |n| n.get()));
            HashPool::new(threads, DEFAULT_IDLE_RELEASE)
        })
    }

    /// Run `work` on a worker; the receiver yields its result.
    pub fn submit<T, F>(&self, work: F) -> oneshot::Receiver<Result<T>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Engine) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |engine: &mut Engine| {
            let result = work(engine);
            Box::new(move || {
                // The receiver may be gone (caller gave up); nothing to do then.
                let _ = tx.send(result);
            })
        });
        let spawn = {
            let mut st = self.lock();
            st.jobs.push_back(job);
            let spawn = st.jobs.len() > st.idle && st.spawned < self.shared.max_threads;
            if spawn {
                st.spawned += 1;
            }
            spawn
        };
        if spawn {
            self.spawn_worker();
        }
        self.shared.wake.notify_one();
        rx
    }

    /// Current figures.
    pub fn stats(&self) -> PoolStats {
        let st = self.lock();
        PoolStats {
            max_threads: self.shared.max_threads,
            threads: st.spawned,
            arenas: self.shared.arenas.load(Ordering::SeqCst),
            queued: st.jobs.len(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Jobs never run under this lock, so poisoning can only come from a
        // panic in this module's few lines; the state is still consistent.
        self.shared
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn spawn_worker(&self) {
        let pool = self.clone();
        let index = self.lock().spawned;
        let started = thread::Builder::new()
            .name(format!("blitz-auth-hash-{index}"))
            .spawn(move || pool.work());
        if started.is_err() {
            // Could not start a thread: undo the count; an existing worker (if
            // any) will take the job. With none, fail every queued job loudly.
            let mut st = self.lock();
            st.spawned -= 1;
            if st.spawned == 0 {
                let jobs: Vec<Job> = st.jobs.drain(..).collect();
                drop(st);
                drop(jobs); // dropping a job drops its sender: the caller sees an error
            }
        }
    }

    fn work(self) {
        let mut engine = Engine::pooled();
        loop {
            let Some(job) = self.next_job(&mut engine) else {
                continue;
            };
            let had_arena = engine.reserved_blocks() > 0;
            let outcome = catch_unwind(AssertUnwindSafe(|| job(&mut engine)));
            if outcome.is_err() {
                // The job's sender was dropped during unwinding, so its caller
                // already got an error. Start over with a clean engine.
                engine = Engine::pooled();
            }
            let has_arena = engine.reserved_blocks() > 0;
            match (had_arena, has_arena) {
                (false, true) => {
                    self.shared.arenas.fetch_add(1, Ordering::SeqCst);
                }
                (true, false) => {
                    self.shared.arenas.fetch_sub(1, Ordering::SeqCst);
                }
                _ => {}
            }
            if let Ok(reply) = outcome {
                reply();
            }
        }
    }

    /// Wait for a job; release the arena when none comes within `idle_release`.
    fn next_job(&self, engine: &mut Engine) -> Option<Job> {
        let mut st = self.lock();
        loop {
            if let Some(job) = st.jobs.pop_front() {
                return Some(job);
            }
            st.idle += 1;
            if engine.reserved_blocks() > 0 {
                let (guard, timeout) = self
                    .shared
                    .wake
                    .wait_timeout(st, self.shared.idle_release)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                st = guard;
                st.idle -= 1;
                if timeout.timed_out() && st.jobs.is_empty() {
                    drop(st);
                    engine.release();
                    self.shared.arenas.fetch_sub(1, Ordering::SeqCst);
                    return None;
                }
            } else {
                st = self
                    .shared
                    .wake
                    .wait(st)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                st.idle -= 1;
            }
        }
    }
}

/// Map a dropped reply channel (a worker died mid-job) to an error.
pub fn pool_gone(_: oneshot::error::RecvError) -> Error {
    Error::new(
        ErrorCode::WorkerPoolUnavailable,
        "the password worker stopped before finishing this job",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn wait<T>(rx: oneshot::Receiver<Result<T>>) -> Result<T> {
        rx.blocking_recv().map_err(pool_gone)?
    }

    #[test]
    fn runs_jobs_and_bounds_threads() {
        let pool = HashPool::new(2, Duration::from_secs(60));
        let rxs: Vec<_> = (0..8)
            .map(|i| {
                pool.submit(move |_e: &mut Engine| {
                    thread::sleep(Duration::from_millis(20));
                    Ok(i * 2)
                })
            })
            .collect();
        let out: Vec<i32> = rxs.into_iter().map(|r| wait(r).expect("job")).collect();
        assert_eq!(out, vec![0, 2, 4, 6, 8, 10, 12, 14]);
        assert!(pool.stats().threads <= 2);
    }

    #[test]
    fn a_panicking_job_is_an_error_and_the_pool_survives() {
        let pool = HashPool::new(1, Duration::from_secs(60));
        let rx = pool.submit(|_e: &mut Engine| -> Result<()> {
            std::panic::panic_any("boom");
        });
        let err = wait(rx).expect_err("panicked");
        assert_eq!(err.code(), ErrorCode::WorkerPoolUnavailable);
        let rx = pool.submit(|_e: &mut Engine| Ok(7));
        assert_eq!(wait(rx).expect("job after panic"), 7);
    }

    #[test]
    fn arenas_are_reused_then_released_when_idle() {
        let pool = HashPool::new(1, Duration::from_millis(500));
        for _ in 0..2 {
            let rx = pool.submit(|e: &mut Engine| super::super::hash_password(e, b"pw"));
            wait(rx).expect("hash");
            assert_eq!(pool.stats().arenas, 1);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while pool.stats().arenas != 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(pool.stats().arenas, 0, "arena kept after the idle period");
        // And it comes back on demand.
        let rx = pool.submit(|e: &mut Engine| super::super::hash_password(e, b"pw"));
        wait(rx).expect("hash");
        assert_eq!(pool.stats().arenas, 1);
    }
}
