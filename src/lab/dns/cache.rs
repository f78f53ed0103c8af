//! A cluster's DNS as pods really meet it: CoreDNS with the kubeadm
//! Corefile (`kubernetes … { ttl 30 }` and `cache 30`). The settings are
//! read from the `coredns` ConfigMap in `kube-system`, as CoreDNS's
//! `reload` plugin does, so a test (or a user) changes them the way a
//! cluster admin would: by editing the Corefile.
//!
//! The Corefile's meaning is `crate::corefile`'s.
//!
//! The cache is what makes the article's ExternalName flip lose requests
//! on real clusters: a caller that resolved `app1.app1-ns` to its ClusterIP
//! keeps that answer for up to the cache's lifetime after the flip
//! released the address. Without it the lab could not show the outage.
//!
//! One [`ClusterDns`] per cluster is shared by the cluster's DNS server on
//! the wire and by the lab's pods (`Network::resolve`), so both see the
//! same cached answers, like pods that all ask the one CoreDNS.

use super::authority::{Answer, Authority};
use super::cluster::ClusterAuthority;
use super::records::name_key;
use crate::corefile::Corefile;
use crate::lab::apiserver::ClusterStore;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A cluster's CoreDNS: the kubernetes plugin's answers behind the cache.
pub struct ClusterDns {
    authority: ClusterAuthority,
    entries: Mutex<HashMap<(String, RecordType), (Answer, Instant)>>,
}

impl ClusterDns {
    pub fn new(authority: ClusterAuthority) -> Arc<ClusterDns> {
        Arc::new(ClusterDns {
            authority,
            entries: Mutex::default(),
        })
    }

    pub fn cluster(&self) -> &Arc<ClusterStore> {
        &self.authority.cluster
    }

    /// Forgets every cached answer (as restarting CoreDNS would).
    pub fn flush(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

impl Authority for ClusterDns {
    fn answer(&self, name: &Name, rtype: RecordType) -> Answer {
        let corefile = corefile_of(&self.authority.cluster);
        let Some(cap) = corefile.cache.filter(|c| *c > 0) else {
            return self.authority.answer_with_ttl(name, rtype, corefile.ttl);
        };
        let key = (name_key(name), rtype);
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((answer, expires)) = entries.get(&key)
            && now < *expires
        {
            return aged(answer, expires.duration_since(now));
        }
        let answer = self.authority.answer_with_ttl(name, rtype, corefile.ttl);
        if answer.rcode == ResponseCode::ServFail {
            return answer;
        }
        // An answer lives for its smallest TTL (a denial for the SOA's, or
        // the cap), never longer than the cap: CoreDNS's `cache N`.
        let lifetime = answer
            .answers
            .iter()
            .chain(&answer.authorities)
            .map(|r| r.ttl)
            .min()
            .unwrap_or(cap)
            .min(cap);
        if lifetime > 0 {
            entries.insert(
                key,
                (answer.clone(), now + Duration::from_secs(lifetime.into())),
            );
        }
        answer
    }
}

/// A cached answer with its TTLs counted down, as a cache hands it out.
fn aged(answer: &Answer, left: Duration) -> Answer {
    let left = u32::try_from(left.as_secs()).unwrap_or(u32::MAX).max(1);
    let mut answer = answer.clone();
    for record in answer
        .answers
        .iter_mut()
        .chain(answer.authorities.iter_mut())
        .chain(answer.additionals.iter_mut())
    {
        record.ttl = record.ttl.min(left);
    }
    answer
}

/// The Corefile of `cluster`'s `kube-system/coredns` ConfigMap.
fn corefile_of(cluster: &ClusterStore) -> Corefile {
    cluster
        .with_state(|s| {
            s.objects
                .get("configmaps/kube-system/coredns")
                .and_then(|cm| cm.pointer("/data/Corefile")?.as_str().map(Corefile::parse))
        })
        .unwrap_or(Corefile::DEFAULT)
}
