//! A bound on every wait for a host's agent. While a request is
//! outstanding, the agent's process (the local agent, or ssh for a remote
//! one) is stopped when no byte has moved either way for the quiet limit:
//! stopping it closes the pipes, which ends whatever read or write was
//! blocked, so an agent that stopped answering fails its step naming the
//! host instead of hanging the deployment or `serve`. Every byte that moves
//! pushes the deadline on, so a long transfer that progresses is never cut.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What the watchdog does when the quiet limit passes (kill the process,
/// shut the socket down).
pub type Stop = Box<dyn FnMut() + Send>;

#[derive(Default)]
struct State {
    /// The quiet limit of the outstanding request; none when idle.
    limit: Option<Duration>,
    deadline: Option<Instant>,
    /// The limit that passed, once it did.
    fired: Option<Duration>,
    /// The owner is gone: the thread ends.
    done: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Watches one conversation; cheap to clone (the reader and writer
/// wrappers hold clones to report progress).
#[derive(Clone)]
pub struct Watchdog {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Watchdog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watchdog").field("fired", &self.fired()).finish()
    }
}

impl Watchdog {
    /// A watchdog that runs `stop` when a request's quiet limit passes.
    pub fn new(mut stop: Stop) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let watched = Arc::clone(&shared);
        std::thread::spawn(move || {
            let mut state = watched.lock();
            loop {
                // Every handle dropped (a connection that failed before its
                // session began) ends the thread too.
                if state.done || Arc::strong_count(&watched) == 1 {
                    return;
                }
                match state.deadline {
                    None => {
                        state = watched
                            .wake
                            .wait_timeout(state, Duration::from_secs(1))
                            .map(|(s, _)| s)
                            .unwrap_or_else(|p| p.into_inner().0);
                    }
                    Some(d) if Instant::now() >= d => {
                        state.fired = state.limit;
                        state.deadline = None;
                        drop(state);
                        stop();
                        state = watched.lock();
                    }
                    Some(d) => {
                        let wait = d.saturating_duration_since(Instant::now());
                        state = watched
                            .wake
                            .wait_timeout(state, wait)
                            .map(|(s, _)| s)
                            .unwrap_or_else(|p| p.into_inner().0);
                    }
                }
            }
        });
        Self { shared }
    }

    /// A request is outstanding: its answer (or the next byte moved) is
    /// due within `limit`.
    pub fn arm(&self, limit: Duration) {
        let mut state = self.shared.lock();
        if state.fired.is_none() {
            state.limit = Some(limit);
            state.deadline = Some(Instant::now() + limit);
            self.shared.wake.notify_one();
        }
    }

    /// The answer came: nothing is due.
    pub fn disarm(&self) {
        let mut state = self.shared.lock();
        state.limit = None;
        state.deadline = None;
    }

    /// A byte moved: the outstanding request's deadline moves on.
    pub fn progress(&self) {
        let mut state = self.shared.lock();
        if let (Some(limit), Some(_)) = (state.limit, state.deadline) {
            state.deadline = Some(Instant::now() + limit);
        }
    }

    /// The quiet limit that passed, once the watchdog stopped the agent.
    pub fn fired(&self) -> Option<Duration> {
        self.shared.lock().fired
    }

    /// Ends the watch (the session is over).
    pub fn finish(&self) {
        let mut state = self.shared.lock();
        state.done = true;
        self.shared.wake.notify_one();
    }
}

/// A watchdog that kills `child` (the agent, or the ssh client carrying
/// the conversation); the session keeps the other handle to reap it.
pub fn for_child(child: std::process::Child) -> (Arc<Mutex<std::process::Child>>, Watchdog) {
    let child = Arc::new(Mutex::new(child));
    let victim = Arc::clone(&child);
    let dog = Watchdog::new(Box::new(move || {
        let mut c = victim.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let _ = c.kill();
    }));
    (child, dog)
}

/// Kills and reaps a child whose conversation failed.
pub fn reap(child: &Mutex<std::process::Child>) {
    let mut c = child.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let _ = c.kill();
    let _ = c.wait();
}

/// A stream that tells the watchdog each time bytes move through it.
pub struct Watched<T> {
    pub inner: T,
    pub dog: Watchdog,
}

impl<R: std::io::Read> std::io::Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.dog.progress();
        }
        Ok(n)
    }
}

impl<W: std::io::Write> std::io::Write for Watched<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        if n > 0 {
            self.dog.progress();
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn counting() -> (Watchdog, Arc<AtomicUsize>) {
        let stops = Arc::new(AtomicUsize::new(0));
        let s = Arc::clone(&stops);
        let dog = Watchdog::new(Box::new(move || {
            s.fetch_add(1, Ordering::SeqCst);
        }));
        (dog, stops)
    }

    fn settle() {
        std::thread::sleep(Duration::from_millis(150));
    }

    #[test]
    fn fires_once_when_nothing_moves_and_never_when_idle_or_progressing() {
        let limit = Duration::from_millis(100);
        // Idle: nothing is due.
        let (dog, stops) = counting();
        settle();
        assert_eq!((stops.load(Ordering::SeqCst), dog.fired()), (0, None));
        // Answered in time.
        dog.arm(limit);
        dog.disarm();
        settle();
        assert_eq!((stops.load(Ordering::SeqCst), dog.fired()), (0, None));
        // Progress keeps pushing the deadline on.
        dog.arm(limit);
        for _ in 0..6 {
            std::thread::sleep(Duration::from_millis(40));
            dog.progress();
        }
        assert_eq!((stops.load(Ordering::SeqCst), dog.fired()), (0, None));
        // Silence: stopped once, and it stays stopped.
        settle();
        assert_eq!((stops.load(Ordering::SeqCst), dog.fired()), (1, Some(limit)));
        dog.arm(limit);
        settle();
        assert_eq!(stops.load(Ordering::SeqCst), 1);
        dog.finish();
    }
}
