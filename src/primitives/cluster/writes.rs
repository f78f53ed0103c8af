//! Changing a cluster: `apply`, `create`, `replace`, `patch`, `delete` and
//! `copy`. Each is refused outside a step; under `ferry plan` the handle is
//! an overlay that records what each would change (`crate::plan::cluster`).

use super::handle::{ClusterHandle, Clusters, Res, Shared, handle_of, what};
use super::options::{DEFAULT_DELETE_WAIT, json, opt_str, secs};
use super::waits::{Seen, Wait};
use crate::engine::control::{host_error, runtime_error};
use crate::engine::value::from_json;
use crate::ports::cluster::{Cluster, ClusterFuture, Deleted, PatchType};
use crate::primitives::options::{known_keys, with_options};
use crate::primitives::require_step;
use rhai::{
    Array, Dynamic, Engine, EvalAltResult, FnPtr, FuncRegistration, Map, NativeCallContext,
};
use serde_json::Value;
use std::time::Duration;

/// The whole-object writes (`apply`, `create`, `replace`): the object as
/// JSON, then the write.
fn write_one(
    s: &Clusters,
    ctx: &NativeCallContext,
    c: &ClusterHandle,
    obj: &Dynamic,
    verb: &str,
    write: for<'a> fn(&'a dyn Cluster, Value) -> ClusterFuture<'a, Value>,
) -> Res<Dynamic> {
    require_step(ctx, verb)?;
    let pos = ctx.call_position();
    let obj = json(obj, verb, pos)?;
    let live = s.block(pos, write(c.inner.as_ref(), obj))?;
    Ok(from_json(&live))
}

pub(super) fn register(engine: &mut Engine, h: &Shared) {
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
                write_one(&s, &ctx, c, &Dynamic::from_map(obj), "apply", |c, o| {
                    c.apply(o)
                })
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
                    .map(|o| write_one(&s, &ctx, c, o, "apply", |c, o| c.apply(o)))
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
                write_one(&s, &ctx, c, &Dynamic::from_map(obj), "create", |c, o| {
                    c.create(o)
                })
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
                write_one(&s, &ctx, c, &Dynamic::from_map(obj), "replace", |c, o| {
                    c.replace(o)
                })
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
            let live = s.block(pos, c.inner.patch(kind, ns, name, patch, ty))?;
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
    with_options!(
        register_into_engine(engine),
        "delete",
        [
            "cluster: Cluster",
            "kind: &str",
            "namespace: &str",
            "name: &str"
        ],
        "options: Map",
        "bool",
        [
            "/// Deletes the object; returns false if it was already absent (success too).",
            "/// Waits until it is gone (finalizers done) unless `options.wait` is false,",
            "/// up to `options.timeout` seconds (default 120). Inside a step only.",
        ],
        [s],
        |ctx, c: &mut ClusterHandle, kind: &str, ns: &str, name: &str; opts| {
            delete(&s, &ctx, c, kind, ns, name, opts)
        }
    );
    let s = h.clone();
    with_options!(
        register_into_engine(engine),
        "copy",
        [
            "cluster: Cluster",
            "from: Cluster",
            "kind: &str",
            "namespace: &str",
            "name: &str"
        ],
        "options: Map",
        "Map",
        [
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
        ],
        [s],
        |ctx, c: &mut ClusterHandle, from: Dynamic, kind: &str, ns: &str, name: &str; opts| {
            copy(&s, &ctx, c, from, kind, ns, name, opts)
        }
    );
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
    known_keys(opts, "cluster.delete", &["wait", "timeout"], pos)?;
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
        return Ok(false);
    };
    if c.inner.dry_run() {
        // Planned: nothing goes away to wait for.
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
    known_keys(opts, "cluster.copy", &["to_ns", "rename", "transform"], pos)?;
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
    write_one(s, ctx, c, &from_json(&obj), "apply", |c, o| c.apply(o))
}
