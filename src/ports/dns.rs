//! A DNS zone as the `dns` primitives need it: read record sets, apply an
//! atomic change, and say where the zone is served. The Cloud DNS adapter
//! (`adapters::clouddns`) and the RFC 2136 adapter (`adapters::rfc2136`)
//! implement it; ownership, idempotency and retries live once above them,
//! in `primitives::dns`.
//!
//! Records cross this port in one provider-neutral form ([`RecordSet`]):
//! absolute lower-case names with a trailing dot, upper-case types, and
//! values in presentation format, canonicalized by [`canonical_value`] so
//! that both providers and the script compare the same strings. A TXT value
//! is the text itself, without quotes.

/// Keys a DNS zone spec may never carry, in a script or a profile: secrets
/// come from an environment variable (`tsig_secret_env`) or a file
/// (`tsig_secret_file`), so they never reach a journal, a log or an error.
pub const SECRET_KEYS: &[&str] = &[
    "tsig_secret",
    "tsig_key",
    "secret",
    "key",
    "password",
    "token",
];

use hickory_proto::rr::{RData, RecordType};
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

/// One record set: every record of a name and type.
#[derive(Debug, Clone)]
pub struct RecordSet {
    /// Absolute, lower case, with the trailing dot.
    pub name: String,
    /// Upper case: `A`, `AAAA`, `CNAME`, `TXT`, ...
    pub rtype: String,
    pub ttl: u32,
    /// Canonical values, sorted.
    pub values: Vec<String>,
    /// The values exactly as the provider returned them, when it needs them
    /// back verbatim (Cloud DNS deletions must match the zone exactly).
    /// Not part of equality.
    pub native: Option<Vec<String>>,
}

impl PartialEq for RecordSet {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.rtype == other.rtype
            && self.ttl == other.ttl
            && self.values == other.values
    }
}

impl Eq for RecordSet {}

impl RecordSet {
    pub fn new(name: &str, rtype: &str, ttl: u32, mut values: Vec<String>) -> Self {
        values.sort();
        values.dedup();
        RecordSet {
            name: name.to_ascii_lowercase(),
            rtype: rtype.to_ascii_uppercase(),
            ttl,
            values,
            native: None,
        }
    }

    /// `name type` for messages.
    pub fn key(&self) -> String {
        format!("{} {}", self.name, self.rtype)
    }
}

/// An atomic change: remove `deletions` (which must match what the zone
/// holds now) and add `additions` (which must not exist unless deleted in
/// the same change). A zone that no longer matches what the change expects
/// answers [`DnsErrorKind::Conflict`], so the caller reads again and
/// re-plans instead of overwriting a concurrent change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub deletions: Vec<RecordSet>,
    pub additions: Vec<RecordSet>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.deletions.is_empty() && self.additions.is_empty()
    }
}

/// What a provider said after accepting a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Visible on the authoritative servers now (RFC 2136).
    Done,
    /// Accepted; its status must be polled until done (Cloud DNS change id).
    Pending { id: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsErrorKind {
    /// Worth retrying with backoff: timeouts, connection failures, 429, 5xx, SERVFAIL.
    Transient,
    /// Credentials or permissions: 401/403, TSIG failures, NOTAUTH or
    /// REFUSED from a server that serves the zone (the key or its policy).
    /// Never retried.
    Auth,
    /// The zone changed under us (409, 412, YXRRSET, NXRRSET): read again and re-plan.
    Conflict,
    /// The zone, name or request is wrong (404 zone, NOTZONE, NOTAUTH or
    /// REFUSED from a server that does not serve the zone, a change the
    /// server did not apply, bad input).
    Invalid,
    /// A wait ran out of time.
    Timeout,
}

/// A provider failure. `message` is the server's own words with its status
/// (HTTP status or RCODE); it never carries credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsError {
    pub kind: DnsErrorKind,
    pub message: String,
    /// HTTP status (Cloud DNS).
    pub status: Option<u16>,
    /// RCODE mnemonic (RFC 2136), e.g. `NOTAUTH`, `REFUSED`.
    pub rcode: Option<String>,
}

impl DnsError {
    pub fn new(kind: DnsErrorKind, message: impl Into<String>) -> Self {
        DnsError {
            kind,
            message: message.into(),
            status: None,
            rcode: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(DnsErrorKind::Invalid, message)
    }

    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            DnsErrorKind::Transient => "transient",
            DnsErrorKind::Auth => "auth",
            DnsErrorKind::Conflict => "conflict",
            DnsErrorKind::Invalid => "invalid",
            DnsErrorKind::Timeout => "timeout",
        }
    }
}

impl std::fmt::Display for DnsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// What a DNS server answered to a query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub server: SocketAddr,
    /// RCODE mnemonic: `NOERROR`, `NXDOMAIN`, ...
    pub rcode: String,
    /// The records of the asked name and type, if any.
    pub records: Option<RecordSet>,
}

/// Plain DNS queries: `resolve` and `wait_visible` ask real servers.
pub trait Lookup: Send + Sync {
    /// Asks `server` for `name`/`rtype` (recursively when `recursion`).
    fn query<'a>(
        &'a self,
        server: SocketAddr,
        name: &'a str,
        rtype: &'a str,
        recursion: bool,
    ) -> DnsFuture<'a, Answer>;
    /// The system's resolver (first `nameserver` of /etc/resolv.conf).
    fn system_nameserver(&self) -> Result<SocketAddr, DnsError>;
}

pub type DnsFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, DnsError>> + Send + 'a>>;

/// What `dns(spec)` opened: one zone at one provider.
pub trait DnsZone: Send + Sync {
    /// How messages name the zone, e.g. `Cloud DNS zone p/mycompany-internal`.
    fn label(&self) -> &str;
    /// The zone's apex, absolute and lower case: `mycompany.internal.`.
    fn origin(&self) -> &str;
    /// A stable identity of the zone (Cloud DNS zone id; RFC 2136 origin at
    /// server), so a resume against another zone refuses.
    fn identity(&self) -> String;
    /// The server that answers authoritatively for the zone over DNS, if
    /// ferry can reach it (RFC 2136: the update server; Cloud DNS: none).
    fn authoritative(&self) -> Option<SocketAddr>;
    /// The record set of `name` (absolute) and `rtype`, if any.
    fn get<'a>(&'a self, name: &'a str, rtype: &'a str) -> DnsFuture<'a, Option<RecordSet>>;
    /// Every record set, optionally only of `name` and/or `rtype`.
    fn list<'a>(
        &'a self,
        name: Option<&'a str>,
        rtype: Option<&'a str>,
    ) -> DnsFuture<'a, Vec<RecordSet>>;
    /// Applies `change` atomically (one Cloud DNS change, one UPDATE message).
    fn apply<'a>(&'a self, change: &'a Change) -> DnsFuture<'a, Applied>;
    /// Whether a pending change is done.
    fn change_done<'a>(&'a self, id: &'a str) -> DnsFuture<'a, bool>;
    /// Whether an accepted change must be read back: an RFC 2136 server may
    /// answer NOERROR to an UPDATE it did not (wholly) apply, while Cloud
    /// DNS applies a change as a whole or reports why not.
    fn reads_back(&self) -> bool {
        false
    }
    /// The record types `name` holds (upper case, sorted), so that a CNAME
    /// is refused next to other data, and other data next to a CNAME,
    /// before a server silently drops it (BIND answers NOERROR and ignores
    /// the record). By default from [`DnsZone::list`].
    fn types_at<'a>(&'a self, name: &'a str) -> DnsFuture<'a, Vec<String>> {
        Box::pin(async move {
            let mut types: Vec<String> = self
                .list(Some(name), None)
                .await?
                .into_iter()
                .map(|set| set.rtype)
                .collect();
            types.sort();
            types.dedup();
            Ok(types)
        })
    }
}

/// Parses a record type name (`a`, `AAAA`, `txt`) for the types ferry manages.
pub fn record_type(rtype: &str) -> Result<RecordType, String> {
    let upper = rtype.trim().to_ascii_uppercase();
    let parsed: RecordType = upper
        .parse()
        .map_err(|_| format!("unknown record type `{rtype}`"))?;
    match parsed {
        RecordType::A
        | RecordType::AAAA
        | RecordType::CNAME
        | RecordType::TXT
        | RecordType::MX
        | RecordType::SRV
        | RecordType::NS
        | RecordType::PTR
        | RecordType::CAA => Ok(parsed),
        _ => Err(format!(
            "record type `{upper}` is not supported (A, AAAA, CNAME, TXT, MX, SRV, NS, PTR, CAA)"
        )),
    }
}

/// The canonical form of a value of `rtype`, as both providers and scripts
/// compare it: addresses normalized, names absolute and lower case, TXT the
/// text itself.
pub fn canonical_value(rtype: RecordType, value: &str) -> Result<String, String> {
    if rtype == RecordType::TXT {
        return Ok(value.to_owned());
    }
    let value = value.trim();
    let value = match rtype {
        RecordType::CNAME | RecordType::NS | RecordType::PTR if !value.ends_with('.') => {
            format!("{value}.")
        }
        _ => value.to_owned(),
    };
    let rdata = RData::try_from_str(rtype, &value)
        .map_err(|e| format!("`{value}` is not a valid {rtype} value: {e}"))?;
    display_rdata(&rdata).ok_or_else(|| format!("`{value}` is not a valid {rtype} value"))
}

/// Presentation form of `rdata` (TXT: the concatenated text), lower-cased
/// for name-valued types. `None` for data without a presentation form.
pub fn display_rdata(rdata: &RData) -> Option<String> {
    match rdata {
        RData::TXT(txt) => Some(
            txt.txt_data
                .iter()
                .map(|part| String::from_utf8_lossy(part))
                .collect(),
        ),
        _ => {
            // `write!` into a String reports a Display error instead of panicking.
            let mut out = String::new();
            write!(out, "{rdata}").ok()?;
            Some(match rdata.record_type() {
                RecordType::CNAME | RecordType::NS | RecordType::PTR | RecordType::MX => {
                    out.to_ascii_lowercase()
                }
                _ => out,
            })
        }
    }
}

/// Makes `name` absolute in `origin`: `@` is the apex, a name ending in a
/// dot is already absolute (and must lie in the zone), anything else is
/// relative to the zone.
/// Internationalized labels (`bücher`) become punycode (`xn--bcher-kva`),
/// as they are on the wire.
pub fn absolute_name(name: &str, origin: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("a record needs a non-empty name".into());
    }
    let name = if name.is_ascii() {
        name.to_ascii_lowercase()
    } else {
        let (bare, dot) = match name.strip_suffix('.') {
            Some(bare) => (bare, "."),
            None => (name, ""),
        };
        let ascii = idna::domain_to_ascii(bare)
            .map_err(|_| format!("`{name}` is not a valid internationalized DNS name"))?;
        format!("{ascii}{dot}")
    };
    let absolute = if name == "@" {
        origin.to_owned()
    } else if name.ends_with('.') {
        name
    } else {
        format!("{name}.{origin}")
    };
    hickory_proto::rr::Name::from_ascii(&absolute)
        .map_err(|e| format!("`{absolute}` is not a valid DNS name: {e}"))?;
    if absolute != origin && !absolute.ends_with(&format!(".{origin}")) {
        return Err(format!("`{absolute}` is not in zone `{origin}`"));
    }
    Ok(absolute)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_absolute_in_the_zone() {
        let o = "mycompany.internal.";
        assert_eq!(absolute_name("old", o).unwrap(), "old.mycompany.internal.");
        assert_eq!(absolute_name("@", o).unwrap(), o);
        assert_eq!(
            absolute_name("New.MyCompany.Internal.", o).unwrap(),
            "new.mycompany.internal."
        );
        assert!(
            absolute_name("x.example.com.", o)
                .unwrap_err()
                .contains("not in zone")
        );
        assert!(absolute_name("", o).is_err());
        assert_eq!(
            absolute_name("Bücher", o).unwrap(),
            "xn--bcher-kva.mycompany.internal."
        );
        assert!(absolute_name("a..b", o).is_err());
    }

    #[test]
    fn values_are_canonical_per_type() {
        assert_eq!(
            canonical_value(RecordType::AAAA, "2001:DB8:0::1").unwrap(),
            "2001:db8::1"
        );
        assert_eq!(
            canonical_value(RecordType::CNAME, "Old.Example.com").unwrap(),
            "old.example.com."
        );
        assert_eq!(
            canonical_value(RecordType::TXT, "a \"b\" c").unwrap(),
            "a \"b\" c"
        );
        assert!(canonical_value(RecordType::A, "10.0.0.300").is_err());
        assert!(record_type("SOA").is_err());
        assert_eq!(record_type("aaaa").unwrap(), RecordType::AAAA);
    }
}

// ---------------------------------------------------------------- opening

/// How to reach one managed zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloudDnsSpec {
    pub project: String,
    /// The managed zone's name (not its DNS name).
    pub zone: String,
    /// API endpoint override, e.g. the fake's `http://127.0.0.1:PORT`.
    pub endpoint: Option<String>,
    /// Anonymous credentials instead of ADC (fake and lab only).
    pub anonymous: bool,
}

/// Where the secret is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    Env(String),
    File(std::path::PathBuf),
}

impl std::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Env(var) => write!(f, "environment variable {var}"),
            SecretSource::File(path) => write!(f, "file {}", path.display()),
        }
    }
}

/// A TSIG key as the spec names it; the secret is read by [`TsigKey::signer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TsigKey {
    pub name: String,
    pub algorithm: String,
    pub secret: SecretSource,
}

/// The zone a checked `dns(spec)` names, at its provider. Secrets appear
/// only as where to read them.
#[derive(Debug, Clone)]
pub enum ZoneTarget {
    CloudDns(CloudDnsSpec),
    Rfc2136 {
        server: SocketAddr,
        /// The zone's apex as the spec gave it.
        zone: String,
        tsig: Option<TsigKey>,
        /// Bounds each request.
        timeout: std::time::Duration,
    },
}

/// Opens zones, as [`crate::ports::cluster::ClusterConnector`] opens
/// clusters: the real one builds the Cloud DNS or RFC 2136 adapter
/// (`crate::adapters::zones::Zones`); tests and embedders inject their own.
/// Opening may read the zone (Cloud DNS) and is retried by the caller.
pub trait ZoneOpener: Send + Sync {
    fn open<'a>(&'a self, target: &'a ZoneTarget) -> DnsFuture<'a, Arc<dyn DnsZone>>;
}

impl std::fmt::Debug for dyn ZoneOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ZoneOpener")
    }
}
