//! The backend's async runtime, and a `block_on` that keeps checking for query cancel and
//! statement_timeout while it waits, so a slow or hung request never pins a backend.
//!
//! The runtime has one worker thread, so requests progress (and pages are decoded) while
//! Postgres works on rows. That thread never calls into Postgres, and it blocks every signal:
//! Postgres's signal handlers must run on the backend's own thread.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

/// How often a wait looks at the interrupt flag.
const INTERRUPT_POLL: Duration = Duration::from_millis(20);

/// What the waiting side needs from Postgres: whether an interrupt is pending, and a way to
/// process it (which raises the cancel error, or returns if the interrupt was harmless).
pub trait Interrupts {
    fn pending(&self) -> bool;
    fn process(&self);
}

/// Never interrupted: for use outside a backend (tests, tools).
pub struct NoInterrupts;

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

/// A runtime without threads, driven only by the backend itself: a request made on it costs no
/// hand-off between threads (about 37 µs against 130 µs for a small page, measured), which is
/// what single-page queries want. Its connections are its own (see `client::http`).
pub fn local_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            // It never needs blocking threads (DNS goes through `Resolver`); should one ever be
            // started, it blocks signals from its first instruction on.
            .on_thread_start(block_all_signals)
            .enable_all()
            .build()
            .expect("a current-thread runtime can always be built")
    })
}

/// Runs `fut` to completion on the calling thread, with the I/O thread's runtime. Whenever an
/// interrupt is pending, the wait pauses to let `interrupts` process it; if that raises an
/// error, `fut` is dropped with the unwinding stack.
pub fn block_on<F: Future>(fut: F, interrupts: &dyn Interrupts) -> F::Output {
    block_on_with(runtime(), fut, interrupts)
}

/// The same on [`local_runtime`]: everything `fut` does happens on the calling thread.
pub fn block_on_local<F: Future>(fut: F, interrupts: &dyn Interrupts) -> F::Output {
    block_on_with(local_runtime(), fut, interrupts)
}

fn block_on_with<F: Future>(rt: &tokio::runtime::Runtime, fut: F, interrupts: &dyn Interrupts) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    loop {
        let outcome = rt.block_on(async {
            tokio::select! {
                biased;
                out = &mut fut => Some(out),
                _ = wait_for_interrupt(interrupts) => None,
            }
        });
        match outcome {
            Some(out) => return out,
            None => interrupts.process(),
        }
    }
}

async fn wait_for_interrupt(interrupts: &dyn Interrupts) {
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
        processed: Cell<u32>,
    }

    impl Interrupts for Flag {
        fn pending(&self) -> bool {
            self.pending.get()
        }
        fn process(&self) {
            self.processed.set(self.processed.get() + 1);
            self.pending.set(false);
        }
    }

    #[test]
    fn a_harmless_interrupt_is_processed_and_the_wait_goes_on() {
        let flag = Flag { pending: Cell::new(true), processed: Cell::new(0) };
        let out = block_on(
            async {
                tokio::time::sleep(Duration::from_millis(60)).await;
                7
            },
            &flag,
        );
        assert_eq!(out, 7);
        assert_eq!(flag.processed.get(), 1);
    }

    #[test]
    fn dns_lookups_run_on_threads_that_block_signals() {
        use reqwest::dns::Resolve;
        // From a thread that takes signals, as the backend does.
        let addrs = block_on_local(async { Resolver.resolve("localhost".parse().unwrap()).await.unwrap().collect::<Vec<_>>() }, &NoInterrupts);
        assert!(addrs.iter().any(|a| a.ip().is_loopback()));
        let blocked = runtime().block_on(async {
            tokio::spawn(async {
                tokio::task::spawn_blocking(|| unsafe {
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut set);
                    libc::sigismember(&set, libc::SIGINT) == 1
                })
                .await
                .unwrap()
            })
            .await
            .unwrap()
        });
        assert!(blocked, "blocking threads started from the I/O thread block signals");
    }

    #[test]
    fn worker_threads_block_signals() {
        let blocked = runtime().block_on(async {
            tokio::spawn(async {
                // SAFETY: reading this thread's signal mask into a local set.
                unsafe {
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut set);
                    libc::sigismember(&set, libc::SIGINT) == 1 && libc::sigismember(&set, libc::SIGTERM) == 1
                }
            })
            .await
            .unwrap()
        });
        assert!(blocked);
    }
}

/// DNS resolution for both HTTP clients. `getaddrinfo` blocks, so it runs on a blocking thread;
/// such threads inherit the signal mask of the thread that starts them, and a request future
/// may be polled on the backend's own thread (which takes signals). So the lookup is started
/// from a task on the I/O thread, whose signals are blocked: every thread this wrapper starts
/// blocks all signals.
pub struct Resolver;

impl reqwest::dns::Resolve for Resolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        let lookup = runtime().spawn(async move {
            tokio::task::spawn_blocking(move || {
                use std::net::ToSocketAddrs;
                (host.as_str(), 0).to_socket_addrs().map(|a| a.collect::<Vec<_>>())
            })
            .await
        });
        Box::pin(async move {
            fn boxed<E: std::error::Error + Send + Sync + 'static>(e: E) -> Box<dyn std::error::Error + Send + Sync> {
                Box::new(e)
            }
            // The task, the blocking thread, and the lookup itself can each fail.
            let addrs = lookup.await.map_err(boxed)?.map_err(boxed)?.map_err(boxed)?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
