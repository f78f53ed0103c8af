//! `curl` as scripts and probes from a pod call it: the flags parsed
//! like curl does (combined short flags, `--resolve`, `--connect-to`), and
//! curl's output, `-w` variables, messages and exit codes (6 no such host,
//! 7 refused, 22 with `-f`, 28 timed out), since scripts branch on them.

use super::fetch::{HttpRequest, HttpResponse};
use super::{Shell, failure};
use crate::ports::exec::ExecOutput;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

impl Shell<'_> {
    pub(super) async fn curl(&self, args: &[String]) -> ExecOutput {
        let request = match Curl::parse(args) {
            Ok(r) => r,
            Err(e) => {
                return failure(
                    2,
                    &format!("curl: {e}\ncurl: try 'curl --help' for more information\n"),
                );
            }
        };
        if request.http.url.starts_with("telnet://") {
            return self.telnet(&request).await;
        }
        let started = Instant::now();
        let result = self.fetch(&request.http).await;
        let elapsed = started.elapsed();
        let show_error = !request.silent || request.show_error;
        match result {
            Err(failed) => {
                let stdout = request
                    .write_out
                    .as_deref()
                    .map(|w| write_out(w, None, elapsed, None, &request.http.url))
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
                        Some(&response),
                        elapsed,
                        Some(elapsed),
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
}

impl Shell<'_> {
    /// `curl telnet://host:port` with nothing on stdin, as ferry's TCP
    /// probes run it: connects, sends nothing, and holds the connection
    /// until the server closes it (exit 0) or `--max-time` ends it (28),
    /// like curl does; `time_connect` stays 0 when it never connected.
    async fn telnet(&self, request: &Curl) -> ExecOutput {
        let started = Instant::now();
        let show_error = !request.silent || request.show_error;
        let uri: Result<http::Uri, _> = request.http.url.parse();
        let target = match &uri {
            Ok(uri) if uri.port_u16().is_some() => self.connect_target(&request.http, uri),
            _ => Err(super::fetch::Failure {
                curl_code: 3,
                message: "URL rejected: Port number was not a decimal number between 0 and 65535"
                    .into(),
                wget_message: String::new(),
            }),
        };
        let limit = request.http.timeout.unwrap_or(Duration::from_secs(300));
        let outcome = match target {
            Err(failed) => Err(failed),
            Ok((real, remote)) => {
                match tokio::time::timeout(limit, tokio::net::TcpStream::connect(real)).await {
                    Ok(Ok(stream)) => Ok((stream, remote, started.elapsed())),
                    Ok(Err(_)) => Err(super::fetch::Failure {
                        curl_code: 7,
                        message: format!(
                            "Failed to connect to {} port {} after 0 ms: Couldn't connect to server",
                            remote.ip(),
                            remote.port()
                        ),
                        wget_message: String::new(),
                    }),
                    Err(_) => Err(timed_out(limit)),
                }
            }
        };
        let (stdout, code, message) = match outcome {
            Err(failed) => (
                write_out_or_empty(request, None, started.elapsed(), None),
                failed.curl_code,
                failed.message,
            ),
            Ok((mut stream, remote, connected)) => {
                use tokio::io::AsyncReadExt;
                // What the server sends goes to stdout; its close ends curl.
                let mut received = Vec::new();
                let read = async {
                    let mut buf = [0u8; 4096];
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => received.extend_from_slice(&buf[..n]),
                        }
                    }
                };
                let left = limit.saturating_sub(started.elapsed());
                let closed = tokio::time::timeout(left, read).await.is_ok();
                let response = super::fetch::HttpResponse {
                    status: 0,
                    reason: String::new(),
                    head: String::new(),
                    body: bytes::Bytes::new(),
                    remote,
                };
                let mut out = String::new();
                if request.output_body {
                    out.push_str(&String::from_utf8_lossy(&received));
                }
                out.push_str(&write_out_or_empty(
                    request,
                    Some(&response),
                    started.elapsed(),
                    Some(connected),
                ));
                if closed {
                    (out, 0, String::new())
                } else {
                    (out, 28, timed_out(limit).message)
                }
            }
        };
        ExecOutput {
            stdout,
            stderr: if code != 0 && show_error {
                format!("curl: ({code}) {message}\n")
            } else {
                String::new()
            },
            status: Some(code),
        }
    }
}

fn timed_out(limit: Duration) -> super::fetch::Failure {
    super::fetch::Failure {
        curl_code: 28,
        message: format!(
            "Operation timed out after {} milliseconds with 0 bytes received",
            limit.as_millis()
        ),
        wget_message: "download timed out".into(),
    }
}

fn write_out_or_empty(
    request: &Curl,
    response: Option<&HttpResponse>,
    elapsed: Duration,
    connect: Option<Duration>,
) -> String {
    request
        .write_out
        .as_deref()
        .map(|w| write_out(w, response, elapsed, connect, &request.http.url))
        .unwrap_or_default()
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
                "--http2-prior-knowledge" => c.http.h2c = true,
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

/// curl's `-w` variables, `%header{name}` (curl 7.84) among them;
/// `connect` is how long the connection took (`None`: never connected,
/// which curl prints as 0).
fn write_out(
    format: &str,
    response: Option<&HttpResponse>,
    elapsed: Duration,
    connect: Option<Duration>,
    url: &str,
) -> String {
    let secs = format!("{:.6}", elapsed.as_secs_f64());
    let connect = format!("{:.6}", connect.unwrap_or_default().as_secs_f64());
    let status = response.map_or(0, |r| r.status);
    let remote = response.map(|r| r.remote);
    let size = response.map_or(0, |r| r.body.len());
    let mut text = format
        .replace("%{http_code}", &format!("{status:03}"))
        .replace("%{response_code}", &format!("{status:03}"))
        .replace("%{time_total}", &secs)
        .replace("%{time_starttransfer}", &secs)
        .replace("%{time_connect}", &connect)
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
        .replace("\\t", "\t");
    while let Some(start) = text.find("%header{") {
        let Some(len) = text[start..].find('}') else {
            break;
        };
        let name = &text[start + "%header{".len()..start + len];
        let value = response
            .and_then(|r| {
                r.head.lines().find_map(|line| {
                    let (n, v) = line.split_once(':')?;
                    n.trim()
                        .eq_ignore_ascii_case(name)
                        .then(|| v.trim().to_owned())
                })
            })
            .unwrap_or_default();
        text.replace_range(start..=start + len, &value);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let response = HttpResponse {
            status: 200,
            reason: "OK".into(),
            head: "HTTP/1.1 200 OK\r\nx-ferry-via: new\r\n\r\n".into(),
            body: bytes::Bytes::from_static(b"abc"),
            remote: "127.0.0.1:80".parse().unwrap(),
        };
        assert_eq!(
            write_out(
                "%{http_code} %{remote_ip} %header{X-Ferry-Via}|%header{x-none}|\\n",
                Some(&response),
                Duration::ZERO,
                None,
                "u"
            ),
            "200 127.0.0.1 new||\n"
        );
        assert_eq!(
            write_out(
                "%{http_code} %{time_connect}",
                None,
                Duration::ZERO,
                None,
                "u"
            ),
            "000 0.000000"
        );
    }
}
