//! `guard(spec, options, || { ... })`: runs the closure while a background
//! prober fires `spec` at `options.rate` requests per second, each on a new
//! connection, then stops it and judges the statistics: requests, failures,
//! error kinds, latency p50/p99/max and the longest run of consecutive
//! failures. Inside a step they are journaled in the step's data (`guard`);
//! they also reach the event stream. If the limits (`max_failures`,
//! `max_gap_ms`) were broken, the guard fails with the statistics even if
//! the closure succeeded. The prober lives in `crate::probes::guard`.
//!
//! A spec with `from:` (a pod) is probed from inside that pod by one
//! long-lived exec running the probe loop (`crate::probes::stream`), not
//! one exec per probe: the statistics then carry `stream` (sessions opened,
//! breaks, the longest time without a stream), and a pod left without a
//! working stream for longer than `max_gap_ms` (default 2s) fails the guard
//! as a vantage failure.

use super::probe::{block_on, json_map, parse_spec};
use crate::engine::control::{host_error, runtime_error};
use crate::engine::session::Mode;
use crate::engine::value::from_json;
use crate::engine::{Session, frames};
use crate::events::Event;
use crate::probes::guard::{GuardOptions, Prober};
use rhai::{Dynamic, Engine, EvalAltResult, FnPtr, FuncRegistration, Map, NativeCallContext};
use std::sync::Arc;

pub fn register(engine: &mut Engine, session: &Arc<Session>) {
    let s = session.clone();
    FuncRegistration::new("guard")
        .with_params_info(["spec: Map", "options: Map", "body: FnPtr", "Map"])
        .with_comments([
            "/// Runs `body` while probing `spec` (a probe spec, as for `probe::until`) at",
            "/// `options.rate` requests per second (default 20), each on a new connection.",
            "/// Then stops and returns the statistics: `requests`, `failures`, `error_kinds`,",
            "/// `latency_ms` (p50, p99, max of successes), `longest_failure_ms` (first failure",
            "/// of a run to the next success), with the body's result as `value`. Inside a",
            "/// step they are journaled in the step's data under `guard`. If more than",
            "/// `max_failures` (default 0) failed, or failures lasted longer than `max_gap_ms`",
            "/// (default: no limit), the guard fails showing the statistics; with",
            "/// `stop_early: true` the body's sleeps end as soon as that happens. Under `ferry",
            "/// plan` nothing is probed: the body runs and the result is",
            "/// `#{ planned: true, requests: 0, failures: 0, value }`.",
            "///",
            "/// ```rhai",
            "/// step(\"flip app1\", || guard(#{ http: \"http://app1.app1-ns/\", resolve: ip },",
            "///     #{ rate: 50, max_failures: 0 }, || flip_external_name(\"app1\")));",
            "/// ```",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext, spec: Map, options: Map, body: FnPtr| {
                guard(&ctx, &s, spec, options, body)
            },
        );
}

fn guard(
    ctx: &NativeCallContext,
    session: &Session,
    spec: Map,
    options: Map,
    body: FnPtr,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let pos = ctx.call_position();
    session.check_cancelled(pos)?;
    let spec = parse_spec(ctx, "guard", spec)?;
    let options = GuardOptions::from_map(&json_map(ctx, options)?)
        .map_err(|e| runtime_error(format!("guard: {e}"), pos))?;
    if let Some(plan) = &session.plan {
        // Known after the run: the plan notes what would watch the body
        // and runs the body (its writes are planned, its waits noted).
        plan.note(crate::plan::Entry::Guard {
            target: spec.target(),
            rate: options.rate,
            max_failures: options.limits.max_failures,
        });
        let value = body.call_within_context::<Dynamic>(ctx, ())?;
        let mut map = Map::new();
        map.insert("planned".into(), Dynamic::TRUE);
        map.insert("requests".into(), Dynamic::from(0 as rhai::INT));
        map.insert("failures".into(), Dynamic::from(0 as rhai::INT));
        map.insert("value".into(), value);
        return Ok(Dynamic::from_map(map));
    }
    // An undo that flips live routing is watched like the flip it undoes;
    // the rest of a rollback only replays the script to collect undos.
    let undoing = session.mode == Mode::Rollback && frames::role() == Some(frames::Role::Undo);
    if session.mode != Mode::Run && !undoing {
        // Rollback replays the script to collect undos: nothing to watch.
        let value = body.call_within_context::<Dynamic>(ctx, ())?;
        let mut map = Map::new();
        map.insert("value".into(), value);
        return Ok(Dynamic::from_map(map));
    }

    let step = frames::current();
    let depth = frames::depth();
    let target = spec.target();
    session.events.emit(Event::GuardStarted {
        step: step.clone(),
        depth,
        target: target.clone(),
        rate: options.rate,
    });
    let events = session.events.clone();
    let (progress_step, progress_target) = (step.clone(), target.clone());
    let mut prober = Prober::start(
        session.spawner(),
        spec,
        options,
        move |requests, failures| {
            events.emit(Event::GuardProgress {
                step: progress_step.clone(),
                target: progress_target.clone(),
                requests,
                failures,
            })
        },
    )
    .map_err(|e| runtime_error(format!("guard: {e}"), pos))?;

    let breach: Option<frames::Breach> = options
        .stop_early
        .then(|| std::sync::Arc::new(prober.over_limit()) as frames::Breach);
    let (result, flipped) = frames::with_guard(|| {
        frames::with_breach(breach, || body.call_within_context::<Dynamic>(ctx, ()))
    });

    let stopped = block_on(session, pos, prober.stop());
    let end = match &stopped {
        Ok(end) => *end,
        Err(_) => prober.abort(),
    };
    let mut stats = prober.stats(end);
    stats.flip_ms = flipped.map(|at| prober.since_start(at).as_millis() as u64);
    let json = stats.to_json();
    session.ledger.annotate_guard(json.clone());
    let violations = stats.violations();
    session.events.emit(Event::GuardFinished {
        step,
        depth,
        target: target.clone(),
        ok: violations.is_empty(),
        summary: stats.summary(),
        stats: json.clone(),
    });
    stopped?;

    // The body's own failure (or a pause, or Ctrl-C) wins; the statistics
    // are recorded either way. Except where the guard cut the body short
    // (`stop_early`): its broken limits are why the body stopped.
    let cut_short = options.stop_early
        && !violations.is_empty()
        && result
            .as_ref()
            .is_err_and(|e| crate::engine::control::Control::of(e).is_none());
    let value = if cut_short { Dynamic::UNIT } else { result? };
    if !violations.is_empty() {
        let last = stats
            .last_error
            .as_deref()
            .map(|e| format!("; last error: {e}"))
            .unwrap_or_default();
        let message = format!(
            "guard on {target} broke its limits: {}. Statistics: {}{last}",
            violations.join("; "),
            stats.summary()
        );
        let details = from_json(&json).try_cast::<Map>().unwrap_or_default();
        return Err(host_error("guard", message, details, pos));
    }
    let mut map = from_json(&json).try_cast::<Map>().unwrap_or_default();
    map.insert("value".into(), value);
    Ok(Dynamic::from_map(map))
}
