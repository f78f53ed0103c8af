//! Waiting on a cluster: `wait` (a script condition), `rollout`
//! (Deployment/StatefulSet/DaemonSet available), `ingress_address` (a
//! LoadBalancer's address), and the end of a `delete`. Each polls with a
//! countdown in the progress output, prints a line whenever what it sees
//! changes, ends at once on Ctrl-C and fails with what it saw last on timeout.

use crate::engine::Countdown;
use crate::engine::Session;
use crate::engine::control::{Control, host_error};
use crate::engine::frames;
use crate::events::Event;
use rhai::{Dynamic, EvalAltResult, Position};
use serde_json::Value;
use std::time::{Duration, Instant};

pub enum Seen<T> {
    Done(T),
    /// Not yet; what it looks like now.
    Waiting(String),
    /// It will never be done (e.g. a rollout past its progress deadline).
    Failed(String),
}

pub struct Wait<'a> {
    pub cluster: &'a str,
    pub kind: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    /// `rollout Deployment app1-ns/app1`
    pub label: String,
    pub timeout: Duration,
    pub interval: Duration,
}

impl Wait<'_> {
    fn error(&self, reason: &str, message: String, pos: Position) -> Box<EvalAltResult> {
        let mut details = rhai::Map::new();
        details.insert("cluster".into(), self.cluster.into());
        details.insert("verb".into(), "wait".into());
        details.insert("kind".into(), self.kind.into());
        details.insert("namespace".into(), self.namespace.into());
        details.insert("name".into(), self.name.into());
        details.insert("reason".into(), reason.into());
        details.insert("status".into(), Dynamic::UNIT);
        host_error(
            "cluster",
            format!("cluster `{}`: {}: {message}", self.cluster, self.label),
            details,
            pos,
        )
    }

    /// Calls `check` until it is done, the timeout passes or Ctrl-C.
    pub fn run<T>(
        &self,
        session: &Session,
        pos: Position,
        mut check: impl FnMut() -> Result<Seen<T>, Box<EvalAltResult>>,
    ) -> Result<T, Box<EvalAltResult>> {
        let started = Instant::now();
        let total_ms = self.timeout.as_millis() as u64;
        let step = frames::current();
        let remaining = || self.timeout.saturating_sub(started.elapsed());
        let mut last = String::new();
        // Shown once the first look says "not yet"; dropping it ends the bar.
        let mut countdown: Option<Countdown> = None;
        loop {
            session.check_cancelled(pos)?;
            match check()? {
                Seen::Done(value) => return Ok(value),
                Seen::Failed(why) => return Err(self.error("Failed", why, pos)),
                Seen::Waiting(now) => {
                    if countdown.is_none() {
                        countdown = Some(Countdown::start(
                            &session.events,
                            self.label.clone(),
                            remaining(),
                        ));
                    }
                    if now != last && !now.is_empty() {
                        session.events.emit(Event::Output {
                            step: step.clone(),
                            depth: frames::depth(),
                            text: format!("{}: {now}", self.label),
                            debug: false,
                        });
                    }
                    last = now;
                }
            }
            let left = remaining();
            if left.is_zero() {
                let seen = if last.is_empty() {
                    "not done".to_owned()
                } else {
                    last.clone()
                };
                return Err(self.error(
                    "Timeout",
                    format!(
                        "timed out after {} ({seen})",
                        crate::events::format_duration(total_ms)
                    ),
                    pos,
                ));
            }
            let nap = self.interval.min(left);
            if session
                .block_on(async move { tokio::time::sleep(nap).await })
                .is_none()
            {
                return Err(Control::Cancelled.raise(pos));
            }
            if let Some(countdown) = &countdown {
                countdown.progress();
            }
        }
    }
}

fn int(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

/// Whether a workload finished rolling out, and if not, how far it got.
pub fn rollout_state(obj: &Value) -> Seen<()> {
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    let generation = int(obj, "/metadata/generation").unwrap_or(0);
    let observed = int(obj, "/status/observedGeneration").unwrap_or(0);
    if observed < generation {
        return Seen::Waiting(format!(
            "waiting for the controller to see generation {generation}"
        ));
    }
    let zero = |p: &str| int(obj, p).unwrap_or(0);
    match kind {
        "Deployment" => {
            let stuck = obj
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded");
            if stuck {
                return Seen::Failed("the Deployment exceeded its progress deadline".into());
            }
            let want = int(obj, "/spec/replicas").unwrap_or(1);
            let updated = zero("/status/updatedReplicas");
            let total = zero("/status/replicas");
            let available = zero("/status/availableReplicas");
            if updated >= want && total <= updated && available >= want {
                Seen::Done(())
            } else {
                Seen::Waiting(format!(
                    "{updated}/{want} updated, {available}/{want} available, {} old",
                    (total - updated).max(0)
                ))
            }
        }
        "StatefulSet" => {
            let want = int(obj, "/spec/replicas").unwrap_or(1);
            let ready = zero("/status/readyReplicas");
            let updated = zero("/status/updatedReplicas");
            let rolling = obj
                .pointer("/spec/updateStrategy/type")
                .and_then(Value::as_str)
                != Some("OnDelete");
            let current = obj.pointer("/status/currentRevision");
            let revised = !rolling || current == obj.pointer("/status/updateRevision");
            if ready >= want && (!rolling || updated >= want) && revised {
                Seen::Done(())
            } else {
                Seen::Waiting(format!("{ready}/{want} ready, {updated}/{want} updated"))
            }
        }
        "DaemonSet" => {
            let want = zero("/status/desiredNumberScheduled");
            let updated = zero("/status/updatedNumberScheduled");
            let available = zero("/status/numberAvailable");
            if updated >= want && available >= want {
                Seen::Done(())
            } else {
                Seen::Waiting(format!(
                    "{updated}/{want} updated, {available}/{want} available"
                ))
            }
        }
        other => Seen::Failed(format!(
            "rollout knows Deployment, StatefulSet and DaemonSet, not {other}"
        )),
    }
}

/// The address a LoadBalancer Service got, if any.
pub fn load_balancer_address(svc: &Value) -> Option<String> {
    svc.pointer("/status/loadBalancer/ingress")?
        .as_array()?
        .iter()
        .find_map(|i| {
            i.get("ip")
                .or_else(|| i.get("hostname"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_deployment_is_rolled_out_when_every_replica_is_new_and_available() {
        let mut d = json!({"kind": "Deployment", "metadata": {"generation": 2},
            "spec": {"replicas": 3},
            "status": {"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3, "availableReplicas": 3}});
        assert!(
            matches!(rollout_state(&d), Seen::Waiting(s) if s == "3/3 updated, 3/3 available, 1 old")
        );
        d["status"]["replicas"] = json!(3);
        assert!(matches!(rollout_state(&d), Seen::Done(())));
        d["metadata"]["generation"] = json!(3);
        assert!(matches!(rollout_state(&d), Seen::Waiting(s) if s.contains("generation 3")));
        let stuck = json!({"kind": "Deployment", "status": {"conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded"}]}});
        assert!(matches!(rollout_state(&stuck), Seen::Failed(_)));
    }

    #[test]
    fn a_statefulset_needs_its_update_revision_everywhere() {
        let mut s = json!({"kind": "StatefulSet", "spec": {"replicas": 2},
            "status": {"readyReplicas": 2, "updatedReplicas": 2, "currentRevision": "a", "updateRevision": "b"}});
        assert!(matches!(rollout_state(&s), Seen::Waiting(_)));
        s["status"]["currentRevision"] = json!("b");
        assert!(matches!(rollout_state(&s), Seen::Done(())));
    }

    #[test]
    fn load_balancer_addresses_are_ips_or_hostnames() {
        assert_eq!(
            load_balancer_address(&json!({"status": {"loadBalancer": {}}})),
            None
        );
        assert_eq!(
            load_balancer_address(
                &json!({"status": {"loadBalancer": {"ingress": [{"ip": "192.168.100.16"}]}}})
            )
            .as_deref(),
            Some("192.168.100.16")
        );
        assert_eq!(
            load_balancer_address(
                &json!({"status": {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}}})
            )
            .as_deref(),
            Some("lb.example.com")
        );
    }
}
