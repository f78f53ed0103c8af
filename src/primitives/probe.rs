//! The `probe` module: `probe::http`, `probe::tcp`, `probe::dns`,
//! `probe::until` (and `probe::http_from`, see [`http_from`]). Probes only
//! read the world, so they are allowed anywhere. A one-shot probe returns
//! `#{ ok, status, latency_ms, body, error, error_kind, address }` and never
//! throws for a network failure (`ok` is false and `error` says why); a bad
//! spec or option throws, naming it. The networking lives in `crate::probes`.

use crate::engine::Countdown;
use crate::engine::Session;
use crate::engine::control::{Control, host_error, runtime_error};
use crate::engine::value::{from_json, to_json};
use crate::ports::exec::PodExec;
use crate::primitives::cluster::ClusterHandle;
use crate::primitives::options::with_options;
use crate::probes::http_from::Vantage;
use crate::probes::spec::{DnsSpec, HttpSpec, TcpSpec};
use crate::probes::until::{UntilOptions, UntilResult};
use crate::probes::{self, ProbeResult, ProbeSpec};
use rhai::{Dynamic, Engine, EvalAltResult, Map, Module, NativeCallContext, Position};
use serde_json::Value;
use std::sync::Arc;

pub fn register(engine: &mut Engine, session: &Arc<Session>) {
    let mut module = Module::new();

    let s = session.clone();
    with_options!(
        set_into_module(&mut module),
        "http",
        ["url: &str"],
        "options: Map",
        "Map",
        [
            "/// One HTTP(S) GET of `url`. Options: `host` (Host header to send),",
            "/// `resolve` (connect to this IP or IP:port instead of resolving the URL's host,",
            "/// like curl's --resolve), `expect_status` (code or array; default any 2xx/3xx),",
            "/// `expect_body` (text the body must contain), `timeout_ms` (default 5000),",
            "/// `tls_insecure` (accept any certificate). Returns",
            "/// `#{ ok, status, latency_ms, body, error, error_kind, address }`; a failure is",
            "/// `ok: false` with `error` naming the target and the cause, never a throw.",
            "///",
            "/// ```rhai",
            "/// let r = probe::http(\"http://old.mycompany.internal/\",",
            "///     #{ host: \"app1.app1-ns\", resolve: \"10.1.2.3\", expect_body: \"Hello\" });",
            "/// if !r.ok { throw r.error; }",
            "/// ```"
        ],
        [s],
        |ctx, url: &str; options| {
            let spec = |o: &_| HttpSpec::new(url, o).map(ProbeSpec::Http);
            one_shot_of(&ctx, &s, "probe::http", options, spec)
        }
    );
    let s = session.clone();
    with_options!(
        set_into_module(&mut module),
        "tcp",
        ["target: &str"],
        "options: Map",
        "Map",
        [
            "/// Connects to `\"host:port\"` (option `timeout_ms`, default 5000). Returns",
            "/// `#{ ok, latency_ms, error, error_kind, address }`.",
            "///",
            "/// ```rhai",
            "/// probe::tcp(\"10.1.2.3:443\", #{ timeout_ms: 2000 })",
            "/// ```"
        ],
        [s],
        |ctx, target: &str; options| {
            let spec = |o: &_| TcpSpec::new(target, o).map(ProbeSpec::Tcp);
            one_shot_of(&ctx, &s, "probe::tcp", options, spec)
        }
    );
    let s = session.clone();
    with_options!(
        set_into_module(&mut module),
        "dns",
        ["name: &str", "type: &str"],
        "options: Map",
        "Map",
        [
            "/// Looks up `name`'s records of `type` (A, AAAA, CNAME, TXT, ...). Options:",
            "/// `nameserver` (IP or IP:port to ask; without it the system resolver answers,",
            "/// A and AAAA only), `expect` (a value or array the answer must contain),",
            "/// `timeout_ms`. Returns `#{ ok, status, answers, body, latency_ms, error, address }`",
            "/// where `status` is the response code (\"NOERROR\", \"NXDOMAIN\", ...).",
            "///",
            "/// ```rhai",
            "/// probe::dns(\"old.mycompany.internal\", \"A\", #{ nameserver: \"10.0.0.2\", expect: \"10.1.2.3\" })",
            "/// ```"
        ],
        [s],
        |ctx, name: &str, rtype: &str; options| {
            let spec = |o: &serde_json::Map<String, Value>| {
                let mut o = o.clone();
                o.insert("type".into(), Value::String(rtype.to_owned()));
                DnsSpec::new(name, &o).map(ProbeSpec::Dns)
            };
            one_shot_of(&ctx, &s, "probe::dns", options, spec)
        }
    );

    let s = session.clone();
    with_options!(
        set_into_module(&mut module),
        "until",
        ["spec: Map"],
        "options: Map",
        "Map",
        [
            "/// Probes `spec` every `interval_ms` (default 1000) until `successes` (default 1)",
            "/// consecutive successes, and returns the last result with `attempts`. After",
            "/// `timeout_s` (default 60) it throws, showing the last failure. A spec is a map",
            "/// naming one probe plus its options: `#{ http: url, host, resolve, expect_status,",
            "/// expect_body, timeout_ms, tls_insecure }`, `#{ tcp: \"host:port\", timeout_ms }` or",
            "/// `#{ dns: name, type, nameserver, expect, timeout_ms }`. Ctrl-C ends the wait.",
            "/// Under `ferry plan` it is noted, not awaited: `#{ ok: true, planned: true, attempts: 0 }`.",
            "///",
            "/// ```rhai",
            "/// probe::until(#{ http: \"http://old.mycompany.internal/\", host: \"app1.app1-ns\",",
            "///     expect_status: 200 }, #{ successes: 3, timeout_s: 120 });",
            "/// ```",
        ],
        [s],
        |ctx, spec: Map; options| until(&ctx, &s, spec, options.clone())
    );
    let s = session.clone();
    with_options!(
        set_into_module(&mut module),
        "http_from",
        ["cluster: Cluster", "namespace: &str", "pod: &str", "url: &str"],
        "options: Map",
        "Map",
        [
            "/// The HTTP probe run from inside a pod through exec (curl if the container has",
            "/// it, wget otherwise): the vantage point of that pod, for names only its cluster",
            "/// resolves (`app1.app1-ns`). Options as `probe::http`, plus `container`.",
            "///",
            "/// ```rhai",
            "/// let old = cluster(\"old\");",
            "/// probe::http_from(old, \"app2-ns\", app2_pod, \"http://app1.app1-ns/\", #{ expect_body: \"Hello\" })",
            "/// ```",
        ],
        [s],
        |ctx, cluster: ClusterHandle, namespace: &str, pod: &str, url: &str; options| {
            http_from(&ctx, &s, cluster.inner.as_ref(), namespace, pod, url, options.clone())
        }
    );

    engine.register_static_module("probe", module.into());
    allow_until_after_path(engine);
}

/// `until` is a Rhai keyword (`do { } until x;`), so `probe::until` would not
/// parse. Right after `::` it can only be a function name: the tokenizer
/// hands it to the parser as an identifier there, and nowhere else.
fn allow_until_after_path(engine: &mut Engine) {
    use rhai::Token;
    use std::cell::Cell;
    thread_local! {
        static AFTER_PATH: Cell<bool> = const { Cell::new(false) };
    }
    #[allow(deprecated)]
    engine.on_parse_token(|token, _pos, _state| {
        let after_path = AFTER_PATH.with(|f| f.replace(matches!(token, Token::DoubleColon)));
        match token {
            Token::Until if after_path => Token::Identifier(Box::new("until".into())),
            other => other,
        }
    });
}

/// A spec map as JSON, for `crate::probes` to parse.
pub(crate) fn json_map(
    ctx: &NativeCallContext,
    map: Map,
) -> Result<serde_json::Map<String, Value>, Box<EvalAltResult>> {
    match to_json(&Dynamic::from_map(map)) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Ok(serde_json::Map::new()),
        Err(e) => Err(runtime_error(e, ctx.call_position())),
    }
}

/// A spec map (`#{ http: ... }`) parsed, or an error naming the primitive.
///
/// `from: #{ cluster, namespace, pod, container? }` fires an HTTP probe from
/// inside that pod (its cluster's DNS and Services), as `probe::http_from` does.
pub(crate) fn parse_spec(
    ctx: &NativeCallContext,
    primitive: &str,
    mut spec: Map,
) -> Result<ProbeSpec, Box<EvalAltResult>> {
    let from = spec.remove("from");
    let parsed = ProbeSpec::from_map(&json_map(ctx, spec)?).map_err(|e| bad(ctx, primitive, e))?;
    let Some(from) = from else { return Ok(parsed) };
    let http = match parsed {
        ProbeSpec::Http(http) => http,
        // A TCP connect from the pod, through the same exec and loop.
        ProbeSpec::Tcp(tcp) => {
            crate::probes::spec::HttpSpec::tcp_connect(&tcp).map_err(|e| bad(ctx, primitive, e))?
        }
        _ => {
            return Err(bad(
                ctx,
                primitive,
                "`from` applies to http and tcp probes only".into(),
            ));
        }
    };
    let Some(from) = from.try_cast::<Map>() else {
        return Err(bad(
            ctx,
            primitive,
            "`from` must be #{ cluster, namespace, pod, container? }".into(),
        ));
    };
    let text = |key: &str| from.get(key).and_then(|v| v.clone().into_string().ok());
    let (Some(cluster), Some(namespace), Some(pod)) = (
        from.get("cluster")
            .and_then(|c| c.clone().try_cast::<ClusterHandle>()),
        text("namespace"),
        text("pod"),
    ) else {
        return Err(bad(
            ctx,
            primitive,
            "`from` needs cluster (a cluster() handle), namespace and pod".into(),
        ));
    };
    if let Some(unknown) = from
        .keys()
        .find(|k| !["cluster", "namespace", "pod", "container"].contains(&k.as_str()))
    {
        return Err(bad(
            ctx,
            primitive,
            format!("`from` has an unknown key `{unknown}`"),
        ));
    }
    let exec: Arc<dyn crate::ports::exec::PodExec> = cluster.inner.clone();
    Ok(ProbeSpec::HttpFrom(
        http,
        crate::probes::spec::PodVantage {
            exec,
            namespace,
            pod,
            container: text("container"),
            tool: Default::default(),
        },
    ))
}

pub(crate) fn bad(ctx: &NativeCallContext, primitive: &str, message: String) -> Box<EvalAltResult> {
    runtime_error(format!("{primitive}: {message}"), ctx.call_position())
}

/// Runs `work` on the runtime from the engine thread; Ctrl-C ends it.
pub(crate) fn block_on<T>(
    session: &Session,
    pos: Position,
    work: impl std::future::Future<Output = T>,
) -> Result<T, Box<EvalAltResult>> {
    session.check_cancelled(pos)?;
    session
        .block_on(work)
        .ok_or_else(|| Control::Cancelled.raise(pos))
}

fn outcome_map(outcome: &ProbeResult) -> Dynamic {
    from_json(&outcome.to_json())
}

/// A one-shot probe whose spec `spec` builds from the script's options.
fn one_shot_of(
    ctx: &NativeCallContext,
    session: &Session,
    what: &str,
    options: &Map,
    spec: impl FnOnce(&serde_json::Map<String, Value>) -> Result<ProbeSpec, String>,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let spec = spec(&json_map(ctx, options.clone())?).map_err(|e| bad(ctx, what, e))?;
    one_shot(ctx, session, spec)
}

fn one_shot(
    ctx: &NativeCallContext,
    session: &Session,
    spec: ProbeSpec,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let outcome = block_on(session, ctx.call_position(), probes::run(&spec, None))?;
    Ok(outcome_map(&outcome))
}

fn until(
    ctx: &NativeCallContext,
    session: &Session,
    spec: Map,
    options: Map,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let pos = ctx.call_position();
    let spec = parse_spec(ctx, "probe::until", spec)?;
    let options = UntilOptions::from_map(&json_map(ctx, options)?)
        .map_err(|e| bad(ctx, "probe::until", e))?;
    let total_ms = options.timeout.as_millis() as u64;
    if let Some(plan) = &session.plan {
        // What it would prove is known after the run.
        plan.note(crate::plan::Entry::Wait {
            what: format!(
                "probe::until {}: {} success(es) in a row within {}",
                spec.target(),
                options.successes,
                crate::events::format_duration(total_ms)
            ),
            now: None,
        });
        let mut map = Map::new();
        map.insert("ok".into(), Dynamic::TRUE);
        map.insert("planned".into(), Dynamic::TRUE);
        map.insert("attempts".into(), Dynamic::from(0 as rhai::INT));
        return Ok(Dynamic::from_map(map));
    }
    let countdown = Countdown::start(
        &session.events,
        format!("probe::until {}", spec.target()),
        options.timeout,
    );
    let progress = |_: &ProbeResult, _: u32| countdown.progress();
    // Inside a guard with `stop_early`, its breach ends the wait too.
    let breach = crate::engine::frames::breach();
    let result = block_on(session, pos, async {
        let until = probes::until::until(&spec, options, progress);
        match &breach {
            None => Some(until.await),
            Some(breach) => tokio::select! {
                done = until => Some(done),
                _ = crate::engine::frames::breached(breach) => None,
            },
        }
    });
    drop(countdown);
    let Some(result) = result? else {
        return Err(runtime_error(
            format!(
                "probe::until {} stopped: the guard around it broke its limits",
                spec.target()
            ),
            pos,
        ));
    };
    match result {
        UntilResult::Held { last, attempts } => {
            let mut map = outcome_map(&last).try_cast::<Map>().unwrap_or_default();
            map.insert("attempts".into(), Dynamic::from(attempts as rhai::INT));
            Ok(Dynamic::from_map(map))
        }
        UntilResult::TimedOut {
            streak,
            attempts,
            last_failure,
        } => {
            let why = match &last_failure {
                Some(f) => format!(
                    "; last failure: {}",
                    f.error.as_deref().unwrap_or("unknown")
                ),
                None => String::new(),
            };
            let message = format!(
                "probe::until {}: {streak} of {} consecutive successes after {} ({attempts} attempts){why}",
                spec.target(),
                options.successes,
                crate::events::format_duration(total_ms),
            );
            let mut details = Map::new();
            details.insert("attempts".into(), Dynamic::from(attempts as rhai::INT));
            details.insert("successes".into(), Dynamic::from(streak as rhai::INT));
            if let Some(f) = &last_failure {
                details.insert("last".into(), outcome_map(f));
            }
            Err(host_error("probe", message, details, pos))
        }
    }
}

/// `probe::http_from(cluster, ns, pod, url, opts)`, ready to be registered
/// where the cluster handle type lives: runs the HTTP probe `url` + `options`
/// (the `probe::http` options plus `container`) from inside `ns/pod` through
/// `exec` (curl or wget in the container). Returns the same map as
/// `probe::http`; throws a `probe` host error when the pod cannot run it
/// (unreachable, no shell, neither curl nor wget).
pub fn http_from(
    ctx: &NativeCallContext,
    session: &Session,
    exec: &dyn PodExec,
    namespace: &str,
    pod: &str,
    url: &str,
    options: Map,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let pos = ctx.call_position();
    let mut options = json_map(ctx, options)?;
    let container = match options.remove("container") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) => Some(c),
        Some(other) => {
            return Err(bad(
                ctx,
                "probe::http_from",
                format!("`container` must be a string, got {other}"),
            ));
        }
    };
    let spec = HttpSpec::new(url, &options).map_err(|e| bad(ctx, "probe::http_from", e))?;
    let at = Vantage {
        namespace,
        pod,
        container: container.as_deref(),
    };
    match block_on(session, pos, probes::http_from::http_from(exec, at, &spec))? {
        Ok(outcome) => Ok(outcome_map(&outcome)),
        Err(message) => {
            let mut details = Map::new();
            details.insert("namespace".into(), Dynamic::from(namespace.to_owned()));
            details.insert("pod".into(), Dynamic::from(pod.to_owned()));
            Err(host_error("probe", message, details, pos))
        }
    }
}
