//! A guard fired `from:` a pod, as one long-lived exec: a POSIX `sh` loop
//! runs inside the container and prints one line per probe, which ferry
//! reads into the guard's samples. One exec per probe (the first design)
//! meant 200 `pods/exec` sessions a second through the API server, the
//! kubelet and the container runtime; on Kubernetes 1.36 with containerd 1.6
//! that locked up the pod's shim and hung the guard for minutes.
//!
//! The loop ([`script`]) picks curl, or wget when there is no curl, and
//! starts [`workers`] background subshells; each fires its share of the
//! rate, every probe in the background then a `sleep` of its period, keeps
//! at most [`Plan::in_flight`] probes running (a slow answer does not
//! stall the pacing, a hanging one does not pile up processes), and every
//! few probes reads the clock (`date +%s%N`, seconds where nanoseconds are
//! missing) to catch up on time lost to forks: curl 7.74 has no `--rate`,
//! so the pacing is the loop's. Where probes take longer than
//! `in_flight` periods, the achieved rate drops (and the guard's
//! far-fewer-requests rule says so). Every probe has
//! curl's `--max-time` (wget's `-T`). The loop ends by itself after
//! `max_s` seconds, and as soon as its stdin closes (ferry stops the guard,
//! or the session is lost), so no loop outlives its guard for long.
//!
//! Each probe prints `<seq> <exit> <body> <status> <time> <path>|<message>`:
//! `<body>` is `1`/`0` for whether `expect_body` was found (`-` when none is
//! asked), `<status>` `000` without an answer, `<time>` seconds (curl's
//! `time_total`) or microseconds with a `u` suffix (wget, timed by `date`),
//! or `-`; `<path>` the `path_header` value, empty without one; `<message>`
//! the tool's last error line. The loop's first line is
//! `ferry-probe-loop <tool> <ns>` (`none` when the container has neither).
//!
//! The script's first line is a marker comment with the plan as JSON
//! ([`MARKER`]): the lab recognises it and runs the same loop natively with
//! the same output (`crate::lab::dataplane::exec`), since its little shell
//! has no background jobs; the shell text itself is tested with a real
//! `/bin/sh`, curl and wget (`tests/suite/guard_stream.rs`).

use super::http_from::{Tool, command};
use super::spec::HttpSpec;
use super::{ErrorKind, ProbeResult, Status, http};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The marker comment that opens the loop script.
pub const MARKER: &str = "# ferry-probe-loop v1 ";
/// The loop's first line: `ferry-probe-loop <tool> <clock>`.
pub const HELLO: &str = "ferry-probe-loop";
/// What separates curl's body from its `-w` trailer.
const MARK: &str = "__ferry_probe__";
/// How long one loop runs at most; a guard that lasts longer opens the next.
pub const MAX_STREAM: Duration = Duration::from_secs(600);
/// Probes one worker fires per second at most: each costs the worker a
/// fork and a `sleep` (milliseconds on a loaded machine), so more workers
/// share that overhead.
const PER_WORKER: f64 = 20.0;
const MAX_WORKERS: u32 = 16;
/// Probes between two clock readings in a worker.
const CHECK_EVERY: u64 = 8;

/// What the loop does; the marker carries it for the lab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub rate: f64,
    pub workers: u32,
    pub max_s: u64,
    /// The curl and wget command lines of one probe.
    pub curl: Vec<String>,
    pub wget: Vec<String>,
    /// `expect_body`, checked inside the loop (the body stays there).
    pub want: Option<String>,
    /// `path_header`, read from wget's `-S` output.
    pub path_header: Option<String>,
    /// Probes one worker keeps in flight at most: enough for its rate at
    /// the probe's timeout, within [`MAX_IN_FLIGHT`] for all workers.
    pub in_flight: u32,
    /// A TCP connect probe (curl `telnet://`): connected is success.
    #[serde(default)]
    pub connect: bool,
}

/// Probes in flight in the container at most, all workers together: a
/// probe that hangs to its timeout holds a process, and pods have pid limits.
const MAX_IN_FLIGHT: u32 = 100;

/// Workers for `rate`: each fires at most [`PER_WORKER`] a second.
pub fn workers(rate: f64) -> u32 {
    ((rate / PER_WORKER).ceil() as u32).clamp(1, MAX_WORKERS)
}

impl Plan {
    pub fn new(spec: &HttpSpec, rate: f64, max: Duration) -> Plan {
        let mut curl = command(Tool::Curl, spec);
        // The loop's own trailer: status, time, path (no address: the
        // statistics do not use it, and an empty one shifts the fields).
        if let Some(at) = curl.iter().position(|a| a == "-w") {
            let path = spec
                .path_header
                .as_ref()
                .map(|h| format!(" %header{{{h}}}"))
                .unwrap_or_default();
            // A TCP connect probe times the connect: above zero, it connected.
            let time = if spec.connect {
                "time_connect"
            } else {
                "time_total"
            };
            curl[at + 1] = format!("\\n{MARK} %{{http_code}} %{{{time}}}{path}");
            if spec.expect_body.is_none() {
                curl.insert(at, "/dev/null".into());
                curl.insert(at, "-o".into());
            }
        }
        let workers = workers(rate);
        let per_worker = rate / workers as f64 * spec.timeout.as_secs_f64();
        let in_flight = ((per_worker.ceil() as u32).saturating_add(1))
            .clamp(2, (MAX_IN_FLIGHT / workers).max(2));
        Plan {
            rate,
            workers,
            in_flight,
            max_s: max.as_secs().max(1),
            curl,
            wget: command(Tool::Wget, spec),
            want: spec.expect_body.clone(),
            path_header: spec.path_header.clone(),
            connect: spec.connect,
        }
    }

    /// Seconds between two probes of one worker.
    pub fn period(&self) -> f64 {
        self.workers as f64 / self.rate
    }
}

/// `'...'` for sh.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

fn quote_all(words: &[String]) -> String {
    words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ")
}

/// The `sh -c` script of `plan`.
pub fn script(plan: &Plan) -> String {
    let json = serde_json::to_string(plan).unwrap_or_default();
    let period = plan.period();
    let per_worker = (plan.rate / plan.workers as f64 * plan.max_s as f64).ceil() as u64 + 1;
    // Workers start spread over one period, so probes do not come in bursts.
    let offsets: Vec<String> = (0..plan.workers)
        .map(|i| format!("{:.6}", period * i as f64 / plan.workers as f64))
        .collect();
    format!(
        r#"{MARKER}{json}
set -f
M={MARK}
NL='
'
want={want}
ph={ph}
w={workers}
cnt={per_worker}
pus={pus}
iv={iv:.6}
maxus={maxus}
chk={CHECK_EVERY}
k={in_flight}
if command -v curl >/dev/null 2>&1; then tool=curl
elif command -v wget >/dev/null 2>&1; then tool=wget
else echo '{HELLO} none'; exit 127; fi
ns=0
case $(date +%s%N 2>/dev/null) in ''|*[!0-9]*) ;; *) ns=1 ;; esac
clock() {{ if [ $ns = 1 ]; then c=$(date +%s%N); c=$((c / 1000)); else c=$(date +%s); c=$((c * 1000000)); fi; }}
pc() {{
  o=$({curl} 2>&1); rc=$?
  t=${{o##*"$M "}}
  [ "$t" = "$o" ] && t='000 -'
  b=${{o%"$M "*}}
  k=-
  if [ -n "$want" ]; then case $b in *"$want"*) k=1 ;; *) k=0 ;; esac; fi
  m=
  if [ $rc != 0 ]; then m=${{b##*curl: }}; m=${{m%%"$NL"*}}; fi
  printf '%s %s %s %s|%s\n' "$1" "$rc" "$k" "$t" "$m"
}}
pw() {{
  q=$1; tt=-
  [ $ns = 1 ] && s0=$(date +%s%N)
  o=$({wget} 2>&1); rc=$?
  [ $ns = 1 ] && {{ s1=$(date +%s%N); tt=$(( (s1 - s0) / 1000 ))u; }}
  code=000; p=; m=
  while IFS= read -r l; do
    case $l in HTTP/*|*' HTTP/'*) set -- $l; [ -n "$2" ] && code=$2 ;; esac
    if [ -n "$ph" ]; then case $l in *"$ph:"*) p=${{l#*"$ph:"}}; p=${{p# }} ;; esac; fi
    [ -n "$l" ] && m=$l
  done <<FERRY_END
$o
FERRY_END
  [ $code != 000 ] && m=
  k=-
  if [ -n "$want" ]; then case $o in *"$want"*) k=1 ;; *) k=0 ;; esac; fi
  printf '%s %s %s %s %s %s|%s\n' "$q" "$rc" "$k" "$code" "$tt" "$p" "$m"
}}
probe() {{ if [ $tool = curl ]; then pc "$1"; else pw "$1"; fi; }}
wk() {{
  i=$1; n=0; j=0; lag=0
  sleep $2
  clock; t0=$c
  set --
  while [ $n -lt $cnt ]; do
    probe $((n * w + i)) &
    set -- "$@" $!
    if [ $# -ge $k ]; then wait $1; shift; fi
    n=$((n + 1)); j=$((j + 1))
    if [ $j -ge $chk ]; then
      j=0; clock; el=$((c - t0))
      [ $el -ge $maxus ] && break
      lag=$((el / pus - n)); [ $lag -gt $chk ] && lag=$chk
    fi
    if [ $lag -gt 0 ]; then lag=$((lag - 1)); else sleep $iv; fi
  done
  wait
  [ $i = 0 ] && kill $$ 2>/dev/null
}}
echo "{HELLO} $tool $ns"
pids=
i=0
for off in {offsets}; do wk $i $off & pids="$pids $!"; i=$((i + 1)); done
while IFS= read -r _; do :; done
kill $pids 2>/dev/null
exit 0
"#,
        want = quote(plan.want.as_deref().unwrap_or("")),
        ph = quote(plan.path_header.as_deref().unwrap_or("")),
        workers = plan.workers,
        pus = (period * 1e6).round() as u64,
        iv = period,
        maxus = plan.max_s * 1_000_000,
        curl = quote_all(&plan.curl),
        wget = quote_all(&plan.wget),
        offsets = offsets.join(" "),
        in_flight = plan.in_flight,
    )
}

/// The plan a loop script carries in its marker, if it is one.
pub fn plan_of(script: &str) -> Option<Plan> {
    let first = script.lines().next()?;
    serde_json::from_str(first.strip_prefix(MARKER)?).ok()
}

/// One probe line, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub seq: u64,
    pub outcome: ProbeResult,
}

/// What a line of the loop's output is.
#[derive(Debug, Clone, PartialEq)]
pub enum Read {
    /// The loop started with this tool.
    Hello(Tool),
    /// The container has neither curl nor wget.
    NoTool,
    Probe(Line),
    /// Not a line the loop prints (a shell's complaint, say).
    Other(String),
}

/// Reads one line of the loop's output.
pub fn read_line(tool: Option<Tool>, spec: &HttpSpec, line: &str) -> Read {
    if let Some(rest) = line.strip_prefix(HELLO) {
        return match rest.split_whitespace().next() {
            Some("curl") => Read::Hello(Tool::Curl),
            Some("wget") => Read::Hello(Tool::Wget),
            _ => Read::NoTool,
        };
    }
    let (fields, message) = line.split_once('|').unwrap_or((line, ""));
    let f: Vec<&str> = fields.split_whitespace().collect();
    let (Some(seq), Some(rc), Some(body), Some(code)) = (
        f.first().and_then(|s| s.parse::<u64>().ok()),
        f.get(1).and_then(|s| s.parse::<i32>().ok()),
        f.get(2),
        f.get(3).and_then(|s| s.parse::<u16>().ok()),
    ) else {
        return Read::Other(line.to_owned());
    };
    let latency = f.get(4).and_then(|t| parse_time(t)).unwrap_or_default();
    let path = f
        .get(5)
        .filter(|_| spec.path_header.is_some())
        .map(|p| (*p).to_owned());
    let message = message.trim();
    let tool = tool.unwrap_or(Tool::Curl);
    let failed = match tool {
        Tool::Curl => rc != 0 || code == 0,
        Tool::Wget => code == 0,
    };
    let outcome = if spec.connect && tool == Tool::Curl {
        super::http_from::connected(spec, rc, message, latency, None)
    } else if failed {
        let kind = match tool {
            Tool::Curl => super::http_from::curl_kind(rc, message),
            Tool::Wget => super::http_from::wget_kind(message),
        };
        let why = if message.is_empty() {
            format!("{} exited {rc}", super::http_from::name(tool))
        } else {
            message.to_owned()
        };
        ProbeResult::failed(kind, format!("{}: {why}", spec.target()), latency)
    } else {
        let mut outcome = ProbeResult {
            ok: true,
            status: Status::Http(code),
            latency,
            body: String::new(),
            error: None,
            kind: None,
            address: None,
            answers: None,
            path,
        };
        // The body was checked in the loop: check the status alone here.
        let status_only = HttpSpec {
            expect_body: None,
            ..spec.clone()
        };
        if let Some((kind, error)) = http::check(&status_only, code, "") {
            outcome.ok = false;
            outcome.kind = Some(kind);
            outcome.error = Some(error);
        } else if *body == "0" {
            outcome.ok = false;
            outcome.kind = Some(ErrorKind::Body);
            outcome.error = Some(format!(
                "{}: status {code} but the body lacks {:?}",
                spec.target(),
                spec.expect_body.as_deref().unwrap_or_default()
            ));
        }
        http::check_path(spec, &mut outcome);
        outcome
    };
    Read::Probe(Line { seq, outcome })
}

/// `0.001234` (seconds) or `1234u` (microseconds).
fn parse_time(text: &str) -> Option<Duration> {
    if let Some(us) = text.strip_suffix('u') {
        return us.parse::<u64>().ok().map(Duration::from_micros);
    }
    text.parse::<f64>()
        .ok()
        .filter(|t| t.is_finite() && *t >= 0.0)
        .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(options: serde_json::Value) -> HttpSpec {
        HttpSpec::new("http://app1.app1-ns/", options.as_object().unwrap()).unwrap()
    }

    #[test]
    fn the_plan_rides_in_the_marker_and_sizes_the_workers() {
        let s = spec(serde_json::json!({ "expect_body": "it's app1" }));
        let plan = Plan::new(&s, 200.0, Duration::from_secs(30));
        assert_eq!(plan.workers, 10);
        assert!((plan.period() - 0.05).abs() < 1e-9);
        // 20/s per worker at a 5s timeout wants 101 in flight: the cap shares 100.
        assert_eq!(plan.in_flight, 10);
        let text = script(&plan);
        assert_eq!(plan_of(&text), Some(plan.clone()));
        assert!(text.contains(r"want='it'\''s app1'"), "{text}");
        assert_eq!(plan_of("echo hi"), None);
        assert_eq!(workers(0.5), 1);
        assert_eq!(workers(1000.0), MAX_WORKERS);
        // Without a body to check, curl throws it away.
        let plain = Plan::new(&spec(serde_json::json!({})), 10.0, MAX_STREAM);
        assert!(plain.curl.windows(2).any(|w| w == ["-o", "/dev/null"]));
    }

    #[test]
    fn tcp_connect_lines_succeed_on_a_connect_time() {
        let tcp = crate::probes::spec::TcpSpec::new("db.ns:5432", &serde_json::Map::new()).unwrap();
        let s = HttpSpec::tcp_connect(&tcp).unwrap();
        assert_eq!(s.target(), "tcp db.ns:5432");
        let plan = Plan::new(&s, 20.0, Duration::from_secs(5));
        assert!(plan.connect);
        assert!(
            plan.curl.iter().any(|a| a.contains("%{time_connect}")),
            "{:?}",
            plan.curl
        );
        assert_eq!(
            plan.curl.last().map(String::as_str),
            Some("telnet://db.ns:5432")
        );
        // Held to --max-time after connecting: success, latency the connect.
        let Read::Probe(held) =
            read_line(Some(Tool::Curl), &s, "1 28 - 000 0.000400 |(28) Time-out")
        else {
            panic!("a probe line")
        };
        assert!(held.outcome.ok, "{held:?}");
        assert_eq!(held.outcome.latency, Duration::from_micros(400));
        let Read::Probe(refused) = read_line(
            Some(Tool::Curl),
            &s,
            "2 7 - 000 0.000000 |(7) Failed to connect to db.ns port 5432: Couldn't connect to server",
        ) else {
            panic!("a probe line")
        };
        assert_eq!(refused.outcome.kind, Some(ErrorKind::Refused));
        // Timed out before connecting.
        let Read::Probe(slow) =
            read_line(Some(Tool::Curl), &s, "3 28 - 000 0.000000 |(28) Time-out")
        else {
            panic!("a probe line")
        };
        assert_eq!(slow.outcome.kind, Some(ErrorKind::Timeout));
    }

    #[test]
    fn lines_read_into_outcomes() {
        let s = spec(serde_json::json!({ "expect_body": "app1", "path_header": "X-Via" }));
        assert_eq!(
            read_line(None, &s, "ferry-probe-loop wget 1"),
            Read::Hello(Tool::Wget)
        );
        assert_eq!(read_line(None, &s, "ferry-probe-loop none"), Read::NoTool);
        let Read::Probe(ok) = read_line(Some(Tool::Curl), &s, "7 0 1 200 0.012500 old|") else {
            panic!("a probe line")
        };
        assert_eq!(ok.seq, 7);
        assert!(ok.outcome.ok, "{ok:?}");
        assert_eq!(ok.outcome.latency, Duration::from_micros(12_500));
        assert_eq!(ok.outcome.path.as_deref(), Some("old"));
        let Read::Probe(body) = read_line(Some(Tool::Curl), &s, "8 0 0 200 0.01 |") else {
            panic!("a probe line")
        };
        assert_eq!(body.outcome.kind, Some(ErrorKind::Body));
        let line = "9 7 0 000 0.000300 |(7) Failed to connect to 10.0.0.1 port 80: Couldn't connect to server";
        let Read::Probe(refused) = read_line(Some(Tool::Curl), &s, line) else {
            panic!("a probe line")
        };
        assert_eq!(refused.outcome.kind, Some(ErrorKind::Refused));
        assert!(refused.outcome.error.unwrap().contains("Couldn't connect"));
        let Read::Probe(slow) = read_line(
            Some(Tool::Wget),
            &s,
            "10 1 0 000 2000100u |wget: download timed out",
        ) else {
            panic!("a probe line")
        };
        assert_eq!(slow.outcome.kind, Some(ErrorKind::Timeout));
        assert_eq!(slow.outcome.latency, Duration::from_micros(2_000_100));
        let Read::Probe(status) = read_line(Some(Tool::Wget), &s, "11 8 1 503 - |") else {
            panic!("a probe line")
        };
        assert_eq!(status.outcome.kind, Some(ErrorKind::Status));
        assert!(matches!(read_line(None, &s, "sh: oops"), Read::Other(_)));
    }
}
