//! Turning script arguments into Rust values: the options maps every
//! cluster function takes (seconds, strings, label selectors, unknown keys
//! refused) and objects into JSON, so each function rejects bad input with
//! the same messages.

use super::handle::Res;
use crate::engine::control::runtime_error;
use crate::engine::value::to_json;
use rhai::{Dynamic, Map, Position};
use serde_json::Value;
use std::time::Duration;

pub(super) const DEFAULT_WAIT: u64 = 300;
pub(super) const DEFAULT_ROLLOUT: u64 = 600;
pub(super) const DEFAULT_DELETE_WAIT: u64 = 120;

pub(super) fn json(value: &Dynamic, what: &str, pos: Position) -> Res<Value> {
    to_json(value).map_err(|e| runtime_error(format!("{what}: {e}"), pos))
}

pub(super) fn secs(opts: &Map, key: &str, default: u64, pos: Position) -> Res<Duration> {
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

pub(super) fn opt_str(opts: &Map, key: &str, pos: Position) -> Res<Option<String>> {
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

pub(super) fn check_options(opts: &Map, known: &[&str], pos: Position) -> Res<()> {
    if let Some(k) = opts.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(runtime_error(
            format!("unknown option `{k}`; known: {}", known.join(", ")),
            pos,
        ));
    }
    Ok(())
}

/// `labels` as a selector string: `"app=a"` or `#{ app: "a" }`.
pub(super) fn selector(opts: &Map, key: &str, pos: Position) -> Res<Option<String>> {
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
