//! A probe spec: what to probe and what counts as success, parsed from the
//! map a script passes (`#{ http: "http://old.mycompany.internal/", host:
//! "app1.app1-ns", resolve: "127.0.0.1:8080" }`). The one-shot probes take
//! the same options, so `probe::http(url, opts)` and `#{ http: url, ..opts }`
//! mean the same thing. Unknown keys are errors naming the key.

use serde_json::{Map, Value};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Per-request timeout when none is given.
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// Longest timeout a probe accepts (10 minutes).
const MAX_TIMEOUT_MS: u64 = 600_000;

#[derive(Debug, Clone, PartialEq)]
pub enum ProbeSpec {
    /// An HTTP probe fired from inside a pod (`from: #{ cluster, namespace, pod }`).
    HttpFrom(HttpSpec, PodVantage),
    Http(HttpSpec),
    Tcp(TcpSpec),
    Dns(DnsSpec),
}

#[derive(Debug, Clone, PartialEq)]
pub struct HttpSpec {
    pub url: reqwest::Url,
    /// `Host` header to send instead of the URL's host.
    pub host: Option<String>,
    /// Connect here instead of resolving the URL's host (like curl's `--resolve`).
    pub resolve: Option<Resolve>,
    /// Accepted status codes; `None` accepts any 2xx or 3xx.
    pub expect_status: Option<Vec<u16>>,
    /// Text the body must contain.
    pub expect_body: Option<String>,
    pub timeout: Duration,
    /// Accept any server certificate (self-signed, wrong name).
    pub tls_insecure: bool,
    /// A response header naming the path an answer took (ferry's bridge
    /// routes set `X-Ferry-Via: old|new`); its value is the result's `path`.
    pub path_header: Option<String>,
    /// The path (`path_header` value, [`HttpSpec::unmarked`] without one)
    /// an answer must have come through; another path fails with kind `path`.
    pub expect_path: Option<String>,
    /// What an answer without `path_header` is counted as (`unmarked_path`,
    /// default `direct`: the app's own pods). While ferry's progressive
    /// split runs, the old route marks nothing and these are `old`.
    pub unmarked_path: Option<String>,
    /// How much of the body the result keeps (`max_body_bytes`, default
    /// [`super::BODY_LIMIT`]): more for a page that is read, such as an
    /// ingress's metrics.
    pub max_body: usize,
    /// HTTP/2 without TLS by prior knowledge (h2c, as gRPC servers speak
    /// it; curl's `--http2-prior-knowledge`) instead of HTTP/1.1.
    pub h2c: bool,
    /// Only open a TCP connection to the URL's host and port (a `tcp:`
    /// probe fired `from:` a pod rides the same exec and stream as HTTP
    /// ones; curl's `telnet://`, which sends nothing): connected is success.
    pub connect: bool,
}

/// The most `max_body_bytes` may ask for.
pub const MAX_BODY_LIMIT: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolve {
    pub ip: IpAddr,
    /// Port to connect to when the URL names none.
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TcpSpec {
    /// `host:port`
    pub target: String,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DnsSpec {
    pub name: String,
    /// Record type, upper case (`A`, `AAAA`, `CNAME`, `TXT`, ...).
    pub rtype: String,
    /// Server to ask; `None` uses the system resolver (A and AAAA only).
    pub nameserver: Option<SocketAddr>,
    /// Values the answer must contain (all of them).
    pub expect: Vec<String>,
    pub timeout: Duration,
}

const HTTP_KEYS: &[&str] = &[
    "host",
    "resolve",
    "expect_status",
    "expect_body",
    "timeout_ms",
    "tls_insecure",
    "path_header",
    "expect_path",
    "unmarked_path",
    "max_body_bytes",
    "h2c",
];
const TCP_KEYS: &[&str] = &["timeout_ms"];
const DNS_KEYS: &[&str] = &["type", "nameserver", "expect", "timeout_ms"];

/// A pod to probe from, through exec; the tool found in it (curl or wget)
/// is remembered so repeated probes (a guard) exec once per request.
#[derive(Clone)]
pub struct PodVantage {
    pub exec: std::sync::Arc<dyn crate::ports::exec::PodExec>,
    pub namespace: String,
    pub pod: String,
    pub container: Option<String>,
    pub tool: std::sync::Arc<std::sync::OnceLock<super::http_from::Tool>>,
}

impl std::fmt::Debug for PodVantage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PodVantage")
            .field("namespace", &self.namespace)
            .field("pod", &self.pod)
            .field("container", &self.container)
            .finish()
    }
}

impl PartialEq for PodVantage {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.exec, &other.exec)
            && self.namespace == other.namespace
            && self.pod == other.pod
            && self.container == other.container
    }
}

impl ProbeSpec {
    /// A spec map: exactly one of `http`, `tcp` or `dns`, plus that probe's options.
    pub fn from_map(map: &Map<String, Value>) -> Result<ProbeSpec, String> {
        let kinds: Vec<&str> = ["http", "tcp", "dns"]
            .into_iter()
            .filter(|k| map.contains_key(*k))
            .collect();
        let kind = match kinds.as_slice() {
            [one] => *one,
            [] => {
                return Err(
                    "a probe spec needs one of `http`, `tcp` or `dns`, e.g. #{ http: \"http://host/\" }"
                        .into(),
                );
            }
            many => {
                return Err(format!(
                    "a probe spec names one probe, got {}",
                    many.iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ));
            }
        };
        let target = string(map, kind)?.unwrap_or_default();
        let mut options = map.clone();
        options.remove(kind);
        match kind {
            "http" => HttpSpec::new(&target, &options).map(ProbeSpec::Http),
            "tcp" => TcpSpec::new(&target, &options).map(ProbeSpec::Tcp),
            _ => DnsSpec::new(&target, &options).map(ProbeSpec::Dns),
        }
    }

    /// What is probed, for messages: the URL with its overrides, `host:port`, or the query.
    pub fn target(&self) -> String {
        match self {
            ProbeSpec::Http(h) => h.target(),
            ProbeSpec::HttpFrom(h, at) => {
                format!("{} from pod {}/{}", h.target(), at.namespace, at.pod)
            }
            ProbeSpec::Tcp(t) => format!("tcp {}", t.target),
            ProbeSpec::Dns(d) => d.target(),
        }
    }

    pub fn timeout(&self) -> Duration {
        match self {
            ProbeSpec::Http(h) | ProbeSpec::HttpFrom(h, _) => h.timeout,
            ProbeSpec::Tcp(t) => t.timeout,
            ProbeSpec::Dns(d) => d.timeout,
        }
    }
}

impl HttpSpec {
    /// The path an answer without `path_header` took.
    pub fn unmarked(&self) -> &str {
        self.unmarked_path
            .as_deref()
            .unwrap_or(super::stats::DIRECT)
    }

    pub fn new(url: &str, options: &Map<String, Value>) -> Result<HttpSpec, String> {
        check_keys(options, HTTP_KEYS, "an http probe")?;
        let url = reqwest::Url::parse(url).map_err(|e| format!("bad URL `{url}`: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "bad URL `{url}`: an http probe needs http:// or https://"
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("bad URL `{url}`: it names no host"));
        }
        let host = string(options, "host")?;
        if let Some(h) = &host
            && (h.is_empty() || h.chars().any(|c| c.is_control() || c.is_whitespace()))
        {
            return Err(format!("`host` must be a host name, got {h:?}"));
        }
        let resolve = match string(options, "resolve")? {
            None => None,
            Some(text) => Some(parse_resolve(&text, &url)?),
        };
        let expect_status = match options.get("expect_status") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) if !items.is_empty() => Some(
                items
                    .iter()
                    .map(status_code)
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            Some(v) => Some(vec![status_code(v)?]),
        };
        Ok(HttpSpec {
            url,
            host,
            resolve,
            expect_status,
            expect_body: string(options, "expect_body")?,
            timeout: timeout(options)?,
            tls_insecure: boolean(options, "tls_insecure")?.unwrap_or(false),
            path_header: match string(options, "path_header")? {
                Some(h)
                    if h.is_empty()
                        || !h
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
                {
                    return Err(format!("`path_header` must be a header name, got {h:?}"));
                }
                h => h.map(|h| h.to_ascii_lowercase()),
            },
            expect_path: match (string(options, "expect_path")?, options.get("path_header")) {
                (Some(_), None | Some(Value::Null)) => {
                    return Err(
                        "`expect_path` needs `path_header`: the header that names the path".into(),
                    );
                }
                (path, _) => path,
            },
            unmarked_path: match (
                string(options, "unmarked_path")?,
                options.get("path_header"),
            ) {
                (Some(_), None | Some(Value::Null)) => {
                    return Err(
                        "`unmarked_path` needs `path_header`: the header that names the path"
                            .into(),
                    );
                }
                (path, _) => path,
            },
            max_body: match integer(options, "max_body_bytes")? {
                None => super::BODY_LIMIT,
                Some(n) if (1..=MAX_BODY_LIMIT).contains(&n) => n as usize,
                Some(n) => {
                    return Err(format!(
                        "`max_body_bytes` must be 1 to {MAX_BODY_LIMIT}, got {n}"
                    ));
                }
            },
            h2c: boolean(options, "h2c")?.unwrap_or(false),
            connect: false,
        })
    }

    /// A TCP connect probe of `tcp` (`host:port`, options as for a `tcp:`
    /// probe), for firing from a pod.
    pub fn tcp_connect(tcp: &TcpSpec) -> Result<HttpSpec, String> {
        let url = reqwest::Url::parse(&format!("telnet://{}", tcp.target))
            .map_err(|e| format!("bad tcp target `{}`: {e}", tcp.target))?;
        Ok(HttpSpec {
            url,
            host: None,
            resolve: None,
            expect_status: None,
            expect_body: None,
            timeout: tcp.timeout,
            tls_insecure: false,
            path_header: None,
            expect_path: None,
            unmarked_path: None,
            h2c: false,
            connect: true,
            max_body: super::BODY_LIMIT,
        })
    }

    pub fn target(&self) -> String {
        if self.connect {
            let host = self.url.host_str().unwrap_or_default();
            return format!("tcp {host}:{}", self.url.port().unwrap_or(0));
        }
        // Never show a password from the URL.
        let mut shown = self.url.clone();
        if shown.password().is_some() {
            let _ = shown.set_password(Some("***"));
        }
        let mut text = shown.to_string();
        if let Some(h) = &self.host {
            text.push_str(&format!(" (Host: {h})"));
        }
        if let Some(r) = &self.resolve {
            text.push_str(&format!(" via {}", r.describe(&self.url)));
        }
        text
    }

    /// The address a resolve override connects to.
    pub fn resolved_addr(&self) -> Option<SocketAddr> {
        let r = self.resolve?;
        Some(SocketAddr::new(r.ip, r.port_for(&self.url)))
    }
}

impl Resolve {
    /// The port connected to: the URL's, else the override's, else the scheme's.
    pub fn port_for(&self, url: &reqwest::Url) -> u16 {
        url.port()
            .or(self.port)
            .or_else(|| url.port_or_known_default())
            .unwrap_or(80)
    }

    fn describe(&self, url: &reqwest::Url) -> String {
        SocketAddr::new(self.ip, self.port_for(url)).to_string()
    }
}

/// `10.1.2.3`, `10.1.2.3:8080`, `[::1]:8080` or `::1`.
fn parse_resolve(text: &str, url: &reqwest::Url) -> Result<Resolve, String> {
    let resolve = if let Ok(addr) = text.parse::<SocketAddr>() {
        Resolve {
            ip: addr.ip(),
            port: Some(addr.port()),
        }
    } else if let Ok(ip) = text.trim_start_matches('[').trim_end_matches(']').parse() {
        Resolve { ip, port: None }
    } else {
        return Err(format!(
            "`resolve` must be an IP address or IP:port (like curl's --resolve), got {text:?}"
        ));
    };
    if url.host_str().is_some_and(|h| {
        h.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok()
    }) {
        return Err(format!(
            "`resolve` overrides the address of the URL's host name, but `{url}` already names an address"
        ));
    }
    if let (Some(url_port), Some(port)) = (url.port(), resolve.port)
        && url_port != port
    {
        return Err(format!(
            "`resolve` port {port} conflicts with the port {url_port} in `{url}`: give the port in one place"
        ));
    }
    if resolve.port == Some(0) {
        return Err(format!("`resolve` port must not be 0, got {text:?}"));
    }
    Ok(resolve)
}

impl TcpSpec {
    pub fn new(target: &str, options: &Map<String, Value>) -> Result<TcpSpec, String> {
        check_keys(options, TCP_KEYS, "a tcp probe")?;
        let valid = target.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !valid {
            return Err(format!(
                "a tcp probe needs \"host:port\" (e.g. \"10.0.0.1:443\" or \"[::1]:80\"), got {target:?}"
            ));
        }
        Ok(TcpSpec {
            target: target.to_owned(),
            timeout: timeout(options)?,
        })
    }
}

impl DnsSpec {
    pub fn new(name: &str, options: &Map<String, Value>) -> Result<DnsSpec, String> {
        check_keys(options, DNS_KEYS, "a dns probe")?;
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("a dns probe needs a name, got {name:?}"));
        }
        let rtype = string(options, "type")?
            .unwrap_or_else(|| "A".into())
            .to_ascii_uppercase();
        if rtype.parse::<hickory_proto::rr::RecordType>().is_err() {
            return Err(format!("unknown DNS record type `{rtype}`"));
        }
        let nameserver = match string(options, "nameserver")? {
            None => None,
            Some(text) => Some(
                text.parse::<SocketAddr>()
                    .or_else(|_| {
                        text.trim_start_matches('[')
                            .trim_end_matches(']')
                            .parse::<IpAddr>()
                            .map(|ip| SocketAddr::new(ip, 53))
                    })
                    .map_err(|_| {
                        format!("`nameserver` must be an IP address or IP:port, got {text:?}")
                    })?,
            ),
        };
        if nameserver.is_none() && !matches!(rtype.as_str(), "A" | "AAAA") {
            return Err(format!(
                "a dns probe of type {rtype} needs a `nameserver` (the system resolver answers A and AAAA only)"
            ));
        }
        let expect = match options.get("expect") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(format!("`expect` must hold strings, got {other}")),
                })
                .collect::<Result<_, _>>()?,
            Some(other) => {
                return Err(format!(
                    "`expect` must be a string or an array of strings, got {other}"
                ));
            }
        };
        Ok(DnsSpec {
            name: name.to_owned(),
            rtype,
            nameserver,
            expect,
            timeout: timeout(options)?,
        })
    }

    pub fn target(&self) -> String {
        match self.nameserver {
            Some(ns) => format!("dns {} {} @{ns}", self.name, self.rtype),
            None => format!("dns {} {} (system resolver)", self.name, self.rtype),
        }
    }
}

/// Refuses keys outside `known`, naming the first one.
pub fn check_keys(map: &Map<String, Value>, known: &[&str], what: &str) -> Result<(), String> {
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        None => Ok(()),
        Some(key) => Err(format!(
            "unknown option `{key}` for {what} (known: {})",
            known.join(", ")
        )),
    }
}

fn string(map: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(format!("`{key}` must be a string, got {other}")),
    }
}

pub(super) fn boolean(map: &Map<String, Value>, key: &str) -> Result<Option<bool>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(format!("`{key}` must be true or false, got {other}")),
    }
}

/// A non-negative integer option.
pub fn integer(map: &Map<String, Value>, key: &str) -> Result<Option<u64>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("`{key}` must be a non-negative integer, got {v}")),
    }
}

/// A positive number option (integer or float).
pub fn number(map: &Map<String, Value>, key: &str) -> Result<Option<f64>, String> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(n) if n.is_finite() && n > 0.0 => Ok(Some(n)),
            _ => Err(format!("`{key}` must be a positive number, got {v}")),
        },
    }
}

fn status_code(v: &Value) -> Result<u16, String> {
    v.as_u64()
        .filter(|n| (100..=999).contains(n))
        .map(|n| n as u16)
        .ok_or_else(|| format!("`expect_status` must be HTTP status codes (100-999), got {v}"))
}

fn timeout(map: &Map<String, Value>) -> Result<Duration, String> {
    let ms = integer(map, "timeout_ms")?.unwrap_or(DEFAULT_TIMEOUT_MS);
    if ms == 0 || ms > MAX_TIMEOUT_MS {
        return Err(format!(
            "`timeout_ms` must be 1 to {MAX_TIMEOUT_MS}, got {ms}"
        ));
    }
    Ok(Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: Value) -> Result<ProbeSpec, String> {
        ProbeSpec::from_map(v.as_object().unwrap())
    }

    #[test]
    fn unmarked_answers_are_direct_unless_the_spec_names_them() {
        let http = |extra: Value| {
            let mut v = json!({ "http": "http://app1.ns/", "path_header": "X-Ferry-Via" });
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            match spec(v) {
                Ok(ProbeSpec::Http(h)) => Ok(h.unmarked().to_owned()),
                Ok(other) => panic!("{other:?}"),
                Err(e) => Err(e),
            }
        };
        assert_eq!(http(json!({})).unwrap(), "direct");
        assert_eq!(http(json!({ "unmarked_path": "old" })).unwrap(), "old");
        let err = spec(json!({ "http": "http://app1.ns/", "unmarked_path": "old" })).unwrap_err();
        assert!(err.contains("`unmarked_path` needs `path_header`"), "{err}");
    }

    #[test]
    fn http_spec_with_overrides() {
        let s = spec(
            json!({ "http": "http://old.mycompany.internal/", "host": "app1.app1-ns",
            "resolve": "127.0.0.1:8080", "expect_status": 200, "expect_body": "Hello" }),
        )
        .unwrap();
        let ProbeSpec::Http(h) = s else { panic!() };
        assert_eq!(h.host.as_deref(), Some("app1.app1-ns"));
        assert_eq!(h.resolved_addr(), Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(h.expect_status, Some(vec![200]));
        assert!(h.target().contains("via 127.0.0.1:8080"));
        let ProbeSpec::Http(h) = spec(json!({ "http": "http://ops:s3cret@a.internal/" })).unwrap()
        else {
            panic!()
        };
        assert!(!h.target().contains("s3cret"), "{}", h.target());
        let ProbeSpec::Http(h) =
            spec(json!({ "http": "https://x.internal/", "resolve": "10.1.2.3" })).unwrap()
        else {
            panic!()
        };
        assert_eq!(h.resolved_addr(), Some("10.1.2.3:443".parse().unwrap()));
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let e = spec(json!({ "http": "http://a/", "hots": "x" })).unwrap_err();
        assert!(e.contains("unknown option `hots`"), "{e}");
        let e = spec(json!({ "tcp": "a:1", "host": "x" })).unwrap_err();
        assert!(e.contains("unknown option `host` for a tcp probe"), "{e}");
        assert!(
            spec(json!({ "http": "a", "tcp": "b" }))
                .unwrap_err()
                .contains("`http` and `tcp`")
        );
        assert!(
            spec(json!({ "host": "x" }))
                .unwrap_err()
                .contains("needs one of")
        );
        assert!(
            spec(json!({ "http": "ftp://a/" }))
                .unwrap_err()
                .contains("http://")
        );
        assert!(
            spec(json!({ "http": "http://a/", "resolve": "nope" }))
                .unwrap_err()
                .contains("IP address")
        );
        assert!(
            spec(json!({ "http": "http://a:8080/", "resolve": "1.2.3.4:81" }))
                .unwrap_err()
                .contains("conflicts")
        );
        assert!(
            spec(json!({ "http": "http://1.2.3.4/", "resolve": "1.2.3.4" }))
                .unwrap_err()
                .contains("already names an address")
        );
        assert!(
            spec(json!({ "http": "http://a/", "timeout_ms": 0 }))
                .unwrap_err()
                .contains("timeout_ms")
        );
        assert!(
            spec(json!({ "http": "http://a/", "expect_status": "200" }))
                .unwrap_err()
                .contains("expect_status")
        );
        assert!(
            spec(json!({ "tcp": "nohost" }))
                .unwrap_err()
                .contains("host:port")
        );
        assert!(
            spec(json!({ "dns": "a.b", "type": "BOGUS" }))
                .unwrap_err()
                .contains("BOGUS")
        );
        assert!(
            spec(json!({ "dns": "a.b", "type": "TXT" }))
                .unwrap_err()
                .contains("nameserver")
        );
    }

    #[test]
    fn dns_spec_defaults() {
        let ProbeSpec::Dns(d) =
            spec(json!({ "dns": "old.mycompany.internal", "nameserver": "127.0.0.1", "expect": "10.0.0.1" })).unwrap()
        else {
            panic!()
        };
        assert_eq!(d.rtype, "A");
        assert_eq!(d.nameserver, Some("127.0.0.1:53".parse().unwrap()));
        assert_eq!(d.expect, vec!["10.0.0.1"]);
    }
}
