//! The lab's `sh`: runs the statements `parser.rs` builds (`&&`, `||`, `;`,
//! `if` blocks) with redirections to /dev/null, and the builtins
//! (`echo`, `true`, `false`, `hostname`, `command -v`, `which`); probes
//! from a pod (`probes::http_from`) use them to find out which HTTP client
//! the pod has.

use super::parser::{Node, Op, Parser, parse_command, split_script};
use super::{Shell, failure};
use crate::ports::exec::ExecOutput;
use std::future::Future;
use std::pin::Pin;

impl Shell<'_> {
    /// `a && b || c; d` and `if ...; then ...; elif ...; else ...; fi`, with
    /// redirections to /dev/null honoured.
    pub(super) async fn script(&self, script: &str) -> ExecOutput {
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

    pub(super) async fn simple(&self, argv: &[String]) -> ExecOutput {
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
}
