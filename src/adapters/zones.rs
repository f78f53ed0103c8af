//! The real [`ZoneOpener`]: a Cloud DNS target opens the managed zone (one
//! read, to learn its apex and id); an RFC 2136 target loads its TSIG secret
//! from where the spec says and makes no request.

use super::clouddns::CloudDnsZone;
use super::rfc2136::Rfc2136Zone;
use crate::ports::dns::{DnsError, DnsFuture, DnsZone, ZoneOpener, ZoneTarget};
use std::sync::Arc;

pub struct Zones;

impl ZoneOpener for Zones {
    fn open<'a>(&'a self, target: &'a ZoneTarget) -> DnsFuture<'a, Arc<dyn DnsZone>> {
        Box::pin(async move {
            match target {
                ZoneTarget::CloudDns(spec) => {
                    let zone = CloudDnsZone::open(spec.clone()).await?;
                    Ok(Arc::new(zone) as Arc<dyn DnsZone>)
                }
                ZoneTarget::Rfc2136 {
                    server,
                    zone,
                    tsig,
                    timeout,
                } => {
                    let invalid = |e: String| DnsError::invalid(format!("dns spec (rfc2136): {e}"));
                    let signer = tsig
                        .as_ref()
                        .map(|k| k.signer())
                        .transpose()
                        .map_err(invalid)?;
                    let zone =
                        Rfc2136Zone::new(*server, zone, signer, *timeout).map_err(invalid)?;
                    Ok(Arc::new(zone) as Arc<dyn DnsZone>)
                }
            }
        })
    }
}
