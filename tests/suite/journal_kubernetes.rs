//! The `kubernetes://` journal against a lab's API server: the contract
//! every backend keeps, the Lease lock (exclusive, renewed, expiring,
//! lost), claims under contention, and what it says about bad input (a
//! missing namespace, an unreachable server, foreign or newer objects, a
//! record too large, a 403).

use super::common::lab::LabFixture;
use super::journal_store::{RunBuilder, claims_suite, completed, records_suite, suite};
use ferry::error::Error;
use ferry::journal::{JournalError, KubernetesStore, Step, StepKind, Store, rbac_manifest};
use ferry::lab::apiserver::{LAB_USER, Write};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const NS: &str = "ferry";

struct Journal {
    fixture: LabFixture,
    kubeconfig: PathBuf,
    _dir: tempfile::TempDir,
}

impl Journal {
    /// A lab whose cluster `old` has the namespace `ferry`.
    fn start() -> Journal {
        let dir = tempfile::tempdir().unwrap();
        let fixture = LabFixture::open(dir.path());
        let kubeconfig = fixture
            .lab
            .environment()
            .kubeconfig
            .expect("the lab's profile names its kubeconfig");
        let journal = Journal {
            fixture,
            kubeconfig,
            _dir: dir,
        };
        journal.create(
            "namespaces",
            "",
            json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": NS } }),
        );
        journal
    }

    fn open(&self) -> KubernetesStore {
        KubernetesStore::open(Some("old"), NS, Some(&self.kubeconfig)).unwrap()
    }

    /// Creates an object in cluster `old` behind the store's back.
    fn create(&self, plural: &str, namespace: &str, object: Value) {
        let cluster = self.fixture.lab.cluster("old").unwrap();
        let group = match plural {
            "leases" => "coordination.k8s.io",
            _ => "",
        };
        let resource = cluster.resource(group, "v1", plural).unwrap();
        let ns = (!namespace.is_empty()).then_some(namespace);
        cluster
            .create(&resource, ns, object, Write::default())
            .unwrap();
    }

    fn lease(&self, name: &str) -> Option<Value> {
        self.fixture
            .object("old", &format!("leases.coordination.k8s.io/{NS}/{name}"))
    }
}

fn journal_error(result: Result<impl std::fmt::Debug, Error>) -> (JournalError, String) {
    match result {
        Err(e @ Error::Journal { .. }) => {
            let text = e.to_string();
            let Error::Journal { source, .. } = e else {
                unreachable!()
            };
            (source, text)
        }
        other => panic!("expected a journal error, got {other:?}"),
    }
}

fn micro_time(ms: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_millis(ms as u64);
    humantime::format_rfc3339_micros(t).to_string()
}

#[test]
fn kubernetes_store_keeps_the_contract() {
    let journal = Journal::start();
    let store = journal.open();
    assert_eq!(store.location(), "kubernetes://old/ferry");
    suite(&store);
    records_suite(&store);
    claims_suite(&store);
    assert_eq!(store.identity().as_deref(), Some(LAB_USER));

    // `kubectl get cm -l ferry.dev/run=r2` finds the run and its records.
    let labelled: Vec<(String, String)> =
        journal.fixture.lab.cluster("old").unwrap().with_state(|s| {
            s.scan("configmaps", Some(NS))
                .filter(|o| o["metadata"]["labels"]["ferry.dev/run"] == "r2")
                .map(|o| {
                    let labels = &o["metadata"]["labels"];
                    assert_eq!(labels["app.kubernetes.io/managed-by"], "ferry");
                    (
                        o["metadata"]["name"].as_str().unwrap().to_owned(),
                        labels["ferry.dev/kind"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        });
    let mut kinds: Vec<&str> = labelled.iter().map(|(_, k)| k.as_str()).collect();
    kinds.sort();
    assert_eq!(kinds, ["run", "step"], "{labelled:?}");
    assert!(labelled.iter().any(|(n, _)| n == "ferry-run-r2"));

    // A second store (another process) reads what the first wrote.
    let other = journal.open();
    assert_eq!(other.steps("r2").unwrap(), store.steps("r2").unwrap());
    assert_eq!(other.runs().unwrap(), store.runs().unwrap());
}

#[test]
fn kubernetes_store_is_opened_through_the_locator() {
    let journal = Journal::start();
    let locator = ferry::state::Locator::parse("kubernetes://old/ferry", Path::new("/")).unwrap();
    let settings = ferry::state::OpenSettings {
        kubeconfig: Some(journal.kubeconfig.clone()),
    };
    let store = ferry::state::open(&locator, &settings, false).unwrap();
    store
        .create_run(&RunBuilder::new("via-locator").build())
        .unwrap();
    assert!(store.run("via-locator").unwrap().is_some());
    assert!(
        journal
            .fixture
            .object("old", "configmaps/ferry/ferry-run-via-locator")
            .is_some()
    );
}

#[test]
fn kubernetes_store_works_from_inside_a_tokio_runtime() {
    let journal = Journal::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let kubeconfig = journal.kubeconfig.clone();
    // Opened, used, locked and dropped inside async code, as the runner's
    // runtime threads do: no `block_on` panic, and the lock is released.
    let released = rt.block_on(async move {
        let store = KubernetesStore::open(Some("old"), NS, Some(&kubeconfig)).unwrap();
        store.create_run(&RunBuilder::new("in-rt").build()).unwrap();
        let lock = store.lock("in-rt").unwrap();
        store
            .put_step("in-rt", &completed("a", json!(1)), true)
            .unwrap();
        drop(lock);
        let held = store.lock_state("in-rt").unwrap().held;
        drop(store);
        !held
    });
    assert!(released);
}

#[test]
fn kubernetes_locks_are_exclusive_across_stores_and_released_on_drop() {
    let journal = Journal::start();
    let a = journal.open();
    let b = journal.open();
    let held = a.lock("r").unwrap();
    match b.lock("r") {
        Err(Error::Locked { holder, .. }) => assert!(
            holder.contains(&format!("pid {}", std::process::id())),
            "{holder}"
        ),
        other => panic!("expected Locked, got {:?}", other.err()),
    }
    let lease = journal.lease("ferry-lock-r").unwrap();
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 15);
    assert_eq!(lease["metadata"]["labels"]["ferry.dev/kind"], "lock");
    drop(held);
    let lease = journal.lease("ferry-lock-r").unwrap();
    assert!(lease["spec"]["holderIdentity"].is_null(), "{lease}");
    let state = b.lock_state("r").unwrap();
    assert!(!state.held);
    assert_eq!(
        state.holder.and_then(|h| h.pid),
        Some(std::process::id()),
        "the last holder is still named"
    );
    b.lock("r").unwrap();
}

#[test]
fn a_lease_whose_holder_stopped_renewing_is_taken_over_only_once_expired() {
    let journal = Journal::start();
    let store = journal.open();
    let renewed = ferry::journal::now_ms();
    journal.create(
        "leases",
        NS,
        json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": { "name": "ferry-lock-stale", "labels": { "app.kubernetes.io/managed-by": "ferry" } },
            "spec": {
                "holderIdentity": "pid 4242 on crashed-host since 2026-01-01T00:00:00Z",
                "leaseDurationSeconds": 2,
                "acquireTime": micro_time(renewed),
                "renewTime": micro_time(renewed),
            },
        }),
    );
    let state = store.lock_state("stale").unwrap();
    assert!(state.held, "a lease within its duration is held");
    assert_eq!(state.holder.unwrap().host.as_deref(), Some("crashed-host"));
    match store.lock("stale") {
        Err(Error::Locked { holder, .. }) => assert!(holder.contains("pid 4242"), "{holder}"),
        other => panic!("expected Locked, got {:?}", other.err()),
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    let lock = loop {
        match store.lock("stale") {
            Ok(lock) => break lock,
            Err(Error::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("the expired lease was never taken over: {e}"),
        }
    };
    assert!(
        ferry::journal::now_ms() >= renewed + 2_000,
        "taken over before the lease expired"
    );
    let lease = journal.lease("ferry-lock-stale").unwrap();
    assert_eq!(lease["spec"]["leaseTransitions"], 1);
    assert!(
        lease["spec"]["holderIdentity"]
            .as_str()
            .unwrap()
            .contains(&format!("pid {}", std::process::id()))
    );
    drop(lock);
}

#[test]
fn a_held_lease_is_renewed_and_stays_held_past_its_duration() {
    let journal = Journal::start();
    let store = journal.open().with_lease_duration(Duration::from_secs(1));
    let other = journal.open();
    let _lock = store.lock("long").unwrap();
    let first = journal.lease("ferry-lock-long").unwrap()["spec"]["renewTime"].clone();
    // Past two durations: only renewals keep it held.
    let until = Instant::now() + Duration::from_millis(2_500);
    let mut renewals = std::collections::BTreeSet::new();
    while Instant::now() < until {
        assert!(other.lock_state("long").unwrap().held);
        assert!(matches!(other.lock("long"), Err(Error::Locked { .. })));
        renewals.insert(journal.lease("ferry-lock-long").unwrap()["spec"]["renewTime"].to_string());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        renewals.len() >= 3,
        "renewed every third of the duration: {renewals:?} (first {first})"
    );
}

#[test]
fn a_lost_lease_fails_the_next_journal_write() {
    let journal = Journal::start();
    let store = journal.open().with_lease_duration(Duration::from_secs(1));
    store.create_run(&RunBuilder::new("lost").build()).unwrap();
    let _lock = store.lock("lost").unwrap();
    store
        .put_step("lost", &completed("a", json!(1)), true)
        .unwrap();
    // Someone takes the lease over (as if our renewals had stopped).
    let cluster = journal.fixture.lab.cluster("old").unwrap();
    let leases = cluster
        .resource("coordination.k8s.io", "v1", "leases")
        .unwrap();
    cluster
        .patch(
            &leases,
            Some(NS),
            "ferry-lock-lost",
            ferry::lab::apiserver::patch::PatchKind::Merge,
            &json!({ "spec": { "holderIdentity": "pid 7 on thief since 2026-01-01T00:00:00Z" } }),
            Write::default(),
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let message = loop {
        match store.put_step("lost", &completed("b", json!(2)), true) {
            Ok(()) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Ok(()) => panic!("writes went on after the lease was taken over"),
            Err(e) => break e.to_string(),
        }
    };
    assert!(message.contains("lost the lock of run `lost`"), "{message}");
    assert!(
        journal.lease("ferry-lock-lost").unwrap()["spec"]["holderIdentity"]
            .as_str()
            .unwrap()
            .contains("thief"),
        "the new holder's lease is left alone"
    );
}

#[test]
fn concurrent_claims_of_one_key_have_exactly_one_holder() {
    let journal = Journal::start();
    let stores: Vec<KubernetesStore> = (0..6).map(|_| journal.open()).collect();
    let barrier = std::sync::Barrier::new(stores.len());
    let claims: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = stores
            .iter()
            .enumerate()
            .map(|(i, store)| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    store
                        .claim("uid-old/app1-ns/app1", &format!("run-{i}"), i as i64)
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winner = &claims[0];
    assert!(claims.iter().all(|c| c == winner), "{claims:?}");
    let holders = stores[0].claims().unwrap();
    assert_eq!(holders, vec![winner.clone()]);
}

#[test]
fn a_missing_namespace_is_named() {
    let journal = Journal::start();
    let (source, text) = journal_error(KubernetesStore::open(
        Some("old"),
        "nope",
        Some(&journal.kubeconfig),
    ));
    assert!(matches!(source, JournalError::Database { .. }));
    assert!(text.contains("namespace `nope` does not exist"), "{text}");
    assert!(text.contains("context `old`"), "{text}");
}

#[test]
fn an_unreachable_server_is_reported_quickly_with_context_and_server() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: gone\nclusters:\n- name: gone\n  cluster: {{server: \"https://127.0.0.1:{port}\", insecure-skip-tls-verify: true}}\ncontexts:\n- name: gone\n  context: {{cluster: gone, user: u}}\nusers:\n- name: u\n  user: {{token: s3cr3t-token}}\n"
        ),
    )
    .unwrap();
    let started = Instant::now();
    let (source, text) = journal_error(KubernetesStore::open(None, NS, Some(&kubeconfig)));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(source, JournalError::Unreachable { .. }), "{text}");
    assert!(text.contains("context `gone`"), "{text}");
    assert!(text.contains(&format!("127.0.0.1:{port}")), "{text}");
    assert!(!text.contains("s3cr3t"), "{text}");
}

#[test]
fn foreign_and_newer_objects_are_refused_by_name() {
    let journal = Journal::start();
    let store = journal.open();
    let labels = |kind: &str, format: &str, run: &str| {
        json!({
            "app.kubernetes.io/managed-by": "ferry", "ferry.dev/kind": kind,
            "ferry.dev/format": format, "ferry.dev/run": run,
        })
    };
    journal.create(
        "configmaps",
        NS,
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": "ferry-run-bad", "labels": labels("run", "1", "bad"), "annotations": { "ferry.dev/run-id": "bad" } },
            "data": { "run.json": "{ not json" },
        }),
    );
    let (source, text) = journal_error(store.run("bad"));
    assert!(matches!(source, JournalError::Conflict { .. }), "{text}");
    assert!(text.contains("configmap ferry/ferry-run-bad"), "{text}");
    assert!(text.contains("not a ferry record"), "{text}");
    let (_, text) = journal_error(store.runs());
    assert!(text.contains("ferry-run-bad"), "{text}");

    journal.create(
        "configmaps",
        NS,
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": { "name": "ferry-step-future-1", "labels": labels("step", "2", "future"), "annotations": { "ferry.dev/run-id": "future" } },
            "data": { "step.json": "{}" },
        }),
    );
    let (source, text) = journal_error(store.steps("future"));
    assert!(
        matches!(source, JournalError::NewerSchema { found: 2, known: 1 }),
        "{text}"
    );
    assert!(text.contains("newer ferry"), "{text}");

    // An object of the run's name that is not ferry's is never taken over.
    journal.create(
        "configmaps",
        NS,
        json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "ferry-run-mine" }, "data": { "k": "v" } }),
    );
    let (source, text) = journal_error(store.create_run(&RunBuilder::new("mine").build()));
    assert!(matches!(source, JournalError::Conflict { .. }), "{text}");
    assert!(text.contains("is not ferry's"), "{text}");
}

#[test]
fn a_stale_write_is_a_conflict_never_an_overwrite() {
    let journal = Journal::start();
    let a = journal.open();
    let b = journal.open();
    a.create_run(&RunBuilder::new("w").build()).unwrap();
    a.put_step("w", &completed("s", json!(1)), true).unwrap();
    // b reads and rewrites the record; a's remembered version is stale.
    b.steps("w").unwrap();
    b.put_step("w", &completed("s", json!("b's")), true)
        .unwrap();
    let (source, text) = journal_error(a.put_step("w", &completed("s", json!("a's")), true));
    assert!(matches!(source, JournalError::Conflict { .. }), "{text}");
    assert!(text.contains("nothing was overwritten"), "{text}");
    assert_eq!(b.steps("w").unwrap()[0].value, Some(json!("b's")));
}

#[test]
fn an_over_large_record_is_refused_and_the_lab_answers_as_kube_apiserver() {
    let journal = Journal::start();
    let store = journal.open();
    store.create_run(&RunBuilder::new("big").build()).unwrap();
    let mut step = Step::new("dump", "big.rhai:1:1", StepKind::Step);
    step.value = Some(json!("x".repeat(1_200_000)));
    let (source, text) = journal_error(store.put_step("big", &step, true));
    assert!(matches!(source, JournalError::Write { .. }), "{text}");
    assert!(text.contains("step `dump` of run `big`"), "{text}");
    assert!(text.contains("1.1 MiB"), "{text}");
    assert!(
        store.steps("big").unwrap().is_empty(),
        "nothing was written"
    );

    // The lab refuses what kube-apiserver refuses, with its words.
    use k8s_openapi::api::core::v1::ConfigMap;
    let api: kube::Api<ConfigMap> = kube::Api::namespaced(store.client(), NS);
    let config_map = |name: &str, bytes: usize| ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some([("k".to_owned(), "x".repeat(bytes))].into()),
        ..Default::default()
    };
    let pp = kube::api::PostParams::default();
    let status = |result: Result<ConfigMap, kube::Error>| match result {
        Err(kube::Error::Api(s)) => (s.code, s.reason.clone(), s.message.clone()),
        other => panic!("expected a refusal, got {other:?}"),
    };
    let (code, reason, message) =
        status(store.block_on(api.create(&pp, &config_map("over-1mib", 1_100_000))));
    assert_eq!((code, reason.as_str()), (422, "Invalid"));
    assert!(
        message.contains("Too long: must have at most 1048576 bytes"),
        "{message}"
    );
    let (code, reason, message) =
        status(store.block_on(api.create(&pp, &config_map("over-3mib", 3_300_000))));
    assert_eq!((code, reason.as_str()), (413, "RequestEntityTooLarge"));
    assert!(message.contains("limit is 3145728"), "{message}");
    store
        .block_on(api.create(&pp, &config_map("under", 1_000_000)))
        .unwrap();
}

/// A fake API server answering every request as an RBAC-denied one.
fn forbidding_server() -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    use std::io::{Read, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = std::thread::spawn(move || {
        listener.set_nonblocking(false).unwrap();
        // Two requests: the namespace check at open and the create.
        for _ in 0..2 {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request);
            let (verb, resource) = if text.starts_with("POST") {
                ("create", "configmaps")
            } else {
                ("get", "namespaces")
            };
            let body = json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("{resource} is forbidden: User \"bob\" cannot {verb} resource \"{resource}\" in API group \"\" in the namespace \"ferry\""),
                "reason": "Forbidden", "details": { "kind": resource }, "code": 403,
            })
            .to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (addr, handle)
}

#[test]
fn a_forbidden_write_names_the_verb_the_resource_and_the_grant() {
    let (addr, server) = forbidding_server();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: team\nclusters:\n- name: team\n  cluster: {{server: \"http://{addr}\"}}\ncontexts:\n- name: team\n  context: {{cluster: team, user: bob}}\nusers:\n- name: bob\n  user: {{token: bobs-token}}\n"
        ),
    )
    .unwrap();
    let store = KubernetesStore::open(None, NS, Some(&kubeconfig))
        .expect("a forbidden namespace check does not stop the open");
    let (_, text) = journal_error(store.create_run(&RunBuilder::new("r").build()));
    assert!(
        text.contains("cannot create configmaps in namespace ferry: forbidden"),
        "{text}"
    );
    assert!(text.contains("User \"bob\" cannot create"), "{text}");
    assert!(
        text.contains("grant it with: ferry state rbac --namespace ferry"),
        "{text}"
    );
    assert!(
        text.starts_with("state at kubernetes://team/ferry"),
        "{text}"
    );
    server.join().unwrap();
}

#[test]
fn the_rbac_manifest_grants_exactly_what_the_store_uses() {
    let text = rbac_manifest("ferry", Some("system:serviceaccount:ci:deployer"));
    let docs: Vec<Value> = text
        .split("\n---\n")
        .map(|d| serde_yaml_ng::from_str(d).unwrap())
        .collect();
    assert_eq!(docs.len(), 2, "{text}");
    let role = &docs[0];
    assert_eq!(role["kind"], "Role");
    assert_eq!(role["metadata"]["namespace"], "ferry");
    assert_eq!(
        role["rules"],
        json!([
            { "apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "create", "update", "delete"] },
            { "apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update", "delete"] },
        ])
    );
    let binding = &docs[1];
    assert_eq!(binding["kind"], "RoleBinding");
    assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
    assert_eq!(
        binding["subjects"],
        json!([{ "kind": "ServiceAccount", "name": "deployer", "namespace": "ci" }])
    );
    let user: Value = serde_yaml_ng::from_str(
        rbac_manifest("ferry", Some("alice@example.com"))
            .split("\n---\n")
            .nth(1)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(user["subjects"][0]["kind"], "User");
    assert_eq!(user["subjects"][0]["name"], "alice@example.com");
    let default: Value = serde_yaml_ng::from_str(
        rbac_manifest("ferry", None)
            .split("\n---\n")
            .nth(1)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(default["subjects"][0]["name"], "ferry");
    assert!(
        text.contains("selfsubjectreviews"),
        "the ClusterRole note is there"
    );
}

#[test]
#[ignore = "needs cluster: FERRY_TEST_KUBECONFIG"]
fn kubernetes_store_keeps_the_contract_on_a_real_cluster() {
    use k8s_openapi::api::core::v1::Namespace;
    let kubeconfig = PathBuf::from(
        std::env::var("FERRY_TEST_KUBECONFIG").expect("FERRY_TEST_KUBECONFIG names a kubeconfig"),
    );
    let context = std::env::var("FERRY_TEST_CONTEXT").ok();
    let namespace = format!(
        "ferry-test-{}-{}",
        std::process::id(),
        ferry::journal::now_ms() % 1_000_000
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let namespaces = rt.block_on(async {
        ferry::tls::install_provider();
        let (config, _) = ferry::adapters::kube::load_config(Some(&kubeconfig), context.as_deref())
            .await
            .unwrap();
        let api: kube::Api<Namespace> = kube::Api::all(kube::Client::try_from(config).unwrap());
        let ns = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(namespace.clone()),
                ..Default::default()
            },
            ..Default::default()
        };
        api.create(&kube::api::PostParams::default(), &ns)
            .await
            .unwrap();
        api
    });
    let outcome = std::panic::catch_unwind(|| {
        let store =
            KubernetesStore::open(context.as_deref(), &namespace, Some(&kubeconfig)).unwrap();
        suite(&store);
        records_suite(&store);
        claims_suite(&store);
    });
    let _ = rt.block_on(namespaces.delete(&namespace, &Default::default()));
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}
