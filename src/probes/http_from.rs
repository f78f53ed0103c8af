//! `probe::http_from`: an HTTP probe run from inside a pod, for paths only
//! the cluster resolves (`app1.app1-ns`). It runs curl, or wget if the
//! container has no curl, through [`PodExec`], and reads the status, latency
//! and body from what they print.
//!
//! * curl: `--connect-to` for the resolve override, `-H Host:`, and `-w`
//!   for status, time and remote address. Latency is curl's `time_total`.
//! * wget (GNU or busybox): `-S` prints the status; a resolve override
//!   rewrites the URL to the address and keeps the original host in the
//!   `Host` header (so HTTPS sends no SNI for it). Latency includes the exec
//!   round trip, and bodies of error statuses are not shown.

use super::spec::HttpSpec;
use super::{ErrorKind, ProbeResult, Status, http, truncate};
use crate::ports::exec::{ExecOutput, PodExec};
use std::time::{Duration, Instant};

/// Separates curl's body from the `-w` trailer.
const MARK: &str = "__ferry_probe__";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Curl,
    Wget,
}

/// Where the probe runs: `namespace/pod`, optionally one container.
#[derive(Debug, Clone, Copy)]
pub struct Vantage<'a> {
    pub namespace: &'a str,
    pub pod: &'a str,
    pub container: Option<&'a str>,
}

impl Vantage<'_> {
    fn describe(&self) -> String {
        match self.container {
            Some(c) => format!("pod {}/{} (container {c})", self.namespace, self.pod),
            None => format!("pod {}/{}", self.namespace, self.pod),
        }
    }
}

/// Runs `spec` from inside the pod. `Err` when the pod cannot run the probe
/// at all (unreachable, no shell, neither curl nor wget); a probe that ran
/// and failed is an `Ok` outcome with `ok: false`.
pub async fn http_from(
    exec: &dyn PodExec,
    at: Vantage<'_>,
    spec: &HttpSpec,
) -> Result<ProbeResult, String> {
    // Two execs (detect, then the probe), each of which may hang on a
    // container runtime that stopped answering: bounded, a hang is a failure.
    let started = Instant::now();
    let limit = spec.timeout + 2 * super::EXEC_SLACK;
    let probe = async {
        let tool = detect(exec, at).await?;
        run_with(exec, at, tool, spec).await
    };
    match tokio::time::timeout(limit, probe).await {
        Ok(result) => result,
        Err(_) => Ok(ProbeResult::failed(
            ErrorKind::Timeout,
            format!(
                "{}: the exec into {} did not return within {}ms",
                spec.target(),
                at.describe(),
                limit.as_millis()
            ),
            started.elapsed(),
        )),
    }
}

/// [`http_from`] for a remembered vantage point: the tool is detected once.
pub async fn from_vantage(
    at: &super::spec::PodVantage,
    spec: &HttpSpec,
) -> Result<ProbeResult, String> {
    let vantage = Vantage {
        namespace: &at.namespace,
        pod: &at.pod,
        container: at.container.as_deref(),
    };
    let tool = match at.tool.get() {
        Some(tool) => *tool,
        None => {
            let tool = detect(at.exec.as_ref(), vantage).await?;
            *at.tool.get_or_init(|| tool)
        }
    };
    run_with(at.exec.as_ref(), vantage, tool, spec).await
}

/// One probe with a known tool: exec, then read what it printed.
async fn run_with(
    exec: &dyn PodExec,
    at: Vantage<'_>,
    tool: Tool,
    spec: &HttpSpec,
) -> Result<ProbeResult, String> {
    let started = Instant::now();
    let output = exec
        .exec(at.namespace, at.pod, at.container, &command(tool, spec))
        .await
        .map_err(|e| {
            format!(
                "{}: cannot run {} in {}: {e}",
                spec.target(),
                name(tool),
                at.describe()
            )
        })?;
    let mut outcome = parse(tool, spec, &output, started.elapsed());
    if let Some(error) = &mut outcome.error {
        *error = format!("{error} (from {})", at.describe());
    }
    Ok(outcome)
}

pub(crate) fn name(tool: Tool) -> &'static str {
    match tool {
        Tool::Curl => "curl",
        Tool::Wget => "wget",
    }
}

/// Which of curl and wget the container has (curl first).
pub async fn detect(exec: &dyn PodExec, at: Vantage<'_>) -> Result<Tool, String> {
    let script = "if command -v curl >/dev/null 2>&1; then echo curl; \
                  elif command -v wget >/dev/null 2>&1; then echo wget; fi";
    let command = ["sh".to_owned(), "-c".to_owned(), script.to_owned()];
    let out = exec
        .exec(at.namespace, at.pod, at.container, &command)
        .await
        .map_err(|e| {
            format!(
                "cannot run sh in {} to look for curl or wget: {e}",
                at.describe()
            )
        })?;
    match out.stdout.trim() {
        "curl" => Ok(Tool::Curl),
        "wget" => Ok(Tool::Wget),
        _ if out.status.is_some_and(|s| s != 0) => Err(format!(
            "cannot run sh in {} to look for curl or wget (exit {}): {}",
            at.describe(),
            out.status.unwrap_or(-1),
            out.stderr.trim()
        )),
        _ => Err(format!(
            "{} has neither curl nor wget: probe::http_from runs one of them inside the container; \
             pick a pod whose image has one",
            at.describe()
        )),
    }
}

/// What a probe of `spec` needs that wget cannot do, if anything.
pub fn curl_only(spec: &HttpSpec) -> Option<&'static str> {
    if spec.connect {
        Some("a TCP connect probe needs curl (telnet://) in the container; wget speaks only HTTP")
    } else if spec.h2c {
        Some(
            "an h2c probe needs curl (--http2-prior-knowledge) in the container; wget speaks only HTTP/1",
        )
    } else {
        None
    }
}

/// The command line for `tool`.
pub fn command(tool: Tool, spec: &HttpSpec) -> Vec<String> {
    let secs = spec.timeout.as_secs_f64();
    let mut cmd: Vec<String> = Vec::new();
    let mut push = |s: &str| cmd.push(s.to_owned());
    if let (Tool::Wget, Some(why)) = (tool, curl_only(spec)) {
        // Fails the probe saying why, in the shape of a wget complaint.
        for a in ["sh", "-c", &format!("echo 'wget: {why}' >&2; exit 1")] {
            push(a);
        }
        return cmd;
    }
    match tool {
        Tool::Curl if spec.connect => {
            // telnet:// opens the connection and sends nothing (stdin is
            // empty); curl holds it until --max-time (exit 28) or the
            // server closes it (exit 0). `time_connect` > 0: connected.
            for a in ["curl", "-sS", "--max-time", &format!("{secs:.3}"), "-w"] {
                push(a);
            }
            push(&format!(
                "\\n{MARK} %{{http_code}} %{{time_connect}} %{{remote_ip}} %{{remote_port}}"
            ));
            push("--");
            push(spec.url.as_str());
        }
        Tool::Curl => {
            let version = if spec.h2c {
                "--http2-prior-knowledge"
            } else {
                "--http1.1"
            };
            for a in ["curl", "-sS", version, "--max-time", &format!("{secs:.3}")] {
                push(a);
            }
            if spec.tls_insecure {
                push("-k");
            }
            if let Some(h) = &spec.host {
                push("-H");
                push(&format!("Host: {h}"));
            }
            if let (Some(r), Some(host)) = (spec.resolve, spec.url.host_str()) {
                let url_port = spec.url.port_or_known_default().unwrap_or(80);
                let to = match r.ip {
                    std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                    ip => ip.to_string(),
                };
                push("--connect-to");
                push(&format!("{host}:{url_port}:{to}:{}", r.port_for(&spec.url)));
            }
            push("-w");
            // The path header last: an absent one prints nothing (curl >= 7.84).
            let path = spec
                .path_header
                .as_ref()
                .map(|h| format!(" %header{{{h}}}"))
                .unwrap_or_default();
            push(&format!(
                "\\n{MARK} %{{http_code}} %{{time_total}} %{{remote_ip}} %{{remote_port}}{path}"
            ));
            push("--");
            push(spec.url.as_str());
        }
        Tool::Wget => {
            for a in [
                "wget",
                "-S",
                "-O",
                "-",
                "-T",
                &format!("{}", secs.ceil().max(1.0) as u64),
            ] {
                push(a);
            }
            if spec.tls_insecure {
                push("--no-check-certificate");
            }
            let mut url = spec.url.clone();
            let mut host = spec.host.clone();
            if let Some(addr) = spec.resolved_addr() {
                if host.is_none() {
                    host = Some(match spec.url.port() {
                        Some(p) => format!("{}:{p}", spec.url.host_str().unwrap_or_default()),
                        None => spec.url.host_str().unwrap_or_default().to_owned(),
                    });
                }
                let _ = url.set_ip_host(addr.ip());
                let _ = url.set_port(Some(addr.port()));
            }
            if let Some(h) = host {
                push("--header");
                push(&format!("Host: {h}"));
            }
            push(url.as_str());
        }
    }
    cmd
}

/// Reads what the tool printed into an outcome.
pub fn parse(tool: Tool, spec: &HttpSpec, out: &ExecOutput, elapsed: Duration) -> ProbeResult {
    match tool {
        Tool::Curl => parse_curl(spec, out, elapsed),
        Tool::Wget => parse_wget(spec, out, elapsed),
    }
}

fn parse_curl(spec: &HttpSpec, out: &ExecOutput, elapsed: Duration) -> ProbeResult {
    let (body, trailer) = match out.stdout.rfind(&format!("\n{MARK} ")) {
        Some(at) => (&out.stdout[..at], Some(&out.stdout[at + MARK.len() + 2..])),
        None => (out.stdout.as_str(), None),
    };
    let fields: Vec<&str> = trailer
        .map(|t| t.split_whitespace().collect())
        .unwrap_or_default();
    let code: u16 = fields.first().and_then(|c| c.parse().ok()).unwrap_or(0);
    let latency = fields
        .get(1)
        .and_then(|t| t.parse::<f64>().ok())
        .filter(|t| t.is_finite() && *t >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(elapsed);
    let address = match (fields.get(2), fields.get(3)) {
        (Some(ip), Some(port)) if !ip.is_empty() && *port != "0" => Some(if ip.contains(':') {
            format!("[{ip}]:{port}")
        } else {
            format!("{ip}:{port}")
        }),
        _ => None,
    };
    let status = out.status.unwrap_or(0);
    if spec.connect {
        return connected(spec, status, &out.stderr, latency, address);
    }
    if status != 0 || code == 0 {
        let kind = curl_kind(status, &out.stderr);
        let why = last_line(&out.stderr).unwrap_or_else(|| format!("curl exited {status}"));
        let mut o = ProbeResult::failed(kind, format!("{}: {why}", spec.target()), latency);
        o.address = address;
        return o;
    }
    let mut outcome = answered(spec, code, body, latency, address);
    outcome.path = spec
        .path_header
        .as_ref()
        .and(fields.get(4))
        .map(|p| (*p).to_owned());
    http::check_path(spec, &mut outcome);
    outcome
}

fn parse_wget(spec: &HttpSpec, out: &ExecOutput, elapsed: Duration) -> ProbeResult {
    // `-S` prints each response's status line, e.g. "  HTTP/1.1 200 OK".
    let code = out
        .stderr
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let proto = words.next()?;
            proto.starts_with("HTTP/").then_some(())?;
            words.next()?.parse::<u16>().ok()
        })
        .next_back();
    let address = spec.resolved_addr().map(|a| a.to_string());
    match code {
        Some(code) => {
            let mut outcome = answered(spec, code, &out.stdout, elapsed, address);
            // `-S` prints each header as "  Name: value".
            outcome.path = spec.path_header.as_ref().and_then(|h| {
                out.stderr.lines().rev().find_map(|l| {
                    let (name, value) = l.trim().split_once(':')?;
                    name.trim()
                        .eq_ignore_ascii_case(h)
                        .then(|| value.trim().to_owned())
                })
            });
            http::check_path(spec, &mut outcome);
            outcome
        }
        None => {
            let kind = wget_kind(&out.stderr);
            let why = last_line(&out.stderr)
                .unwrap_or_else(|| format!("wget exited {}", out.status.unwrap_or(-1)));
            let mut o = ProbeResult::failed(kind, format!("{}: {why}", spec.target()), elapsed);
            o.address = address;
            o
        }
    }
}

/// A TCP connect probe's outcome: curl connected (its `time_connect` is
/// above zero) and then ran to `--max-time` (28) or saw the server close
/// (0); anything else failed to connect.
pub(crate) fn connected(
    spec: &HttpSpec,
    status: i32,
    stderr: &str,
    connect_time: Duration,
    address: Option<String>,
) -> ProbeResult {
    if matches!(status, 0 | 28) && connect_time > Duration::ZERO {
        return ProbeResult {
            ok: true,
            status: Status::None,
            latency: connect_time,
            body: String::new(),
            error: None,
            kind: None,
            address,
            answers: None,
            path: None,
        };
    }
    let kind = curl_kind(status, stderr);
    let why = last_line(stderr).unwrap_or_else(|| format!("curl exited {status}"));
    let mut o = ProbeResult::failed(kind, format!("{}: {why}", spec.target()), connect_time);
    o.address = address;
    o
}

fn answered(
    spec: &HttpSpec,
    code: u16,
    body: &str,
    latency: Duration,
    address: Option<String>,
) -> ProbeResult {
    let mut outcome = ProbeResult {
        ok: true,
        status: Status::Http(code),
        latency,
        body: truncate(body, spec.max_body),
        error: None,
        kind: None,
        address,
        answers: None,
        path: None,
    };
    if let Some((kind, error)) = http::check(spec, code, body) {
        outcome.ok = false;
        outcome.kind = Some(kind);
        outcome.error = Some(error);
    }
    outcome
}

/// wget's complaint (GNU or BusyBox) as an error kind: its exit codes
/// do not tell a refusal from a timeout.
pub(crate) fn wget_kind(stderr: &str) -> ErrorKind {
    let text = stderr.to_ascii_lowercase();
    if text.contains("refused") {
        ErrorKind::Refused
    } else if text.contains("timed out") || text.contains("timeout") {
        ErrorKind::Timeout
    } else if text.contains("resolve")
        || text.contains("bad address")
        || text.contains("name or service")
    {
        ErrorKind::Dns
    } else if text.contains("ssl") || text.contains("tls") || text.contains("certificate") {
        ErrorKind::Tls
    } else if text.contains("reset") || text.contains("closed") {
        ErrorKind::Reset
    } else {
        ErrorKind::Connect
    }
}

/// curl's exit codes (man curl, EXIT CODES) as error kinds.
pub(crate) fn curl_kind(code: i32, stderr: &str) -> ErrorKind {
    match code {
        6 => ErrorKind::Dns,
        // "Failed to connect": refused, unless curl says the network is unreachable.
        7 if ["unreachable", "no route"]
            .iter()
            .any(|w| stderr.to_ascii_lowercase().contains(w)) =>
        {
            ErrorKind::Connect
        }
        7 => ErrorKind::Refused,
        28 => ErrorKind::Timeout,
        35 | 51 | 53 | 54 | 58 | 59 | 60 | 64 | 66 | 77 | 80 | 82 | 83 | 90 | 91 => ErrorKind::Tls,
        52 | 55 | 56 => ErrorKind::Reset,
        _ => ErrorKind::Other,
    }
}

fn last_line(text: &str) -> Option<String> {
    text.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(|l| truncate(l, 300))
}
