//! `exec`: running a command in a pod's container, the in-cluster vantage
//! point for checks that must see what workloads see.

use super::handle::{ClusterHandle, Res, Shared};
use crate::engine::control::runtime_error;
use rhai::{Array, Dynamic, Engine, EvalAltResult, FuncRegistration, Map, NativeCallContext};

pub(super) fn register(engine: &mut Engine, h: &Shared) {
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
