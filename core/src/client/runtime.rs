//! The backend's async runtime, and the one way the backend waits on it: [`wait`], which keeps
//! checking for query cancel and statement_timeout, so a slow or hung request never pins a
//! backend.
//!
//! The runtime has one worker thread, so requests progress (and pages are decoded) while
//! Postgres works on rows. Every request runs as a task on that thread: it never calls into
//! Postgres, and it blocks every signal (so do the blocking threads it starts for DNS lookups,
//! which inherit its mask), because Postgres's signal handlers must run on the backend's thread.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::task::{JoinError, JoinHandle};

/// How often a wait looks at the interrupt flag.
const INTERRUPT_POLL: Duration = Duration::from_millis(20);

/// What the waiting side needs from Postgres: whether an interrupt can be processed now, and a
/// way to process it (which raises the cancel error, or returns if the interrupt was harmless).
pub trait Interrupts {
    fn pending(&self) -> bool;
    fn process(&self);
}

/// Never interrupted: for tests outside a backend.
#[cfg(test)]
pub struct NoInterrupts;

#[cfg(test)]
impl Interrupts for NoInterrupts {
    fn pending(&self) -> bool {
        false
    }
    fn process(&self) {}
}

pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        // Threads inherit the signal mask of the thread that creates them: block everything
        // while the runtime starts its threads, then restore the backend's mask.
        with_signals_blocked(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .max_blocking_threads(2)
                .thread_name("databricks_fdw-io")
                .on_thread_start(block_all_signals)
                .enable_all()
                .build()
                .expect("the runtime's threads can be started")
        })
    })
}

fn block_all_signals() {
    // SAFETY: plain libc calls on a local, fully initialised signal set.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
    }
}

fn with_signals_blocked<T>(f: impl FnOnce() -> T) -> T {
    // SAFETY: as above; the previous mask is restored before returning.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut previous: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut previous);
        let out = f();
        libc::pthread_sigmask(libc::SIG_SETMASK, &previous, std::ptr::null_mut());
        out
    }
}

/// A task on the I/O thread that is stopped when its handle is dropped (also when the backend
/// unwinds from a cancel while waiting for it).
pub struct Task<T>(JoinHandle<T>);

impl<T: Send + 'static> Task<T> {
    pub fn spawn(fut: impl Future<Output = T> + Send + 'static) -> Task<T> {
        Task(runtime().spawn(fut))
    }

    /// Waits for the task; `Err` when it panicked (the panic's text is not for users).
    pub fn join(mut self, interrupts: &dyn Interrupts) -> Result<T, JoinError> {
        wait(&mut self.0, interrupts)
    }

    /// Waits for the task from another task on the I/O thread.
    pub async fn finished(&mut self) -> Result<T, JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for Task<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `fut` on the I/O thread and waits for it on this one (see [`wait`]). A panic in it
/// becomes `Err`.
pub fn run<T: Send + 'static>(fut: impl Future<Output = T> + Send + 'static, interrupts: &dyn Interrupts) -> Result<T, JoinError> {
    Task::spawn(fut).join(interrupts)
}

/// Waits on the calling thread for `fut`, a future that only waits for work done on the I/O
/// thread (a task, a channel). Whenever an interrupt can be processed, the wait pauses to let
/// `interrupts` process it; if that raises an error, `fut` is dropped with the unwinding stack.
/// A harmless interrupt that stays pending is looked at again only after a poll interval, so
/// the wait never spins.
pub fn wait<F: Future>(fut: F, interrupts: &dyn Interrupts) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut first_look = Duration::ZERO;
    loop {
        let outcome = runtime().block_on(async {
            tokio::select! {
                biased;
                out = &mut fut => Some(out),
                _ = wait_for_interrupt(interrupts, first_look) => None,
            }
        });
        match outcome {
            Some(out) => return out,
            None => {
                interrupts.process();
                first_look = INTERRUPT_POLL;
            }
        }
    }
}

async fn wait_for_interrupt(interrupts: &dyn Interrupts, first_look: Duration) {
    tokio::time::sleep(first_look).await;
    loop {
        if interrupts.pending() {
            return;
        }
        tokio::time::sleep(INTERRUPT_POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    struct Flag {
        pending: Cell<bool>,
        /// Whether processing clears the flag (it does not while Postgres holds interrupts off).
        clears: bool,
        processed: Cell<u32>,
    }

    impl Interrupts for Flag {
        fn pending(&self) -> bool {
            self.pending.get()
        }
        fn process(&self) {
            self.processed.set(self.processed.get() + 1);
            if self.clears {
                self.pending.set(false);
            }
        }
    }

    #[test]
    fn a_harmless_interrupt_is_processed_and_the_wait_goes_on() {
        let flag = Flag { pending: Cell::new(true), clears: true, processed: Cell::new(0) };
        let out = run(
            async {
                tokio::time::sleep(Duration::from_millis(60)).await;
                7
            },
            &flag,
        );
        assert_eq!(out.unwrap(), 7);
        assert_eq!(flag.processed.get(), 1);
    }

    #[test]
    fn an_interrupt_that_stays_pending_does_not_make_the_wait_spin() {
        // 200 ms of waiting with the flag stuck: a spinning wait would process it many
        // thousands of times; a polling one about ten times.
        let flag = Flag { pending: Cell::new(true), clears: false, processed: Cell::new(0) };
        run(async { tokio::time::sleep(Duration::from_millis(200)).await }, &flag).unwrap();
        assert!((1..=20).contains(&flag.processed.get()), "processed {} times", flag.processed.get());
    }

    #[test]
    fn a_panicking_task_is_an_error_not_a_hang() {
        let out = run(async { panic!("boom") }, &NoInterrupts);
        assert!(out.unwrap_err().is_panic());
    }

    #[test]
    fn worker_and_blocking_threads_block_signals() {
        fn blocked() -> bool {
            // SAFETY: reading this thread's signal mask into a local set.
            unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut set);
                libc::sigismember(&set, libc::SIGINT) == 1 && libc::sigismember(&set, libc::SIGTERM) == 1
            }
        }
        let (worker, blocking) = run(async { (blocked(), tokio::task::spawn_blocking(blocked).await.unwrap()) }, &NoInterrupts).unwrap();
        assert!(worker && blocking);
    }
}
