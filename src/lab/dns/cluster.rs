//! A cluster's DNS, as CoreDNS's kubernetes plugin answers pods:
//! `<svc>.<ns>`, `<svc>.<ns>.svc` and `<svc>.<ns>.svc.cluster.local` from
//! the cluster's Services, read live on every query (a Service switched to
//! ExternalName answers with the CNAME on the next lookup). A ClusterIP
//! Service is an A record of its IP; an ExternalName Service is a CNAME to
//! its external name, followed (through Services and the private zone) in
//! the same answer; a headless Service has no address here (NXDOMAIN, as
//! [`Network::resolve`](crate::lab::dataplane::Network::resolve) says).
//! Other names go to the private zone, the cluster's upstream; the lab has
//! no Internet, so anything else is NXDOMAIN.

use super::authority::{Answer, Authority, lookup};
use super::records::name_key;
use crate::lab::apiserver::ClusterStore;
use crate::lab::dataplane::network::cluster_service;
use crate::lab::zone::ZoneStore;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::rdata::{A, CNAME};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde_json::Value;
use std::net::Ipv4Addr;
use std::sync::Arc;

/// Longest alias chain followed.
const MAX_CHAIN: usize = 8;

pub struct ClusterAuthority {
    pub cluster: Arc<ClusterStore>,
    pub zone: Arc<ZoneStore>,
}

/// Names only the cluster answers for: no upstream is asked.
fn cluster_domain(name: &str) -> bool {
    name == "cluster.local." || name.ends_with(".cluster.local.") || name.ends_with(".svc.")
}

/// What a Service is in DNS.
enum Target {
    Address(Ipv4Addr),
    Alias(String),
    Nothing,
}

fn target(service: &Value) -> Target {
    let spec = &service["spec"];
    if spec["type"].as_str() == Some("ExternalName") {
        let mut name = spec["externalName"]
            .as_str()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if name.is_empty() {
            return Target::Nothing;
        }
        if !name.ends_with('.') {
            name.push('.');
        }
        return Target::Alias(name);
    }
    match spec["clusterIP"].as_str().and_then(|ip| ip.parse().ok()) {
        Some(ip) => Target::Address(ip),
        // Headless ("None") or not allocated yet.
        None => Target::Nothing,
    }
}

impl Authority for ClusterAuthority {
    /// With CoreDNS's default TTL; the lab's pods ask through
    /// [`ClusterDns`](super::cache::ClusterDns), which reads the Corefile's.
    fn answer(&self, name: &Name, rtype: RecordType) -> Answer {
        self.answer_with_ttl(name, rtype, crate::corefile::Corefile::DEFAULT.ttl)
    }
}

impl ClusterAuthority {
    /// The answer, Service records carrying `ttl` (the kubernetes plugin's).
    pub fn answer_with_ttl(&self, name: &Name, rtype: RecordType, ttl: u32) -> Answer {
        let mut answer = Answer::code(ResponseCode::NoError);
        let mut current = name_key(name);
        let mut owner = name.clone();
        for hop in 0..MAX_CHAIN {
            let Some(service) = cluster_service(&self.cluster, &current) else {
                return self.beyond(answer, &current, rtype);
            };
            if hop == 0 {
                answer.authoritative = true;
            }
            match target(&service) {
                Target::Address(ip) => {
                    if matches!(rtype, RecordType::A | RecordType::ANY) {
                        answer
                            .answers
                            .push(Record::from_rdata(owner, ttl, RData::A(A(ip))));
                    }
                    return answer;
                }
                Target::Alias(alias) => {
                    let Ok(alias_name) = Name::from_ascii(&alias) else {
                        answer.rcode = ResponseCode::ServFail;
                        return answer;
                    };
                    answer.answers.push(Record::from_rdata(
                        owner,
                        ttl,
                        RData::CNAME(CNAME(alias_name.clone())),
                    ));
                    if rtype == RecordType::CNAME {
                        return answer;
                    }
                    owner = alias_name;
                    current = alias;
                }
                Target::Nothing => {
                    answer.rcode = ResponseCode::NXDomain;
                    return answer;
                }
            }
        }
        answer
    }

    /// `name` is no Service: the cluster domain's NXDOMAIN, or the upstream.
    fn beyond(&self, mut answer: Answer, name: &str, rtype: RecordType) -> Answer {
        if cluster_domain(name) {
            answer.authoritative |= answer.answers.is_empty();
            answer.rcode = ResponseCode::NXDomain;
            return answer;
        }
        if self.zone.contains(name) {
            let upstream = lookup(&self.zone, name, rtype);
            // The zone's own answer is authoritative; relayed, it is not.
            answer.rcode = upstream.rcode;
            answer.answers.extend(upstream.answers);
            answer.authorities = upstream.authorities;
            return answer;
        }
        if answer.answers.is_empty() {
            answer.rcode = ResponseCode::NXDomain;
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::apiserver::Write;
    use crate::lab::zone::RecordSet;
    use serde_json::json;

    fn authority() -> ClusterAuthority {
        let cluster = ClusterStore::open("old", 1, None).unwrap();
        let services = cluster.resource("", "v1", "services").unwrap();
        for spec in [
            json!({ "metadata": { "name": "web" }, "spec": { "ports": [{ "port": 80 }] } }),
            json!({ "metadata": { "name": "headless" }, "spec": { "clusterIP": "None", "ports": [{ "port": 80 }] } }),
            json!({ "metadata": { "name": "alias" }, "spec": { "type": "ExternalName", "externalName": "web.default.svc.cluster.local" } }),
        ] {
            let mut object = spec;
            object["apiVersion"] = json!("v1");
            object["kind"] = json!("Service");
            cluster
                .create(&services, Some("default"), object, Write::default())
                .unwrap();
        }
        let zone = ZoneStore::open("mycompany.internal.", None).unwrap();
        zone.put(RecordSet {
            name: "old".into(),
            rtype: "A".into(),
            ttl: 60,
            data: vec!["127.11.1.1".into()],
        })
        .unwrap();
        ClusterAuthority {
            cluster: Arc::new(cluster),
            zone: Arc::new(zone),
        }
    }

    fn ask(authority: &ClusterAuthority, name: &str, rtype: RecordType) -> Answer {
        authority.answer(&Name::from_ascii(name).unwrap(), rtype)
    }

    #[test]
    fn services_answer_by_type_and_aliases_are_followed_through_services() {
        let dns = authority();
        let web = ask(&dns, "web.default.svc.cluster.local.", RecordType::A);
        assert_eq!(web.rcode, ResponseCode::NoError);
        assert!(web.authoritative);
        let RData::A(ip) = &web.answers[0].data else {
            panic!("not an A record: {:?}", web.answers);
        };
        assert_eq!(ip.0.octets()[..2], [127, 10]);
        let nodata = ask(&dns, "web.default.", RecordType::AAAA);
        assert_eq!(
            (nodata.rcode, nodata.answers.len()),
            (ResponseCode::NoError, 0)
        );
        let alias = ask(&dns, "alias.default.svc.", RecordType::A);
        assert_eq!(alias.answers.len(), 2, "{:?}", alias.answers);
        assert_eq!(alias.answers[0].record_type(), RecordType::CNAME);
        assert_eq!(alias.answers[1].data, web.answers[0].data);
        let headless = ask(&dns, "headless.default.svc.cluster.local.", RecordType::A);
        assert_eq!(headless.rcode, ResponseCode::NXDomain);
        let missing = ask(&dns, "nope.default.svc.cluster.local.", RecordType::A);
        assert_eq!(missing.rcode, ResponseCode::NXDomain);
        let upstream = ask(&dns, "old.mycompany.internal.", RecordType::A);
        assert_eq!(upstream.answers.len(), 1);
        let internet = ask(&dns, "example.com.", RecordType::A);
        assert_eq!(internet.rcode, ResponseCode::NXDomain);
    }
}
