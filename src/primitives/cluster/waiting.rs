//! Waiting from a script: `wait` (until a script condition holds) and
//! `rollout` (until a workload is available). The polling loop and what a
//! rollout's status means live in `waits.rs`, shared with `delete` and
//! `ingress_address`; this file is their Rhai side.

use super::handle::{ClusterHandle, Clusters, Res, Shared, api_error, what};
use super::options::{DEFAULT_ROLLOUT, DEFAULT_WAIT, interval, opt_str, secs};
use super::waits::{self, Seen, Wait};
use crate::engine::control::runtime_error;
use crate::engine::value::from_json;
use crate::ports::cluster::ClusterError;
use crate::primitives::options::{known_keys, with_options};
use rhai::{Dynamic, Engine, FnPtr, Map, NativeCallContext};

/// Waits only look once in a plan: nothing they wait for will happen.
pub(super) fn dry_look<T>(
    s: &Clusters,
    c: &ClusterHandle,
    label: &str,
    seen: Seen<T>,
    fallback: T,
) -> Res<T> {
    match seen {
        Seen::Done(v) => Ok(v),
        Seen::Waiting(now) | Seen::Failed(now) => {
            if let Some(plan) = &s.session.plan {
                plan.note(crate::plan::Entry::Wait {
                    what: format!("{label} on cluster `{}`", c.inner.name()),
                    now: (!now.is_empty()).then_some(now),
                });
            }
            Ok(fallback)
        }
    }
}

pub(super) fn register(engine: &mut Engine, h: &Shared) {
    let s = h.clone();
    let body = move |ctx: &NativeCallContext,
                     c: &ClusterHandle,
                     kind: &str,
                     ns: &str,
                     name: &str,
                     cond: FnPtr,
                     opts: &Map|
          -> Res<Dynamic> {
        let pos = ctx.call_position();
        known_keys(opts, "cluster.wait", &["timeout", "interval"], pos)?;
        let resource = s.block(pos, c.inner.resolve(kind))?;
        let w = Wait {
            cluster: c.inner.name(),
            kind: &resource.kind,
            namespace: ns,
            name,
            label: format!("wait for {}", what(&resource.kind, ns, name)),
            timeout: secs(opts, "timeout", DEFAULT_WAIT, pos)?,
            interval: interval(opts, pos)?,
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
    with_options!(
        register_into_engine(engine),
        "wait",
        ["cluster: Cluster",
            "kind: &str",
            "namespace: &str",
            "name: &str",
            "condition: FnPtr"],
        "options: Map",
        "Dynamic",
        [
                "/// Polls the object until `condition(obj)` returns true (`obj` is `()` while",
                "/// it does not exist) and returns it; fails after `options.timeout` seconds",
                "/// (default 300). `options.interval`: seconds between looks (default 2).",
                "///",
                "/// ```rhai",
                "/// next.wait(\"pod\", \"app1-ns\", \"app1\", |p| p != () && p.status.phase == \"Running\", #{ timeout: 120 });",
                "/// ```"
        ],
        [body],
        |ctx, c: &mut ClusterHandle, kind: &str, ns: &str, name: &str, cond: FnPtr; opts| body(&ctx, c, kind, ns, name, cond, opts)
    );
    let s = h.clone();
    let body = move |ctx: &NativeCallContext,
                     c: &ClusterHandle,
                     ns: &str,
                     name: &str,
                     opts: &Map|
          -> Res<Dynamic> {
        let pos = ctx.call_position();
        known_keys(
            opts,
            "cluster.rollout",
            &["timeout", "interval", "kind"],
            pos,
        )?;
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
            interval: interval(opts, pos)?,
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
    with_options!(
        register_into_engine(engine),
        "rollout",
        ["cluster: Cluster",
            "namespace: &str",
            "name: &str"],
        "options: Map",
        "Map",
        [
                "/// Waits until the Deployment (or StatefulSet, or DaemonSet) `name` has rolled",
                "/// out: the controller saw its latest spec and every replica is updated and",
                "/// available. Fails at once past a Deployment's progress deadline, otherwise",
                "/// after `options.timeout` seconds (default 600). `options.kind` picks the",
                "/// kind instead of trying Deployment, then StatefulSet, then DaemonSet."
        ],
        [body],
        |ctx, c: &mut ClusterHandle, ns: &str, name: &str; opts| body(&ctx, c, ns, name, opts)
    );
}
