//! Script values in and out of the `dns` methods: option maps (with unknown
//! keys refused, so that a typo is an error rather than a silently ignored
//! option), record types and values canonicalized the way the port compares
//! them, and record sets as the maps scripts see.

use super::Res;
use crate::adapters::dns_wire::parse_server;
use crate::engine::control::runtime_error;
use crate::ports::dns::{RecordSet, canonical_value, record_type};
use rhai::{Array, Dynamic, INT, Map, Position};
use std::net::SocketAddr;
use std::time::Duration;

pub(super) fn rtype(rtype: &str, pos: Position) -> Res<String> {
    record_type(rtype)
        .map(|t| t.to_string())
        .map_err(|e| runtime_error(e, pos))
}

pub(super) fn values(rtype: &str, values: Dynamic, pos: Position) -> Res<Vec<String>> {
    let t = record_type(rtype).map_err(|e| runtime_error(e, pos))?;
    let items: Vec<Dynamic> = if values.is_array() {
        values.cast::<Array>()
    } else if values.is_string() {
        vec![values]
    } else {
        return Err(runtime_error(
            format!(
                "record values must be a string or an array of strings, got {}",
                values.type_name()
            ),
            pos,
        ));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Some(text) = item.clone().into_string().ok() else {
            return Err(runtime_error(
                format!("record values must be strings, got {}", item.type_name()),
                pos,
            ));
        };
        out.push(canonical_value(t, &text).map_err(|e| runtime_error(e, pos))?);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

pub(super) fn record_map(set: &RecordSet) -> Map {
    let mut map = Map::new();
    // Shown as the script wrote it: punycode labels in Unicode.
    map.insert("name".into(), super::mutate::shown(&set.name).into());
    map.insert("type".into(), set.rtype.clone().into());
    map.insert("ttl".into(), Dynamic::from(set.ttl as INT));
    map.insert(
        "values".into(),
        Dynamic::from_array(set.values.iter().cloned().map(Dynamic::from).collect()),
    );
    map
}

pub(super) use crate::primitives::options::{known_keys, opt_bool, opt_str};

/// Seconds up to a day, as the DNS methods take them.
pub(super) fn opt_seconds(map: &Map, key: &str, pos: Position) -> Res<Option<Duration>> {
    crate::primitives::options::opt_seconds(map, key, 86_400.0, pos)
}

pub(super) fn nameserver(options: &Map, pos: Position) -> Res<Option<SocketAddr>> {
    opt_str(options, "nameserver", pos)?
        .map(|ns| parse_server(&ns, 53).map_err(|e| runtime_error(e, pos)))
        .transpose()
}
