//! Leases held around work that comes before a deployment exists: the
//! environment's lease taken before its artifact is built (so that of two
//! deploys started together only one builds, and the other exits 3 at once),
//! and the project's build lease (so that two environments never build into
//! the same output directory at the same time).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rollway_model::{DeploymentId, Lock};
use rollway_store::{LockRequest, Store, StoreError};

/// The name of a project's build lease.
pub fn build_lock_name() -> String {
    "build".to_owned()
}

/// Takes the lease `req.name`, waiting up to `wait` for another holder;
/// `StoreError::Locked` when it is still held then. `waiting` is called once
/// with the holder when this has to wait at all.
pub fn acquire(
    store: &dyn Store,
    req: &LockRequest,
    wait: Duration,
    waiting: &mut dyn FnMut(&Lock),
) -> Result<Lock, StoreError> {
    let clock = store.clock();
    let deadline = clock.now().plus(wait);
    let mut told = false;
    loop {
        match store.acquire_lock(req) {
            Err(StoreError::Locked(held)) if clock.now() < deadline => {
                if !told {
                    told = true;
                    waiting(&held);
                }
                clock.sleep(Duration::from_millis(200));
            }
            other => return other,
        }
    }
}

/// Runs `f` while a thread renews `lock` every third of `lease`; returns the
/// lock as last renewed (still held) with `f`'s result.
pub fn renewing<T: Send>(store: &dyn Store, lock: Lock, lease: Duration, f: impl FnOnce() -> T) -> (Lock, T) {
    let held = Mutex::new(lock);
    let done = AtomicBool::new(false);
    let out = std::thread::scope(|scope| {
        scope.spawn(|| renew_while(store, &held, lease, &done));
        let out = f();
        done.store(true, Ordering::SeqCst);
        out
    });
    (held.into_inner().unwrap_or_else(|p| p.into_inner()), out)
}

/// Renews `held` until `done`; a renewal that fails leaves the lock as it
/// was (its holder learns of the loss at its next renewal or release).
pub(crate) fn renew_while(store: &dyn Store, held: &Mutex<Lock>, lease: Duration, done: &AtomicBool) {
    let step = (lease / 3).max(Duration::from_millis(50));
    let mut waited = Duration::ZERO;
    while !done.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
        waited += Duration::from_millis(50);
        if waited >= step {
            waited = Duration::ZERO;
            let mut guard = held.lock().unwrap_or_else(|p| p.into_inner());
            if let Ok(renewed) = store.renew_lock(&guard, lease) {
                *guard = renewed;
            }
        }
    }
}

/// The environment's lease for a deployment that is about to be created
/// with `deployment` as its id: `DeployJob::run` with the same
/// `deployment_id` resumes it rather than waiting for it.
pub fn env_lease_request(
    environment: &str,
    operator: &str,
    kind: &str,
    deployment: DeploymentId,
    lease: Duration,
) -> LockRequest {
    LockRequest {
        name: Lock::env_name(environment),
        owner: operator.to_owned(),
        reason: format!("{kind} of {environment}"),
        deployment_id: Some(deployment),
        lease,
    }
}
