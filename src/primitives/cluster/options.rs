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

pub(super) use crate::primitives::options::opt_str;

/// Seconds up to 366 days, `default` when absent.
pub(super) fn secs(opts: &Map, key: &str, default: u64, pos: Position) -> Res<Duration> {
    Ok(
        crate::primitives::options::opt_seconds(opts, key, 366.0 * 86_400.0, pos)?
            .unwrap_or(Duration::from_secs(default)),
    )
}

/// A wait's `options.interval`: 2 s unless set, never under 10 ms (a
/// tighter loop would only load the API server).
pub(super) fn interval(opts: &Map, pos: Position) -> Res<Duration> {
    Ok(secs(opts, "interval", 2, pos)?.max(Duration::from_millis(10)))
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
