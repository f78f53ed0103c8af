//! The journal contract, run against every `Store`: the same suite for the
//! SQLite store and the in-memory one. Journals are built with a builder so
//! each test states only what matters to it.

use ferry::error::Error;
use ferry::journal::{
    Action, ActionKind, Gate, MemoryStore, Run, RunStatus, SqliteStore, Step, StepKind, StepStatus,
    Store, UndoStatus,
};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[must_use]
pub struct RunBuilder(Run);

impl RunBuilder {
    pub fn new(id: &str) -> Self {
        RunBuilder(Run {
            id: id.into(),
            script: PathBuf::from("/scripts/two-apps.rhai"),
            script_hash: "abc".into(),
            params: BTreeMap::from([("app".into(), "app1".into())]),
            libs: vec![PathBuf::from("/recipes")],
            status: RunStatus::Running,
            dry_run: false,
            error: None,
            identities: BTreeMap::new(),
            environment: Default::default(),
            sources: BTreeMap::from([("two-apps.rhai".into(), "step(\"a\", || 1);\n".into())]),
            actions: vec![Action {
                action: ActionKind::Start,
                by: "alice@laptop".into(),
                at: 1_000,
                detail: None,
            }],
            created_at: 1_000,
            updated_at: 1_000,
        })
    }
    pub fn created_at(mut self, at: i64) -> Self {
        self.0.created_at = at;
        self
    }
    pub fn build(self) -> Run {
        self.0
    }
}

pub fn completed(name: &str, value: serde_json::Value) -> Step {
    let mut step = Step::new(
        name,
        format!("two-apps.rhai:{}:1", name.len()),
        StepKind::Step,
    );
    step.status = StepStatus::Completed;
    step.value = Some(value);
    step.attempts = 1;
    step
}

/// Records are keyed by (kind, name); parents, sources, rollback statuses
/// and deep values round-trip.
pub fn records_suite(store: &dyn Store) {
    store.create_run(&RunBuilder::new("k").build()).unwrap();
    let mut timer = completed("x/sleep#1", serde_json::Value::Null);
    timer.kind = StepKind::Sleep;
    store.put_step("k", &timer, true).unwrap();
    let mut user = completed("x/sleep#1", serde_json::json!(2));
    user.parent = Some("x".into());
    store.put_step("k", &user, true).unwrap();
    let mut deep = serde_json::json!(1);
    for _ in 0..ferry::journal::MAX_VALUE_DEPTH {
        deep = serde_json::json!([deep]);
    }
    store
        .put_step("k", &completed("deep", deep.clone()), true)
        .unwrap();
    let steps = store.steps("k").unwrap();
    assert_eq!(
        steps.len(),
        3,
        "a step and a timer of the same name coexist"
    );
    assert_eq!(steps[0].kind, StepKind::Sleep);
    assert_eq!(steps[1].kind, StepKind::Step);
    assert_eq!(steps[1].value, Some(serde_json::json!(2)));
    assert_eq!(steps[1].parent.as_deref(), Some("x"));
    assert_eq!(steps[2].value, Some(deep));
    // Undo progress is a step's: the timer of the same name is untouched.
    store
        .set_undo("k", "x/sleep#1", UndoStatus::Done, None)
        .unwrap();
    let steps = store.steps("k").unwrap();
    assert_eq!(steps[0].undo, UndoStatus::None);
    assert_eq!(steps[1].undo, UndoStatus::Done);

    let mut run = store.run("k").unwrap().unwrap();
    for status in [RunStatus::RollingBack, RunStatus::RollbackFailed] {
        run.status = status;
        run.sources
            .insert("lib/m.rhai".into(), "fn f() { 1 }".into());
        store.update_run(&run).unwrap();
        assert_eq!(store.run("k").unwrap().unwrap(), run);
    }
}

/// Claims: one holder per key, taken atomically, kept by the same run,
/// released by run, gone with a deleted run.
pub fn claims_suite(store: &dyn Store) {
    store.create_run(&RunBuilder::new("c1").build()).unwrap();
    store.create_run(&RunBuilder::new("c2").build()).unwrap();
    let first = store.claim("uid-old/app1-ns/app1", "c1", 10).unwrap();
    assert_eq!(first.run, "c1");
    assert_eq!(first.claimed_at, 10);
    let again = store.claim("uid-old/app1-ns/app1", "c1", 20).unwrap();
    assert_eq!(again, first, "the same run keeps its claim and its time");
    let other = store.claim("uid-old/app1-ns/app1", "c2", 30).unwrap();
    assert_eq!(other.run, "c1", "a second run sees the holder");
    assert_eq!(
        store.claim("uid-old/app2-ns/app2", "c2", 40).unwrap().run,
        "c2"
    );
    let keys: Vec<(String, String)> = store
        .claims()
        .unwrap()
        .into_iter()
        .map(|c| (c.key, c.run))
        .collect();
    assert_eq!(
        keys,
        [
            ("uid-old/app1-ns/app1".to_owned(), "c1".to_owned()),
            ("uid-old/app2-ns/app2".to_owned(), "c2".to_owned())
        ]
    );
    assert_eq!(store.release_claims("c1").unwrap(), 1);
    assert_eq!(store.release_claims("c1").unwrap(), 0);
    assert_eq!(
        store.claim("uid-old/app1-ns/app1", "c2", 50).unwrap().run,
        "c2"
    );
    assert!(store.delete_run("c2").unwrap());
    assert!(
        store.claims().unwrap().is_empty(),
        "claims go with their run"
    );
    // actions round-trip through update_run
    let mut run = store.run("c1").unwrap().unwrap();
    run.actions.push(Action {
        action: ActionKind::Abort,
        by: "bob@ci".into(),
        at: 60,
        detail: Some("was paused".into()),
    });
    store.update_run(&run).unwrap();
    assert_eq!(store.run("c1").unwrap().unwrap().actions, run.actions);
}

pub fn suite(store: &dyn Store) {
    // runs
    let run = RunBuilder::new("r1").build();
    store.create_run(&run).unwrap();
    assert!(matches!(
        store.create_run(&run),
        Err(Error::RunExists { .. })
    ));
    assert_eq!(store.run("r1").unwrap().as_ref(), Some(&run));
    assert_eq!(store.run("nope").unwrap(), None);
    store
        .create_run(&RunBuilder::new("r2").created_at(2_000).build())
        .unwrap();
    let ids: Vec<String> = store.runs().unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, ["r2", "r1"], "newest first");

    let mut updated = run.clone();
    updated.status = RunStatus::Paused;
    updated.error = Some("x".into());
    updated
        .identities
        .insert("old".into(), serde_json::json!({ "uid": "u-1" }));
    store.update_run(&updated).unwrap();
    assert_eq!(store.run("r1").unwrap().unwrap(), updated);
    assert!(store.update_run(&RunBuilder::new("ghost").build()).is_err());

    // steps keep the order of their first start, across updates
    store
        .put_step("r1", &completed("a", serde_json::json!(1)), true)
        .unwrap();
    let mut b = Step::new("b", "two-apps.rhai:2:1", StepKind::Step);
    b.attempts = 1;
    store.put_step("r1", &b, false).unwrap();
    store
        .put_step(
            "r1",
            &completed("c", serde_json::json!({ "k": [1, 2.5, null] })),
            true,
        )
        .unwrap();
    b.status = StepStatus::Failed;
    b.error = Some("boom".into());
    b.attempts = 2;
    b.undo = UndoStatus::Pending;
    store.put_step("r1", &b, true).unwrap();
    let steps = store.steps("r1").unwrap();
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert!(steps.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(steps[1].status, StepStatus::Failed);
    assert_eq!(steps[1].attempts, 2);
    assert_eq!(steps[1].error.as_deref(), Some("boom"));
    assert_eq!(steps[1].undo, UndoStatus::Pending);
    assert_eq!(
        steps[2].value,
        Some(serde_json::json!({ "k": [1, 2.5, null] }))
    );
    assert!(
        store.steps("r2").unwrap().is_empty(),
        "steps belong to their run"
    );

    // undo progress touches nothing else of the record
    store.set_undo("r1", "c", UndoStatus::Done, None).unwrap();
    let c = store
        .steps("r1")
        .unwrap()
        .into_iter()
        .find(|s| s.name == "c")
        .unwrap();
    assert_eq!(c.undo, UndoStatus::Done);
    assert_eq!(
        c.value,
        Some(serde_json::json!({ "k": [1, 2.5, null] })),
        "the value stays"
    );
    store
        .set_undo("r1", "b", UndoStatus::Failed, Some("no"))
        .unwrap();
    assert_eq!(
        store.steps("r1").unwrap()[1].undo_error.as_deref(),
        Some("no")
    );

    // gates
    let mut gate = Gate {
        name: "g".into(),
        message: "ok?".into(),
        requested_at: 5,
        approved_at: None,
        approved_by: None,
    };
    store.put_gate("r1", &gate).unwrap();
    gate.approved_at = Some(6);
    gate.approved_by = Some("ana@host".into());
    store.put_gate("r1", &gate).unwrap();
    assert_eq!(store.gates("r1").unwrap(), vec![gate]);

    // locks: exclusive while held, free once dropped; their state is
    // readable without taking them
    assert!(!store.lock_state("r1").unwrap().held);
    let held = store.lock("r1").unwrap();
    assert!(matches!(store.lock("r1"), Err(Error::Locked { .. })));
    let state = store.lock_state("r1").unwrap();
    assert!(state.held, "a held lock reads as held");
    assert_eq!(
        state.holder.and_then(|h| h.pid),
        Some(std::process::id()),
        "and names its holder"
    );
    assert!(!store.lock_state("r2").unwrap().held);
    let other = store.lock("r2").unwrap();
    drop(held);
    assert!(!store.lock_state("r1").unwrap().held, "free once dropped");
    store.lock("r1").unwrap();
    drop(other);

    // deleting a run removes its records and gates, nothing of other runs
    store
        .put_step("r2", &completed("z", serde_json::json!(0)), true)
        .unwrap();
    assert!(store.delete_run("r1").unwrap());
    assert_eq!(store.run("r1").unwrap(), None);
    assert!(store.steps("r1").unwrap().is_empty());
    assert!(store.gates("r1").unwrap().is_empty());
    assert!(
        !store.delete_run("r1").unwrap(),
        "a second delete finds nothing"
    );
    assert_eq!(store.steps("r2").unwrap().len(), 1);
    let ids: Vec<String> = store.runs().unwrap().into_iter().map(|r| r.id).collect();
    assert_eq!(ids, ["r2"]);
    // the id can be used again
    store.create_run(&RunBuilder::new("r1").build()).unwrap();
    assert!(store.steps("r1").unwrap().is_empty());
}

#[test]
fn memory_store_keeps_the_contract() {
    let store = MemoryStore::new();
    suite(&store);
    records_suite(&store);
    claims_suite(&store);
}

#[test]
fn sqlite_store_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("state")).unwrap();
    suite(&store);
    records_suite(&store);
    claims_suite(&store);
}

#[test]
fn sqlite_store_persists_and_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    {
        let store = SqliteStore::open(&state).unwrap();
        store.create_run(&RunBuilder::new("keep").build()).unwrap();
        store
            .put_step("keep", &completed("a", serde_json::json!("v")), true)
            .unwrap();
    }
    let store = SqliteStore::open(&state).unwrap();
    assert_eq!(
        store.steps("keep").unwrap()[0].value,
        Some(serde_json::json!("v"))
    );
    let mode = std::fs::metadata(state.join("state.db"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the journal is readable by its owner only");
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
}

#[test]
fn sqlite_store_refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    drop(SqliteStore::open(&state).unwrap());
    let conn = rusqlite::Connection::open(state.join("state.db")).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    match SqliteStore::open(&state) {
        Err(
            e @ Error::Journal {
                source: ferry::journal::JournalError::NewerSchema { found: 99, .. },
                ..
            },
        ) => assert!(e.to_string().contains("newer ferry"), "{e}"),
        other => panic!("expected a newer-schema error, got {:?}", other.err()),
    }
}

#[test]
fn sqlite_lock_is_exclusive_across_store_instances() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let a = SqliteStore::open(&state).unwrap();
    let b = SqliteStore::open(&state).unwrap();
    let held = a.lock("r").unwrap();
    match b.lock("r") {
        Err(Error::Locked { holder, .. }) => assert!(
            holder.contains(&format!("pid {}", std::process::id())),
            "{holder}"
        ),
        other => panic!("expected Locked, got {:?}", other.err()),
    }
    drop(held);
    b.lock("r").unwrap();
}

#[test]
fn many_processes_may_open_a_fresh_state_directory_at_once() {
    // Separate connections race on creating the file, switching it to WAL and
    // migrating the schema; every one of them must succeed.
    for round in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join(format!("state-{round}"));
        let barrier = std::sync::Barrier::new(8);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        barrier.wait();
                        SqliteStore::open(&state).map(drop)
                    })
                })
                .collect();
            for handle in handles {
                handle.join().unwrap().unwrap();
            }
        });
    }
}
