//! The server's side of TSIG (RFC 8945) through hickory: verify a signed
//! request against the lab's key, sign the answers (a chain of them for a
//! multi-message zone transfer), and the error answers Knot gives: an
//! unknown key or algorithm is NOTAUTH with an unsigned BADKEY, a wrong MAC
//! NOTAUTH with an unsigned BADSIG, a clock outside the fudge NOTAUTH with
//! a signed BADTIME. The secret is only ever in the signer, never in an
//! error or a log line.

use hickory_proto::op::Message;
use hickory_proto::rr::rdata::tsig::{
    TSIG, TsigAlgorithm, TsigError, make_tsig_record, signed_bitmessage_to_buf,
};
use hickory_proto::rr::{Name, TSigResponseContext, TSigner};
use hickory_proto::serialize::binary::BinEncoder;
use std::path::Path;

/// How far apart the client's and the lab's clocks may be, in seconds.
const FUDGE: u16 = 300;

/// The lab's key (hmac-sha256 with the secret of `<lab dir>/tsig.key`).
#[derive(Clone)]
pub struct ServerKey {
    signer: TSigner,
}

/// What a request's TSIG says.
pub enum Check {
    /// No TSIG record.
    Unsigned,
    /// Signed with the key: answers are signed with [`Signing`].
    Valid(Signing),
    /// Not acceptable: answer NOTAUTH with this TSIG (boxed: it is rare).
    Invalid(Box<TSigResponseContext>),
}

/// Signs the answers to one verified request.
#[derive(Clone)]
pub struct Signing {
    signer: TSigner,
    request_id: u16,
    /// The request's MAC for the first answer, then the previous answer's.
    previous_mac: Vec<u8>,
    first: bool,
}

impl ServerKey {
    pub fn new(name: &str, secret: Vec<u8>) -> Result<ServerKey, String> {
        let name = Name::from_ascii(name)
            .map_err(|e| format!("tsig key name `{name}` is not a valid name: {e}"))?;
        let signer = TSigner::new(secret, TsigAlgorithm::HmacSha256, name, FUDGE)
            .map_err(|e| format!("cannot use the tsig key: {e}"))?;
        Ok(ServerKey { signer })
    }

    /// Reads the base64 secret from `path` (errors name the file, not the secret).
    pub fn from_file(name: &str, path: &Path) -> std::io::Result<ServerKey> {
        let text = std::fs::read_to_string(path)?;
        let secret = data_encoding::BASE64
            .decode(text.trim().as_bytes())
            .map_err(|_| {
                std::io::Error::other(format!(
                    "the tsig secret in {} is not valid base64",
                    path.display()
                ))
            })?;
        ServerKey::new(name, secret).map_err(std::io::Error::other)
    }

    /// Checks the TSIG of `request` (decoded from `bytes`) at time `now`.
    pub fn check(&self, request: &Message, bytes: &[u8], now: u64) -> Check {
        let Some(tsig) = request.signature() else {
            return Check::Unsigned;
        };
        let id = request.metadata.id;
        if tsig.name != *self.signer.signer_name()
            || tsig.data.algorithm != *self.signer.algorithm()
        {
            return Check::Invalid(Box::new(TSigResponseContext::unknown_key(
                id,
                now,
                tsig.name.clone(),
            )));
        }
        // The MAC is checked here rather than by `verify_message_byte`,
        // whose time window arithmetic underflows on a forged time of 0.
        let verified = signed_bitmessage_to_buf(bytes, None, true)
            .ok()
            .filter(|(tbv, record)| self.signer.verify(tbv, &record.data.mac).is_ok());
        let Some((_, record)) = verified else {
            return Check::Invalid(Box::new(TSigResponseContext::bad_signature(
                id,
                now,
                self.signer.clone(),
            )));
        };
        let mac = record.data.mac.clone();
        let fudge = u64::from(record.data.fudge);
        if now.abs_diff(record.data.time) > fudge {
            return Check::Invalid(Box::new(TSigResponseContext::new(
                id,
                now,
                self.signer.clone(),
                mac,
                Some(TsigError::BadTime),
            )));
        }
        Check::Valid(Signing {
            signer: self.signer.clone(),
            request_id: id,
            previous_mac: mac,
            first: true,
        })
    }
}

/// Adds the TSIG an invalid request's answer carries.
pub fn sign_error(response: &mut Message, context: TSigResponseContext) -> Result<(), String> {
    let unsigned = response.to_vec().map_err(|e| e.to_string())?;
    let record = context.sign(&unsigned).map_err(|e| e.to_string())?;
    response.set_signature(record);
    Ok(())
}

impl Signing {
    /// Signs `response`, the next answer to the request.
    pub fn sign(&mut self, response: &mut Message, now: u64) -> Result<(), String> {
        let unsigned = response.to_vec().map_err(|e| e.to_string())?;
        let stub = TSIG::new(
            self.signer.algorithm().clone(),
            now,
            self.signer.fudge(),
            Vec::new(),
            self.request_id,
            None,
            Vec::new(),
        );
        let tbs = if self.first {
            self.signer
                .encode_response_tbs(&self.previous_mac, &unsigned, &stub)
                .map_err(|e| e.to_string())?
        } else {
            // Later messages of a transfer cover the previous MAC, the
            // message and only the timers (RFC 8945 §5.3.1).
            chained_tbs(&self.previous_mac, &unsigned, now, self.signer.fudge())
                .map_err(|e| e.to_string())?
        };
        let mac = self.signer.sign(&tbs).map_err(|e| e.to_string())?;
        self.previous_mac = mac.clone();
        self.first = false;
        response.set_signature(Box::new(make_tsig_record(
            self.signer.signer_name().clone(),
            stub.set_mac(mac),
        )));
        Ok(())
    }
}

fn chained_tbs(
    previous_mac: &[u8],
    unsigned: &[u8],
    now: u64,
    fudge: u16,
) -> Result<Vec<u8>, hickory_proto::ProtoError> {
    let mut buf = Vec::with_capacity(unsigned.len() + previous_mac.len() + 16);
    let mut encoder = BinEncoder::new(&mut buf);
    encoder.emit_u16(u16::try_from(previous_mac.len()).unwrap_or(u16::MAX))?;
    encoder.emit_vec(previous_mac)?;
    encoder.emit_vec(unsigned)?;
    encoder.emit_u16((now >> 32) as u16)?;
    encoder.emit_u32(now as u32)?;
    encoder.emit_u16(fudge)?;
    Ok(buf)
}
