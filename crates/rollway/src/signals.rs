//! Ctrl-C, SIGTERM and SIGHUP for the app layer's long runs: handlers are
//! registered only when a run asks for its flag, so every other command
//! keeps the default (a Ctrl-C ends it at once).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use rollway_app::{Interrupt, Scope};

/// The one flag a deployment watches, registered once per process.
static DEPLOY: OnceLock<Arc<AtomicBool>> = OnceLock::new();

/// The process's signals as the app layer's [`Interrupt`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Signals;

impl Interrupt for Signals {
    fn flag(&self, scope: Scope) -> Arc<AtomicBool> {
        match scope {
            Scope::Deploy => Arc::clone(DEPLOY.get_or_init(|| {
                let flag = Arc::new(AtomicBool::new(false));
                // Ctrl-C, a `kill` and a closed terminal set the flag; the
                // deployment decides what it means (cancel before any host
                // switched, detach or fail after).
                for signal in [
                    signal_hook::consts::SIGINT,
                    signal_hook::consts::SIGTERM,
                    signal_hook::consts::SIGHUP,
                ] {
                    let _ = signal_hook::flag::register(signal, Arc::clone(&flag));
                }
                flag
            })),
            // Each pipeline run stops on Ctrl-C; its jobs end cancelled.
            Scope::Pipeline => {
                let flag = Arc::new(AtomicBool::new(false));
                let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&flag));
                flag
            }
        }
    }

    fn interrupted(&self) -> bool {
        DEPLOY.get().is_some_and(|f| f.load(Ordering::SeqCst))
    }
}
