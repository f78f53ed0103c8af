//! Run locks as `coordination.k8s.io/v1` Leases, the object Kubernetes'
//! own leader election uses: one per run, held by `holderIdentity` while
//! `renewTime + leaseDurationSeconds` lies ahead.
//!
//! Unlike a file lock, nothing frees a lease when its holder dies: it
//! expires. So the guard renews it every third of its duration from the
//! store's runtime, and clears the holder when dropped; a `kill -9`ed
//! driver's lease is free again one duration after its last renewal.
//! Expiry is judged by the clocks of the writer and the reader (as
//! `renewTime` is absolute), so hosts sharing a journal need NTP; the
//! duration is long against usual skew. Taking a lease is one write with
//! the resourceVersion that was read, so two processes racing for a free
//! or expired lease cannot both win.
//!
//! A guard that cannot renew for a whole duration (or finds the lease taken
//! over) has lost the lock: it says so on stderr, and every later journal
//! write of that run through this store fails, so the driver stops instead
//! of racing the new holder.

use super::client::{Conn, is_status};
use super::layout::{self, LAST_HOLDER};
use crate::error::{Error, Result};
use crate::journal::lock::{Holder, LockState, RunLock, holder_description};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, PostParams};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the store knows of the leases it holds: a lost one's reason.
#[derive(Default)]
pub(super) struct Held {
    lost: Mutex<Option<String>>,
}

impl Held {
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn lose(&self, run: &str, why: String) {
        // Loud: the driver may be deep in a step and must hear of it even
        // before its next journal write fails.
        eprintln!("ferry: lost the lock of run `{run}`: {why}; its next journal write will fail");
        *self.lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
    }
}

pub(super) type HeldLeases = Arc<Mutex<HashMap<String, Arc<Held>>>>;

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

fn millis(t: &MicroTime) -> i64 {
    t.0.as_millisecond()
}

/// Whether `lease` has a holder whose last renewal has not expired.
fn live(lease: &Lease, now_ms: i64) -> bool {
    let Some(spec) = &lease.spec else {
        return false;
    };
    if spec.holder_identity.as_deref().is_none_or(str::is_empty) {
        return false;
    }
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(0).max(0)) * 1000;
    let renewed = spec
        .renew_time
        .as_ref()
        .or(spec.acquire_time.as_ref())
        .map(millis);
    renewed.is_some_and(|at| at + duration > now_ms)
}

fn holder_of(lease: &Lease) -> Option<String> {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.clone())
        .filter(|h| !h.is_empty())
        .or_else(|| {
            lease
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(LAST_HOLDER).cloned())
        })
}

pub(super) fn lock_state(conn: &Conn, run: &str) -> Result<LockState> {
    let name = layout::lease_object(run);
    let api: Api<Lease> = Api::namespaced(conn.client.clone(), &conn.namespace);
    let lease = conn
        .block(api.get_opt(&name))
        .map_err(|e| conn.fail("get", "leases", Some(&name), &e))?;
    Ok(match lease {
        None => LockState {
            held: false,
            holder: None,
        },
        Some(lease) => LockState {
            held: live(&lease, crate::journal::now_ms()),
            holder: holder_of(&lease).map(|h| Holder::parse(&h)),
        },
    })
}

/// Our claim on a lease: holder, times and the annotation naming us.
fn take(mut lease: Lease, run: &str, me: &str, duration: Duration) -> Lease {
    let at = now();
    let transitions = lease
        .spec
        .as_ref()
        .and_then(|s| s.lease_transitions)
        .unwrap_or(0);
    let had_holder = lease.spec.is_some();
    lease.spec = Some(LeaseSpec {
        holder_identity: Some(me.to_owned()),
        lease_duration_seconds: Some(duration.as_secs().clamp(1, i32::MAX as u64) as i32),
        acquire_time: Some(at.clone()),
        renew_time: Some(at),
        lease_transitions: Some(if had_holder {
            transitions + 1
        } else {
            transitions
        }),
        ..Default::default()
    });
    let fresh = layout::meta(
        lease.metadata.name.as_deref().unwrap_or_default(),
        "",
        "lock",
        Some(run),
    );
    let labels = lease.metadata.labels.get_or_insert_with(Default::default);
    labels.extend(fresh.labels.unwrap_or_default());
    let annotations = lease
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    annotations.extend(fresh.annotations.unwrap_or_default());
    annotations.insert(LAST_HOLDER.to_owned(), me.to_owned());
    lease
}

pub(super) fn lock(
    conn: &Arc<Conn>,
    held: &HeldLeases,
    run: &str,
    duration: Duration,
) -> Result<RunLock> {
    let name = layout::lease_object(run);
    let api: Api<Lease> = Api::namespaced(conn.client.clone(), &conn.namespace);
    let me = holder_description();
    let pp = PostParams::default();
    // A lost race re-reads the lease: whoever won now holds it, so the
    // second round answers `Locked`; the bound only guards against a
    // lease that keeps changing under us.
    let mut taken = None;
    for _ in 0..5 {
        let current = conn
            .block(api.get_opt(&name))
            .map_err(|e| conn.fail("get", "leases", Some(&name), &e))?;
        let attempt = match current {
            Some(lease) if live(&lease, crate::journal::now_ms()) => {
                return Err(Error::Locked {
                    run: run.to_owned(),
                    holder: holder_of(&lease).unwrap_or_else(|| "another process".into()),
                });
            }
            Some(lease) => {
                let lease = take(lease, run, &me, duration);
                conn.block(api.replace(&name, &pp, &lease))
                    .map_err(|e| ("update", e))
            }
            None => {
                let lease = Lease {
                    metadata: layout::meta(&name, &conn.namespace, "lock", Some(run)),
                    spec: None,
                };
                let lease = take(lease, run, &me, duration);
                conn.block(api.create(&pp, &lease))
                    .map_err(|e| ("create", e))
            }
        };
        match attempt {
            Ok(lease) => {
                taken = Some(lease);
                break;
            }
            Err((_, e)) if is_status(&e, 409, None) => continue,
            Err((verb, e)) => return Err(conn.fail(verb, "leases", Some(&name), &e)),
        }
    }
    let Some(lease) = taken else {
        return Err(Error::Locked {
            run: run.to_owned(),
            holder: "another process (the lease kept changing)".into(),
        });
    };
    let state = Arc::new(Held::default());
    held.lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(run.to_owned(), state.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let task = conn.spawn(renew(
        api,
        name.clone(),
        run.to_owned(),
        lease,
        duration,
        state.clone(),
        stopped,
    ));
    Ok(RunLock::new(Guard {
        conn: conn.clone(),
        held: held.clone(),
        run: run.to_owned(),
        name,
        state,
        stop: Some(stop),
        task: Some(task),
    }))
}

/// Renews the lease every third of its duration until told to stop;
/// returns the lease as last written, for the release (`None` once lost).
async fn renew(
    api: Api<Lease>,
    name: String,
    run: String,
    mut lease: Lease,
    duration: Duration,
    state: Arc<Held>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Option<Lease> {
    let every = (duration / 3).max(Duration::from_millis(100));
    let mut last_ok = tokio::time::Instant::now();
    let pp = PostParams::default();
    loop {
        tokio::select! {
            _ = &mut stop => return Some(lease),
            _ = tokio::time::sleep(every) => {}
        }
        let mut next = lease.clone();
        if let Some(spec) = next.spec.as_mut() {
            spec.renew_time = Some(now());
        }
        match tokio::time::timeout(every, api.replace(&name, &pp, &next)).await {
            Ok(Ok(written)) => {
                lease = written;
                last_ok = tokio::time::Instant::now();
            }
            Ok(Err(e)) if is_status(&e, 409, None) || is_status(&e, 404, None) => {
                state.lose(
                    &run,
                    format!("lease {name} was taken over or deleted by another process"),
                );
                return None;
            }
            failed => {
                if last_ok.elapsed() >= duration {
                    let why = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => "the API server did not answer".into(),
                    };
                    state.lose(
                        &run,
                        format!(
                            "lease {name} could not be renewed for {}s ({why})",
                            duration.as_secs()
                        ),
                    );
                    return None;
                }
            }
        }
    }
}

struct Guard {
    conn: Arc<Conn>,
    held: HeldLeases,
    run: String,
    name: String,
    state: Arc<Held>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Option<Lease>>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        {
            let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
            if held
                .get(&self.run)
                .is_some_and(|s| Arc::ptr_eq(s, &self.state))
            {
                held.remove(&self.run);
            }
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(task) = self.task.take() else {
            return;
        };
        let api: Api<Lease> = Api::namespaced(self.conn.client.clone(), &self.conn.namespace);
        let name = self.name.clone();
        // The renewal has stopped once the task returns, so the release is
        // the only write and uses the lease's latest resourceVersion. A
        // failed release only delays the next driver by one duration.
        let released = self.conn.block(async move {
            let mut lease = task.await.ok().flatten()?;
            if let Some(spec) = lease.spec.as_mut() {
                spec.holder_identity = None;
            }
            api.replace(&name, &PostParams::default(), &lease)
                .await
                .ok()
        });
        if released.is_none() && self.state.lost().is_none() {
            eprintln!(
                "ferry: could not release lease {} of run `{}`; it frees itself once it expires",
                self.name, self.run
            );
        }
    }
}
