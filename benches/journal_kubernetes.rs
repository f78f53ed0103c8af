//! The `kubernetes://` journal's cost against a lab API server (in this
//! process, over loopback TLS, as the tests reach it):
//!
//! * per-step durable overhead: `put_step` running + `put_step` completed
//!   (two writes, the second a replace with the remembered
//!   resourceVersion), next to one raw ConfigMap create through the same
//!   client, which is the floor any design pays per write;
//! * resume of a 1,000-step run: `run()` + `steps()` from a fresh store
//!   (one get, one paginated list).
//!
//!   cargo bench --bench journal_kubernetes
//!   STEPS=300 RESUME_STEPS=1000 RUNS=3 cargo bench --bench journal_kubernetes

use ferry::journal::{KubernetesStore, Run, RunStatus, Step, StepKind, StepStatus, Store};
use ferry::lab::apiserver::Write;
use ferry::lab::{Lab, LabOptions};
use k8s_openapi::api::core::v1::ConfigMap;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn run(id: &str) -> Run {
    Run {
        id: id.into(),
        script: PathBuf::from("/bench/steps.rhai"),
        script_hash: "abc".into(),
        params: BTreeMap::new(),
        libs: Vec::new(),
        status: RunStatus::Running,
        dry_run: false,
        error: None,
        identities: BTreeMap::new(),
        environment: Default::default(),
        sources: BTreeMap::new(),
        actions: Vec::new(),
        created_at: 1,
        updated_at: 1,
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let steps = env("STEPS", 300);
    let resume_steps = env("RESUME_STEPS", 1000);
    let runs = env("RUNS", 3);
    let dir = tempfile::tempdir().expect("temp dir");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let lab = rt
        .block_on(Lab::start(LabOptions::new(dir.path())))
        .expect("the lab starts");
    let cluster = lab.cluster("old").unwrap();
    let namespaces = cluster.resource("", "v1", "namespaces").unwrap();
    cluster
        .create(
            &namespaces,
            None,
            serde_json::json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "ferry" } }),
            Write::default(),
        )
        .unwrap();
    let open = || KubernetesStore::open(Some("old"), "ferry", Some(&lab.kubeconfig)).unwrap();

    let mut per_step = Vec::new();
    let mut raw = Vec::new();
    let mut resume = Vec::new();
    for round in 0..runs {
        let store = open();
        let id = format!("bench-{round}");
        store.create_run(&run(&id)).unwrap();
        let started = Instant::now();
        for i in 0..steps {
            let mut step = Step::new(format!("step {i}"), "steps.rhai:1:1", StepKind::Step);
            step.attempts = 1;
            step.started_at = Some(1);
            store.put_step(&id, &step, false).unwrap();
            step.status = StepStatus::Completed;
            step.value = Some(serde_json::json!(i));
            step.ended_at = Some(2);
            store.put_step(&id, &step, true).unwrap();
        }
        per_step.push(started.elapsed() / steps as u32);

        let api: kube::Api<ConfigMap> = kube::Api::namespaced(store.client(), "ferry");
        let pp = kube::api::PostParams::default();
        let started = Instant::now();
        for i in 0..steps {
            let cm = ConfigMap {
                metadata: kube::api::ObjectMeta {
                    name: Some(format!("raw-{round}-{i}")),
                    ..Default::default()
                },
                data: Some([("k".to_owned(), i.to_string())].into()),
                ..Default::default()
            };
            store.block_on(api.create(&pp, &cm)).unwrap();
        }
        raw.push(started.elapsed() / steps as u32);

        let long = format!("resume-{round}");
        store.create_run(&run(&long)).unwrap();
        for i in 0..resume_steps {
            let mut step = Step::new(format!("step {i}"), "steps.rhai:1:1", StepKind::Step);
            step.status = StepStatus::Completed;
            step.value = Some(serde_json::json!({ "i": i, "name": format!("app{i}") }));
            store.put_step(&long, &step, true).unwrap();
        }
        let fresh = open();
        let started = Instant::now();
        let found = fresh.run(&long).unwrap().expect("the run");
        let records = fresh.steps(&long).unwrap();
        resume.push(started.elapsed());
        assert_eq!(found.id, long);
        assert_eq!(records.len(), resume_steps);
    }
    println!("kubernetes:// journal against the lab API server ({runs} rounds, medians)");
    println!(
        "  per step (put_step running + completed): {}",
        micros(median(per_step))
    );
    println!(
        "  one raw ConfigMap create (same client):  {}",
        micros(median(raw))
    );
    println!(
        "  resume of a {resume_steps}-step run (run + steps): {:.1} ms",
        median(resume).as_secs_f64() * 1e3
    );
    lab.stop();
}
