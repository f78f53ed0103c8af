//! The options maps primitives take as their last argument, read the same
//! way everywhere: unknown keys are refused (a typo must not be ignored
//! silently), each wrong value is named with the type it had, and every
//! message has one format: ``unknown option `key` for what (known: a, b)``,
//! as the probe specs say it.

use crate::engine::control::runtime_error;
use rhai::{EvalAltResult, FLOAT, INT, Map, Position};
use std::time::Duration;

type Res<T> = Result<T, Box<EvalAltResult>>;

/// Registers a primitive twice, with and without its trailing options map,
/// because Rhai has no optional arguments: the short form runs the same
/// body with an empty map, so the two cannot drift apart. The doc comment
/// goes on the long form; the short form's says it takes every default.
///
/// ```ignore
/// with_options!(register_into_engine(engine), "list",
///     ["cluster: Cluster", "kind: &str"], "options: Map", "Array", [DOCS],
///     [s], |ctx, c: &mut ClusterHandle, kind: &str; opts| list(&s, &ctx, c, kind, opts));
/// ```
///
/// `[s]` lists what the body captures: each form moves its own clone of it.
/// The body sees `ctx` as the `NativeCallContext` and `opts` as `&Map`.
macro_rules! with_options {
    (
        $method:ident($target:expr), $name:literal,
        [$($info:literal),* $(,)?], $opts_info:literal, $ret:literal,
        [$($doc:literal),* $(,)?], [$($shared:ident),*],
        |$ctx:ident $(, $arg:ident : $ty:ty)*; $opts:ident| $body:expr
    ) => {{
        {
            $(let $shared = $shared.clone();)*
            rhai::FuncRegistration::new($name)
                .with_params_info([$($info,)* $opts_info, $ret])
                .with_comments([$($doc),*])
                .$method(
                    $target,
                    move |$ctx: rhai::NativeCallContext $(, $arg: $ty)*, $opts: rhai::Map| {
                        let $opts = &$opts;
                        $body
                    },
                );
        }
        {
            $(let $shared = $shared.clone();)*
            rhai::FuncRegistration::new($name)
                .with_params_info([$($info,)* $ret])
                .with_comments([concat!(
                    "/// `", $name, "` without `", $opts_info, "`: every option at its default."
                )])
                .$method($target, move |$ctx: rhai::NativeCallContext $(, $arg: $ty)*| {
                    let $opts = &rhai::Map::new();
                    $body
                });
        }
    }};
}
pub(crate) use with_options;

/// Refuses option keys `what` does not know.
pub fn known_keys(map: &Map, what: &str, allowed: &[&str], pos: Position) -> Res<()> {
    if let Some(key) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(runtime_error(
            format!(
                "unknown option `{key}` for {what} (known: {})",
                allowed.join(", ")
            ),
            pos,
        ));
    }
    Ok(())
}

/// A string option; absent or `()` is `None`.
pub fn opt_str(map: &Map, key: &str, pos: Position) -> Res<Option<String>> {
    match map.get(key) {
        None => Ok(None),
        Some(v) if v.is_unit() => Ok(None),
        Some(v) => v
            .clone()
            .into_string()
            .map(Some)
            .map_err(|t| runtime_error(format!("`{key}` must be a string, got {t}"), pos)),
    }
}

/// A number of seconds from 0 to `max`; absent or `()` is `None`.
pub fn opt_seconds(map: &Map, key: &str, max: f64, pos: Position) -> Res<Option<Duration>> {
    let Some(v) = map.get(key).filter(|v| !v.is_unit()) else {
        return Ok(None);
    };
    let secs = if let Some(i) = v.clone().try_cast::<INT>() {
        i as f64
    } else if let Some(f) = v.clone().try_cast::<FLOAT>() {
        f
    } else {
        return Err(runtime_error(
            format!("`{key}` must be a number of seconds, got {}", v.type_name()),
            pos,
        ));
    };
    if !(0.0..=max).contains(&secs) {
        return Err(runtime_error(
            format!("`{key}` must be 0 to {max} seconds, got {secs}"),
            pos,
        ));
    }
    Ok(Some(Duration::from_secs_f64(secs)))
}

/// A boolean option; absent is `false`.
pub fn opt_bool(map: &Map, key: &str, pos: Position) -> Res<bool> {
    match map.get(key) {
        None => Ok(false),
        Some(v) => v
            .as_bool()
            .map_err(|t| runtime_error(format!("`{key}` must be true or false, got {t}"), pos)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_options_map_names_the_unknown_key_and_the_known_ones_the_same_way() {
        let mut map = Map::new();
        map.insert("timeot".into(), 1_i64.into());
        let err = known_keys(
            &map,
            "cluster.wait",
            &["timeout", "interval"],
            Position::NONE,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("unknown option `timeot` for cluster.wait (known: timeout, interval)"),
            "{err}"
        );
        map.insert("timeout".into(), "soon".into());
        let err = opt_seconds(&map, "timeout", 60.0, Position::NONE)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`timeout` must be a number of seconds, got string"),
            "{err}"
        );
        map.insert("timeout".into(), 61_i64.into());
        assert!(opt_seconds(&map, "timeout", 60.0, Position::NONE).is_err());
        map.insert("timeout".into(), 1.5_f64.into());
        assert_eq!(
            opt_seconds(&map, "timeout", 60.0, Position::NONE).unwrap(),
            Some(Duration::from_millis(1500))
        );
    }
}
