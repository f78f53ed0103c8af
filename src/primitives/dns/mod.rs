//! `dns(spec)`: a DNS zone, and its methods `get`, `list`, `resolve`,
//! `upsert`, `delete` and `wait_visible`.
//!
//! ```rhai
//! let zone = dns(#{ provider: "clouddns", project: "p", zone: "mycompany-internal" });
//! step("old record", || zone.upsert("old", "A", ["192.168.100.16"], 60));
//! zone.wait_visible("old", "A", ["192.168.100.16"]);
//! ```
//!
//! Everything provider-specific sits behind the `DnsZone` port
//! (`adapters::clouddns`, `adapters::rfc2136`). Here, once for both:
//! names relative to the zone, ownership records (`dns/ownership.rs`),
//! idempotent plans re-read after a conflict, retries of transient errors
//! with backoff, Ctrl-C, waits with progress, and errors that name the zone,
//! the record and the server's message. Secrets are read by the adapters
//! from the environment or a file; the spec is never journaled.
//!
//! | Rhai name | file | what it reaches |
//! |---|---|---|
//! | `dns(spec)`, `dns(name)` (a profile's spec) | `spec.rs` (the map), `open.rs` | `CloudDnsZone::open` (reads the managed zone) or `Rfc2136Zone::new` (no request) |
//! | `zone.get`, `zone.list` | here, in `register()` | `DnsZone::get` / `list`: the Cloud DNS API, or a query / AXFR to the RFC 2136 server |
//! | `zone.resolve` | `resolve.rs` | `Lookup::query`: a real DNS query, never the provider's API |
//! | `zone.upsert`, `zone.delete` | `mutate.rs`, `ownership.rs` | `DnsZone::get` + `apply` (Cloud DNS change, RFC 2136 UPDATE), then `change_done` while a Cloud DNS change is pending (`wait.rs`) |
//! | `zone.wait_visible` | `wait.rs` | `Lookup::query` at the authoritative server or a given nameserver; the Cloud DNS API otherwise |
//!
//! Shared by all of them: `args.rs` (script values in and out) and
//! `retry.rs` (blocking on the port, Ctrl-C, retries of transient errors).
//! Registration stays in this file, in one place, because its order and doc
//! comments are what `ferry docs` prints.

mod args;
mod mutate;
mod open;
mod ownership;
mod resolve;
mod retry;
mod spec;
mod wait;

use crate::engine::Session;
use crate::engine::control::{Control, host_error, runtime_error};
use crate::ports::dns::{DnsZone, Lookup, absolute_name};
use crate::primitives::options::with_options;
use args::{known_keys, opt_str, record_map, rtype};
use mutate::{delete, upsert};
use open::open;
use resolve::resolve;
use retry::{Stop, retrying};
use rhai::{
    Array, Dynamic, Engine, EvalAltResult, FuncRegistration, INT, Map, NativeCallContext, Position,
};
use std::sync::Arc;
use wait::wait_visible;

/// The `DnsZone` value scripts hold.
#[derive(Clone)]
pub struct Zone(Arc<ZoneInner>);

struct ZoneInner {
    port: Arc<dyn DnsZone>,
    lookup: Arc<dyn Lookup>,
    /// Written into ownership records: the run id or the spec's `owner`.
    owner: String,
}

type Res<T> = Result<T, Box<EvalAltResult>>;

impl Zone {
    fn port(&self) -> &dyn DnsZone {
        &*self.0.port
    }

    /// A failure as a catchable map naming zone, record and server message.
    fn error(&self, op: &str, record: &str, stop: Stop, pos: Position) -> Box<EvalAltResult> {
        match stop {
            Stop::Cancelled => Control::Cancelled.raise(pos),
            Stop::Dns(e) => {
                let mut details = Map::new();
                details.insert("zone".into(), self.port().label().to_owned().into());
                details.insert("record".into(), record.to_owned().into());
                details.insert("kind".into(), e.kind_name().into());
                if let Some(status) = e.status {
                    details.insert("status".into(), Dynamic::from(status as INT));
                }
                if let Some(rcode) = &e.rcode {
                    details.insert("rcode".into(), rcode.clone().into());
                }
                host_error(
                    "dns",
                    format!("{}: {op} `{record}`: {}", self.port().label(), e.message),
                    details,
                    pos,
                )
            }
        }
    }

    fn name(&self, name: &str, pos: Position) -> Res<String> {
        absolute_name(name, self.port().origin())
            .map_err(|e| runtime_error(format!("{}: {e}", self.port().label()), pos))
    }
}

pub fn register(engine: &mut Engine, session: &Arc<Session>) {
    engine.register_type_with_name::<Zone>("DnsZone");
    engine.register_get("origin", |z: &mut Zone| z.port().origin().to_owned());
    engine.register_fn("to_string", |z: &mut Zone| z.port().label().to_owned());
    engine.register_fn("to_debug", |z: &mut Zone| z.port().label().to_owned());

    let s = session.clone();
    FuncRegistration::new("dns")
        .with_params_info(["spec: Map", "DnsZone"])
        .with_comments([
            "/// Opens a DNS zone. Cloud DNS (Application Default Credentials):",
            "/// `#{ provider: \"clouddns\", project, zone, endpoint?, credentials?: \"adc\"|\"anonymous\" }`.",
            "/// RFC 2136 (BIND, Knot, PowerDNS): `#{ provider: \"rfc2136\", server: \"IP[:PORT]\", zone,",
            "/// tsig_name, tsig_secret_env | tsig_secret_file, tsig_algorithm?: \"hmac-sha256\" }`.",
            "/// Both: `owner` (default: the run id) names who owns the records ferry creates;",
            "/// `timeout` (seconds, default 5) bounds each request. Secrets are never read from the script.",
            "///",
            "/// ```rhai",
            "/// let zone = dns(#{ provider: \"rfc2136\", server: \"10.0.0.53\", zone: \"mycompany.internal.\",",
            "///                  tsig_name: \"ferry\", tsig_secret_env: \"FERRY_TSIG_SECRET\" });",
            "/// ```",
        ])
        .register_into_engine(engine, move |ctx: NativeCallContext, spec: Map| {
            open(&s, &spec, ctx.call_position())
        });
    let s = session.clone();
    FuncRegistration::new("dns")
        .with_params_info(["name: &str", "DnsZone"])
        .with_comments([
            "/// Opens the zone the environment profile names `name` (`[dns.<name>]` in",
            "/// ferry.toml, `--env FILE`, or the lab's `private` / `clouddns` with `--lab`).",
            "///",
            "/// ```rhai",
            "/// let zone = dns(\"private\");",
            "/// ```",
        ])
        .register_into_engine(engine, move |ctx: NativeCallContext, name: &str| {
            let pos = ctx.call_position();
            let spec = s
                .settings
                .environment
                .zone(name)
                .map_err(|e| runtime_error(e, pos))?;
            let spec: Map = spec
                .into_iter()
                .map(|(k, v)| (k.into(), crate::engine::value::from_json(&v)))
                .collect();
            open(&s, &spec, pos)
        });

    let s = session.clone();
    FuncRegistration::new("get")
        .with_params_info(["zone: DnsZone", "name: &str", "type: &str", "Dynamic"])
        .with_comments([
            "/// The record set `name` (relative to the zone or absolute) of `type`:",
            "/// `#{ name, type, ttl, values }`, or `()` if there is none. Allowed anywhere.",
        ])
        .register_into_engine(
            engine,
            move |ctx: NativeCallContext, zone: &mut Zone, name: &str, t: &str| -> Res<Dynamic> {
                let pos = ctx.call_position();
                let name = zone.name(name, pos)?;
                let t = rtype(t, pos)?;
                let found = retrying(&s, || zone.port().get(&name, &t)).map_err(|stop| {
                    zone.error("get", &format!("{} {t}", mutate::shown(&name)), stop, pos)
                })?;
                Ok(found.map_or(Dynamic::UNIT, |r| Dynamic::from_map(record_map(&r))))
            },
        );

    let s = session.clone();
    let list = move |ctx: &NativeCallContext, zone: &Zone, filter: &Map| -> Res<Array> {
        let pos = ctx.call_position();
        known_keys(filter, "zone.list", &["name", "type"], pos)?;
        let name = opt_str(filter, "name", pos)?
            .map(|n| zone.name(&n, pos))
            .transpose()?;
        let t = opt_str(filter, "type", pos)?
            .map(|t| rtype(&t, pos))
            .transpose()?;
        if t.is_some() && name.is_none() {
            return Err(runtime_error("list: `type` needs `name` too", pos));
        }
        let what = format!(
            "{} {}",
            name.as_deref().unwrap_or("*"),
            t.as_deref().unwrap_or("*")
        );
        let sets = retrying(&s, || zone.port().list(name.as_deref(), t.as_deref()))
            .map_err(|stop| zone.error("list", &what, stop, pos))?;
        Ok(sets
            .iter()
            .map(|r| Dynamic::from_map(record_map(r)))
            .collect())
    };
    with_options!(
        register_into_engine(engine),
        "list",
        ["zone: DnsZone"],
        "filter: Map",
        "Array",
        [
            "/// Record sets of the zone, optionally only `#{ name, type }` (type needs name).",
            "/// RFC 2136 lists through a zone transfer (AXFR) the TSIG key must be allowed.",
        ],
        [list],
        |ctx, zone: &mut Zone; filter| list(&ctx, zone, filter)
    );

    let s = session.clone();
    with_options!(
        register_into_engine(engine),
        "resolve",
        ["zone: DnsZone", "name: &str", "type: &str"],
        "options: Map",
        "Dynamic",
        [
            "/// A real DNS query through the system's resolver (/etc/resolv.conf), or to",
            "/// `#{ nameserver: \"IP[:PORT]\" }` (recursion desired):",
            "/// `#{ name, type, ttl, values }` or `()`.",
        ],
        [s],
        |ctx, zone: &mut Zone, name: &str, t: &str; options| {
            resolve(&s, zone, name, t, options, ctx.call_position())
        }
    );
    let s = session.clone();
    with_options!(
        register_into_engine(engine),
        "upsert",
        [
            "zone: DnsZone",
            "name: &str",
            "type: &str",
            "values: Dynamic",
            "ttl: INT"
        ],
        "options: Map",
        "Map",
        [
            "/// Makes `name`/`type` hold exactly `values` (a string or an array) with `ttl`,",
            "/// replacing the record set atomically, with an ownership record. Only inside a",
            "/// step; idempotent. Refuses a record ferry does not own (the error names the",
            "/// owner) unless `#{ force: true }`. Returns `#{ name, type, ttl, values, changed }`.",
            "///",
            "/// ```rhai",
            "/// step(\"old record\", || zone.upsert(\"old\", \"A\", [ip], 60));",
            "/// ```",
        ],
        [s],
        |ctx, zone: &mut Zone, name: &str, t: &str, vals: Dynamic, ttl: INT; options| {
            upsert(&ctx, &s, zone, (name, t, vals, ttl), options)
        }
    );
    let s = session.clone();
    with_options!(
        register_into_engine(engine),
        "delete",
        ["zone: DnsZone", "name: &str", "type: &str"],
        "options: Map",
        "bool",
        [
            "/// Removes `name`/`type` and its ownership record if present; true if it",
            "/// removed a record. Only inside a step; idempotent. Refuses a record ferry",
            "/// does not own unless `#{ force: true }`.",
        ],
        [s],
        |ctx, zone: &mut Zone, name: &str, t: &str; options| {
            delete(&ctx, &s, zone, name, t, options)
        }
    );
    let s = session.clone();
    with_options!(
        register_into_engine(engine),
        "wait_visible",
        [
            "zone: DnsZone",
            "name: &str",
            "type: &str",
            "values: Dynamic"
        ],
        "options: Map",
        "Map",
        [
            "/// Polls until `name`/`type` answers exactly `values` (`[]`: until it is gone),",
            "/// asking the zone's authoritative server (RFC 2136) or the Cloud DNS API, or",
            "/// `options.nameserver` (`\"IP[:PORT]\"`, may be a resolver: the query asks for",
            "/// recursion). Times out after `options.timeout` seconds (default 120) with the",
            "/// last answer seen; `options.interval` bounds the time between looks.",
        ],
        [s],
        |ctx, zone: &mut Zone, name: &str, t: &str, vals: Dynamic; options| {
            wait_visible(&s, zone, name, t, vals, options, ctx.call_position())
        }
    );
}
