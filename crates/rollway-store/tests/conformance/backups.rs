//! Conformance cases for backups and restore jobs (schema 14): records
//! round-trip every field, walk the model's tables (a refused step writes
//! nothing), are found by id prefix and listed newest first per
//! environment; a restore job needs its backup, and its target and a
//! backup's failure are masked.

use std::time::Duration;

use rollway_model::Clock as _;
use rollway_model::{
    Backup, BackupClass, BackupId, BackupKind, BackupStatus, EventKind, Level, ManualClock, NewEvent, Restore,
    RestoreStatus, Sha256Digest, Timestamp,
};
use rollway_store::{EventQuery, Store, StoreError};

fn backup(env: &str, name: &str, class: BackupClass, at: Timestamp) -> Backup {
    let mut b = Backup::new(env, BackupKind::Database, class, format!("/var/backups/{name}"), at);
    b.name = name.to_owned();
    b.database_name = Some("app".into());
    b
}

fn ev(kind: EventKind, text: &str) -> NewEvent {
    NewEvent::new(kind, Level::Info, text)
}

fn digest() -> Sha256Digest {
    Sha256Digest::try_from("0123456789abcdef".repeat(4)).unwrap()
}

fn events_of(store: &dyn Store, kind: EventKind) -> usize {
    store
        .events(&EventQuery {
            kind: Some(kind),
            ..EventQuery::default()
        })
        .unwrap()
        .len()
}

pub(super) fn backups_round_trip_and_walk_their_table(store: &dyn Store, clock: &ManualClock) {
    let t0 = clock.now();
    let first = store
        .insert_backup(
            &backup("prod", "db", BackupClass::Daily, t0),
            vec![ev(EventKind::BackupChanged, "started")],
        )
        .unwrap();
    assert_eq!(first.status(), BackupStatus::InProgress);
    assert_eq!(store.backup(first.id).unwrap().as_ref(), Some(&first));

    clock.advance(Duration::from_secs(5));
    let done_at = clock.now();
    let done = store
        .update_backup(first.id, &mut |b| {
            b.complete(digest(), 4096, done_at)?;
            Ok(vec![ev(EventKind::BackupChanged, "completed")])
        })
        .unwrap();
    assert_eq!(done.status(), BackupStatus::Completed);
    assert_eq!(done.finished_at, Some(done_at));
    assert_eq!(done.checksum, Some(digest()));
    assert_eq!(done.size_bytes, 4096);
    let read = store.backup(first.id).unwrap().unwrap();
    assert_eq!(read, done, "every field round-trips");
    assert_eq!(read.name, "db");
    assert_eq!(read.database_name.as_deref(), Some("app"));
    assert_eq!(events_of(store, EventKind::BackupChanged), 2);
    let tied = store
        .events(&EventQuery {
            environment: Some("prod".into()),
            kind: Some(EventKind::BackupChanged),
            ..EventQuery::default()
        })
        .unwrap();
    assert_eq!(tied.len(), 2, "a backup's events are tied to its environment");

    // A refused step (completed → failed) writes nothing, event included.
    let refused = store.update_backup(first.id, &mut |b| {
        b.fail("too late", done_at)?;
        Ok(vec![ev(EventKind::BackupChanged, "failed")])
    });
    assert!(matches!(refused, Err(StoreError::Transition { .. })), "{refused:?}");
    assert_eq!(store.backup(first.id).unwrap().unwrap(), done);
    assert_eq!(events_of(store, EventKind::BackupChanged), 2);
    // Completing without a checksum breaks the model's rule: nothing written.
    let second = store
        .insert_backup(&backup("prod", "db", BackupClass::Manual, clock.now()), vec![])
        .unwrap();
    let invalid = store.update_backup(second.id, &mut |b| {
        b.transition(BackupStatus::Completed, b.created_at)?;
        Ok(vec![])
    });
    assert!(invalid.is_err(), "{invalid:?}");
    assert_eq!(
        store.backup(second.id).unwrap().unwrap().status(),
        BackupStatus::InProgress
    );

    // Expire the first: the record stays, status expired.
    let expired = store
        .update_backup(first.id, &mut |b| {
            b.transition(BackupStatus::Expired, done_at)?;
            Ok(vec![ev(EventKind::BackupChanged, "expired")])
        })
        .unwrap();
    assert_eq!(expired.status(), BackupStatus::Expired);

    // The same id twice is refused.
    assert!(matches!(
        store.insert_backup(&first, vec![]),
        Err(StoreError::Exists { .. })
    ));

    // Listing: newest first, per environment or all; prefixes find ids.
    clock.advance(Duration::from_secs(5));
    let other = store
        .insert_backup(&backup("staging", "db", BackupClass::Daily, clock.now()), vec![])
        .unwrap();
    let ids = |l: Vec<Backup>| l.into_iter().map(|b| b.id).collect::<Vec<BackupId>>();
    assert_eq!(ids(store.backups(Some("prod")).unwrap()), vec![second.id, first.id]);
    assert_eq!(ids(store.backups(None).unwrap()), vec![other.id, second.id, first.id]);
    let full = first.id.to_string();
    assert_eq!(ids(store.find_backups(&full).unwrap()), vec![first.id]);
    assert_eq!(
        ids(store.find_backups(&full.to_uppercase().replace('-', "")).unwrap()),
        vec![first.id]
    );
    assert_eq!(
        store.find_backups(&full[..4]).unwrap().len(),
        3,
        "one millisecond-ish prefix: all three"
    );
    assert!(store.find_backups("zz").unwrap().is_empty());
    assert!(store.find_backups("%").unwrap().is_empty());
}

pub(super) fn restore_jobs_need_their_backup_and_walk_their_table(store: &dyn Store, clock: &ManualClock) {
    store.set_masker(rollway_model::Masker::new(["hunter2-s3cret"]));
    let t0 = clock.now();
    // No backup recorded: the job is refused (seed 002 "backupArtifactId 必须存在").
    let orphan = Restore::new("prod", BackupId::generate(t0), t0);
    assert!(
        matches!(
            store.insert_restore(&orphan, vec![]),
            Err(StoreError::NotFound { what: "backup", .. })
        ),
        "a restore job needs its backup"
    );
    let mut b = backup("prod", "db", BackupClass::Manual, t0);
    b.complete(digest(), 10, t0).unwrap();
    let b = store.insert_backup(&b, vec![]).unwrap();
    let mut job = Restore::new("prod", b.id, t0);
    job.target = "postgres://app:hunter2-s3cret@127.0.0.1/app".into();
    let job = store
        .insert_restore(&job, vec![ev(EventKind::RestoreStep, "created")])
        .unwrap();
    assert!(!job.target.contains("hunter2"), "the target is masked: {}", job.target);
    assert_eq!(job.status(), RestoreStatus::Pending);

    clock.advance(Duration::from_secs(1));
    let (t1, t2) = (clock.now(), Timestamp::from_millis(clock.now().as_millis() + 1000));
    // pending → success skips running: refused, nothing written.
    let refused = store.update_restore(job.id, &mut |r| {
        r.transition(RestoreStatus::Success, t1)?;
        Ok(vec![ev(EventKind::RestoreStep, "success")])
    });
    assert!(refused.is_err(), "{refused:?}");
    assert_eq!(events_of(store, EventKind::RestoreStep), 1);
    let running = store
        .update_restore(job.id, &mut |r| {
            r.transition(RestoreStatus::Running, t1)?;
            Ok(vec![ev(EventKind::RestoreStep, "running")])
        })
        .unwrap();
    assert_eq!((running.status(), running.finished_at), (RestoreStatus::Running, None));
    clock.advance(Duration::from_secs(1));
    let done = store
        .update_restore(job.id, &mut |r| {
            r.transition(RestoreStatus::Success, t2)?;
            Ok(vec![ev(EventKind::RestoreStep, "success")])
        })
        .unwrap();
    assert_eq!((done.status(), done.finished_at), (RestoreStatus::Success, Some(t2)));
    assert_eq!(store.restores(b.id).unwrap(), vec![done]);
    assert_eq!(events_of(store, EventKind::RestoreStep), 3);

    // A failed backup's reason is masked too.
    let mut f = backup("prod", "db", BackupClass::Daily, t2);
    f.fail("pg_dump: password hunter2-s3cret refused", t2).unwrap();
    let f = store.insert_backup(&f, vec![]).unwrap();
    assert!(!f.failure.unwrap_or_default().contains("hunter2"));
}
