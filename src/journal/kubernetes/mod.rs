//! The `kubernetes://CONTEXT/NAMESPACE` journal: runs, records, gates,
//! claims and locks as objects in a namespace of a cluster the team already
//! reaches, as Terraform's `kubernetes` backend keeps its state. No database
//! to run, and access is the cluster's RBAC.
//!
//! # Layout
//!
//! One ConfigMap per record, each holding one JSON document under one key:
//!
//! | object                              | data key     | `ferry.dev/kind` |
//! |-------------------------------------|--------------|------------------|
//! | `ferry-run-<run>`                   | `run.json`   | `run`            |
//! | `ferry-step-<run>-<hash(kind/name)>`| `step.json`  | `step`           |
//! | `ferry-gate-<run>-<hash(name)>`     | `gate.json`  | `gate`           |
//! | `ferry-claim-<hash(key)>`           | `claim.json` | `claim`          |
//! | Lease `ferry-lock-<run>`            | (spec)       | `lock`           |
//!
//! Every object is labelled `app.kubernetes.io/managed-by=ferry`,
//! `ferry.dev/kind`, `ferry.dev/run` and `ferry.dev/format`, and annotated
//! with the exact run id (`ferry.dev/run-id`), so
//! `kubectl get cm -l ferry.dev/run=ID` finds a run and reads are label
//! selections. `<run>` is the run id where it is a DNS name part, else a
//! readable prefix and a hash; step and gate names are always hashed (they
//! hold `/`, `#` and capitals). Records carry the full id and name, and
//! reads check them, so a hash never stands in for a name.
//!
//! Why one object per record: a step transition is then exactly one write,
//! made with optimistic concurrency (create for a new record, replace with
//! the resourceVersion this store last saw otherwise), so a concurrent write
//! surfaces as a 409 and a `Conflict`, never as a silent overwrite; and a
//! run's size is not capped by one object's 1 MiB. One object per run would
//! turn every step into a read-modify-write of everything. The
//! resourceVersions this store wrote are kept in memory, so a driver's
//! successive writes of a record need no read.
//!
//! Why ConfigMaps, not Secrets: the journal holds no credentials (ferry
//! never records a kubeconfig or a token, and step values are what scripts
//! chose to return); Secrets would cost a third more per record in base64,
//! are not encrypted unless the cluster enables encryption at rest, and
//! `get secrets` in a namespace is a far wider grant than `get configmaps`.
//! Who may read the journal is who may read ConfigMaps in its namespace:
//! give ferry a namespace of its own (`ferry state rbac` prints the Role).
//!
//! Large records are refused, not chunked: chunks would make one step
//! transition several writes, which Kubernetes cannot make atomic, so a
//! crash could leave a record half new. A record over 900 KiB (a ConfigMap
//! holds 1 MiB of data) fails its step with a message naming the step and
//! its size; a value that large belongs in an object of its own.
//!
//! Order: a record's `seq` is kept in the record. The run's lock holder is
//! the only writer of its steps, so the next `seq` is held in memory,
//! initialised from a list of the run's records on first use.
//!
//! Formats: objects carry `ferry.dev/format`; a higher one than this ferry
//! knows is refused as `NewerSchema`, and an object with ferry's labels that
//! does not parse is refused naming the object, never read as empty.
//!
//! Locks are Leases (`lease.rs`); the client, its runtime and error
//! messages are in `client.rs`; names and encodings in `layout.rs`.

// Errors name everything (context, object, server message) and are built
// once per failed call: boxing them would buy nothing.
#![allow(clippy::result_large_err)]

mod client;
mod layout;
mod lease;

use super::{
    Claim, Gate, JournalError, LockState, Run, RunLock, Step, StepKind, Store, UndoStatus,
};
use crate::error::{Error, Result};
use client::{Conn, is_status};
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use layout::Bad;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub use layout::{FORMAT as RECORD_FORMAT, MAX_RECORD_BYTES};

/// How long a lease lasts without renewal: a crashed driver's run is free
/// again this long after its last renewal.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);

pub struct KubernetesStore {
    conn: Arc<Conn>,
    cache: Mutex<Cache>,
    /// Writes of records go one at a time, so `seq`s and resourceVersions
    /// are handed out in order (the lock holder is the only step writer).
    writes: Mutex<()>,
    held: lease::HeldLeases,
    identity: OnceLock<Option<String>>,
    lease_duration: Duration,
}

#[derive(Default)]
struct Cache {
    /// The resourceVersion last read or written, by object name.
    versions: HashMap<String, String>,
    /// Per run, once listed: the next `seq` and each record's.
    seqs: HashMap<String, Seqs>,
}

#[derive(Default)]
struct Seqs {
    next: i64,
    by_object: HashMap<String, i64>,
}

impl std::fmt::Debug for KubernetesStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubernetesStore")
            .field("location", &self.conn.location())
            .field("server", &self.conn.server)
            .finish_non_exhaustive()
    }
}

impl KubernetesStore {
    /// Opens the journal in `namespace` of `context` (the current context,
    /// or the pod's own cluster in a pod, when `None`), reading the
    /// kubeconfig by kubectl's rules. Checks that the namespace exists.
    pub fn open(
        context: Option<&str>,
        namespace: &str,
        kubeconfig: Option<&Path>,
    ) -> Result<KubernetesStore> {
        let conn = Conn::open(context, namespace, kubeconfig)?;
        let namespaces: Api<Namespace> = Api::all(conn.client.clone());
        match conn.block(namespaces.get_opt(namespace)) {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(conn.journal(JournalError::Database {
                    code: Some("NotFound".into()),
                    message: client::missing_namespace(&conn.context, namespace),
                }));
            }
            // A Role in the namespace cannot grant `get namespaces` (it is
            // cluster-scoped): a missing namespace then shows on the first
            // create, whose 404 names it as well.
            Err(e) if is_status(&e, 403, None) => {}
            Err(e) => return Err(conn.fail("get", "namespaces", Some(namespace), &e)),
        }
        Ok(KubernetesStore {
            conn: Arc::new(conn),
            cache: Mutex::default(),
            writes: Mutex::default(),
            held: Default::default(),
            identity: OnceLock::new(),
            lease_duration: LEASE_DURATION,
        })
    }

    /// Takes run locks for `duration` instead of [`LEASE_DURATION`] (tests).
    pub fn with_lease_duration(mut self, duration: Duration) -> Self {
        self.lease_duration = duration.max(Duration::from_secs(1));
        self
    }

    /// The kube client the store writes with (benchmarks, tests).
    pub fn client(&self) -> kube::Client {
        self.conn.client.clone()
    }

    /// Runs `fut` on the store's runtime from any thread (benchmarks, tests).
    pub fn block_on<F>(&self, fut: F) -> F::Output
    where
        F: std::future::Future + Send,
        F::Output: Send,
    {
        self.conn.block(fut)
    }

    fn api(&self) -> Api<ConfigMap> {
        Api::namespaced(self.conn.client.clone(), &self.conn.namespace)
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // Every critical section finishes its map updates before returning.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember(&self, cm: &ConfigMap) {
        if let (Some(name), Some(rv)) = (&cm.metadata.name, &cm.metadata.resource_version) {
            self.cache().versions.insert(name.clone(), rv.clone());
        }
    }

    fn version(&self, name: &str) -> Option<String> {
        self.cache().versions.get(name).cloned()
    }

    fn bad(&self, cm: &ConfigMap, bad: Bad) -> Error {
        let name = cm.metadata.name.as_deref().unwrap_or_default();
        self.conn
            .journal(bad.into_error(&self.conn.namespace, name))
    }

    /// A write of `run` fails once this store's lease on it was lost.
    fn check_lock(&self, run: &str) -> Result<()> {
        let held = self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(run)
            .cloned();
        match held.and_then(|h| h.lost()) {
            Some(why) => Err(self.conn.journal(JournalError::Write {
                message: format!(
                    "lost the lock of run `{run}` ({why}); another process may drive it now, \
                     so nothing more is written: check `ferry status {run}` before resuming"
                ),
            })),
            None => Ok(()),
        }
    }

    fn too_large(&self, what: String, bytes: usize) -> Result<()> {
        if bytes <= MAX_RECORD_BYTES {
            return Ok(());
        }
        Err(self.conn.journal(JournalError::Write {
            message: format!(
                "{what} is too large for a kubernetes:// journal: its record is {}, over the {} \
                 one ConfigMap safely holds; keep large data out of step values (write it to an \
                 object of its own and return its name)",
                layout::size(bytes),
                layout::size(MAX_RECORD_BYTES)
            ),
        }))
    }

    /// Every object of `kind` (of `run`), across pages.
    fn list(&self, kind: &str, run: Option<&str>) -> Result<Vec<ConfigMap>> {
        let api = self.api();
        let selector = layout::selector(Some(kind), run);
        let mut items = self
            .conn
            .block(async {
                let mut items = Vec::new();
                let mut token: Option<String> = None;
                loop {
                    let mut lp = ListParams::default().labels(&selector).limit(500);
                    if let Some(t) = token.take() {
                        lp = lp.continue_token(&t);
                    }
                    let page = api.list(&lp).await?;
                    items.extend(page.items);
                    match page.metadata.continue_ {
                        Some(t) if !t.is_empty() => token = Some(t),
                        _ => return Ok::<_, kube::Error>(items),
                    }
                }
            })
            .map_err(|e: kube::Error| self.conn.fail("list", "configmaps", None, &e))?;
        // The run label may be a hash; the annotation is the exact id.
        if let Some(run) = run {
            items.retain(|cm| layout::run_id_of(cm) == Some(run));
        }
        Ok(items)
    }

    fn get(&self, name: &str) -> Result<Option<ConfigMap>> {
        self.conn
            .block(self.api().get_opt(name))
            .map_err(|e| self.conn.fail("get", "configmaps", Some(name), &e))
    }

    /// Creates `cm`, or replaces it with the resourceVersion last seen;
    /// returns `Ok(false)` when a create finds the object already there.
    fn write(&self, cm: &ConfigMap, rv: Option<String>) -> Result<bool> {
        let name = cm.metadata.name.clone().unwrap_or_default();
        let api = self.api();
        let pp = PostParams::default();
        let written = match rv {
            Some(rv) => {
                let mut cm = cm.clone();
                cm.metadata.resource_version = Some(rv);
                self.conn
                    .block(api.replace(&name, &pp, &cm))
                    .map_err(|e| self.conn.fail("update", "configmaps", Some(&name), &e))?
            }
            None => match self.conn.block(api.create(&pp, cm)) {
                Ok(cm) => cm,
                Err(e) if is_status(&e, 409, Some("AlreadyExists")) => return Ok(false),
                Err(e) => return Err(self.conn.fail("create", "configmaps", Some(&name), &e)),
            },
        };
        self.remember(&written);
        Ok(true)
    }

    /// Lists the run's records once, for the next `seq` and the versions.
    fn seqs_loaded(&self, run: &str) -> Result<()> {
        if self.cache().seqs.contains_key(run) {
            return Ok(());
        }
        self.steps(run).map(drop)
    }

    /// Who created `name`, when a create found it: a conflict, with the
    /// object named, or `Foreign` when it is not ferry's.
    fn taken(&self, name: &str, what: &str) -> Error {
        let ns = &self.conn.namespace;
        self.conn.journal(JournalError::Conflict {
            message: format!(
                "{what} was written by another process meanwhile (configmap {ns}/{name} \
                 already exists); nothing was overwritten"
            ),
        })
    }

    fn is_ferrys(cm: &ConfigMap) -> bool {
        cm.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(layout::MANAGED_BY))
            .is_some_and(|v| v == "ferry")
    }
}

impl Store for KubernetesStore {
    fn location(&self) -> String {
        self.conn.location()
    }

    fn create_run(&self, run: &Run) -> Result<()> {
        let record = layout::encode_run(run);
        self.too_large(format!("run `{}`", run.id), record.len())?;
        let name = layout::run_object(&run.id);
        let meta = layout::meta(&name, &self.conn.namespace, "run", Some(&run.id));
        let _writing = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        if self.write(&layout::config_map(meta, "run", record), None)? {
            return Ok(());
        }
        match self.get(&name)? {
            Some(cm) if !Self::is_ferrys(&cm) => Err(self.conn.journal(JournalError::Conflict {
                message: format!(
                    "configmap {}/{name} exists and is not ferry's; run `{}` cannot be recorded \
                     under it: choose another run id or move the object aside",
                    self.conn.namespace, run.id
                ),
            })),
            _ => Err(Error::RunExists { id: run.id.clone() }),
        }
    }

    fn run(&self, id: &str) -> Result<Option<Run>> {
        let Some(cm) = self.get(&layout::run_object(id))? else {
            return Ok(None);
        };
        let run = layout::decode_run(&cm).map_err(|b| self.bad(&cm, b))?;
        if run.id != id {
            return Err(self.bad(&cm, Bad::Foreign(format!("it records run `{}`", run.id))));
        }
        self.remember(&cm);
        Ok(Some(run))
    }

    fn runs(&self) -> Result<Vec<Run>> {
        let mut runs = Vec::new();
        for cm in self.list("run", None)? {
            runs.push(layout::decode_run(&cm).map_err(|b| self.bad(&cm, b))?);
            self.remember(&cm);
        }
        runs.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(runs)
    }

    fn update_run(&self, run: &Run) -> Result<()> {
        self.check_lock(&run.id)?;
        let record = layout::encode_run(run);
        self.too_large(format!("run `{}`", run.id), record.len())?;
        let name = layout::run_object(&run.id);
        let _writing = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        // Callers read the run before they change it; without that read
        // (another store wrote it) the write is based on a fresh one.
        let rv = match self.version(&name) {
            Some(rv) => rv,
            None => match self.get(&name)? {
                Some(cm) => cm.metadata.resource_version.unwrap_or_default(),
                None => {
                    return Err(Error::UnknownRun {
                        id: run.id.clone(),
                        state: self.location(),
                    });
                }
            },
        };
        let meta = layout::meta(&name, &self.conn.namespace, "run", Some(&run.id));
        match self.write(&layout::config_map(meta, "run", record), Some(rv)) {
            Err(Error::Journal {
                source:
                    JournalError::Database {
                        code: Some(code), ..
                    },
                ..
            }) if code == "NotFound" => Err(Error::UnknownRun {
                id: run.id.clone(),
                state: self.location(),
            }),
            other => other.map(drop),
        }
    }

    fn steps(&self, run: &str) -> Result<Vec<Step>> {
        let items = self.list("step", Some(run))?;
        let mut steps = Vec::with_capacity(items.len());
        let mut seqs = Seqs {
            next: 1,
            by_object: HashMap::with_capacity(items.len()),
        };
        for cm in &items {
            let step = layout::decode_step(cm).map_err(|b| self.bad(cm, b))?;
            if let Some(name) = &cm.metadata.name {
                seqs.by_object.insert(name.clone(), step.seq);
            }
            seqs.next = seqs.next.max(step.seq + 1);
            steps.push(step);
        }
        steps.sort_by(|a, b| a.seq.cmp(&b.seq).then_with(|| a.name.cmp(&b.name)));
        let mut cache = self.cache();
        for cm in &items {
            if let (Some(name), Some(rv)) = (&cm.metadata.name, &cm.metadata.resource_version) {
                cache.versions.insert(name.clone(), rv.clone());
            }
        }
        // Seqs this store handed out but the list missed (none on a real
        // server, which lists what it acknowledged) stay.
        let known = cache.seqs.entry(run.to_owned()).or_default();
        known.next = known.next.max(seqs.next);
        known.by_object.extend(seqs.by_object);
        Ok(steps)
    }

    fn put_step(&self, run: &str, step: &Step, _durable: bool) -> Result<()> {
        // Every write to the API server is durable (etcd commits it to a
        // quorum before answering), so `durable` changes nothing here.
        self.check_lock(run)?;
        let name = layout::step_object(run, step.kind, &step.name);
        let _writing = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        self.seqs_loaded(run)?;
        let (seq, rv) = {
            let mut cache = self.cache();
            let rv = cache.versions.get(&name).cloned();
            let seqs = cache.seqs.entry(run.to_owned()).or_default();
            let seq = match seqs.by_object.get(&name) {
                Some(seq) => *seq,
                None => seqs.next.max(1),
            };
            (seq, rv)
        };
        let record = layout::encode_step(step, seq);
        self.too_large(
            format!("{} `{}` of run `{run}`", step.kind, step.name),
            record.len(),
        )?;
        let meta = layout::meta(&name, &self.conn.namespace, "step", Some(run));
        let created = rv.is_none();
        if !self.write(&layout::config_map(meta, "step", record), rv)? {
            return Err(self.taken(
                &name,
                &format!("{} `{}` of run `{run}`", step.kind, step.name),
            ));
        }
        if created {
            let mut cache = self.cache();
            let seqs = cache.seqs.entry(run.to_owned()).or_default();
            seqs.by_object.insert(name, seq);
            seqs.next = seqs.next.max(seq + 1);
        }
        Ok(())
    }

    fn gates(&self, run: &str) -> Result<Vec<Gate>> {
        let mut gates = Vec::new();
        for cm in self.list("gate", Some(run))? {
            gates.push(layout::decode_gate(&cm).map_err(|b| self.bad(&cm, b))?);
            self.remember(&cm);
        }
        gates.sort_by(|a, b| {
            a.requested_at
                .cmp(&b.requested_at)
                .then_with(|| a.name.cmp(&b.name))
        });
        Ok(gates)
    }

    fn put_gate(&self, run: &str, gate: &Gate) -> Result<()> {
        self.check_lock(run)?;
        let record = layout::encode_gate(gate);
        self.too_large(format!("gate `{}` of run `{run}`", gate.name), record.len())?;
        let name = layout::gate_object(run, &gate.name);
        let meta = layout::meta(&name, &self.conn.namespace, "gate", Some(run));
        let _writing = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        let rv = self.version(&name);
        if !self.write(&layout::config_map(meta, "gate", record), rv)? {
            return Err(self.taken(&name, &format!("gate `{}` of run `{run}`", gate.name)));
        }
        Ok(())
    }

    fn set_undo(&self, run: &str, step: &str, undo: UndoStatus, error: Option<&str>) -> Result<()> {
        self.check_lock(run)?;
        let name = layout::step_object(run, StepKind::Step, step);
        let _writing = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        let Some(cm) = self.get(&name)? else {
            return Ok(());
        };
        let mut record = layout::decode_step(&cm).map_err(|b| self.bad(&cm, b))?;
        record.undo = undo;
        record.undo_error = error.map(str::to_owned);
        // The version this store last wrote, if any: a write by someone
        // else since then is a conflict, not something to build on.
        let rv = self
            .version(&name)
            .or_else(|| cm.metadata.resource_version.clone());
        let text = layout::encode_step(&record, record.seq);
        self.too_large(format!("step `{step}` of run `{run}`"), text.len())?;
        let meta = layout::meta(&name, &self.conn.namespace, "step", Some(run));
        self.write(&layout::config_map(meta, "step", text), rv)
            .map(drop)
    }

    fn lock(&self, run: &str) -> Result<RunLock> {
        lease::lock(&self.conn, &self.held, run, self.lease_duration)
    }

    fn lock_state(&self, run: &str) -> Result<LockState> {
        lease::lock_state(&self.conn, run)
    }

    fn delete_run(&self, id: &str) -> Result<bool> {
        let _writing = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        // Records first, the run last: an interrupted delete leaves a run
        // that can be deleted again, never records without their run.
        let api = self.api();
        let mut doomed: Vec<String> = Vec::new();
        for kind in ["step", "gate", "claim"] {
            doomed.extend(
                self.list(kind, Some(id))?
                    .into_iter()
                    .filter_map(|cm| cm.metadata.name),
            );
        }
        let dp = DeleteParams::default();
        let failed: Vec<(String, kube::Error)> = self.conn.block(async {
            let mut failed = Vec::new();
            // Sixteen at a time: a thousand-record run goes in seconds
            // without a burst the API server's rate limits would refuse.
            for chunk in doomed.chunks(16) {
                let results =
                    futures::future::join_all(chunk.iter().map(|name| delete_one(&api, name)))
                        .await;
                for (name, result) in chunk.iter().zip(results) {
                    if let Err(e) = result {
                        failed.push((name.clone(), e));
                    }
                }
            }
            failed
        });
        if let Some((name, e)) = failed.first() {
            return Err(self.conn.fail("delete", "configmaps", Some(name), e));
        }
        let leases: Api<k8s_openapi::api::coordination::v1::Lease> =
            Api::namespaced(self.conn.client.clone(), &self.conn.namespace);
        let lease = layout::lease_object(id);
        match self.conn.block(leases.delete(&lease, &dp)) {
            Ok(_) => {}
            Err(e) if is_status(&e, 404, None) => {}
            Err(e) => return Err(self.conn.fail("delete", "leases", Some(&lease), &e)),
        }
        let name = layout::run_object(id);
        let deleted = match self.conn.block(api.delete(&name, &dp)) {
            Ok(_) => true,
            Err(e) if is_status(&e, 404, None) => false,
            Err(e) => return Err(self.conn.fail("delete", "configmaps", Some(&name), &e)),
        };
        let mut cache = self.cache();
        cache.seqs.remove(id);
        cache.versions.remove(&name);
        for name in &doomed {
            cache.versions.remove(name);
        }
        Ok(deleted)
    }

    fn claim(&self, key: &str, run: &str, at: i64) -> Result<Claim> {
        let name = layout::claim_object(key);
        let mine = Claim {
            key: key.to_owned(),
            run: run.to_owned(),
            claimed_at: at,
        };
        let meta = layout::meta(&name, &self.conn.namespace, "claim", Some(run));
        let cm = layout::config_map(meta, "claim", layout::encode_claim(&mine));
        // The create is the atomic step: exactly one run's create succeeds.
        // A claim released between our create and read is tried again.
        for _ in 0..5 {
            if self.write(&cm, None)? {
                return Ok(mine);
            }
            let Some(existing) = self.get(&name)? else {
                continue;
            };
            let holder = layout::decode_claim(&existing).map_err(|b| self.bad(&existing, b))?;
            if holder.key != key {
                return Err(self.bad(
                    &existing,
                    Bad::Foreign(format!("it claims `{}`, not `{key}`", holder.key)),
                ));
            }
            return Ok(holder);
        }
        Err(self.conn.journal(JournalError::Conflict {
            message: format!("claim `{key}` kept changing while run `{run}` took it; try again"),
        }))
    }

    fn release_claims(&self, run: &str) -> Result<usize> {
        let api = self.api();
        let mut released = 0;
        for cm in self.list("claim", Some(run))? {
            let claim = layout::decode_claim(&cm).map_err(|b| self.bad(&cm, b))?;
            if claim.run != run {
                continue;
            }
            let name = cm.metadata.name.clone().unwrap_or_default();
            match self.conn.block(api.delete(&name, &DeleteParams::default())) {
                Ok(_) => released += 1,
                Err(e) if is_status(&e, 404, None) => {}
                Err(e) => return Err(self.conn.fail("delete", "configmaps", Some(&name), &e)),
            }
        }
        Ok(released)
    }

    fn claims(&self) -> Result<Vec<Claim>> {
        let mut claims = Vec::new();
        for cm in self.list("claim", None)? {
            claims.push(layout::decode_claim(&cm).map_err(|b| self.bad(&cm, b))?);
        }
        claims.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(claims)
    }

    fn identity(&self) -> Option<String> {
        self.identity
            .get_or_init(|| {
                // Asked once: the user does not change while ferry runs. A
                // server without the API (before 1.28) or a refusal leaves
                // `user@host` alone.
                let api: Api<SelfSubjectReview> = Api::all(self.conn.client.clone());
                let review = self
                    .conn
                    .block(api.create(&PostParams::default(), &SelfSubjectReview::default()))
                    .ok()?;
                review.status?.user_info?.username.filter(|u| !u.is_empty())
            })
            .clone()
    }
}

/// Deletes `name`; one already gone is no failure.
async fn delete_one(api: &Api<ConfigMap>, name: &str) -> std::result::Result<(), kube::Error> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(()),
        Err(e) if is_status(&e, 404, None) => Ok(()),
        Err(e) => Err(e),
    }
}

/// What `ferry state rbac` prints: a Role granting exactly what this store
/// does in `namespace`, and a RoleBinding to `subject` (`user:NAME`,
/// `group:NAME`, `serviceaccount:NS:NAME` or
/// `system:serviceaccount:NS:NAME`; a bare name is a user; without one, the
/// ServiceAccount `ferry` of the namespace, for ferry run as a Job).
pub fn rbac_manifest(namespace: &str, subject: Option<&str>) -> String {
    let q = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    let subject_yaml = match subject.map(str::trim).filter(|s| !s.is_empty()) {
        None => format!(
            "- kind: ServiceAccount\n  name: ferry\n  namespace: {}\n",
            q(namespace)
        ),
        Some(s) => {
            let account = s
                .strip_prefix("system:serviceaccount:")
                .or_else(|| s.strip_prefix("serviceaccount:"));
            if let Some((ns, name)) = account.and_then(|a| a.split_once(':')) {
                format!(
                    "- kind: ServiceAccount\n  name: {}\n  namespace: {}\n",
                    q(name),
                    q(ns)
                )
            } else if let Some(group) = s.strip_prefix("group:") {
                format!(
                    "- kind: Group\n  apiGroup: rbac.authorization.k8s.io\n  name: {}\n",
                    q(group)
                )
            } else {
                let user = s.strip_prefix("user:").unwrap_or(s);
                format!(
                    "- kind: User\n  apiGroup: rbac.authorization.k8s.io\n  name: {}\n",
                    q(user)
                )
            }
        }
    };
    let ns = q(namespace);
    format!(
        "# ferry's journal in namespace {namespace} (state kubernetes://CONTEXT/{namespace}):\n\
         # exactly the verbs the store uses. ConfigMaps hold runs, records, gates and\n\
         # claims; Leases are the run locks.\n\
         # Not granted here: `get namespaces` (cluster-scoped; without it a missing\n\
         # namespace is reported on the first write instead of at open), and\n\
         # `create selfsubjectreviews` (cluster-scoped; the built-in ClusterRole\n\
         # system:basic-user grants it to every authenticated user since Kubernetes\n\
         # 1.28, and without it ferry records user@host only).\n\
         apiVersion: rbac.authorization.k8s.io/v1\n\
         kind: Role\n\
         metadata:\n  name: ferry-journal\n  namespace: {ns}\n  labels:\n    app.kubernetes.io/managed-by: ferry\n\
         rules:\n\
         - apiGroups: [\"\"]\n  resources: [\"configmaps\"]\n  verbs: [\"get\", \"list\", \"create\", \"update\", \"delete\"]\n\
         - apiGroups: [\"coordination.k8s.io\"]\n  resources: [\"leases\"]\n  verbs: [\"get\", \"create\", \"update\", \"delete\"]\n\
         ---\n\
         apiVersion: rbac.authorization.k8s.io/v1\n\
         kind: RoleBinding\n\
         metadata:\n  name: ferry-journal\n  namespace: {ns}\n  labels:\n    app.kubernetes.io/managed-by: ferry\n\
         roleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: ferry-journal\n\
         subjects:\n{subject_yaml}"
    )
}
