//! ferry's guard probe loop (`crate::probes::stream`), run natively: the
//! lab's shell has no background jobs, `sleep` or `read`, so the script is
//! recognised by its marker and its plan (rate, the curl command line, the
//! body to look for) is carried out here, printing the line the script's
//! `pc` function prints for each probe. Probes are fired on a clock at the
//! plan's rate, concurrently like the script's workers, each through the
//! lab's `curl`. The loop ends when its stdin (the `lines` channel) closes
//! or after the plan's `max_s`, as the script does.

use super::{Shell, failure};
use crate::ports::exec::ExecOutput;
use crate::probes::stream::{HELLO, Plan};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use std::time::Duration;

/// What separates curl's body from the loop's `-w` trailer.
const MARK: &str = "__ferry_probe__ ";

impl Shell<'_> {
    pub(super) async fn probe_loop(
        &self,
        plan: &Plan,
        lines: &tokio::sync::mpsc::Sender<String>,
    ) -> ExecOutput {
        if self.bare {
            return failure(
                127,
                "OCI runtime exec failed: exec failed: unable to start container process: exec: \"sh\": executable file not found in $PATH\n",
            );
        }
        if lines.send(format!("{HELLO} curl 1")).await.is_err() {
            return ok();
        }
        let Some(args) = plan.curl.get(1..) else {
            return failure(2, "sh: no curl command in the plan\n");
        };
        let rate = plan.rate.clamp(0.01, 10_000.0);
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
        let deadline = tokio::time::sleep(Duration::from_secs(plan.max_s));
        tokio::pin!(deadline);
        let mut in_flight = FuturesUnordered::new();
        let mut seq = 0u64;
        loop {
            tokio::select! {
                biased;
                _ = lines.closed() => return ok(),
                _ = &mut deadline => break,
                Some(line) = in_flight.next(), if !in_flight.is_empty() => {
                    if lines.send(line).await.is_err() {
                        return ok();
                    }
                }
                _ = tick.tick() => {
                    let n = seq;
                    seq += 1;
                    in_flight.push(async move { line(n, plan, &self.curl(args).await) });
                }
            }
        }
        // Probes fired before the deadline still report.
        while let Some(line) = in_flight.next().await {
            if lines.send(line).await.is_err() {
                break;
            }
        }
        ok()
    }
}

fn ok() -> ExecOutput {
    ExecOutput {
        status: Some(0),
        ..Default::default()
    }
}

/// The line the script's `pc` prints: `<seq> <exit> <body> <trailer>|<message>`.
fn line(seq: u64, plan: &Plan, out: &ExecOutput) -> String {
    let rc = out.status.unwrap_or(1);
    let (body, trailer) = match out.stdout.rfind(MARK) {
        Some(at) => (&out.stdout[..at], out.stdout[at + MARK.len()..].trim_end()),
        None => (out.stdout.as_str(), "000 -"),
    };
    let found = match &plan.want {
        Some(want) if body.contains(want.as_str()) => "1",
        Some(_) => "0",
        None => "-",
    };
    let message = if rc == 0 {
        ""
    } else {
        out.stderr
            .rsplit_once("curl: ")
            .map(|(_, m)| m)
            .unwrap_or(&out.stderr)
            .lines()
            .next()
            .unwrap_or_default()
    };
    format!("{seq} {rc} {found} {trailer}|{message}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_what_the_script_prints() {
        let spec = crate::probes::spec::HttpSpec::new(
            "http://app1.app1-ns/",
            serde_json::json!({ "expect_body": "app1" })
                .as_object()
                .unwrap(),
        )
        .unwrap();
        let plan = Plan::new(&spec, 10.0, Duration::from_secs(5));
        let answered = ExecOutput {
            stdout: "Hello from app1\n__ferry_probe__ 200 0.001200".into(),
            stderr: String::new(),
            status: Some(0),
        };
        assert_eq!(line(3, &plan, &answered), "3 0 1 200 0.001200|");
        let refused = ExecOutput {
            stdout: "\n__ferry_probe__ 000 0.000100".into(),
            stderr: "curl: (7) Failed to connect: Couldn't connect to server\n".into(),
            status: Some(7),
        };
        assert_eq!(
            line(4, &plan, &refused),
            "4 7 0 000 0.000100|(7) Failed to connect: Couldn't connect to server"
        );
    }
}
