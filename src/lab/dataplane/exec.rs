//! `kubectl exec` into a lab pod: the commands migration scripts and probes
//! run from a pod's vantage point (the article's `curl -H "Host: ..."` from
//! inside app2), performed by the lab from that pod's network: its cluster's
//! DNS, the private zone, Service IPs, other clusters' load balancers.
//!
//! Supported: `curl` (-s -S -f -o -w -H -m --connect-timeout --resolve -k -X
//! -i -I -L -d), BusyBox-style `wget` (-q -O -T --header -S), `sh -c` with
//! `;`, `&&`, `||` and output redirections, `command -v`, `which`, `echo`,
//! `true`, `false`, `hostname`. Images whose name says `distroless` or
//! `scratch` have no shell, curl or wget, as in real life.

use super::http::{SendError, send};
use super::network::{ResolveError, SharedNetwork};
use crate::lab::apiserver::{Cluster, PodCommands};
use crate::ports::exec::ExecOutput;
use bytes::Bytes;
use http_body_util::Full;
use serde_json::Value;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::time::{Duration, Instant};

pub struct LabCommands {
    pub network: SharedNetwork,
}

impl PodCommands for LabCommands {
    fn run(
        &self,
        cluster: &str,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        command: Vec<String>,
    ) -> Pin<Box<dyn Future<Output = ExecOutput> + Send + '_>> {
        let (cluster, namespace, pod, container) = (
            cluster.to_owned(),
            namespace.to_owned(),
            pod.to_owned(),
            container.map(str::to_owned),
        );
        Box::pin(async move {
            let Some(cluster) = self.network.cluster(&cluster).cloned() else {
                return failure(1, "no such cluster\n");
            };
            let pod_object =
                cluster.with_state(|s| s.objects.get(&format!("pods/{namespace}/{pod}")).cloned());
            let Some(pod_object) = pod_object else {
                return failure(1, &format!("pods \"{pod}\" not found\n"));
            };
            let image = pod_object["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| container.as_deref().is_none_or(|name| c["name"] == name))
                .and_then(|c| c["image"].as_str())
                .unwrap_or_default()
                .to_owned();
            let shell = Shell {
                network: &self.network,
                cluster: &cluster,
                pod: &pod_object,
                bare: image.contains("distroless") || image.contains("scratch"),
            };
            shell.run(&command).await
        })
    }
}

fn failure(status: i32, stderr: &str) -> ExecOutput {
    ExecOutput {
        stdout: String::new(),
        stderr: stderr.to_owned(),
        status: Some(status),
    }
}

struct Shell<'a> {
    network: &'a SharedNetwork,
    cluster: &'a Cluster,
    pod: &'a Value,
    /// No tools at all (distroless / scratch images).
    bare: bool,
}

impl Shell<'_> {
    fn has(&self, tool: &str) -> bool {
        !self.bare
            && matches!(
                tool,
                "sh" | "curl"
                    | "wget"
                    | "echo"
                    | "true"
                    | "false"
                    | "hostname"
                    | "which"
                    | "command"
            )
    }

    async fn run(&self, argv: &[String]) -> ExecOutput {
        let Some(program) = argv.first() else {
            return failure(1, "no command\n");
        };
        if !self.has(program) {
            // What the container runtime reports when the binary is missing.
            return failure(
                127,
                &format!(
                    "OCI runtime exec failed: exec failed: unable to start container process: exec: \"{program}\": executable file not found in $PATH\n"
                ),
            );
        }
        match program.as_str() {
            "sh" => match argv.get(1).map(String::as_str) {
                Some("-c") => {
                    self.script(argv.get(2).map(String::as_str).unwrap_or_default())
                        .await
                }
                _ => failure(2, "sh: only `sh -c SCRIPT` is supported in the lab\n"),
            },
            _ => self.simple(argv).await,
        }
    }

    /// `a && b || c; d` and `if ...; then ...; elif ...; else ...; fi`, with
    /// redirections to /dev/null honoured.
    async fn script(&self, script: &str) -> ExecOutput {
        match Parser::new(split_script(script)).list(&[]) {
            Ok(nodes) => self.nodes(&nodes).await,
            Err(e) => failure(2, &format!("sh: syntax error: {e}\n")),
        }
    }

    fn nodes<'a>(
        &'a self,
        nodes: &'a [Node],
    ) -> Pin<Box<dyn Future<Output = ExecOutput> + Send + 'a>> {
        Box::pin(async move {
            let mut out = ExecOutput {
                status: Some(0),
                ..Default::default()
            };
            for node in nodes {
                let last = out.status.unwrap_or(0);
                let run = match node.op() {
                    Op::Always => true,
                    Op::And => last == 0,
                    Op::Or => last != 0,
                };
                if !run {
                    continue;
                }
                let result = match node {
                    Node::Command(_, text) => self.command_text(text).await,
                    Node::If {
                        branches,
                        otherwise,
                        ..
                    } => {
                        let mut result = ExecOutput {
                            status: Some(0),
                            ..Default::default()
                        };
                        let mut taken = false;
                        for (condition, body) in branches {
                            let tested = self.nodes(condition).await;
                            result.stdout.push_str(&tested.stdout);
                            result.stderr.push_str(&tested.stderr);
                            if tested.status == Some(0) {
                                let ran = self.nodes(body).await;
                                result.stdout.push_str(&ran.stdout);
                                result.stderr.push_str(&ran.stderr);
                                result.status = ran.status;
                                taken = true;
                                break;
                            }
                        }
                        if !taken && let Some(body) = otherwise {
                            let ran = self.nodes(body).await;
                            result.stdout.push_str(&ran.stdout);
                            result.stderr.push_str(&ran.stderr);
                            result.status = ran.status;
                        }
                        result
                    }
                };
                out.stdout.push_str(&result.stdout);
                out.stderr.push_str(&result.stderr);
                out.status = result.status;
            }
            out
        })
    }

    async fn command_text(&self, text: &str) -> ExecOutput {
        let (words, silence_out, silence_err) = match parse_command(text) {
            Ok(parsed) => parsed,
            Err(e) => return failure(2, &format!("sh: syntax error: {e}\n")),
        };
        if words.is_empty() {
            return ExecOutput {
                status: Some(0),
                ..Default::default()
            };
        }
        let mut result = if self.has(&words[0]) {
            Box::pin(self.simple(&words)).await
        } else {
            failure(127, &format!("sh: {}: not found\n", words[0]))
        };
        if silence_out {
            result.stdout.clear();
        }
        if silence_err {
            result.stderr.clear();
        }
        result
    }

    async fn simple(&self, argv: &[String]) -> ExecOutput {
        let args = &argv[1..];
        let ok = |stdout: String| ExecOutput {
            stdout,
            stderr: String::new(),
            status: Some(0),
        };
        match argv[0].as_str() {
            "echo" => ok(format!("{}\n", args.join(" "))),
            "true" => ok(String::new()),
            "false" => failure(1, ""),
            "hostname" => ok(format!(
                "{}\n",
                self.pod["metadata"]["name"].as_str().unwrap_or_default()
            )),
            "command" | "which" => {
                let names: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
                let found: Vec<String> = names
                    .iter()
                    .filter(|n| self.has(n))
                    .map(|n| format!("/usr/bin/{n}\n"))
                    .collect();
                if found.len() == names.len() && !names.is_empty() {
                    ok(found.concat())
                } else {
                    ExecOutput {
                        stdout: found.concat(),
                        stderr: String::new(),
                        status: Some(1),
                    }
                }
            }
            "curl" => self.curl(args).await,
            "wget" => self.wget(args).await,
            other => failure(127, &format!("sh: {other}: not found\n")),
        }
    }

    async fn curl(&self, args: &[String]) -> ExecOutput {
        let request = match Curl::parse(args) {
            Ok(r) => r,
            Err(e) => {
                return failure(
                    2,
                    &format!("curl: {e}\ncurl: try 'curl --help' for more information\n"),
                );
            }
        };
        let started = Instant::now();
        let result = self.fetch(&request.http).await;
        let elapsed = started.elapsed();
        let show_error = !request.silent || request.show_error;
        match result {
            Err(failed) => {
                let stdout = request
                    .write_out
                    .as_deref()
                    .map(|w| write_out(w, 0, elapsed, None, 0, &request.http.url))
                    .unwrap_or_default();
                let stderr = if show_error {
                    format!("curl: ({}) {}\n", failed.curl_code, failed.message)
                } else {
                    String::new()
                };
                ExecOutput {
                    stdout,
                    stderr,
                    status: Some(failed.curl_code),
                }
            }
            Ok(response) => {
                let status = response.status;
                let mut stdout = String::new();
                if request.include {
                    stdout.push_str(&response.head);
                }
                if request.output_body {
                    stdout.push_str(&String::from_utf8_lossy(&response.body));
                }
                if let Some(w) = &request.write_out {
                    stdout.push_str(&write_out(
                        w,
                        status,
                        elapsed,
                        Some(response.remote),
                        response.body.len(),
                        &request.http.url,
                    ));
                }
                if request.fail && status >= 400 {
                    let stderr = if show_error {
                        format!("curl: (22) The requested URL returned error: {status}\n")
                    } else {
                        String::new()
                    };
                    return ExecOutput {
                        stdout,
                        stderr,
                        status: Some(22),
                    };
                }
                ExecOutput {
                    stdout,
                    stderr: String::new(),
                    status: Some(0),
                }
            }
        }
    }

    async fn wget(&self, args: &[String]) -> ExecOutput {
        let mut http = HttpRequest::default();
        let mut to_stdout = false;
        let mut quiet = false;
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "-q" => quiet = true,
                "-O" => to_stdout = it.next().is_some_and(|o| o == "-"),
                "-O-" => to_stdout = true,
                "-S" | "--server-response" | "--no-check-certificate" => {}
                "-T" => {
                    http.timeout = it
                        .next()
                        .and_then(|t| t.parse().ok())
                        .map(Duration::from_secs_f64)
                }
                "--header" => http.headers.extend(it.next().cloned()),
                a if a.starts_with("--header=") => {
                    http.headers.push(a["--header=".len()..].to_owned())
                }
                a if a.starts_with("--timeout=") || a.starts_with("-T") => {
                    http.timeout = a
                        .trim_start_matches("--timeout=")
                        .trim_start_matches("-T")
                        .parse()
                        .ok()
                        .map(Duration::from_secs_f64)
                }
                a if a.starts_with('-') => {
                    return failure(1, &format!("wget: unrecognized option '{a}'\n"));
                }
                url => http.url = url.to_owned(),
            }
        }
        match self.fetch(&http).await {
            Err(failed) => failure(4, &format!("wget: {}\n", failed.wget_message)),
            Ok(response) if response.status >= 400 => ExecOutput {
                stdout: String::new(),
                stderr: format!(
                    "wget: server returned error: HTTP/1.1 {} {}\n",
                    response.status, response.reason
                ),
                status: Some(8),
            },
            Ok(response) => ExecOutput {
                stdout: if to_stdout {
                    String::from_utf8_lossy(&response.body).into_owned()
                } else {
                    String::new()
                },
                stderr: if quiet {
                    String::new()
                } else {
                    format!("Connecting to {}\n", http.url)
                },
                status: Some(0),
            },
        }
    }

    /// One HTTP request from this pod.
    async fn fetch(&self, request: &HttpRequest) -> Result<HttpResponse, Failure> {
        let uri: http::Uri = request.url.parse().map_err(|_| {
            Failure::new(
                3,
                format!(
                    "URL using bad/illegal format or missing URL: {}",
                    request.url
                ),
            )
        })?;
        if uri.scheme_str() == Some("https") {
            return Err(Failure::new(
                7,
                "Failed to connect: TLS is not served inside the lab (use http://)".into(),
            ));
        }
        let host = uri.host().unwrap_or_default().to_owned();
        let port = uri.port_u16().unwrap_or(80);
        // --resolve / --connect-to first, then the pod's DNS.
        let (ip, connect_port) = match request
            .resolve
            .iter()
            .find(|(h, p, _, _)| h.eq_ignore_ascii_case(&host) && *p == port)
        {
            Some((_, _, ip, to_port)) => (*ip, *to_port),
            None => {
                let ip = self.network.resolve(self.cluster, &host).map_err(
                    |ResolveError::NotFound(name)| Failure {
                        curl_code: 6,
                        message: format!("Could not resolve host: {name}"),
                        wget_message: format!("bad address '{name}'"),
                    },
                )?;
                (ip, port)
            }
        };
        let refused = || Failure {
            curl_code: 7,
            message: format!(
                "Failed to connect to {host} port {port} after 0 ms: Couldn't connect to server"
            ),
            wget_message: format!("can't connect to remote host ({ip}): Connection refused"),
        };
        let real = self
            .network
            .route(self.cluster, ip, connect_port)
            .ok_or_else(refused)?;
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
        let mut builder = http::Request::builder()
            .method(request.method.as_str())
            .uri(path);
        let mut host_header = if port == 80 {
            host.clone()
        } else {
            format!("{host}:{port}")
        };
        for header in &request.headers {
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            if name.trim().eq_ignore_ascii_case("host") {
                host_header = value.trim().to_owned();
            } else {
                builder = builder.header(name.trim(), value.trim());
            }
        }
        builder = builder
            .header("host", host_header)
            .header("user-agent", "curl/8.5.0")
            .header("accept", "*/*");
        let req = builder
            .body(Full::new(Bytes::from(
                request.data.clone().unwrap_or_default(),
            )))
            .map_err(|e| Failure::new(3, e.to_string()))?;
        let timeout = request.timeout.unwrap_or(Duration::from_secs(300));
        let response = match tokio::time::timeout(timeout, send(real, req)).await {
            Err(_) => {
                return Err(Failure {
                    curl_code: 28,
                    message: format!(
                        "Operation timed out after {} milliseconds with 0 bytes received",
                        timeout.as_millis()
                    ),
                    wget_message: "download timed out".into(),
                });
            }
            Ok(Err(SendError::Connect(_))) => return Err(refused()),
            Ok(Err(SendError::Http(e))) => {
                return Err(Failure::new(56, format!("Recv failure: {e}")));
            }
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        let mut head = format!(
            "HTTP/1.1 {} {}\r\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        for (name, value) in response.headers() {
            head.push_str(&format!(
                "{name}: {}\r\n",
                value.to_str().unwrap_or_default()
            ));
        }
        head.push_str("\r\n");
        Ok(HttpResponse {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or("").to_owned(),
            head,
            body: response.into_body(),
            remote: SocketAddr::from((ip, connect_port)),
        })
    }
}

#[derive(Default)]
struct HttpRequest {
    url: String,
    method: String,
    headers: Vec<String>,
    data: Option<String>,
    timeout: Option<Duration>,
    /// (host, port) -> (address, port) to connect to instead.
    resolve: Vec<(String, u16, Ipv4Addr, u16)>,
}

struct HttpResponse {
    status: u16,
    reason: String,
    head: String,
    body: Bytes,
    /// The address the client connected to (virtual).
    remote: SocketAddr,
}

struct Failure {
    curl_code: i32,
    message: String,
    wget_message: String,
}

impl Failure {
    fn new(curl_code: i32, message: String) -> Self {
        Failure {
            curl_code,
            wget_message: message.clone(),
            message,
        }
    }
}

struct Curl {
    http: HttpRequest,
    silent: bool,
    show_error: bool,
    fail: bool,
    include: bool,
    output_body: bool,
    write_out: Option<String>,
}

impl Curl {
    fn parse(args: &[String]) -> Result<Curl, String> {
        let mut c = Curl {
            http: HttpRequest {
                method: String::new(),
                ..Default::default()
            },
            silent: false,
            show_error: false,
            fail: false,
            include: false,
            output_body: true,
            write_out: None,
        };
        let mut head_only = false;
        let mut it = args.iter();
        let value = |it: &mut std::slice::Iter<'_, String>, flag: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("option {flag}: requires parameter"))
        };
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "-o" | "--output" => {
                    let target = value(&mut it, arg)?;
                    c.output_body = target == "-";
                }
                "-w" | "--write-out" => c.write_out = Some(value(&mut it, arg)?),
                "-H" | "--header" => c.http.headers.push(value(&mut it, arg)?),
                "-m" | "--max-time" => {
                    c.http.timeout = Some(Duration::from_secs_f64(
                        value(&mut it, arg)?
                            .parse()
                            .map_err(|_| format!("option {arg}: expected a number"))?,
                    ))
                }
                "--connect-timeout" => {
                    value(&mut it, arg)?;
                }
                "--connect-to" => {
                    // HOST:PORT:CONNECT-TO-HOST:CONNECT-TO-PORT
                    let spec = value(&mut it, arg)?;
                    let parts: Vec<&str> = spec.split(':').collect();
                    let [host, port, to_host, to_port] = parts.as_slice() else {
                        return Err(format!("option --connect-to: bad value {spec}"));
                    };
                    let port: u16 = port
                        .parse()
                        .map_err(|_| format!("option --connect-to: bad port in {spec}"))?;
                    let to: Ipv4Addr = to_host
                        .trim_matches(|c| c == '[' || c == ']')
                        .parse()
                        .map_err(|_| {
                            format!("option --connect-to: the lab needs an address in {spec}")
                        })?;
                    let to_port = if to_port.is_empty() {
                        port
                    } else {
                        to_port
                            .parse()
                            .map_err(|_| format!("option --connect-to: bad port in {spec}"))?
                    };
                    c.http.resolve.push((host.to_string(), port, to, to_port));
                }
                "--" => {
                    if let Some(url) = it.next() {
                        c.http.url = url.clone();
                    }
                }
                "--resolve" => {
                    let spec = value(&mut it, arg)?;
                    let mut parts = spec.splitn(3, ':');
                    let (Some(host), Some(port), Some(addr)) =
                        (parts.next(), parts.next(), parts.next())
                    else {
                        return Err(format!("option --resolve: bad value {spec}"));
                    };
                    let port = port
                        .parse()
                        .map_err(|_| format!("option --resolve: bad port in {spec}"))?;
                    let addr = addr
                        .trim_matches(|c| c == '[' || c == ']')
                        .parse()
                        .map_err(|_| format!("option --resolve: bad address in {spec}"))?;
                    c.http.resolve.push((host.to_owned(), port, addr, port));
                }
                "-X" | "--request" => c.http.method = value(&mut it, arg)?,
                "-d" | "--data" | "--data-raw" => {
                    c.http.data = Some(value(&mut it, arg)?);
                    if c.http.method.is_empty() {
                        c.http.method = "POST".into();
                    }
                }
                "--silent" => c.silent = true,
                "--show-error" => c.show_error = true,
                "--fail" => c.fail = true,
                "--include" => c.include = true,
                "--head" => head_only = true,
                "--insecure" | "--location" | "--http1.1" | "--verbose" | "--compressed"
                | "--no-keepalive" => {}
                a if a.starts_with("--") => return Err(format!("option {a}: is unknown")),
                a if a.starts_with('-') && a.len() > 1 => {
                    // Combined short flags: -sS, -fsSL, -so /dev/null ...
                    let flags: Vec<char> = a[1..].chars().collect();
                    for (i, flag) in flags.iter().enumerate() {
                        match flag {
                            's' => c.silent = true,
                            'S' => c.show_error = true,
                            'f' => c.fail = true,
                            'i' => c.include = true,
                            'I' => head_only = true,
                            'k' | 'L' | 'v' | 'N' => {}
                            'o' | 'w' | 'H' | 'm' | 'X' | 'd' if i == flags.len() - 1 => {
                                let v = value(&mut it, a)?;
                                match flag {
                                    'o' => c.output_body = v == "-",
                                    'w' => c.write_out = Some(v),
                                    'H' => c.http.headers.push(v),
                                    'm' => {
                                        c.http.timeout =
                                            Some(Duration::from_secs_f64(v.parse().map_err(
                                                |_| "option -m: expected a number".to_string(),
                                            )?))
                                    }
                                    'X' => c.http.method = v,
                                    _ => {
                                        c.http.data = Some(v);
                                        if c.http.method.is_empty() {
                                            c.http.method = "POST".into();
                                        }
                                    }
                                }
                            }
                            other => return Err(format!("option -{other}: is unknown")),
                        }
                    }
                }
                url => c.http.url = url.to_owned(),
            }
        }
        if c.http.url.is_empty() {
            return Err("no URL specified".into());
        }
        if !c.http.url.contains("://") {
            c.http.url = format!("http://{}", c.http.url);
        }
        if head_only {
            c.http.method = "HEAD".into();
            c.include = true;
            c.output_body = false;
        }
        if c.http.method.is_empty() {
            c.http.method = "GET".into();
        }
        Ok(c)
    }
}

/// curl's `-w` variables.
fn write_out(
    format: &str,
    status: u16,
    elapsed: Duration,
    remote: Option<SocketAddr>,
    size: usize,
    url: &str,
) -> String {
    let secs = format!("{:.6}", elapsed.as_secs_f64());
    format
        .replace("%{http_code}", &format!("{status:03}"))
        .replace("%{response_code}", &format!("{status:03}"))
        .replace("%{time_total}", &secs)
        .replace("%{time_starttransfer}", &secs)
        .replace("%{time_connect}", &secs)
        .replace(
            "%{remote_ip}",
            &remote.map(|r| r.ip().to_string()).unwrap_or_default(),
        )
        .replace(
            "%{remote_port}",
            &remote.map(|r| r.port().to_string()).unwrap_or_default(),
        )
        .replace("%{size_download}", &size.to_string())
        .replace("%{url_effective}", url)
        .replace("\\n", "\n")
        .replace("\\t", "\t")
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Op {
    Always,
    And,
    Or,
}

/// Splits `a && b || c; d` at top level (outside quotes).
fn split_script(script: &str) -> Vec<(Op, String)> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut op = Op::Always;
    let mut quote: Option<char> = None;
    let chars: Vec<char> = script.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match (quote, c) {
            (Some(q), c) if c == q => {
                quote = None;
                current.push(c);
            }
            (Some(_), c) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                current.push(c);
            }
            (None, '&') if chars.get(i + 1) == Some(&'&') => {
                parts.push((op, std::mem::take(&mut current)));
                op = Op::And;
                i += 1;
            }
            (None, '|') if chars.get(i + 1) == Some(&'|') => {
                parts.push((op, std::mem::take(&mut current)));
                op = Op::Or;
                i += 1;
            }
            (None, ';' | '\n') => {
                parts.push((op, std::mem::take(&mut current)));
                op = Op::Always;
            }
            (None, c) => current.push(c),
        }
        i += 1;
    }
    parts.push((op, current));
    parts
        .into_iter()
        .filter(|(_, p)| !p.trim().is_empty())
        .collect()
}

/// Words of one simple command, and whether stdout / stderr are redirected away.
fn parse_command(part: &str) -> Result<(Vec<String>, bool, bool), String> {
    let words = shell_words::split(part).map_err(|e| e.to_string())?;
    let (mut kept, mut no_out, mut no_err) = (Vec::new(), false, false);
    let mut it = words.into_iter().peekable();
    while let Some(word) = it.next() {
        match word.as_str() {
            ">/dev/null" | "1>/dev/null" => no_out = true,
            "2>/dev/null" => no_err = true,
            "2>&1" => no_err = no_out,
            "&>/dev/null" => {
                no_out = true;
                no_err = true;
            }
            ">" | "1>" | "2>" => {
                let target = it.next().unwrap_or_default();
                if target == "/dev/null" {
                    if word == "2>" {
                        no_err = true
                    } else {
                        no_out = true
                    }
                }
            }
            _ => kept.push(word),
        }
    }
    Ok((kept, no_out, no_err))
}

/// A parsed shell statement.
#[derive(Debug, PartialEq)]
enum Node {
    Command(Op, String),
    If {
        op: Op,
        branches: Vec<(Vec<Node>, Vec<Node>)>,
        otherwise: Option<Vec<Node>>,
    },
}

impl Node {
    fn op(&self) -> Op {
        match self {
            Node::Command(op, _) | Node::If { op, .. } => *op,
        }
    }
}

/// Builds `if` blocks out of the statements `split_script` found.
struct Parser {
    parts: Vec<(Op, String)>,
    at: usize,
}

fn first_word(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    (&text[..end], text[end..].trim_start())
}

impl Parser {
    fn new(parts: Vec<(Op, String)>) -> Self {
        Parser { parts, at: 0 }
    }

    fn peek_word(&self) -> Option<&str> {
        self.parts.get(self.at).map(|(_, text)| first_word(text).0)
    }

    /// Drops the leading keyword of the current statement; the rest (if any)
    /// is a command of its own.
    fn consume_keyword(&mut self) {
        let (_, text) = &self.parts[self.at];
        let rest = first_word(text).1.to_owned();
        if rest.is_empty() {
            self.at += 1;
        } else {
            self.parts[self.at] = (Op::Always, rest);
        }
    }

    fn list(&mut self, stop: &[&str]) -> Result<Vec<Node>, String> {
        let mut nodes = Vec::new();
        while let Some(word) = self.peek_word() {
            if stop.contains(&word) {
                return Ok(nodes);
            }
            match word {
                "if" => {
                    let op = self.parts[self.at].0;
                    self.consume_keyword();
                    nodes.push(self.if_block(op)?);
                }
                "then" | "elif" | "else" | "fi" => return Err(format!("unexpected `{word}`")),
                _ => {
                    nodes.push(Node::Command(
                        self.parts[self.at].0,
                        self.parts[self.at].1.clone(),
                    ));
                    self.at += 1;
                }
            }
        }
        if stop.is_empty() {
            Ok(nodes)
        } else {
            Err(format!("expected `{}` before the end", stop.join("` or `")))
        }
    }

    fn if_block(&mut self, op: Op) -> Result<Node, String> {
        let mut branches = Vec::new();
        loop {
            let condition = self.list(&["then"])?;
            self.consume_keyword();
            let body = self.list(&["elif", "else", "fi"])?;
            branches.push((condition, body));
            match self.peek_word() {
                Some("elif") => self.consume_keyword(),
                Some("else") => {
                    self.consume_keyword();
                    let otherwise = self.list(&["fi"])?;
                    self.consume_keyword();
                    return Ok(Node::If {
                        op,
                        branches,
                        otherwise: Some(otherwise),
                    });
                }
                _ => {
                    self.consume_keyword();
                    return Ok(Node::If {
                        op,
                        branches,
                        otherwise: None,
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_split_at_top_level_operators() {
        let parts =
            split_script("command -v curl >/dev/null 2>&1 && echo curl || echo 'a || b'; true");
        let ops: Vec<Op> = parts.iter().map(|(op, _)| *op).collect();
        assert_eq!(ops, [Op::Always, Op::And, Op::Or, Op::Always]);
        assert_eq!(parts[2].1.trim(), "echo 'a || b'");
        let (words, out, err) = parse_command(&parts[0].1).unwrap();
        assert_eq!(words, ["command", "-v", "curl"]);
        assert!(out && err);
    }

    #[test]
    fn if_blocks_parse_with_elif_and_else() {
        let script = "if command -v curl >/dev/null 2>&1; then echo curl; elif command -v wget >/dev/null 2>&1; then echo wget; else echo none; fi; echo after";
        let nodes = Parser::new(split_script(script)).list(&[]).unwrap();
        assert_eq!(nodes.len(), 2);
        let Node::If {
            branches,
            otherwise,
            ..
        } = &nodes[0]
        else {
            panic!("an if block")
        };
        assert_eq!(branches.len(), 2);
        assert_eq!(
            branches[1].1,
            vec![Node::Command(Op::Always, "echo wget".into())]
        );
        assert_eq!(
            otherwise.as_deref(),
            Some(&[Node::Command(Op::Always, "echo none".into())][..])
        );
        assert!(
            Parser::new(split_script("if true; then echo x"))
                .list(&[])
                .is_err()
        );
        assert!(Parser::new(split_script("fi")).list(&[]).is_err());
    }

    #[test]
    fn curl_flags_parse_like_curl() {
        let args: Vec<String> = [
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Host: app1.app1-ns",
            "--resolve",
            "old.x:80:127.11.0.1",
            "-m",
            "2",
            "old.x/",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let c = Curl::parse(&args).unwrap();
        assert!(c.silent && c.show_error && !c.output_body);
        assert_eq!(c.http.url, "http://old.x/");
        assert_eq!(
            c.http.resolve,
            vec![("old.x".to_owned(), 80, Ipv4Addr::new(127, 11, 0, 1), 80)]
        );
        assert_eq!(c.http.timeout, Some(Duration::from_secs(2)));
        assert!(Curl::parse(&["--bogus".to_owned(), "x".to_owned()]).is_err());
        assert_eq!(
            write_out(
                "%{http_code} %{remote_ip}\\n",
                200,
                Duration::ZERO,
                Some("127.0.0.1:80".parse().unwrap()),
                3,
                "u"
            ),
            "200 127.0.0.1\n"
        );
    }
}
