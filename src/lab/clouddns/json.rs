//! The Cloud DNS v1 JSON the fake reads and writes: record sets as the API
//! spells them, and errors in Google's shape (code, status, reason,
//! message), since the real client parses that shape and the adapter shows
//! its message to the script; `injected` holds the canned errors `fail`
//! answers with.

use crate::lab::zone::RecordSet;
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

/// A TTL as the store keeps it (the API's is a signed 32-bit number).
pub(super) fn ttl_of(ttl: i64) -> u32 {
    u32::try_from(ttl.max(0)).unwrap_or(u32::MAX)
}

pub(super) fn respond(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    response
}

/// Google's JSON error shape.
pub(super) fn error(code: u16, reason: &str, message: &str) -> Response<Full<Bytes>> {
    let status = match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        412 => "FAILED_PRECONDITION",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    respond(
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        json!({ "error": {
            "code": code,
            "message": message,
            "status": status,
            "errors": [{ "domain": "global", "reason": reason, "message": message }],
        }}),
    )
}

pub(super) fn injected(code: u16) -> Response<Full<Bytes>> {
    let (reason, message) = match code {
        401 => (
            "required",
            "Request had invalid authentication credentials.",
        ),
        403 => (
            "forbidden",
            "Forbidden: the caller does not have permission",
        ),
        409 => ("alreadyExists", "The resource already exists (injected)."),
        412 => ("conditionNotMet", "Precondition not met (injected)."),
        429 => ("rateLimitExceeded", "Rate Limit Exceeded"),
        503 => ("backendError", "The service is currently unavailable."),
        _ => ("internalError", "Internal Error"),
    };
    error(code, reason, message)
}

pub(super) fn rrset_json(rrset: &RecordSet) -> Value {
    json!({
        "kind": "dns#resourceRecordSet",
        "name": rrset.name,
        "type": rrset.rtype,
        "ttl": rrset.ttl,
        "rrdatas": rrset.data,
    })
}

pub(super) fn stored(name: String, rtype: String, ttl: i64, rrdatas: Vec<String>) -> RecordSet {
    RecordSet {
        name,
        rtype,
        ttl: ttl_of(ttl),
        data: rrdatas,
    }
}

/// Name, type, TTL and rrdatas of a record set in a request body.
pub(super) type Parsed = (String, String, i64, Vec<String>);

pub(super) fn parse_rrset(value: &Value) -> Option<Parsed> {
    let name = value.get("name")?.as_str()?.to_ascii_lowercase();
    let rtype = value.get("type")?.as_str()?.to_ascii_uppercase();
    let ttl = value.get("ttl").and_then(Value::as_i64).unwrap_or(300);
    let rrdatas = value
        .get("rrdatas")?
        .as_array()?
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    Some((name, rtype, ttl, rrdatas))
}

/// A change the lab could not persist is the API's internal error, which
/// clients retry (Cloud DNS answers 500 `internalError` when its storage fails).
impl From<crate::lab::zone::Unpersisted> for Box<Response<Full<Bytes>>> {
    fn from(e: crate::lab::zone::Unpersisted) -> Self {
        Box::new(error(
            500,
            "internalError",
            &format!("the lab cannot persist the change: {}", e.0),
        ))
    }
}
