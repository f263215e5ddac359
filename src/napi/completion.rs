//! Results of session operations that had to wait for a store, handed back to
//! JS in batches.
//!
//! napi's `spawn_future` gives each call its own promise and, behind it, its
//! own thread-safe function: one is created, woken and torn down per request.
//! On the Redis store that was a measurable share of every request's CPU. Here
//! an operation that does not complete on its first poll gets a ticket number
//! instead. One long-lived thread-safe function ("ring") makes JS call
//! `drain()` on a coming event-loop turn; the first operation queued after a
//! drain rings it, and so does the first result. `drain()` starts the queued
//! operations on napi's runtime as one task (so their Redis commands leave
//! in one write), and hands over every `(ticket, result)` that is ready;
//! JS settles its own promises (lib/session.js). Under load one ring carries
//! many operations out and many results back.
//!
//! While tickets are outstanding the thread-safe function is referenced, so
//! Node does not exit with a request waiting on Redis; when none are, it is
//! not, so an idle engine never keeps a process alive.
//!
//! Stores whose every wait is a JS promise (the app's own storage) are not
//! sent to the runtime at all: their operations are polled on the JS thread
//! ([`Completions::spawn_local`]). When the promise a task waits for settles,
//! its waker queues the task and rings the same wake-up, and `drain()` polls
//! the queued tasks before it hands over results. A storage call then costs
//! one event-loop turn instead of four hops between the JS thread and the
//! runtime's.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake as TaskWake, Waker};

use futures_util::stream::{FuturesUnordered, StreamExt};
use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};

use crate::error::{Error as CoreError, ErrorCode};

/// The JS callback: called with no arguments when results are ready.
type Wake = ThreadsafeFunction<(), (), (), Status, false, true>;

/// Ticket numbers are process-wide, so one JS map serves every engine.
static NEXT_TICKET: AtomicU32 = AtomicU32::new(1);

pub(super) struct Completions {
    wake: Wake,
    done: Mutex<Vec<(u32, String)>>,
    /// A wake-up is on its way (or JS is draining): no need for another.
    woken: AtomicBool,
    /// Tickets handed out and not yet drained. Only touched on the JS thread.
    outstanding: AtomicU32,
    /// Operations queued since the last `drain`, not yet on the runtime,
    /// with their tickets.
    batch: Mutex<Vec<(u32, RuntimeTask)>>,
    /// JS-thread tasks whose waker fired since the last `drain`.
    ready_local: Mutex<Vec<Arc<LocalTask>>>,
}

type LocalFuture = Pin<Box<dyn Future<Output = String> + Send>>;
/// An operation bound for the runtime: it queues its own result.
type RuntimeTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A session operation polled on the JS thread (see the module docs).
struct LocalTask {
    /// `None` once finished.
    fut: Mutex<Option<LocalFuture>>,
    /// Set after the first poll returned `Pending`.
    ticket: AtomicU32,
    completions: std::sync::Weak<Completions>,
}

impl TaskWake for LocalTask {
    fn wake(self: Arc<Self>) {
        if let Some(c) = self.completions.upgrade() {
            c.ready_local
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Arc::clone(&self));
            c.ring();
        }
    }
}

impl LocalTask {
    /// Poll once (on the JS thread); the result when finished.
    fn poll(self: &Arc<Self>) -> Option<String> {
        let mut slot = self.fut.lock().unwrap_or_else(PoisonError::into_inner);
        let fut = slot.as_mut()?;
        let waker = Waker::from(Arc::clone(self));
        let mut cx = Context::from_waker(&waker);
        // No runtime context: what runs here (the engine and the JS storage
        // bridge) waits only on JS promises, never on Tokio timers or I/O.
        let polled = catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx)));
        let result = match polled {
            Ok(Poll::Pending) => return None,
            Ok(Poll::Ready(v)) => v,
            Err(_) => panicked("the session operation failed unexpectedly (internal panic)"),
        };
        *slot = None;
        Some(result)
    }
}

impl Completions {
    pub(super) fn new(on_ready: Function<'_, (), ()>) -> napi::Result<Arc<Self>> {
        let wake = on_ready
            .build_threadsafe_function::<()>()
            .weak::<true>()
            .build()?;
        Ok(Arc::new(Completions {
            wake,
            done: Mutex::new(Vec::new()),
            woken: AtomicBool::new(false),
            outstanding: AtomicU32::new(0),
            batch: Mutex::new(Vec::new()),
            ready_local: Mutex::new(Vec::new()),
        }))
    }

    /// Queue `fut` for the runtime (it starts with the next `drain`); its
    /// result arrives in a later `drain` under the returned ticket. Called
    /// on the JS thread.
    pub(super) fn spawn<F>(self: &Arc<Self>, env: &Env, fut: F) -> napi::Result<u32>
    where
        F: Future<Output = String> + Send + 'static,
    {
        let ticket = NEXT_TICKET.fetch_add(1, Ordering::Relaxed);
        let this = Arc::clone(self);
        let task = async move {
            let result = CatchUnwind(Box::pin(fut)).await.unwrap_or_else(|()| {
                panicked("the session operation failed unexpectedly (internal panic)")
            });
            this.finish(ticket, result);
        };
        let first = {
            let mut batch = self.batch.lock().unwrap_or_else(PoisonError::into_inner);
            batch.push((ticket, Box::pin(task)));
            batch.len() == 1
        };
        // The batch starts at the next `drain`, which this wake-up brings
        // about (on the next event-loop turn: the operations started until
        // then join it).
        if first {
            self.ring();
        }
        if self.outstanding.fetch_add(1, Ordering::Relaxed) == 0 {
            self.reference(env, true)?;
        }
        Ok(ticket)
    }

    /// Run `fut` on the JS thread: the result now when it needs no wait,
    /// else a ticket whose result a later `drain` hands over.
    pub(super) fn spawn_local(
        self: &Arc<Self>,
        env: &Env,
        fut: LocalFuture,
    ) -> napi::Result<Either<String, u32>> {
        let task = Arc::new(LocalTask {
            fut: Mutex::new(Some(fut)),
            ticket: AtomicU32::new(0),
            completions: Arc::downgrade(self),
        });
        if let Some(result) = task.poll() {
            return Ok(Either::A(result));
        }
        let ticket = NEXT_TICKET.fetch_add(1, Ordering::Relaxed);
        task.ticket.store(ticket, Ordering::Relaxed);
        if self.outstanding.fetch_add(1, Ordering::Relaxed) == 0 {
            self.reference(env, true)?;
        }
        Ok(Either::B(ticket))
    }

    /// Poll the JS-thread tasks that were woken; queue the finished ones'
    /// results. Called on the JS thread.
    fn run_local(&self) {
        loop {
            let ready = std::mem::take(
                &mut *self
                    .ready_local
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner),
            );
            if ready.is_empty() {
                return;
            }
            for task in ready {
                if let Some(result) = task.poll() {
                    let ticket = task.ticket.load(Ordering::Relaxed);
                    self.done
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((ticket, result));
                }
            }
        }
    }

    /// Start the operations of this batch on the runtime, as one task that
    /// polls them all: each first poll queues its Redis command, and only
    /// then does the connection's writer run, so the batch leaves in one
    /// write and its replies come back in one read (one task per operation
    /// made the writer run after every command).
    fn flush(&self) {
        let batch = std::mem::take(&mut *self.batch.lock().unwrap_or_else(PoisonError::into_inner));
        if batch.is_empty() {
            return;
        }
        let tickets: Vec<u32> = batch.iter().map(|(ticket, _)| *ticket).collect();
        let mut all: FuturesUnordered<_> = batch.into_iter().map(|(_, task)| task).collect();
        let task = async move { while all.next().await.is_some() {} };
        // napi's `spawn` panics when its runtime is gone (the environment is
        // shutting down): the batch's tickets then settle with an error.
        if catch_unwind(AssertUnwindSafe(|| {
            drop(napi::bindgen_prelude::spawn(task))
        }))
        .is_err()
        {
            let e = CoreError::new(
                ErrorCode::Internal,
                "the addon's I/O runtime is not available (is Node shutting down?)",
            );
            let failed = super::session::op_error(&e);
            for ticket in tickets {
                self.finish(ticket, failed.clone());
            }
        }
    }

    /// Queue a result; wake JS unless a wake-up is already pending.
    fn finish(&self, ticket: u32, result: String) {
        self.done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((ticket, result));
        self.ring();
    }

    /// Have JS call `drain()` soon, unless it is already due to.
    fn ring(&self) {
        if !self.woken.swap(true, Ordering::AcqRel) {
            // Non-blocking on an unbounded queue; it only fails when the
            // environment is closing, and then nobody is waiting any more.
            let _ = self.wake.call((), ThreadsafeFunctionCallMode::NonBlocking);
        }
    }

    /// Every result queued so far, as `[ticket, result, ticket, result, …]`.
    /// Called on the JS thread (from the wake-up callback).
    pub(super) fn drain(&self, env: &Env) -> napi::Result<Vec<Either<u32, String>>> {
        // Cleared before taking the queue: a result queued after the take
        // then sends a new wake-up instead of waiting for one that is over.
        self.woken.store(false, Ordering::Release);
        self.flush();
        self.run_local();
        let taken = std::mem::take(&mut *self.done.lock().unwrap_or_else(PoisonError::into_inner));
        if taken.is_empty() {
            return Ok(Vec::new());
        }
        let n = u32::try_from(taken.len()).unwrap_or(u32::MAX);
        let before = self.outstanding.fetch_sub(n, Ordering::Relaxed);
        if before == n {
            self.reference(env, false)?;
        }
        let mut out = Vec::with_capacity(taken.len() * 2);
        for (ticket, result) in taken {
            out.push(Either::A(ticket));
            out.push(Either::B(result));
        }
        Ok(out)
    }

    /// Keep the event loop alive (or not) for the wake-up.
    #[allow(unsafe_code)] // plain napi calls on a live handle, on the JS thread
    fn reference(&self, env: &Env, on: bool) -> napi::Result<()> {
        // SAFETY: `env` is the current environment (we are on the JS thread)
        // and `self.wake` owns the thread-safe function, which stays alive for
        // as long as `self` does.
        let status = unsafe {
            if on {
                napi::sys::napi_ref_threadsafe_function(env.raw(), self.wake.raw())
            } else {
                napi::sys::napi_unref_threadsafe_function(env.raw(), self.wake.raw())
            }
        };
        if status == napi::sys::Status::napi_ok {
            Ok(())
        } else {
            Err(napi::Error::new(
                Status::GenericFailure,
                "could not (un)reference the session engine's wake-up",
            ))
        }
    }
}

/// The encoded error an operation settles with when its future panicked.
fn panicked(message: &str) -> String {
    let e = CoreError::new(ErrorCode::Internal, message);
    super::session::op_error(&e)
}

/// A future that turns a panic while polling into `Err(())`, so a ticket is
/// always settled.
struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = std::result::Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}
