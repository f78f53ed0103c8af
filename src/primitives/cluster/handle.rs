//! The `Cluster` handle scripts hold and the per-run table behind it:
//! `cluster()` / `cluster(name)` open a context once per run (checking it
//! against the identity the journal recorded), and every other cluster file
//! goes through `Clusters` so that cancellation and API errors
//! behave the same for each Rhai function. Also `identity`,
//! `context` and `server`.

use crate::engine::control::{host_error, runtime_error};
use crate::engine::{Session, frames};
use crate::events::Event;
use crate::ports::cluster::{Cluster, ClusterError};
use rhai::{Dynamic, Engine, EvalAltResult, FuncRegistration, Map, NativeCallContext, Position};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// A cluster as scripts hold it (Rhai type `Cluster`): cheap to clone; every
/// handle on the same context shares one connection, discovery cache and
/// rate limit.
#[derive(Clone)]
pub struct ClusterHandle {
    /// The name the run records its identity under.
    pub key: String,
    /// The `kube-system` namespace UID.
    pub uid: String,
    pub inner: Arc<dyn Cluster>,
}

/// Handles opened in this run, by context name.
pub(super) struct Clusters {
    pub(super) session: Arc<Session>,
    open: Mutex<HashMap<String, ClusterHandle>>,
}

pub(super) type Shared = Arc<Clusters>;
pub(super) type Res<T> = Result<T, Box<EvalAltResult>>;

/// A failed API call as a catchable error: `e.message`, `e.cluster`,
/// `e.verb`, `e.kind`, `e.namespace`, `e.name`, `e.status`, `e.reason`.
pub(super) fn api_error(e: ClusterError, pos: Position) -> Box<EvalAltResult> {
    let mut details = Map::new();
    details.insert("cluster".into(), e.cluster.clone().into());
    details.insert("verb".into(), e.verb.clone().into());
    details.insert("kind".into(), e.kind.clone().into());
    details.insert("namespace".into(), e.namespace.clone().into());
    details.insert("name".into(), e.name.clone().into());
    details.insert(
        "status".into(),
        e.status
            .map_or(Dynamic::UNIT, |s| Dynamic::from(s as rhai::INT)),
    );
    details.insert("reason".into(), e.reason.clone().into());
    details.insert("server_message".into(), e.message.clone().into());
    host_error("cluster", e.to_string(), details, pos)
}

impl Clusters {
    /// One table per run: handles opened through any engine or branch are
    /// shared.
    pub(super) fn shared(session: &Arc<Session>) -> Shared {
        Arc::new(Clusters {
            session: session.clone(),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Runs a cluster call on the runtime from this (engine or branch)
    /// thread; Ctrl-C drops it (and any retry it is waiting on) at once.
    pub(super) fn block<T>(
        &self,
        pos: Position,
        fut: impl Future<Output = Result<T, ClusterError>>,
    ) -> Res<T> {
        self.session.check_cancelled(pos)?;
        match self.session.block_on(fut) {
            None => Err(crate::engine::control::Control::Cancelled.raise(pos)),
            Some(r) => r.map_err(|e| api_error(e, pos)),
        }
    }

    /// Opens `context` once per run and checks it is the cluster the
    /// journal recorded under that name.
    pub(super) fn open(
        &self,
        ctx: &NativeCallContext,
        context: Option<&str>,
    ) -> Res<ClusterHandle> {
        let pos = ctx.call_position();
        let key = context.unwrap_or("(current context)").to_owned();
        if context.is_some_and(|c| c.trim().is_empty()) {
            return Err(runtime_error(
                "cluster(name) needs a context name; cluster() opens the current context",
                pos,
            ));
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(handle) = open.get(&key) {
            return Ok(handle.clone());
        }
        let events = self.session.events.clone();
        let notify: crate::adapters::kube::Notify = Arc::new(move |text| {
            events.emit(Event::Output {
                step: frames::current(),
                depth: frames::depth(),
                text,
                debug: false,
            })
        });
        let options = self.session.settings.connect_options(context, notify);
        let connector = self.session.backends.clusters.clone();
        let cluster = self.block(pos, async move { connector.connect(options).await })?;
        let uid = self.block(pos, cluster.identity())?;
        self.session.check_identity(
            &key,
            serde_json::json!({ "id": uid, "context": cluster.name(), "server": cluster.server() }),
            pos,
        )?;
        let handle = ClusterHandle {
            key: key.clone(),
            uid,
            inner: cluster,
        };
        open.insert(key, handle.clone());
        Ok(handle)
    }
}

pub(super) use crate::ports::cluster::shown as what;

pub(super) fn handle_of(d: Dynamic, pos: Position) -> Res<ClusterHandle> {
    let type_name = d.type_name();
    d.try_cast::<ClusterHandle>()
        .ok_or_else(|| runtime_error(format!("expected a cluster handle, got {type_name}"), pos))
}

pub(super) fn register(engine: &mut Engine, h: &Shared) {
    engine.register_type_with_name::<ClusterHandle>("Cluster");
    engine.register_fn("to_string", |c: &mut ClusterHandle| {
        format!("cluster(\"{}\")", c.inner.name())
    });
    engine.register_fn("to_debug", |c: &mut ClusterHandle| {
        format!(
            "cluster(\"{}\" at {}, kube-system {})",
            c.inner.name(),
            c.inner.server(),
            c.uid
        )
    });
    let s = h.clone();
    FuncRegistration::new("cluster")
        .with_params_info(["name: &str", "Cluster"])
        .with_comments([
            "/// Opens the kubeconfig context `name` (kubectl's rules: `--kubeconfig`, then",
            "/// `KUBECONFIG`, several files merged, then `~/.kube/config`). The cluster's",
            "/// identity (the `kube-system` namespace UID) is recorded in the journal; a",
            "/// resume that finds another cluster under the same name refuses (exit 4).",
            "///",
            "/// ```rhai",
            "/// let old = cluster(\"old\");",
            "/// let next = cluster(\"new\");   // `new` is a reserved word in Rhai",
            "/// ```",
        ])
        .register_into_engine(engine, move |ctx: NativeCallContext, name: &str| {
            s.open(&ctx, Some(name))
        });
    let s = h.clone();
    FuncRegistration::new("cluster")
        .with_params_info(["Cluster"])
        .with_comments([
            "/// Opens kubeconfig's current context, or the in-cluster configuration when",
            "/// ferry runs in a pod without a kubeconfig.",
        ])
        .register_into_engine(engine, move |ctx: NativeCallContext| s.open(&ctx, None));
    FuncRegistration::new("identity")
        .with_params_info(["cluster: Cluster", "String"])
        .with_comments(["/// The cluster's identity: the `kube-system` namespace UID."])
        .register_into_engine(engine, |c: &mut ClusterHandle| c.uid.clone());
    FuncRegistration::new("context")
        .with_params_info(["cluster: Cluster", "String"])
        .with_comments(["/// The kubeconfig context the handle was opened with."])
        .register_into_engine(engine, |c: &mut ClusterHandle| c.inner.name().to_owned());
    let s = h.clone();
    FuncRegistration::new("dns_cache")
        .with_params_info(["cluster: Cluster", "Dynamic"])
        .with_comments([
            "/// The profile's `dns_cache` / `dns_ttl` for this cluster (`[clusters.NAME]`",
            "/// in ferry.toml) as `#{ cache, ttl }` in seconds, or `()` when it sets neither.",
        ])
        .register_into_engine(engine, move |c: &mut ClusterHandle| {
            let target = s.session.settings.environment.cluster(&c.key);
            if target.dns_cache.is_none() && target.dns_ttl.is_none() {
                return Dynamic::UNIT;
            }
            let mut map = Map::new();
            map.insert(
                "cache".into(),
                Dynamic::from_int(target.dns_cache.unwrap_or(0).into()),
            );
            map.insert(
                "ttl".into(),
                Dynamic::from_int(target.dns_ttl.unwrap_or(0).into()),
            );
            Dynamic::from_map(map)
        });
    FuncRegistration::new("server")
        .with_params_info(["cluster: Cluster", "String"])
        .with_comments(["/// The API server's address."])
        .register_into_engine(engine, |c: &mut ClusterHandle| c.inner.server().to_owned());
}
