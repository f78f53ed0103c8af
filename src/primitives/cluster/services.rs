//! Services for the migration's bridge: `to_external_name` and
//! `to_cluster_ip` turn a Service into an ExternalName and back in one
//! write each, and `ingress_address` waits for the address a LoadBalancer
//! Service is given (what the private DNS record points at).

use super::handle::{ClusterHandle, Res, Shared, what};
use super::options::{DEFAULT_WAIT, interval, secs};
use super::waiting::dry_look;
use super::waits::{self, Seen, Wait};
use crate::engine::value::from_json;
use crate::primitives::options::{known_keys, with_options};
use crate::primitives::require_step;
use rhai::{Engine, EvalAltResult, FuncRegistration, Map, NativeCallContext};
use serde_json::Value;

pub(super) fn register(engine: &mut Engine, h: &Shared) {
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
                let live = s.block(pos, c.inner.to_external_name(ns, name, host))?;
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
                let live = s.block(pos, c.inner.to_cluster_ip(ns, name))?;
                Ok::<_, Box<EvalAltResult>>(from_json(&live))
            },
        );
}

/// Registered apart from the other two, after `wait` and `rollout`, to keep
/// the order `ferry docs` lists functions in.
pub(super) fn register_ingress_address(engine: &mut Engine, h: &Shared) {
    let s = h.clone();
    let body = move |ctx: &NativeCallContext,
                     c: &ClusterHandle,
                     ns: &str,
                     name: &str,
                     opts: &Map|
          -> Res<String> {
        let pos = ctx.call_position();
        known_keys(
            opts,
            "cluster.ingress_address",
            &["timeout", "interval"],
            pos,
        )?;
        let w = Wait {
            cluster: c.inner.name(),
            kind: "Service",
            namespace: ns,
            name,
            label: format!("address of LoadBalancer {}", what("Service", ns, name)),
            timeout: secs(opts, "timeout", DEFAULT_WAIT, pos)?,
            interval: interval(opts, pos)?,
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
    with_options!(
        register_into_engine(engine),
        "ingress_address",
        ["cluster: Cluster",
            "namespace: &str",
            "name: &str"],
        "options: Map",
        "String",
        [
                "/// The IP (or hostname) the LoadBalancer Service `name` got, waiting until one",
                "/// is assigned, up to `options.timeout` seconds (default 300). This is the",
                "/// ingress controller's address the private DNS record points at.",
                "///",
                "/// ```rhai",
                "/// let ip = step(\"old ingress\", || old.ingress_address(\"traefik\", \"traefik\"));",
                "/// ```"
        ],
        [body],
        |ctx, c: &mut ClusterHandle, ns: &str, name: &str; opts| body(&ctx, c, ns, name, opts)
    );
}
