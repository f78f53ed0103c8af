//! Reading a cluster: `get`, `exists` and `list`. Reads are allowed
//! anywhere, inside a step or not; under `ferry plan` they see the planned objects.

use super::handle::{ClusterHandle, Clusters, Res, Shared};
use super::options::selector;
use crate::engine::value::from_json;
use crate::ports::cluster::ListOptions;
use crate::primitives::options::{known_keys, with_options};
use rhai::{Array, Dynamic, Engine, EvalAltResult, FuncRegistration, Map, NativeCallContext};

pub(super) fn register(engine: &mut Engine, h: &Shared) {
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
    with_options!(
        register_into_engine(engine),
        "list",
        ["cluster: Cluster", "kind: &str", "namespace: &str"],
        "options: Map",
        "Array",
        [
            "/// Objects of a kind in a namespace (`\"\"`: all namespaces), filtered by",
            "/// `options.labels` (`\"app=app1\"` or `#{ app: \"app1\" }`) and",
            "/// `options.fields` (`\"metadata.name=app1\"`).",
            "///",
            "/// ```rhai",
            "/// for pod in old.list(\"pods\", \"app1-ns\", #{ labels: #{ app: \"app1\" } }) { print(pod.metadata.name); }",
            "/// ```",
        ],
        [s],
        |ctx, c: &mut ClusterHandle, kind: &str, ns: &str; opts| list(&s, &ctx, c, kind, ns, opts)
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
    known_keys(opts, "cluster.list", &["labels", "fields"], pos)?;
    let options = ListOptions {
        labels: selector(opts, "labels", pos)?,
        fields: selector(opts, "fields", pos)?,
    };
    let items = s.block(pos, c.inner.list(kind, ns, &options))?;
    Ok(items.iter().map(from_json).collect())
}
