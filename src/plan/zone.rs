//! The zone overlay: a [`DnsZone`] whose changes are kept in the plan
//! instead of sent, so a later read in the same plan sees the planned
//! record sets, and whose reads go to the real zone otherwise.
//!
//! No DNS provider offers a dry run of a change. What a plan can check is
//! what the change needs before it is sent: the zone opens (the provider
//! knows it; for Cloud DNS the credentials are good), its record sets can
//! be read with the configured key (the primitives read before every
//! change: ownership, conflicts), and the deletions still match what the
//! zone holds, as an atomic change requires.

use super::{Action, Entry, Plan};
use crate::ports::dns::{
    Applied, Change, DnsError, DnsErrorKind, DnsFuture, DnsZone, RecordSet, ZoneOpener, ZoneTarget,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// Opens zones through `inner`, each wrapped in an overlay recording into `plan`.
pub struct OverlayOpener {
    pub inner: Arc<dyn ZoneOpener>,
    pub plan: Arc<Plan>,
}

impl ZoneOpener for OverlayOpener {
    fn open<'a>(&'a self, target: &'a ZoneTarget) -> DnsFuture<'a, Arc<dyn DnsZone>> {
        Box::pin(async move {
            let inner = self.inner.open(target).await?;
            Ok(Arc::new(Overlay {
                inner,
                plan: self.plan.clone(),
                sets: Mutex::new(BTreeMap::new()),
            }) as Arc<dyn DnsZone>)
        })
    }
}

/// (name, type) -> the planned record set (`None`: planned deleted).
type Sets = BTreeMap<(String, String), Option<RecordSet>>;

struct Overlay {
    inner: Arc<dyn DnsZone>,
    plan: Arc<Plan>,
    sets: Mutex<Sets>,
}

fn key(set: &RecordSet) -> (String, String) {
    (set.name.clone(), set.rtype.clone())
}

fn lines(set: &RecordSet) -> Vec<String> {
    set.values
        .iter()
        .map(|v| format!("{} {} {v}", set.ttl, set.rtype))
        .collect()
}

impl Overlay {
    fn sets(&self) -> std::sync::MutexGuard<'_, Sets> {
        self.sets.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The plan's view of one record set.
    async fn view(&self, name: &str, rtype: &str) -> Result<Option<RecordSet>, DnsError> {
        let planned = self
            .sets()
            .get(&(name.to_ascii_lowercase(), rtype.to_ascii_uppercase()))
            .cloned();
        match planned {
            Some(planned) => Ok(planned),
            None => self.inner.get(name, rtype).await,
        }
    }
}

impl DnsZone for Overlay {
    fn label(&self) -> &str {
        self.inner.label()
    }

    fn origin(&self) -> &str {
        self.inner.origin()
    }

    fn identity(&self) -> String {
        self.inner.identity()
    }

    fn authoritative(&self) -> Option<SocketAddr> {
        self.inner.authoritative()
    }

    fn get<'a>(&'a self, name: &'a str, rtype: &'a str) -> DnsFuture<'a, Option<RecordSet>> {
        Box::pin(self.view(name, rtype))
    }

    fn list<'a>(
        &'a self,
        name: Option<&'a str>,
        rtype: Option<&'a str>,
    ) -> DnsFuture<'a, Vec<RecordSet>> {
        Box::pin(async move {
            let planned = self.sets().clone();
            let wanted = |n: &str, t: &str| {
                name.is_none_or(|want| want.eq_ignore_ascii_case(n))
                    && rtype.is_none_or(|want| want.eq_ignore_ascii_case(t))
            };
            let mut out: Vec<RecordSet> = self
                .inner
                .list(name, rtype)
                .await?
                .into_iter()
                .filter(|s| !planned.contains_key(&key(s)))
                .collect();
            out.extend(
                planned
                    .into_iter()
                    .filter(|((n, t), _)| wanted(n, t))
                    .filter_map(|(_, set)| set),
            );
            Ok(out)
        })
    }

    fn apply<'a>(&'a self, change: &'a Change) -> DnsFuture<'a, Applied> {
        Box::pin(async move {
            // An atomic change needs its deletions to match the zone: check
            // them against the plan's view, as the server would.
            for gone in &change.deletions {
                if self.view(&gone.name, &gone.rtype).await?.as_ref() != Some(gone) {
                    return Err(DnsError::new(
                        DnsErrorKind::Conflict,
                        format!("{} no longer holds what the change deletes", gone.key()),
                    ));
                }
            }
            let mut before: BTreeMap<(String, String), Option<RecordSet>> = BTreeMap::new();
            for set in change.deletions.iter().chain(&change.additions) {
                if let std::collections::btree_map::Entry::Vacant(slot) = before.entry(key(set)) {
                    slot.insert(self.view(&set.name, &set.rtype).await?);
                }
            }
            let mut sets = self.sets();
            for gone in &change.deletions {
                sets.insert(key(gone), None);
            }
            for added in &change.additions {
                sets.insert(key(added), Some(added.clone()));
            }
            for (k, was) in before {
                let now = sets.get(&k).cloned().flatten();
                let (action, diff) = match (&was, &now) {
                    (None, None) => continue,
                    (None, Some(now)) => (
                        Action::Create,
                        lines(now).into_iter().map(|l| format!("+ {l}")).collect(),
                    ),
                    (Some(was), None) => (
                        Action::Delete,
                        lines(was).into_iter().map(|l| format!("- {l}")).collect(),
                    ),
                    (Some(was), Some(now)) if was == now => continue,
                    (Some(was), Some(now)) => {
                        let (old, new) = (lines(was), lines(now));
                        let mut diff: Vec<String> = old
                            .iter()
                            .filter(|l| !new.contains(l))
                            .map(|l| format!("- {l}"))
                            .collect();
                        diff.extend(
                            new.iter()
                                .filter(|l| !old.contains(l))
                                .map(|l| format!("+ {l}")),
                        );
                        (Action::Change, diff)
                    }
                };
                self.plan.note(Entry::Record {
                    action,
                    zone: self.inner.label().to_owned(),
                    record: format!("{} {}", k.0, k.1),
                    diff,
                });
            }
            Ok(Applied::Done)
        })
    }

    fn change_done<'a>(&'a self, _: &'a str) -> DnsFuture<'a, bool> {
        Box::pin(async { Ok(true) })
    }

    // The plan's own records read back as planned: nothing to verify.
    fn reads_back(&self) -> bool {
        false
    }
}
