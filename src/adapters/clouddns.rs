//! Google Cloud DNS through `google-cloud-dns-v1`: reads are rrsets get and
//! list (all pages), a change is one `changes.create` with its deletions
//! (which Cloud DNS requires to match the zone exactly, else 412) and
//! additions (409 if they already exist), then `changes.get` until `done`.
//!
//! Credentials are Application Default Credentials (google-cloud-auth:
//! `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's ADC file, the metadata
//! server) unless the spec asks for anonymous ones (the in-process fake and
//! the lab). The library's own retries are off: `primitives::dns` retries
//! transient errors with backoff and re-plans after conflicts, so a retried
//! change never repeats blindly.

use crate::ports::dns::{
    Applied, Change, DnsError, DnsErrorKind, DnsFuture, DnsZone, RecordSet, canonical_value,
    record_type,
};
use google_cloud_dns_v1::client::{Changes, ManagedZones, ResourceRecordSets};
use google_cloud_dns_v1::model;
use google_cloud_gax::paginator::Paginator as _;
use google_cloud_gax::retry_policy::NeverRetry;
use hickory_proto::rr::{RData, RecordType};
use std::net::SocketAddr;

pub use crate::ports::dns::CloudDnsSpec;

pub struct CloudDnsZone {
    spec: CloudDnsSpec,
    label: String,
    origin: String,
    id: String,
    rrsets: ResourceRecordSets,
    changes: Changes,
}

/// Turns a client error into a [`DnsError`] with the HTTP status and the
/// server's message.
fn api_error(err: google_cloud_dns_v1::Error) -> DnsError {
    let status = err.http_status_code();
    let server_message = err
        .status()
        .map(|s| s.message.clone())
        .filter(|m| !m.is_empty())
        .or_else(|| {
            err.http_payload()
                .map(|p| String::from_utf8_lossy(p).chars().take(300).collect())
        });
    let kind = match status {
        Some(401 | 403) => DnsErrorKind::Auth,
        Some(409 | 412) => DnsErrorKind::Conflict,
        Some(408 | 429 | 500 | 502 | 503 | 504) => DnsErrorKind::Transient,
        Some(_) => DnsErrorKind::Invalid,
        None if err.is_authentication() => DnsErrorKind::Auth,
        None if err.is_io() || err.is_timeout() || err.is_connect() || err.is_transport() => {
            DnsErrorKind::Transient
        }
        None => DnsErrorKind::Invalid,
    };
    let message = match (status, server_message) {
        (Some(code), Some(text)) => format!("HTTP {code}: {text}"),
        (Some(code), None) => format!("HTTP {code}"),
        (None, _) if err.is_authentication() => format!(
            "cannot get credentials (Application Default Credentials: GOOGLE_APPLICATION_CREDENTIALS, gcloud auth application-default login, or the metadata server): {err}"
        ),
        (None, _) => err.to_string(),
    };
    DnsError {
        kind,
        message,
        status,
        rcode: None,
    }
}

fn build_error(what: &str, err: impl std::fmt::Display, anonymous: bool) -> String {
    let hint = if anonymous {
        ""
    } else {
        " (Application Default Credentials: set GOOGLE_APPLICATION_CREDENTIALS, run `gcloud auth application-default login`, or run where the metadata server answers)"
    };
    format!("cannot build the Cloud DNS {what} client: {err}{hint}")
}

impl CloudDnsZone {
    /// Builds the clients and reads the managed zone (its DNS name and id).
    pub async fn open(spec: CloudDnsSpec) -> Result<Self, DnsError> {
        crate::tls::install_provider();
        let label = format!("Cloud DNS zone {}/{}", spec.project, spec.zone);
        macro_rules! client {
            ($client:ty, $what:literal) => {{
                let mut builder = <$client>::builder().with_retry_policy(NeverRetry);
                if let Some(endpoint) = &spec.endpoint {
                    builder = builder.with_endpoint(endpoint.clone());
                }
                if spec.anonymous {
                    builder = builder.with_credentials(
                        google_cloud_auth::credentials::anonymous::Builder::new().build(),
                    );
                }
                builder.build().await.map_err(|e| {
                    DnsError::new(DnsErrorKind::Auth, build_error($what, e, spec.anonymous))
                })?
            }};
        }
        let zones = client!(ManagedZones, "managed zones");
        let rrsets = client!(ResourceRecordSets, "record sets");
        let changes = client!(Changes, "changes");
        let zone = zones
            .get()
            .set_project(&spec.project)
            .set_managed_zone(&spec.zone)
            .send()
            .await
            .map_err(api_error)?;
        let mut origin = zone
            .dns_name
            .clone()
            .ok_or_else(|| DnsError::invalid("the managed zone has no dnsName"))?
            .to_ascii_lowercase();
        if !origin.ends_with('.') {
            origin.push('.');
        }
        let id = zone
            .id
            .map(|id| id.to_string())
            .unwrap_or_else(|| format!("{}/{}", spec.project, spec.zone));
        Ok(CloudDnsZone {
            label,
            origin,
            id,
            spec,
            rrsets,
            changes,
        })
    }
}

/// The REST form of a canonical value: TXT is quoted, the rest is as is.
fn to_rrdata(rtype: &str, value: &str) -> String {
    if rtype == "TXT" {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\"")
    } else {
        value.to_owned()
    }
}

/// A canonical value from the REST form (TXT: the character strings joined).
fn from_rrdata(rtype: &str, rrdata: &str) -> String {
    let Ok(t) = record_type(rtype) else {
        return rrdata.to_owned();
    };
    if t == RecordType::TXT {
        return match RData::try_from_str(RecordType::TXT, rrdata) {
            Ok(rdata) => crate::ports::dns::display_rdata(&rdata).unwrap_or_default(),
            Err(_) => rrdata.to_owned(),
        };
    }
    canonical_value(t, rrdata).unwrap_or_else(|_| rrdata.to_owned())
}

fn to_model(set: &RecordSet) -> model::ResourceRecordSet {
    let rrdatas: Vec<String> = match &set.native {
        // Read from the zone: send back exactly what it holds.
        Some(native) => native.clone(),
        None => set
            .values
            .iter()
            .map(|v| to_rrdata(&set.rtype, v))
            .collect(),
    };
    model::ResourceRecordSet::new()
        .set_kind("dns#resourceRecordSet")
        .set_name(set.name.clone())
        .set_type(set.rtype.clone())
        .set_ttl(i32::try_from(set.ttl).unwrap_or(i32::MAX))
        .set_rrdatas(rrdatas)
}

fn from_model(rrset: &model::ResourceRecordSet) -> RecordSet {
    let rtype = rrset
        .r#type
        .clone()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let mut set = RecordSet::new(
        rrset.name.as_deref().unwrap_or_default(),
        &rtype,
        rrset.ttl.map_or(0, |t| u32::try_from(t).unwrap_or(0)),
        rrset
            .rrdatas
            .iter()
            .map(|d| from_rrdata(&rtype, d))
            .collect(),
    );
    set.native = Some(rrset.rrdatas.clone());
    set
}

impl DnsZone for CloudDnsZone {
    fn label(&self) -> &str {
        &self.label
    }

    fn origin(&self) -> &str {
        &self.origin
    }

    fn identity(&self) -> String {
        format!(
            "clouddns:{}/{}#{}",
            self.spec.project, self.spec.zone, self.id
        )
    }

    fn authoritative(&self) -> Option<SocketAddr> {
        None
    }

    fn get<'a>(&'a self, name: &'a str, rtype: &'a str) -> DnsFuture<'a, Option<RecordSet>> {
        Box::pin(async move {
            let result = self
                .rrsets
                .get()
                .set_project(&self.spec.project)
                .set_managed_zone(&self.spec.zone)
                .set_name(name)
                .set_type(rtype)
                .send()
                .await;
            match result {
                Ok(rrset) => Ok(Some(from_model(&rrset))),
                Err(e) if e.http_status_code() == Some(404) => Ok(None),
                Err(e) => Err(api_error(e)),
            }
        })
    }

    fn list<'a>(
        &'a self,
        name: Option<&'a str>,
        rtype: Option<&'a str>,
    ) -> DnsFuture<'a, Vec<RecordSet>> {
        Box::pin(async move {
            let mut request = self
                .rrsets
                .list()
                .set_project(&self.spec.project)
                .set_managed_zone(&self.spec.zone);
            if let Some(name) = name {
                request = request.set_name(name);
            }
            if let Some(rtype) = rtype {
                request = request.set_type(rtype);
            }
            let mut pages = request.by_page();
            let mut out = Vec::new();
            while let Some(page) = pages.next().await {
                let page = page.map_err(api_error)?;
                out.extend(page.rrsets.iter().map(from_model));
            }
            Ok(out)
        })
    }

    fn apply<'a>(&'a self, change: &'a Change) -> DnsFuture<'a, Applied> {
        Box::pin(async move {
            let body = model::Change::new()
                .set_kind("dns#change")
                .set_deletions(change.deletions.iter().map(to_model))
                .set_additions(change.additions.iter().map(to_model));
            let created = self
                .changes
                .create()
                .set_project(&self.spec.project)
                .set_managed_zone(&self.spec.zone)
                .set_body(body)
                .send()
                .await
                .map_err(|e| {
                    let mut e = api_error(e);
                    // A deletion no longer in the zone: it changed under us.
                    if e.status == Some(404) {
                        e.kind = DnsErrorKind::Conflict;
                    }
                    e
                })?;
            match (created.status, created.id) {
                (Some(model::change::Status::Done), _) => Ok(Applied::Done),
                (_, Some(id)) => Ok(Applied::Pending { id }),
                (_, None) => Ok(Applied::Done),
            }
        })
    }

    fn change_done<'a>(&'a self, id: &'a str) -> DnsFuture<'a, bool> {
        Box::pin(async move {
            let change = self
                .changes
                .get()
                .set_project(&self.spec.project)
                .set_managed_zone(&self.spec.zone)
                .set_change_id(id)
                .send()
                .await
                .map_err(api_error)?;
            Ok(change.status == Some(model::change::Status::Done))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn txt_values_are_quoted_for_the_api_and_unquoted_back() {
        let v = r#"heritage=ferry,say "hi" \o/"#;
        let wire = to_rrdata("TXT", v);
        assert_eq!(wire, r#""heritage=ferry,say \"hi\" \\o/""#);
        assert_eq!(from_rrdata("TXT", &wire), v);
        assert_eq!(from_rrdata("TXT", "\"a\" \"b\""), "ab");
        assert_eq!(from_rrdata("A", "10.0.0.1"), "10.0.0.1");
    }
}
