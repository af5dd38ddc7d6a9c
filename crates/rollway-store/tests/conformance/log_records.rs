//! Conformance cases for seed 002 Log Records: a batch and its cursor
//! written together and exactly once (compare and set, also between two
//! connections racing), every query filter, order and limit, masking, and
//! retention cut at its boundary.

use std::sync::Arc;
use std::time::Duration;

use rollway_model::{Level, ManualClock, Masker, Timestamp};
use rollway_store::{DEFAULT_LOG_RETENTION, LogQuery, LogSource, NewLogRecord, Store};

/// 2026-01-01T00:00:00Z.
const T: i64 = 1_767_225_600_000;
const CANARY: &str = "canary-Lq8Zr2Wx5Tn";

fn source(env: &str, host: &str) -> LogSource {
    LogSource {
        environment: env.to_owned(),
        host: host.to_owned(),
        service: "web".to_owned(),
    }
}

fn line(level: Level, message: &str, trace: Option<&str>, at: i64) -> NewLogRecord {
    NewLogRecord {
        level,
        message: message.to_owned(),
        trace_id: trace.map(str::to_owned),
        time: Timestamp::from_millis(at),
    }
}

/// What a query returned, as `(host, level, message, trace)` rows.
fn seen(store: &dyn Store, q: &LogQuery) -> Vec<(String, &'static str, String, Option<String>)> {
    store
        .log_records(q)
        .unwrap()
        .into_iter()
        .map(|r| (r.host, r.level.as_str(), r.message, r.trace_id))
        .collect()
}

fn messages(store: &dyn Store, q: &LogQuery) -> Vec<String> {
    seen(store, q).into_iter().map(|r| r.2).collect()
}

pub(super) fn log_records_and_their_cursor_are_written_once(store: &dyn Store, clock: &ManualClock) {
    store.set_masker(Masker::new([CANARY]));
    let a = source("prod", "a");
    assert_eq!(store.log_cursor(&a).unwrap(), None);
    let first = [
        line(Level::Info, "started", Some("t1"), T),
        line(
            Level::Error,
            &format!("bad key {CANARY}"),
            Some(&format!("x{CANARY}")),
            T + 1,
        ),
    ];
    assert_eq!(store.put_log_records(&a, None, "c1", &first).unwrap(), Some(2));
    assert_eq!(store.log_cursor(&a).unwrap().as_deref(), Some("c1"));
    // A second collector that read the same lines from the same start.
    assert_eq!(store.put_log_records(&a, None, "c1", &first).unwrap(), None);
    assert_eq!(store.put_log_records(&a, Some("c0"), "c2", &first).unwrap(), None);
    assert_eq!(store.log_cursor(&a).unwrap().as_deref(), Some("c1"));
    assert_eq!(messages(store, &LogQuery::new("prod", 100)).len(), 2, "nothing twice");
    // An empty batch still moves the cursor (lines that were all partial).
    assert_eq!(store.put_log_records(&a, Some("c1"), "c2", &[]).unwrap(), Some(0));
    assert_eq!(store.log_cursor(&a).unwrap().as_deref(), Some("c2"));
    // Another host's cursor is its own.
    assert_eq!(store.log_cursor(&source("prod", "b")).unwrap(), None);

    let rows = store.log_records(&LogQuery::new("prod", 100)).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].message, "bad key ****");
    assert_eq!(rows[1].trace_id.as_deref(), Some("x****"));
    assert_eq!(rows[1].level, Level::Error);
    assert_eq!(
        (rows[1].environment.as_str(), rows[1].service.as_str()),
        ("prod", "web")
    );
    assert_eq!(rows[1].collected_at, clock_now(clock));
    assert!(rows[0].id < rows[1].id);
}

fn clock_now(clock: &ManualClock) -> Timestamp {
    rollway_model::Clock::now(clock)
}

/// How a case narrows the query.
type Narrow = dyn Fn(&mut LogQuery);

pub(super) fn log_queries_filter_order_and_limit(store: &dyn Store, _clock: &ManualClock) {
    let a = source("prod", "a");
    let b = source("prod", "b");
    let lines_a = [
        line(Level::Debug, "cache warm", None, T + 10),
        line(Level::Info, "GET /orders 200", Some("trace-1"), T + 20),
        line(Level::Warn, "slow query 50%_done", Some("trace-1"), T + 30),
        // Carries an earlier time than the line before it: sorted by time.
        line(Level::Error, "Payment FAILED", Some("trace-2"), T + 5),
        line(Level::Info, "same ms first", None, T + 40),
        line(Level::Info, "same ms second", None, T + 40),
    ];
    store.put_log_records(&a, None, "a1", &lines_a).unwrap();
    store
        .put_log_records(
            &b,
            None,
            "b1",
            &[line(Level::Error, "disk full", Some("trace-1"), T + 25)],
        )
        .unwrap();
    store
        .put_log_records(
            &source("staging", "a"),
            None,
            "s1",
            &[line(Level::Error, "other env", None, T)],
        )
        .unwrap();

    let all = |f: &dyn Fn(&mut LogQuery)| {
        let mut q = LogQuery::new("prod", 100);
        f(&mut q);
        messages(store, &q)
    };
    let cases: Vec<(&str, Box<Narrow>, Vec<&str>)> = vec![
        (
            "everything, by time then id",
            Box::new(|_| {}),
            vec![
                "Payment FAILED",
                "cache warm",
                "GET /orders 200",
                "disk full",
                "slow query 50%_done",
                "same ms first",
                "same ms second",
            ],
        ),
        (
            "warn and above",
            Box::new(|q| q.level = Some(Level::Warn)),
            vec!["Payment FAILED", "disk full", "slow query 50%_done"],
        ),
        (
            "error only",
            Box::new(|q| q.level = Some(Level::Error)),
            vec!["Payment FAILED", "disk full"],
        ),
        (
            "info and above leaves out debug",
            Box::new(|q| q.level = Some(Level::Info)),
            vec![
                "Payment FAILED",
                "GET /orders 200",
                "disk full",
                "slow query 50%_done",
                "same ms first",
                "same ms second",
            ],
        ),
        (
            "a trace across hosts",
            Box::new(|q| q.trace_id = Some("trace-1".into())),
            vec!["GET /orders 200", "disk full", "slow query 50%_done"],
        ),
        (
            "grep ignores case",
            Box::new(|q| q.grep = Some("payment failed".into())),
            vec!["Payment FAILED"],
        ),
        (
            "grep's % and _ are plain characters",
            Box::new(|q| q.grep = Some("50%_".into())),
            vec!["slow query 50%_done"],
        ),
        ("grep % alone", Box::new(|q| q.grep = Some("0%d".into())), vec![]),
        (
            "since is inclusive",
            Box::new(|q| q.since = Some(Timestamp::from_millis(T + 30))),
            vec!["slow query 50%_done", "same ms first", "same ms second"],
        ),
        (
            "the newest two, oldest first",
            Box::new(|q| q.limit = 2),
            vec!["same ms first", "same ms second"],
        ),
        (
            "filters combine",
            Box::new(|q| {
                q.trace_id = Some("trace-1".into());
                q.level = Some(Level::Warn);
                q.grep = Some("SLOW".into());
            }),
            vec!["slow query 50%_done"],
        ),
    ];
    for (what, f, expected) in cases {
        assert_eq!(all(&*f), expected, "{what}");
        // The count sees the same filters and no limit.
        let mut q = LogQuery::new("prod", 100);
        f(&mut q);
        let mut unlimited = q.clone();
        unlimited.limit = usize::MAX;
        let n = u64::try_from(messages(store, &unlimited).len()).unwrap();
        assert_eq!(store.count_log_records(&q).unwrap(), n, "count of {what}");
    }
    assert_eq!(store.count_log_records(&LogQuery::new("nowhere", 1)).unwrap(), 0);
    assert_eq!(messages(store, &LogQuery::new("staging", 100)), ["other env"]);
    assert_eq!(messages(store, &LogQuery::new("nowhere", 100)), Vec::<String>::new());

    // --follow: only what was stored after the last record seen.
    let last = store.log_records(&LogQuery::new("prod", 100)).unwrap();
    let max_id = last.iter().map(|r| r.id).max().unwrap();
    store
        .put_log_records(&b, Some("b1"), "b2", &[line(Level::Info, "late but old", None, T)])
        .unwrap();
    let mut q = LogQuery::new("prod", 100);
    q.after_id = Some(max_id);
    assert_eq!(
        seen(store, &q),
        [("b".to_owned(), "info", "late but old".to_owned(), None)]
    );
}

pub(super) fn racing_collectors_store_a_batch_once(store: &dyn Store, clock: &ManualClock) {
    let other = rollway_store::open(store.location(), Arc::new(clock.clone())).unwrap();
    let stores: [&dyn Store; 2] = [store, &*other];
    let a = source("prod", "a");
    for round in 0..10 {
        let prev = store.log_cursor(&a).unwrap();
        let next = format!("c{round}");
        let batch = [line(Level::Info, &format!("round {round}"), None, T + round)];
        let wins: Vec<Option<u64>> = std::thread::scope(|s| {
            let handles: Vec<_> = stores
                .iter()
                .map(|st| {
                    let (prev, next, batch, a) = (prev.clone(), next.clone(), batch.clone(), &a);
                    s.spawn(move || st.put_log_records(a, prev.as_deref(), &next, &batch).unwrap())
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut sorted = wins.clone();
        sorted.sort();
        assert_eq!(sorted, [None, Some(1)], "round {round}: one collector wins");
    }
    let rows = messages(store, &LogQuery::new("prod", 100));
    assert_eq!(rows, (0..10).map(|r| format!("round {r}")).collect::<Vec<_>>());
}

pub(super) fn old_log_records_are_pruned_at_the_retention(store: &dyn Store, clock: &ManualClock) {
    let now = clock_now(clock).as_millis();
    let keep = i64::try_from(DEFAULT_LOG_RETENTION.as_millis()).unwrap();
    let a = source("prod", "a");
    let batch: Vec<NewLogRecord> = [now - keep - 1, now - keep - 1, now - keep, now - keep + 1, now]
        .iter()
        .enumerate()
        .map(|(i, t)| line(Level::Info, &format!("line {i}"), None, *t))
        .collect();
    store.put_log_records(&a, None, "c", &batch).unwrap();
    // Batches of one: the loop goes on until a batch comes back short.
    assert_eq!(store.prune_log_records(DEFAULT_LOG_RETENTION, 1).unwrap(), 2);
    assert_eq!(
        messages(store, &LogQuery::new("prod", 100)),
        ["line 2", "line 3", "line 4"]
    );
    assert_eq!(store.prune_log_records(DEFAULT_LOG_RETENTION, 100).unwrap(), 0);
    clock.advance(Duration::from_millis(2));
    assert_eq!(store.prune_log_records(DEFAULT_LOG_RETENTION, 100).unwrap(), 2);
    assert_eq!(messages(store, &LogQuery::new("prod", 100)), ["line 4"]);
}
