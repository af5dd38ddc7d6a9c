//! Failpoints: named step boundaries where a test build can kill the deploy
//! with SIGKILL (`ROLLWAY_FAILPOINT=NAME`), to prove recovery. Compiled only
//! with the `failpoints` feature; in other builds `failpoint` does nothing.

/// Every step boundary of a deployment, in order. A test checks each one.
pub const ALL: &[&str] = &[
    "after-create",
    "after-deploying",
    "after-ship",
    "after-switch",
    "after-restart",
    "after-waves",
    "before-success",
];

/// Dies here, like `kill -9`, when `ROLLWAY_FAILPOINT` names this point.
#[cfg(feature = "failpoints")]
pub fn failpoint(name: &str) {
    if std::env::var("ROLLWAY_FAILPOINT").as_deref() == Ok(name) {
        // SIGKILL ourselves: no destructor, no flush — exactly a crash.
        let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
        std::process::abort();
    }
}

#[cfg(not(feature = "failpoints"))]
#[inline]
pub fn failpoint(_name: &str) {}
