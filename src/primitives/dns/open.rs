//! Building the adapter a checked spec names. Cloud DNS reads the managed
//! zone (retrying transient errors) and checks its id against the one the
//! journal recorded, so that a resumed run refuses a zone recreated under
//! the same name; RFC 2136 makes no request to open, only loads the TSIG
//! secret from where the spec says it is.

use super::retry::{Stop, retrying};
use super::spec::{self, Provider, ZoneSpec};
use super::{Res, Zone, ZoneInner};
use crate::adapters::clouddns::{CloudDnsSpec, CloudDnsZone};
use crate::adapters::dns_wire::WireLookup;
use crate::adapters::rfc2136::Rfc2136Zone;
use crate::engine::Session;
use crate::engine::control::{Control, host_error, runtime_error};
use crate::ports::dns::{DnsZone, Lookup};
use rhai::{Dynamic, INT, Map, Position};
use std::sync::Arc;

/// `dns(spec)`: opens the zone. Reads only; runs again on every resume.
pub(super) fn open(session: &Session, spec: &Map, pos: Position) -> Res<Zone> {
    let ZoneSpec {
        zone,
        owner,
        timeout,
        provider,
    } = spec::parse(spec, &session.run_id, pos)?;
    let lookup: Arc<dyn Lookup> = Arc::new(WireLookup { timeout });
    let port: Arc<dyn DnsZone> = match provider {
        Provider::CloudDns(cloud) => Arc::new(open_clouddns(session, cloud, pos)?),
        Provider::Rfc2136 { server, tsig } => {
            let signer = tsig
                .map(|key| key.signer())
                .transpose()
                .map_err(|e| runtime_error(format!("dns spec (rfc2136): {e}"), pos))?;
            let zone = Rfc2136Zone::new(server, &zone, signer, timeout)
                .map_err(|e| runtime_error(format!("dns spec (rfc2136): {e}"), pos))?;
            Arc::new(zone)
        }
    };
    Ok(Zone(Arc::new(ZoneInner {
        port,
        lookup,
        owner,
    })))
}

fn open_clouddns(session: &Session, cloud: CloudDnsSpec, pos: Position) -> Res<CloudDnsZone> {
    let (project, zone) = (&cloud.project, &cloud.zone);
    let opened = retrying(session, || Box::pin(CloudDnsZone::open(cloud.clone())));
    let opened = opened.map_err(|stop| match stop {
        Stop::Cancelled => Control::Cancelled.raise(pos),
        Stop::Dns(e) => {
            let mut details = Map::new();
            details.insert(
                "zone".into(),
                format!("Cloud DNS zone {project}/{zone}").into(),
            );
            details.insert("kind".into(), e.kind_name().into());
            if let Some(status) = e.status {
                details.insert("status".into(), Dynamic::from(status as INT));
            }
            host_error(
                "dns",
                format!(
                    "Cloud DNS zone {project}/{zone}: cannot open: {}",
                    e.message
                ),
                details,
                pos,
            )
        }
    })?;
    let identity = opened.identity();
    let origin = opened.origin().to_owned();
    session.check_identity(
        &format!("dns:{origin}"),
        serde_json::json!({ "id": identity }),
        pos,
    )?;
    Ok(opened)
}
