//! BusyBox `wget`, the client that images without curl carry: `-q`, `-O -`,
//! `-T`, `--header`, `-S` (the response's status line and headers on
//! stderr, indented by two spaces), with BusyBox's messages and exit codes
//! (4 network failure, 8 HTTP error).

use super::fetch::HttpRequest;
use super::{Shell, failure};
use crate::ports::exec::ExecOutput;
use std::time::Duration;

impl Shell<'_> {
    pub(super) async fn wget(&self, args: &[String]) -> ExecOutput {
        let mut http = HttpRequest::default();
        let mut to_stdout = false;
        let mut quiet = false;
        let mut server_response = false;
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "-q" => quiet = true,
                "-O" => to_stdout = it.next().is_some_and(|o| o == "-"),
                "-O-" => to_stdout = true,
                "-S" | "--server-response" => server_response = true,
                "--no-check-certificate" => {}
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
                    "{}wget: server returned error: HTTP/1.1 {} {}\n",
                    if server_response {
                        indented(&response.head)
                    } else {
                        String::new()
                    },
                    response.status,
                    response.reason
                ),
                status: Some(8),
            },
            Ok(response) => ExecOutput {
                stdout: if to_stdout {
                    String::from_utf8_lossy(&response.body).into_owned()
                } else {
                    String::new()
                },
                stderr: format!(
                    "{}{}",
                    if quiet {
                        String::new()
                    } else {
                        format!("Connecting to {}\n", http.url)
                    },
                    if server_response {
                        indented(&response.head)
                    } else {
                        String::new()
                    },
                ),
                status: Some(0),
            },
        }
    }
}

/// A response head as `wget -S` prints it: each line indented by two spaces.
fn indented(head: &str) -> String {
    head.lines()
        .filter(|l| !l.is_empty())
        .map(|l| format!("  {l}\n"))
        .collect()
}
