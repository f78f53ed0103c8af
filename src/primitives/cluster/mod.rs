//! Cluster primitives: `cluster("old")` opens a kubeconfig context as a
//! handle, and its methods read and change the cluster through the cluster
//! port (`crate::ports::cluster`, implemented with kube in
//! `crate::adapters::kube`). Where each Rhai name lives:
//!
//! | Rhai | here | adapter |
//! |---|---|---|
//! | `cluster()`, `cluster(name)`, `identity`, `context`, `server` | this file | `adapters/kube/config.rs` |
//! | `get`, `exists`, `list` | this file | `adapters/kube/mod.rs`, `discovery.rs` |
//! | `apply`, `create`, `replace`, `patch`, `delete` | this file | `adapters/kube/mod.rs` |
//! | `copy` | this file | `adapters/kube/objects.rs` (what is stripped) |
//! | `to_external_name`, `to_cluster_ip` | this file | `adapters/kube/services.rs` |
//! | `wait`, `rollout`, `ingress_address` | `waits.rs` | |
//! | `exec` | this file | `adapters/kube/exec.rs` |
//! | dry-run diffs | `dry_run.rs` | |
//!
//! Reads are allowed anywhere; mutations only inside a step. Under `ferry
//! run --dry-run` every mutation is sent with `dryRun=All` (the handle is
//! opened that way) and prints what it would change.

pub mod dry_run;
pub mod waits;

use crate::engine::signal::{host_error, runtime_error};
use crate::engine::value::{from_json, to_json};
use crate::engine::{Session, frames};
use crate::events::Event;
use crate::ports::cluster::{
    Cluster, ClusterConnector, ClusterError, ConnectOptions, Deleted, ListOptions, PatchType,
};
use crate::primitives::require_step;
use rhai::{
    Array, Dynamic, Engine, EvalAltResult, FnPtr, FuncRegistration, Map, NativeCallContext,
    Position,
};
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use waits::{Seen, Wait};

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
struct Clusters {
    session: Arc<Session>,
    open: Mutex<HashMap<String, ClusterHandle>>,
}

type Shared = Arc<Clusters>;
type Res<T> = Result<T, Box<EvalAltResult>>;

const DEFAULT_WAIT: u64 = 300;
const DEFAULT_ROLLOUT: u64 = 600;
const DEFAULT_DELETE_WAIT: u64 = 120;

/// A failed API call as a catchable error: `e.message`, `e.cluster`,
/// `e.verb`, `e.kind`, `e.namespace`, `e.name`, `e.status`, `e.reason`.
fn api_error(e: ClusterError, pos: Position) -> Box<EvalAltResult> {
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
    /// Runs a cluster call on the runtime from this (engine or branch)
    /// thread; Ctrl-C drops it (and any retry it is waiting on) at once.
    fn block<T>(
        &self,
        pos: Position,
        fut: impl Future<Output = Result<T, ClusterError>>,
    ) -> Res<T> {
        self.session.check_cancelled(pos)?;
        match self.session.block_on(fut) {
            None => Err(crate::engine::signal::Signal::Cancelled.raise(pos)),
            Some(r) => r.map_err(|e| api_error(e, pos)),
        }
    }

    fn say(&self, text: String) {
        self.session.events.emit(Event::Output {
            step: frames::current(),
            depth: frames::depth(),
            text,
            debug: false,
        });
    }

    /// Opens `context` once per run and checks it is the cluster the
    /// journal recorded under that name.
    fn open(&self, ctx: &NativeCallContext, context: Option<&str>) -> Res<ClusterHandle> {
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
        // The environment profile maps the script's name to a real context.
        let mut settings = self.session.settings.clone();
        let context = context.map(|name| {
            let target = settings.environment.cluster(name);
            if target.kubeconfig.is_some() {
                settings.kubeconfig = target.kubeconfig;
            }
            if !settings.explicit_limits {
                settings.qps = target.qps.unwrap_or(settings.qps);
                settings.burst = target.burst.unwrap_or(settings.burst);
            }
            target.context
        });
        let options = ConnectOptions {
            context,
            settings,
            notify,
        };
        let connector = self.session.settings.clusters.clone();
        let cluster = self.block(pos, async move {
            match connector {
                Some(c) => c.connect(options).await,
                None => crate::adapters::kube::KubeConnector.connect(options).await,
            }
        })?;
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

    /// In a dry run, the live object before a mutation (for the diff).
    fn before(
        &self,
        c: &ClusterHandle,
        pos: Position,
        kind: &str,
        ns: &str,
        name: &str,
    ) -> Res<Option<Option<Value>>> {
        if !c.inner.dry_run() {
            return Ok(None);
        }
        Ok(Some(self.block(pos, c.inner.get(kind, ns, name))?))
    }

    fn report(&self, c: &ClusterHandle, what: &str, before: Option<Option<Value>>, after: &Value) {
        if let Some(before) = before {
            self.say(dry_run::report(
                c.inner.name(),
                what,
                before.as_ref(),
                after,
            ));
        }
    }
}

/// `Kind ns/name` of an object map, for messages.
fn describe(obj: &Value) -> (String, String, String) {
    let api = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    let meta = |k: &str| {
        obj.pointer(&format!("/metadata/{k}"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    (format!("{api}/{kind}"), meta("namespace"), meta("name"))
}

fn what(kind: &str, ns: &str, name: &str) -> String {
    let kind = kind.rsplit('/').next().unwrap_or(kind);
    if ns.is_empty() {
        format!("{kind} {name}")
    } else {
        format!("{kind} {ns}/{name}")
    }
}

fn json(value: &Dynamic, what: &str, pos: Position) -> Res<Value> {
    to_json(value).map_err(|e| runtime_error(format!("{what}: {e}"), pos))
}

fn secs(opts: &Map, key: &str, default: u64, pos: Position) -> Res<Duration> {
    let Some(v) = opts.get(key) else {
        return Ok(Duration::from_secs(default));
    };
    let s = v
        .as_int()
        .map(|i| i as f64)
        .or_else(|_| v.as_float())
        .map_err(|_| runtime_error(format!("`{key}` must be a number of seconds"), pos))?;
    if !(0.0..=366.0 * 86_400.0).contains(&s) {
        return Err(runtime_error(
            format!("`{key}` must be 0 to 366 days in seconds, got {s}"),
            pos,
        ));
    }
    Ok(Duration::from_secs_f64(s))
}

fn opt_str(opts: &Map, key: &str, pos: Position) -> Res<Option<String>> {
    match opts.get(key) {
        None => Ok(None),
        Some(v) if v.is_unit() => Ok(None),
        Some(v) => v
            .clone()
            .into_string()
            .map(Some)
            .map_err(|_| runtime_error(format!("`{key}` must be a string"), pos)),
    }
}

fn check_options(opts: &Map, known: &[&str], pos: Position) -> Res<()> {
    if let Some(k) = opts.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(runtime_error(
            format!("unknown option `{k}`; known: {}", known.join(", ")),
            pos,
        ));
    }
    Ok(())
}

/// `labels` as a selector string: `"app=a"` or `#{ app: "a" }`.
fn selector(opts: &Map, key: &str, pos: Position) -> Res<Option<String>> {
    match opts.get(key) {
        None => Ok(None),
        Some(v) if v.is_map() => {
            let map = v.clone().cast::<Map>();
            Ok(Some(
                map.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(","),
            ))
        }
        Some(_) => opt_str(opts, key, pos),
    }
}

fn handle_of(d: Dynamic, pos: Position) -> Res<ClusterHandle> {
    let type_name = d.type_name();
    d.try_cast::<ClusterHandle>()
        .ok_or_else(|| runtime_error(format!("expected a cluster handle, got {type_name}"), pos))
}

pub fn register(engine: &mut Engine, session: &Arc<Session>) {
    let h: Shared = Arc::new(Clusters {
        session: session.clone(),
        open: Mutex::new(HashMap::new()),
    });
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
    register_handles(engine, &h);
    register_reads(engine, &h);
    register_writes(engine, &h);
    register_services(engine, &h);
    register_waits(engine, &h);
    register_exec(engine, &h);
}

fn register_handles(engine: &mut Engine, h: &Shared) {
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
    FuncRegistration::new("server")
        .with_params_info(["cluster: Cluster", "String"])
        .with_comments(["/// The API server's address."])
        .register_into_engine(engine, |c: &mut ClusterHandle| c.inner.server().to_owned());
}

fn register_reads(engine: &mut Engine, h: &Shared) {
    let s = h.clone();
    FuncRegistration::new("get")
        .with_params_info([
            "cluster: Cluster",
            "kind: &str",
            "namespace: &str",
            "name: &str",
            "Dynamic",
        ])
        .with_comments([
            "/// The object as a map shaped like its YAML, or `()` if it does not exist.",
            "/// `kind` is a kind (`Service`), a resource (`services`), a short name (`svc`),",
            "/// `deployments.apps` or fully qualified (`traefik.io/v1alpha1/IngressRoute`).",
            "/// `namespace` is `\"\"` for cluster-scoped kinds (or the context's namespace).",
            "///",
            "/// ```rhai",
            "/// let svc = old.get(\"svc\", \"app1-ns\", \"app1\");",
            "/// if svc != () { print(svc.spec.clusterIP); }",
            "/// ```",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext,
                  c: &mut ClusterHandle,
                  kind: &str,
                  ns: &str,
                  name: &str| {
                let obj = s.block(ctx.call_position(), c.inner.get(kind, ns, name))?;
                Ok::<_, Box<EvalAltResult>>(obj.as_ref().map_or(Dynamic::UNIT, from_json))
            },
        );
    let s = h.clone();
    FuncRegistration::new("exists")
        .with_params_info([
            "cluster: Cluster",
            "kind: &str",
            "namespace: &str",
            "name: &str",
            "bool",
        ])
        .with_comments(["/// Whether the object exists."])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext,
                  c: &mut ClusterHandle,
                  kind: &str,
                  ns: &str,
                  name: &str| {
                Ok::<_, Box<EvalAltResult>>(
                    s.block(ctx.call_position(), c.inner.get(kind, ns, name))?
                        .is_some(),
                )
            },
        );
    let s = h.clone();
    FuncRegistration::new("list")
        .with_params_info(["cluster: Cluster", "kind: &str", "namespace: &str", "options: Map", "Array"])
        .with_comments([
            "/// Objects of a kind in a namespace (`\"\"`: all namespaces), filtered by",
            "/// `options.labels` (`\"app=app1\"` or `#{ app: \"app1\" }`) and",
            "/// `options.fields` (`\"metadata.name=app1\"`).",
            "///",
            "/// ```rhai",
            "/// for pod in old.list(\"pods\", \"app1-ns\", #{ labels: #{ app: \"app1\" } }) { print(pod.metadata.name); }",
            "/// ```",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext, c: &mut ClusterHandle, kind: &str, ns: &str, opts: Map| {
                list(&s, &ctx, c, kind, ns, &opts)
            },
        );
    let s = h.clone();
    FuncRegistration::new("list")
        .with_params_info(["cluster: Cluster", "kind: &str", "namespace: &str", "Array"])
        .with_comments(["/// Every object of a kind in a namespace (`\"\"`: all namespaces)."])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext, c: &mut ClusterHandle, kind: &str, ns: &str| {
                list(&s, &ctx, c, kind, ns, &Map::new())
            },
        );
}

fn list(
    s: &Clusters,
    ctx: &NativeCallContext,
    c: &ClusterHandle,
    kind: &str,
    ns: &str,
    opts: &Map,
) -> Res<Array> {
    let pos = ctx.call_position();
    check_options(opts, &["labels", "fields"], pos)?;
    let options = ListOptions {
        labels: selector(opts, "labels", pos)?,
        fields: selector(opts, "fields", pos)?,
    };
    let items = s.block(pos, c.inner.list(kind, ns, &options))?;
    Ok(items.iter().map(from_json).collect())
}

fn apply_one(
    s: &Clusters,
    ctx: &NativeCallContext,
    c: &ClusterHandle,
    obj: &Dynamic,
) -> Res<Dynamic> {
    let pos = ctx.call_position();
    let obj = json(obj, "apply", pos)?;
    let (kind, ns, name) = describe(&obj);
    let before = s.before(c, pos, &kind, &ns, &name)?;
    let live = s.block(pos, c.inner.apply(obj))?;
    s.report(c, &what(&kind, &ns, &name), before, &live);
    Ok(from_json(&live))
}

fn register_writes(engine: &mut Engine, h: &Shared) {
    let s = h.clone();
    FuncRegistration::new("apply")
        .with_params_info(["cluster: Cluster", "object: Map", "Map"])
        .with_comments([
            "/// Server-side apply (field manager `ferry`, forced on conflicts); returns the",
            "/// live object. `apiVersion` and `kind` choose the resource; a namespaced",
            "/// object without `metadata.namespace` goes to the context's namespace.",
            "/// Inside a step only.",
            "///",
            "/// ```rhai",
            "/// step(\"internal service\", || old.apply(yaml(`",
            "/// apiVersion: v1",
            "/// kind: Service",
            "/// metadata: { name: app1-internal, namespace: app1-ns }",
            "/// spec: { selector: { app: app1 }, ports: [{ port: 80 }] }",
            "/// `)));",
            "/// ```",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext, c: &mut ClusterHandle, obj: Map| {
                require_step(&ctx, "apply")?;
                apply_one(&s, &ctx, c, &Dynamic::from_map(obj))
            },
        );
    let s = h.clone();
    FuncRegistration::new("apply")
        .with_params_info(["cluster: Cluster", "objects: Array", "Array"])
        .with_comments([
            "/// Applies each object in order (e.g. from `yaml_all`); returns the live objects.",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext, c: &mut ClusterHandle, objs: Array| {
                require_step(&ctx, "apply")?;
                objs.iter()
                    .map(|o| apply_one(&s, &ctx, c, o))
                    .collect::<Res<Array>>()
            },
        );
    let s = h.clone();
    FuncRegistration::new("create")
        .with_params_info(["cluster: Cluster", "object: Map", "Map"])
        .with_comments([
            "/// Creates the object; if it already exists and says everything `object` says,",
            "/// that is success (a rerun converges). An existing, different object is an",
            "/// error naming the first difference. Inside a step only.",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext, c: &mut ClusterHandle, obj: Map| {
                require_step(&ctx, "create")?;
                let pos = ctx.call_position();
                let obj = json(&Dynamic::from_map(obj), "create", pos)?;
                let (kind, ns, name) = describe(&obj);
                let before = s.before(c, pos, &kind, &ns, &name)?;
                let live = s.block(pos, c.inner.create(obj))?;
                s.report(c, &what(&kind, &ns, &name), before, &live);
                Ok::<_, Box<EvalAltResult>>(from_json(&live))
            },
        );
    let s = h.clone();
    FuncRegistration::new("replace")
        .with_params_info(["cluster: Cluster", "object: Map", "Map"])
        .with_comments([
            "/// Replaces the object (PUT) at its live resourceVersion, reading it again and",
            "/// retrying when someone else wrote in between (409). Inside a step only.",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext, c: &mut ClusterHandle, obj: Map| {
                require_step(&ctx, "replace")?;
                let pos = ctx.call_position();
                let obj = json(&Dynamic::from_map(obj), "replace", pos)?;
                let (kind, ns, name) = describe(&obj);
                let before = s.before(c, pos, &kind, &ns, &name)?;
                let live = s.block(pos, c.inner.replace(obj))?;
                s.report(c, &what(&kind, &ns, &name), before, &live);
                Ok::<_, Box<EvalAltResult>>(from_json(&live))
            },
        );
    for with_type in [false, true] {
        let s = h.clone();
        let mut params = vec![
            "cluster: Cluster",
            "kind: &str",
            "namespace: &str",
            "name: &str",
            "patch: Dynamic",
        ];
        if with_type {
            params.push("type: &str");
        }
        params.push("Map");
        let reg = FuncRegistration::new("patch").with_params_info(params);
        let reg = if with_type {
            reg.with_comments([
                "/// Patches the object; `type` is `\"merge\"` (JSON merge patch, a map),",
                "/// `\"json\"` (JSON patch, an array of operations) or `\"strategic\"`.",
                "/// Returns the live object. Inside a step only.",
                "///",
                "/// ```rhai",
                "/// step(\"scale\", || next.patch(\"deploy\", \"app1-ns\", \"app1\", #{ spec: #{ replicas: 3 } }, \"merge\"));",
                "/// ```",
            ])
        } else {
            reg.with_comments(["/// `patch(kind, namespace, name, patch, \"merge\")`."])
        };
        let body = move |ctx: &NativeCallContext,
                         c: &ClusterHandle,
                         kind: &str,
                         ns: &str,
                         name: &str,
                         patch: Dynamic,
                         ty: &str| {
            require_step(ctx, "patch")?;
            let pos = ctx.call_position();
            let Some(ty) = PatchType::parse(ty) else {
                return Err(runtime_error(
                    format!("unknown patch type `{ty}`: use \"merge\", \"json\" or \"strategic\""),
                    pos,
                ));
            };
            let patch = json(&patch, "patch", pos)?;
            let before = s.before(c, pos, kind, ns, name)?;
            let live = s.block(pos, c.inner.patch(kind, ns, name, patch, ty))?;
            s.report(c, &what(kind, ns, name), before, &live);
            Ok::<_, Box<EvalAltResult>>(from_json(&live))
        };
        if with_type {
            reg.register_into_engine(
                engine,
                move |ctx: NativeCallContext,
                      c: &mut ClusterHandle,
                      kind: &str,
                      ns: &str,
                      name: &str,
                      patch: Dynamic,
                      ty: &str| { body(&ctx, c, kind, ns, name, patch, ty) },
            );
        } else {
            reg.register_into_engine(
                engine,
                move |ctx: NativeCallContext,
                      c: &mut ClusterHandle,
                      kind: &str,
                      ns: &str,
                      name: &str,
                      patch: Dynamic| {
                    body(&ctx, c, kind, ns, name, patch, "merge")
                },
            );
        }
    }
    let s = h.clone();
    FuncRegistration::new("delete")
        .with_params_info([
            "cluster: Cluster",
            "kind: &str",
            "namespace: &str",
            "name: &str",
            "options: Map",
            "bool",
        ])
        .with_comments([
            "/// Deletes the object; returns false if it was already absent (success too).",
            "/// Waits until it is gone (finalizers done) unless `options.wait` is false,",
            "/// up to `options.timeout` seconds (default 120). Inside a step only.",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext,
                  c: &mut ClusterHandle,
                  kind: &str,
                  ns: &str,
                  name: &str,
                  opts: Map| { delete(&s, &ctx, c, kind, ns, name, &opts) },
        );
    let s = h.clone();
    FuncRegistration::new("delete")
        .with_params_info([
            "cluster: Cluster",
            "kind: &str",
            "namespace: &str",
            "name: &str",
            "bool",
        ])
        .with_comments(["/// `delete(kind, namespace, name, #{ wait: true, timeout: 120 })`."])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext,
                  c: &mut ClusterHandle,
                  kind: &str,
                  ns: &str,
                  name: &str| { delete(&s, &ctx, c, kind, ns, name, &Map::new()) },
        );
    for with_opts in [false, true] {
        let s = h.clone();
        let mut params = vec![
            "cluster: Cluster",
            "from: Cluster",
            "kind: &str",
            "namespace: &str",
            "name: &str",
        ];
        if with_opts {
            params.push("options: Map");
        }
        params.push("Map");
        let reg = FuncRegistration::new("copy").with_params_info(params);
        let reg = if with_opts {
            reg.with_comments([
                "/// Copies an object from cluster `from` into this one: reads it, strips what",
                "/// the source cluster owns (uid, resourceVersion, generation, timestamps,",
                "/// managedFields, ownerReferences, status, a Service's clusterIP(s), node",
                "/// ports and healthCheckNodePort, a PVC's volumeName...), then applies it.",
                "/// Options: `to_ns` (another namespace), `rename` (another name),",
                "/// `transform` (a closure `|obj| ...` returning the object to apply).",
                "/// Inside a step only.",
                "///",
                "/// ```rhai",
                "/// step(\"copy app1\", || next.copy(old, \"svc\", \"app1-ns\", \"app1\", #{ rename: \"app1-internal\" }));",
                "/// ```",
            ])
        } else {
            reg.with_comments(["/// `copy(from, kind, namespace, name, #{})`."])
        };
        if with_opts {
            reg.register_into_engine(
                engine,
                move |ctx: NativeCallContext,
                      c: &mut ClusterHandle,
                      from: Dynamic,
                      kind: &str,
                      ns: &str,
                      name: &str,
                      opts: Map| { copy(&s, &ctx, c, from, kind, ns, name, &opts) },
            );
        } else {
            reg.register_into_engine(
                engine,
                move |ctx: NativeCallContext,
                      c: &mut ClusterHandle,
                      from: Dynamic,
                      kind: &str,
                      ns: &str,
                      name: &str| {
                    copy(&s, &ctx, c, from, kind, ns, name, &Map::new())
                },
            );
        }
    }
}

fn delete(
    s: &Clusters,
    ctx: &NativeCallContext,
    c: &ClusterHandle,
    kind: &str,
    ns: &str,
    name: &str,
    opts: &Map,
) -> Res<bool> {
    require_step(ctx, "delete")?;
    let pos = ctx.call_position();
    check_options(opts, &["wait", "timeout"], pos)?;
    let wait = match opts.get("wait") {
        None => true,
        Some(v) => v
            .as_bool()
            .map_err(|_| runtime_error("`wait` must be true or false", pos))?,
    };
    let timeout = secs(opts, "timeout", DEFAULT_DELETE_WAIT, pos)?;
    let deleted = s.block(pos, c.inner.delete(kind, ns, name))?;
    let resource = s.block(pos, c.inner.resolve(kind))?;
    let shown = what(&resource.kind, ns, name);
    let Deleted::Gone(last) = deleted else {
        if c.inner.dry_run() {
            s.say(format!(
                "dry run: {shown} on cluster `{}` is already absent",
                c.inner.name()
            ));
        }
        return Ok(false);
    };
    if c.inner.dry_run() {
        s.say(format!(
            "dry run: would delete {shown} on cluster `{}`",
            c.inner.name()
        ));
        return Ok(true);
    }
    if !wait {
        return Ok(true);
    }
    let uid = last
        .pointer("/metadata/uid")
        .or_else(|| last.pointer("/details/uid"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let w = Wait {
        cluster: c.inner.name(),
        kind: &resource.kind,
        namespace: ns,
        name,
        label: format!("delete {shown}"),
        timeout,
        interval: Duration::from_millis(500),
    };
    w.run(&s.session, pos, || {
        let now = s.block(pos, c.inner.get(kind, ns, name))?;
        Ok(match now {
            None => Seen::Done(()),
            // Deleted and created again by someone else: ours is gone.
            Some(obj)
                if !uid.is_empty()
                    && obj.pointer("/metadata/uid").and_then(Value::as_str)
                        != Some(uid.as_str()) =>
            {
                Seen::Done(())
            }
            Some(obj) => {
                let finalizers = obj
                    .pointer("/metadata/finalizers")
                    .map(|f| f.to_string())
                    .unwrap_or_else(|| "[]".into());
                Seen::Waiting(format!("finalizers {finalizers}"))
            }
        })
    })?;
    Ok(true)
}

#[allow(clippy::too_many_arguments)]
fn copy(
    s: &Clusters,
    ctx: &NativeCallContext,
    c: &ClusterHandle,
    from: Dynamic,
    kind: &str,
    ns: &str,
    name: &str,
    opts: &Map,
) -> Res<Dynamic> {
    require_step(ctx, "copy")?;
    let pos = ctx.call_position();
    check_options(opts, &["to_ns", "rename", "transform"], pos)?;
    let from = handle_of(from, pos)?;
    let Some(mut obj) = s.block(pos, from.inner.export(kind, ns, name))? else {
        let mut details = Map::new();
        details.insert("cluster".into(), from.inner.name().into());
        details.insert("verb".into(), "copy".into());
        details.insert("kind".into(), kind.into());
        details.insert("namespace".into(), ns.into());
        details.insert("name".into(), name.into());
        details.insert("status".into(), Dynamic::from(404 as rhai::INT));
        details.insert("reason".into(), "NotFound".into());
        return Err(host_error(
            "cluster",
            format!(
                "cluster `{}`: copy {} failed: it does not exist there",
                from.inner.name(),
                what(kind, ns, name)
            ),
            details,
            pos,
        ));
    };
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if let Some(to_ns) = opt_str(opts, "to_ns", pos)? {
            meta.insert("namespace".into(), Value::String(to_ns));
        }
        if let Some(rename) = opt_str(opts, "rename", pos)? {
            meta.insert("name".into(), Value::String(rename));
        }
    }
    if let Some(f) = opts.get("transform") {
        let f = f.clone().try_cast::<FnPtr>().ok_or_else(|| {
            runtime_error("`transform` must be a closure: |obj| { ...; obj }", pos)
        })?;
        let out: Dynamic = f.call_within_context(ctx, (from_json(&obj),))?;
        if !out.is_map() {
            return Err(runtime_error(
                format!(
                    "`transform` must return the object (a map), it returned {}",
                    out.type_name()
                ),
                pos,
            ));
        }
        obj = json(&out, "transform", pos)?;
    }
    apply_one(s, ctx, c, &from_json(&obj))
}

fn register_services(engine: &mut Engine, h: &Shared) {
    let s = h.clone();
    FuncRegistration::new("to_external_name")
        .with_params_info(["cluster: Cluster", "namespace: &str", "name: &str", "target_host: &str", "Map"])
        .with_comments([
            "/// Turns the Service into an ExternalName Service pointing at `target_host`, in",
            "/// place and in one write: clients keep calling `<name>.<namespace>` and are",
            "/// sent to `target_host`. The old spec (ports, selector, clusterIP...) is kept",
            "/// in the `ferry.dev/cluster-ip-spec` annotation for `to_cluster_ip`. On an",
            "/// ExternalName Service it just points it at `target_host`; if it already",
            "/// does, nothing is written. Inside a step only.",
            "///",
            "/// ```rhai",
            "/// step(\"bridge app1\", || old.to_external_name(\"app1-ns\", \"app1\", \"old.mycompany.internal\"),",
            "///                      || old.to_cluster_ip(\"app1-ns\", \"app1\"));",
            "/// ```",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext, c: &mut ClusterHandle, ns: &str, name: &str, host: &str| {
                require_step(&ctx, "to_external_name")?;
                let pos = ctx.call_position();
                let before = s.before(c, pos, "v1/Service", ns, name)?;
                let live = s.block(pos, c.inner.to_external_name(ns, name, host))?;
                s.report(c, &what("Service", ns, name), before, &live);
                Ok::<_, Box<EvalAltResult>>(from_json(&live))
            },
        );
    let s = h.clone();
    FuncRegistration::new("to_cluster_ip")
        .with_params_info(["cluster: Cluster", "namespace: &str", "name: &str", "Map"])
        .with_comments([
            "/// Turns an ExternalName Service made by `to_external_name` back into the",
            "/// Service it was, in one write, asking for its old clusterIP again (if that",
            "/// IP was taken meanwhile, the server allocates a new one). A Service that is",
            "/// no ExternalName is left alone. Inside a step only.",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext, c: &mut ClusterHandle, ns: &str, name: &str| {
                require_step(&ctx, "to_cluster_ip")?;
                let pos = ctx.call_position();
                let before = s.before(c, pos, "v1/Service", ns, name)?;
                let live = s.block(pos, c.inner.to_cluster_ip(ns, name))?;
                s.report(c, &what("Service", ns, name), before, &live);
                Ok::<_, Box<EvalAltResult>>(from_json(&live))
            },
        );
}

/// Waits only look once in a dry run: nothing they wait for will happen.
fn dry_look<T>(s: &Clusters, c: &ClusterHandle, label: &str, seen: Seen<T>, fallback: T) -> Res<T> {
    match seen {
        Seen::Done(v) => Ok(v),
        Seen::Waiting(now) | Seen::Failed(now) => {
            let now = if now.is_empty() {
                String::new()
            } else {
                format!(" (now: {now})")
            };
            s.say(format!(
                "dry run: would wait for {label} on cluster `{}`{now}",
                c.inner.name()
            ));
            Ok(fallback)
        }
    }
}

fn register_waits(engine: &mut Engine, h: &Shared) {
    for with_opts in [false, true] {
        let s = h.clone();
        let mut params = vec![
            "cluster: Cluster",
            "kind: &str",
            "namespace: &str",
            "name: &str",
            "condition: FnPtr",
        ];
        if with_opts {
            params.push("options: Map");
        }
        params.push("Dynamic");
        let reg = FuncRegistration::new("wait").with_params_info(params);
        let reg = if with_opts {
            reg.with_comments([
                "/// Polls the object until `condition(obj)` returns true (`obj` is `()` while",
                "/// it does not exist) and returns it; fails after `options.timeout` seconds",
                "/// (default 300). `options.interval`: seconds between looks (default 2).",
                "///",
                "/// ```rhai",
                "/// next.wait(\"pod\", \"app1-ns\", \"app1\", |p| p != () && p.status.phase == \"Running\", #{ timeout: 120 });",
                "/// ```",
            ])
        } else {
            reg.with_comments([
                "/// `wait(kind, namespace, name, condition, #{ timeout: 300, interval: 2 })`.",
            ])
        };
        let body = move |ctx: &NativeCallContext,
                         c: &ClusterHandle,
                         kind: &str,
                         ns: &str,
                         name: &str,
                         cond: FnPtr,
                         opts: &Map|
              -> Res<Dynamic> {
            let pos = ctx.call_position();
            check_options(opts, &["timeout", "interval"], pos)?;
            let resource = s.block(pos, c.inner.resolve(kind))?;
            let w = Wait {
                cluster: c.inner.name(),
                kind: &resource.kind,
                namespace: ns,
                name,
                label: format!("wait for {}", what(&resource.kind, ns, name)),
                timeout: secs(opts, "timeout", DEFAULT_WAIT, pos)?,
                interval: secs(opts, "interval", 2, pos)?.max(Duration::from_millis(10)),
            };
            let look = || -> Res<Seen<Dynamic>> {
                let obj = s
                    .block(pos, c.inner.get(kind, ns, name))?
                    .as_ref()
                    .map_or(Dynamic::UNIT, from_json);
                let verdict: Dynamic = cond.call_within_context(ctx, (obj.clone(),))?;
                match verdict.as_bool() {
                    Ok(true) => Ok(Seen::Done(obj)),
                    Ok(false) => Ok(Seen::Waiting(String::new())),
                    Err(t) => Err(runtime_error(
                        format!("the wait condition must return true or false, not {t}"),
                        pos,
                    )),
                }
            };
            if c.inner.dry_run() {
                let seen = look()?;
                let now = s
                    .block(pos, c.inner.get(kind, ns, name))?
                    .as_ref()
                    .map_or(Dynamic::UNIT, from_json);
                return dry_look(s.as_ref(), c, &w.label, seen, now);
            }
            w.run(&s.session, pos, look)
        };
        if with_opts {
            reg.register_into_engine(
                engine,
                move |ctx: NativeCallContext,
                      c: &mut ClusterHandle,
                      kind: &str,
                      ns: &str,
                      name: &str,
                      cond: FnPtr,
                      opts: Map| { body(&ctx, c, kind, ns, name, cond, &opts) },
            );
        } else {
            reg.register_into_engine(
                engine,
                move |ctx: NativeCallContext,
                      c: &mut ClusterHandle,
                      kind: &str,
                      ns: &str,
                      name: &str,
                      cond: FnPtr| {
                    body(&ctx, c, kind, ns, name, cond, &Map::new())
                },
            );
        }
    }
    for with_opts in [false, true] {
        let s = h.clone();
        let mut params = vec!["cluster: Cluster", "namespace: &str", "name: &str"];
        if with_opts {
            params.push("options: Map");
        }
        params.push("Map");
        let reg = FuncRegistration::new("rollout").with_params_info(params);
        let reg = if with_opts {
            reg.with_comments([
                "/// Waits until the Deployment (or StatefulSet, or DaemonSet) `name` has rolled",
                "/// out: the controller saw its latest spec and every replica is updated and",
                "/// available. Fails at once past a Deployment's progress deadline, otherwise",
                "/// after `options.timeout` seconds (default 600). `options.kind` picks the",
                "/// kind instead of trying Deployment, then StatefulSet, then DaemonSet.",
            ])
        } else {
            reg.with_comments(["/// `rollout(namespace, name, #{ timeout: 600 })`."])
        };
        let body = move |ctx: &NativeCallContext,
                         c: &ClusterHandle,
                         ns: &str,
                         name: &str,
                         opts: &Map|
              -> Res<Dynamic> {
            let pos = ctx.call_position();
            check_options(opts, &["timeout", "interval", "kind"], pos)?;
            let kinds: Vec<String> = match opt_str(opts, "kind", pos)? {
                Some(k) => vec![k],
                None => vec![
                    "apps/v1/Deployment".into(),
                    "apps/v1/StatefulSet".into(),
                    "apps/v1/DaemonSet".into(),
                ],
            };
            let mut found = None;
            for kind in &kinds {
                if s.block(pos, c.inner.get(kind, ns, name))?.is_some() {
                    found = Some(kind.clone());
                    break;
                }
            }
            let Some(kind) = found else {
                return Err(api_error(
                    ClusterError {
                        cluster: c.inner.name().into(),
                        verb: "rollout".into(),
                        kind: kinds.join("|"),
                        namespace: ns.into(),
                        name: name.into(),
                        status: Some(404),
                        reason: "NotFound".into(),
                        message: "no such workload".into(),
                    },
                    pos,
                ));
            };
            let resource = s.block(pos, c.inner.resolve(&kind))?;
            let w = Wait {
                cluster: c.inner.name(),
                kind: &resource.kind,
                namespace: ns,
                name,
                label: format!("rollout {}", what(&resource.kind, ns, name)),
                timeout: secs(opts, "timeout", DEFAULT_ROLLOUT, pos)?,
                interval: secs(opts, "interval", 2, pos)?.max(Duration::from_millis(10)),
            };
            let look = || -> Res<Seen<Dynamic>> {
                let Some(obj) = s.block(pos, c.inner.get(&kind, ns, name))? else {
                    return Ok(Seen::Failed("it was deleted".into()));
                };
                Ok(match waits::rollout_state(&obj) {
                    Seen::Done(()) => Seen::Done(from_json(&obj)),
                    Seen::Waiting(w) => Seen::Waiting(w),
                    Seen::Failed(f) => Seen::Failed(f),
                })
            };
            if c.inner.dry_run() {
                let seen = look()?;
                return dry_look(s.as_ref(), c, &w.label, seen, Dynamic::UNIT);
            }
            w.run(&s.session, pos, look)
        };
        if with_opts {
            reg.register_into_engine(
                engine,
                move |ctx: NativeCallContext,
                      c: &mut ClusterHandle,
                      ns: &str,
                      name: &str,
                      opts: Map| { body(&ctx, c, ns, name, &opts) },
            );
        } else {
            reg.register_into_engine(
                engine,
                move |ctx: NativeCallContext, c: &mut ClusterHandle, ns: &str, name: &str| {
                    body(&ctx, c, ns, name, &Map::new())
                },
            );
        }
    }
    for with_opts in [false, true] {
        let s = h.clone();
        let mut params = vec!["cluster: Cluster", "namespace: &str", "name: &str"];
        if with_opts {
            params.push("options: Map");
        }
        params.push("String");
        let reg = FuncRegistration::new("ingress_address").with_params_info(params);
        let reg = if with_opts {
            reg.with_comments([
                "/// The IP (or hostname) the LoadBalancer Service `name` got, waiting until one",
                "/// is assigned, up to `options.timeout` seconds (default 300). This is the",
                "/// ingress controller's address the private DNS record points at.",
                "///",
                "/// ```rhai",
                "/// let ip = step(\"old ingress\", || old.ingress_address(\"traefik\", \"traefik\"));",
                "/// ```",
            ])
        } else {
            reg.with_comments(["/// `ingress_address(namespace, name, #{ timeout: 300 })`."])
        };
        let body = move |ctx: &NativeCallContext,
                         c: &ClusterHandle,
                         ns: &str,
                         name: &str,
                         opts: &Map|
              -> Res<String> {
            let pos = ctx.call_position();
            check_options(opts, &["timeout", "interval"], pos)?;
            let w = Wait {
                cluster: c.inner.name(),
                kind: "Service",
                namespace: ns,
                name,
                label: format!("address of LoadBalancer {}", what("Service", ns, name)),
                timeout: secs(opts, "timeout", DEFAULT_WAIT, pos)?,
                interval: secs(opts, "interval", 2, pos)?.max(Duration::from_millis(10)),
            };
            let look = || -> Res<Seen<String>> {
                let Some(svc) = s.block(pos, c.inner.get("v1/Service", ns, name))? else {
                    return Ok(Seen::Waiting("no such Service yet".into()));
                };
                let ty = svc
                    .pointer("/spec/type")
                    .and_then(Value::as_str)
                    .unwrap_or("ClusterIP");
                if ty != "LoadBalancer" {
                    return Ok(Seen::Failed(format!(
                        "the Service is of type {ty}, not LoadBalancer"
                    )));
                }
                Ok(match waits::load_balancer_address(&svc) {
                    Some(a) => Seen::Done(a),
                    None => Seen::Waiting("no address assigned yet".into()),
                })
            };
            if c.inner.dry_run() {
                let seen = look()?;
                return dry_look(s.as_ref(), c, &w.label, seen, String::new());
            }
            w.run(&s.session, pos, look)
        };
        if with_opts {
            reg.register_into_engine(
                engine,
                move |ctx: NativeCallContext,
                      c: &mut ClusterHandle,
                      ns: &str,
                      name: &str,
                      opts: Map| { body(&ctx, c, ns, name, &opts) },
            );
        } else {
            reg.register_into_engine(
                engine,
                move |ctx: NativeCallContext, c: &mut ClusterHandle, ns: &str, name: &str| {
                    body(&ctx, c, ns, name, &Map::new())
                },
            );
        }
    }
}

fn register_exec(engine: &mut Engine, h: &Shared) {
    let s = h.clone();
    FuncRegistration::new("exec")
        .with_params_info(["cluster: Cluster", "namespace: &str", "pod: &str", "container: &str", "command: Array", "Map"])
        .with_comments([
            "/// Runs `command` in `container` (`\"\"`: the pod's default) of the pod, through",
            "/// the `pods/exec` subresource, and returns `#{ stdout, stderr, status }`",
            "/// (`status`: the exit code, `()` if the runtime reported none). The in-cluster",
            "/// vantage point: the article curls app1 from inside app2's pod. A command",
            "/// that runs and fails is no error; an unreachable pod is.",
            "///",
            "/// ```rhai",
            "/// let r = old.exec(\"app2-ns\", \"app2\", \"\", [\"curl\", \"-s\", \"-H\", \"Host: app1.app1-ns\", \"http://old.mycompany.internal\"]);",
            "/// if r.status != 0 { throw r.stderr; }",
            "/// ```",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext, c: &mut ClusterHandle, ns: &str, pod: &str, container: &str, command: Array| {
                let pos = ctx.call_position();
                let command = command
                    .into_iter()
                    .map(|a| a.into_string().map_err(|t| runtime_error(format!("exec: command parts must be strings, not {t}"), pos)))
                    .collect::<Res<Vec<String>>>()?;
                let container = (!container.is_empty()).then_some(container);
                let out = s.block(pos, c.inner.exec_in(ns, pod, container, &command))?;
                let mut map = Map::new();
                map.insert("stdout".into(), out.stdout.into());
                map.insert("stderr".into(), out.stderr.into());
                map.insert(
                    "status".into(),
                    out.status.map_or(Dynamic::UNIT, |s| Dynamic::from(s as rhai::INT)),
                );
                Ok::<_, Box<EvalAltResult>>(map)
            },
        );
}
