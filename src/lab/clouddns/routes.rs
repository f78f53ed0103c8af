//! Routing one request: record it, answer an injected failure if one
//! matches, then dispatch on method and path under
//! `/dns/v1/projects/<project>/managedZones/<zone>`: the managed zone, the
//! rrsets collection (list by page, create) and one rrset (get, patch,
//! delete), and changes (create in `changes.rs`, get with its pending
//! polls counting down). A path outside the one zone is a 404, as for a
//! zone that does not exist.

use super::changes::create_change;
use super::json::{error, injected, parse_rrset, respond, rrset_json, stored};
use super::{RecordedRequest, State, lock};
use crate::lab::zone::Edit;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Mutex;

pub(super) async fn handle(state: &Mutex<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query: BTreeMap<String, String> = req
        .uri()
        .query()
        .and_then(|q| reqwest::Url::parse(&format!("http://fake/?{q}")).ok())
        .map(|url| url.query_pairs().into_owned().collect())
        .unwrap_or_default();
    let authorized = req.headers().contains_key(http::header::AUTHORIZATION);
    let bytes = match req.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return error(400, "invalid", "unreadable request body"),
    };
    let body: Option<Value> = if bytes.is_empty() {
        None
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(v) => Some(v),
            Err(e) => return error(400, "parseError", &format!("Parse Error: {e}")),
        }
    };
    let mut s = lock(state);
    s.requests.push(RecordedRequest {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        body: body.clone(),
        authorized,
    });
    if let Some(failure) = s.failures.iter_mut().find(|f| {
        f.times > 0
            && f.method.as_deref().is_none_or(|m| m == method.as_str())
            && f.path_contains.as_deref().is_none_or(|p| path.contains(p))
    }) {
        failure.times -= 1;
        return injected(failure.status);
    }
    let prefix = format!("/dns/v1/projects/{}/managedZones/{}", s.project, s.zone);
    let Some(rest) = path.strip_prefix(&prefix) else {
        return error(
            404,
            "notFound",
            &format!("The 'parameters.managedZone' resource named '{path}' does not exist."),
        );
    };
    let segments: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    match (&method, segments.as_slice()) {
        (&Method::GET, []) => respond(
            StatusCode::OK,
            json!({
                "kind": "dns#managedZone",
                "name": s.zone,
                "dnsName": s.records.origin(),
                "id": s.zone_id.to_string(),
                "visibility": "private",
                "nameServers": ["ns-gcp-private.googledomains.com."],
            }),
        ),
        (&Method::GET, ["rrsets"]) => list(&s, &query),
        (&Method::POST, ["rrsets"]) => {
            let Some((name, rtype, ttl, rrdatas)) = body.as_ref().and_then(parse_rrset) else {
                return error(
                    400,
                    "required",
                    "Required field 'entity.rrset' not specified",
                );
            };
            let rrset = stored(name, rtype, ttl, rrdatas);
            let out = rrset_json(&rrset);
            let created = s.records.transact(|view| {
                if view.get(&rrset.name, &rrset.rtype).is_some() {
                    return Err(Box::new(error(
                        409,
                        "alreadyExists",
                        &format!(
                            "The resource 'entity.rrset' named '{} ({})' already exists",
                            rrset.name, rrset.rtype
                        ),
                    )));
                }
                Ok((vec![Edit::Put(rrset.clone())], ()))
            });
            match created {
                Ok(()) => respond(StatusCode::OK, out),
                Err(response) => *response,
            }
        }
        (m, ["rrsets", name, rtype]) => {
            let key = (name.to_ascii_lowercase(), rtype.to_ascii_uppercase());
            let missing = || {
                error(
                    404,
                    "notFound",
                    &format!(
                        "The 'parameters.name' resource named '{name} ({rtype})' does not exist."
                    ),
                )
            };
            match *m {
                Method::GET => match s.records.get(&key.0, &key.1) {
                    Some(rrset) => respond(StatusCode::OK, rrset_json(&rrset)),
                    None => missing(),
                },
                Method::DELETE => match s.records.remove(&key.0, &key.1) {
                    Ok(true) => respond(StatusCode::OK, json!({})),
                    Ok(false) => missing(),
                    Err(e) => *Box::<Response<Full<Bytes>>>::from(crate::lab::zone::Unpersisted(e)),
                },
                Method::PATCH => {
                    let Some((_, _, ttl, rrdatas)) = body.as_ref().and_then(parse_rrset) else {
                        return error(
                            400,
                            "required",
                            "Required field 'entity.rrset' not specified",
                        );
                    };
                    let rrset = stored(key.0.clone(), key.1.clone(), ttl, rrdatas);
                    let out = rrset_json(&rrset);
                    let patched = s.records.transact(|view| {
                        if view.get(&key.0, &key.1).is_none() {
                            return Err(Box::new(missing()));
                        }
                        Ok((vec![Edit::Put(rrset)], ()))
                    });
                    match patched {
                        Ok(()) => respond(StatusCode::OK, out),
                        Err(response) => *response,
                    }
                }
                _ => error(405, "methodNotAllowed", "Method not allowed"),
            }
        }
        (&Method::POST, ["changes"]) => create_change(&mut s, body.unwrap_or(Value::Null)),
        (&Method::GET, ["changes", id]) => {
            let Some(change) = id.parse::<usize>().ok().and_then(|i| s.changes.get_mut(i)) else {
                return error(
                    404,
                    "notFound",
                    &format!("The 'parameters.changeId' resource named '{id}' does not exist."),
                );
            };
            let status = if change.polls_left > 0 {
                change.polls_left -= 1;
                "pending"
            } else {
                "done"
            };
            let mut out = change.body.clone();
            out["status"] = json!(status);
            respond(StatusCode::OK, out)
        }
        _ => error(
            404,
            "notFound",
            &format!("no route for {method} {path} in the fake"),
        ),
    }
}

fn list(s: &State, query: &BTreeMap<String, String>) -> Response<Full<Bytes>> {
    let name = query.get("name").map(|n| n.to_ascii_lowercase());
    let rtype = query.get("type").map(|t| t.to_ascii_uppercase());
    if rtype.is_some() && name.is_none() {
        return error(
            400,
            "invalid",
            "Invalid value for 'parameters.type': type requires name",
        );
    }
    let matching: Vec<Value> = s
        .records
        .list()
        .iter()
        .filter(|r| {
            name.as_ref().is_none_or(|w| *w == r.name)
                && rtype.as_ref().is_none_or(|w| *w == r.rtype)
        })
        .map(rrset_json)
        .collect();
    let size = query
        .get("maxResults")
        .and_then(|m| m.parse::<usize>().ok())
        .map_or(s.page_size, |m| m.clamp(1, s.page_size));
    let start = match query.get("pageToken").filter(|t| !t.is_empty()) {
        None => 0,
        Some(token) => match token.parse::<usize>() {
            Ok(n) if n <= matching.len() => n,
            _ => return error(400, "invalid", "Invalid value for 'parameters.pageToken'"),
        },
    };
    let end = (start + size).min(matching.len());
    let mut out = json!({
        "kind": "dns#resourceRecordSetsListResponse",
        "rrsets": matching[start..end],
    });
    if end < matching.len() {
        out["nextPageToken"] = json!(end.to_string());
    }
    respond(StatusCode::OK, out)
}
