//! Opening the zone a checked spec names, through the session's
//! [`ZoneOpener`](crate::ports::dns::ZoneOpener) (the real one is
//! `crate::adapters::zones`). Transient errors are retried; a Cloud DNS
//! zone's id is checked against the one the journal recorded, so that a
//! resumed run refuses a zone recreated under the same name.

use super::retry::{Stop, retrying};
use super::spec::{self, Provider, ZoneSpec};
use super::{Res, Zone, ZoneInner};
use crate::adapters::dns_wire::WireLookup;
use crate::engine::Session;
use crate::engine::control::{Control, host_error, runtime_error};
use crate::ports::dns::{CloudDnsSpec, DnsError, Lookup, ZoneTarget};
use rhai::{Dynamic, INT, Map, Position};
use std::sync::Arc;

/// `dns(spec)`: opens the zone through the session's zone opener. Reads
/// only; runs again on every resume.
pub(super) fn open(session: &Session, spec: &Map, pos: Position) -> Res<Zone> {
    let ZoneSpec {
        zone,
        owner,
        timeout,
        provider,
    } = spec::parse(spec, &session.run_id, pos)?;
    let mut lookup = WireLookup::new(timeout);
    let target = match provider {
        Provider::CloudDns(cloud) => ZoneTarget::CloudDns(cloud),
        Provider::Rfc2136 { server, tsig } => {
            // The opener reads the same key and reports what is wrong with
            // it; here it only signs the queries to the zone's own server.
            if let Some(signer) = tsig.as_ref().and_then(|k| k.signer().ok()) {
                lookup.signed = Some((server, signer));
            }
            ZoneTarget::Rfc2136 {
                server,
                zone,
                tsig,
                timeout,
            }
        }
    };
    let lookup: Arc<dyn Lookup> = Arc::new(lookup);
    let opener = session.backends.zones.clone();
    let opened = retrying(session, || opener.open(&target));
    let port = opened.map_err(|stop| match (stop, &target) {
        (Stop::Cancelled, _) => Control::Cancelled.raise(pos),
        (Stop::Dns(e), ZoneTarget::CloudDns(cloud)) => cannot_open(cloud, e, pos),
        // What an RFC 2136 spec gets wrong (a secret that cannot be read)
        // is the script's to fix.
        (Stop::Dns(e), ZoneTarget::Rfc2136 { .. }) => runtime_error(e.message, pos),
    })?;
    if let ZoneTarget::CloudDns(_) = target {
        // A zone recreated under the same name is another zone: a resume refuses it.
        session.check_identity(
            &format!("dns:{}", port.origin()),
            serde_json::json!({ "id": port.identity() }),
            pos,
        )?;
    }
    Ok(Zone(Arc::new(ZoneInner {
        port,
        lookup,
        owner,
    })))
}

fn cannot_open(cloud: &CloudDnsSpec, e: DnsError, pos: Position) -> Box<rhai::EvalAltResult> {
    let (project, zone) = (&cloud.project, &cloud.zone);
    let mut details = Map::new();
    details.insert(
        "zone".into(),
        format!("Cloud DNS zone {project}/{zone}").into(),
    );
    details.insert("kind".into(), e.kind_name().into());
    // A zone that cannot be opened is configuration (exit 2), like a
    // missing kubeconfig context.
    details.insert("verb".into(), "open".into());
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
