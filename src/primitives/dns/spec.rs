//! The `dns(spec)` map, checked before anything is opened: which provider,
//! which zone, who owns the records, the request timeout, and each
//! provider's own keys. Parsing is apart from building the adapter
//! (`open.rs`) so that a wrong map fails without any I/O; the checks run in
//! a fixed order, which decides the error a map with several mistakes gets.
//!
//! Secrets are refused on sight: a script only says where a secret is (an
//! environment variable or a file) and the adapter reads it, so no secret
//! is ever written in a script.

use super::Res;
use super::args::{known_keys, opt_seconds, opt_str};
use super::ownership::valid_owner;
use crate::adapters::clouddns::CloudDnsSpec;
use crate::adapters::dns_wire::parse_server;
use crate::adapters::tsig::{SecretSource, TsigKey};
use crate::engine::control::runtime_error;
use rhai::{Map, Position};
use std::net::SocketAddr;
use std::time::Duration;

const COMMON_KEYS: &[&str] = &["provider", "zone", "owner", "timeout"];
const CLOUDDNS_KEYS: &[&str] = &["project", "endpoint", "credentials"];
const RFC2136_KEYS: &[&str] = &[
    "server",
    "tsig_name",
    "tsig_secret_env",
    "tsig_secret_file",
    "tsig_algorithm",
];

/// A checked `dns(spec)` map.
pub(super) struct ZoneSpec {
    pub zone: String,
    /// The spec's `owner`, or the run id.
    pub owner: String,
    /// Bounds each request (default 5 s).
    pub timeout: Duration,
    pub provider: Provider,
}

pub(super) enum Provider {
    CloudDns(CloudDnsSpec),
    Rfc2136 {
        server: SocketAddr,
        tsig: Option<TsigKey>,
    },
}

/// Checks `spec`; `run_id` is the owner when the spec names none.
pub(super) fn parse(spec: &Map, run_id: &str, pos: Position) -> Res<ZoneSpec> {
    for &secret in crate::ports::dns::SECRET_KEYS {
        if spec.contains_key(secret) {
            return Err(runtime_error(
                format!(
                    "dns spec: `{secret}` is not accepted: secrets are never read from the script; \
                     name an environment variable (tsig_secret_env) or a file (tsig_secret_file)"
                ),
                pos,
            ));
        }
    }
    let provider = opt_str(spec, "provider", pos)?.ok_or_else(|| {
        runtime_error(
            "dns spec needs `provider`: \"clouddns\" or \"rfc2136\"",
            pos,
        )
    })?;
    let zone = opt_str(spec, "zone", pos)?
        .filter(|z| !z.trim().is_empty())
        .ok_or_else(|| runtime_error("dns spec needs `zone`", pos))?;
    let owner = match opt_str(spec, "owner", pos)? {
        Some(owner) if valid_owner(&owner) => owner,
        Some(owner) => {
            return Err(runtime_error(
                format!("dns spec: owner `{owner}` may only hold letters, digits and . _ - : @"),
                pos,
            ));
        }
        None => run_id.to_owned(),
    };
    let timeout = opt_seconds(spec, "timeout", pos)?.unwrap_or(Duration::from_secs(5));
    let provider = match provider.as_str() {
        "clouddns" => {
            let allowed: Vec<&str> = COMMON_KEYS.iter().chain(CLOUDDNS_KEYS).copied().collect();
            known_keys(spec, "dns spec (clouddns)", &allowed, pos)?;
            let project = opt_str(spec, "project", pos)?
                .ok_or_else(|| runtime_error("dns spec (clouddns) needs `project`", pos))?;
            let anonymous = match opt_str(spec, "credentials", pos)?.as_deref() {
                None | Some("adc") => false,
                Some("anonymous") => true,
                Some(other) => {
                    return Err(runtime_error(
                        format!(
                            "dns spec (clouddns): credentials `{other}` is unknown: \"adc\" (default) or \"anonymous\""
                        ),
                        pos,
                    ));
                }
            };
            Provider::CloudDns(CloudDnsSpec {
                project,
                zone: zone.clone(),
                endpoint: opt_str(spec, "endpoint", pos)?,
                anonymous,
            })
        }
        "rfc2136" => {
            let allowed: Vec<&str> = COMMON_KEYS.iter().chain(RFC2136_KEYS).copied().collect();
            known_keys(spec, "dns spec (rfc2136)", &allowed, pos)?;
            let server = opt_str(spec, "server", pos)?.ok_or_else(|| {
                runtime_error("dns spec (rfc2136) needs `server`: \"IP[:PORT]\"", pos)
            })?;
            let server = parse_server(&server, 53)
                .map_err(|e| runtime_error(format!("dns spec (rfc2136): {e}"), pos))?;
            Provider::Rfc2136 {
                server,
                tsig: tsig(spec, pos)?,
            }
        }
        other => {
            return Err(runtime_error(
                format!("dns spec: provider `{other}` is unknown: \"clouddns\" or \"rfc2136\""),
                pos,
            ));
        }
    };
    Ok(ZoneSpec {
        zone,
        owner,
        timeout,
        provider,
    })
}

fn tsig(spec: &Map, pos: Position) -> Res<Option<TsigKey>> {
    let name = opt_str(spec, "tsig_name", pos)?;
    let env = opt_str(spec, "tsig_secret_env", pos)?;
    let file = opt_str(spec, "tsig_secret_file", pos)?;
    let algorithm =
        opt_str(spec, "tsig_algorithm", pos)?.unwrap_or_else(|| "hmac-sha256".to_owned());
    let secret = match (env, file) {
        (Some(var), None) => Some(SecretSource::Env(var)),
        (None, Some(path)) => Some(SecretSource::File(path.into())),
        (None, None) => None,
        (Some(_), Some(_)) => {
            return Err(runtime_error(
                "dns spec (rfc2136): give tsig_secret_env or tsig_secret_file, not both",
                pos,
            ));
        }
    };
    match (name, secret) {
        (Some(name), Some(secret)) => Ok(Some(TsigKey {
            name,
            algorithm,
            secret,
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(runtime_error(
            "dns spec (rfc2136): tsig_name needs tsig_secret_env or tsig_secret_file",
            pos,
        )),
        (None, Some(_)) => Err(runtime_error(
            "dns spec (rfc2136): a TSIG secret needs tsig_name",
            pos,
        )),
    }
}
