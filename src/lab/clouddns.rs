//! A fake of the Cloud DNS v1 REST routes ferry's adapter uses, over one
//! managed zone kept in a [`Zone`] store (its own in-memory one, or the
//! lab's private zone, shared with the RFC 2136 server): managed zone get, rrsets list (paginated) / get /
//! create / patch / delete, changes create / get. It follows the API's
//! rules that matter to a client: a change's deletions must match the zone
//! exactly (412 `conditionNotMet`, 404 if absent), additions must not exist
//! (409 `alreadyExists`), a change is `pending` for a configurable number of
//! polls before `done`, and errors use Google's JSON error shape.
//!
//! Every request is recorded for assertions, and failures can be injected
//! (`fail`) to exercise retries and error reporting. A change checks and
//! applies inside one [`Zone::transact`], so it is atomic against the other
//! front too.
//!
//! ```ignore
//! let fake = FakeCloudDns::start("p", "mycompany-internal", "mycompany.internal.").await?;
//! // dns(#{ provider: "clouddns", project: "p", zone: "mycompany-internal",
//! //        endpoint: fake.base_url(), credentials: "anonymous" })
//! ```

use crate::lab::zone::{Edit, RecordSet, View, Zone};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One request as the fake saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    /// Path without the query, e.g. `/dns/v1/projects/p/managedZones/z/changes`.
    pub path: String,
    pub query: BTreeMap<String, String>,
    /// The JSON body, if any.
    pub body: Option<Value>,
    /// Whether an `Authorization` header was sent.
    pub authorized: bool,
}

/// A failure to answer instead of serving matching requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `GET`, `POST`, ...; `None` matches any method.
    pub method: Option<String>,
    /// A substring of the path; `None` matches any path.
    pub path_contains: Option<String>,
    pub status: u16,
    /// How many matching requests fail before the fake serves normally again.
    pub times: u32,
}

impl Failure {
    pub fn new(method: &str, path_contains: &str, status: u16, times: u32) -> Self {
        Failure {
            method: Some(method.to_owned()),
            path_contains: Some(path_contains.to_owned()),
            status,
            times,
        }
    }
}

struct ChangeRecord {
    body: Value,
    polls_left: u32,
}

struct State {
    project: String,
    zone: String,
    zone_id: u64,
    records: Arc<Zone>,
    changes: Vec<ChangeRecord>,
    requests: Vec<RecordedRequest>,
    failures: Vec<Failure>,
    page_size: usize,
    pending_polls: u32,
}

/// The fake server; stops when dropped.
pub struct FakeCloudDns {
    base_url: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeCloudDns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl FakeCloudDns {
    /// Serves managed zone `zone` (DNS name `dns_name`) of `project` on
    /// 127.0.0.1 at a free port, from a zone of its own in memory. Must be
    /// called inside a tokio runtime.
    pub async fn start(project: &str, zone: &str, dns_name: &str) -> std::io::Result<Self> {
        let records = Zone::open(dns_name, None)?;
        // Every managed zone has its SOA and NS records, Google's.
        let origin = records.origin().to_owned();
        records.remove(&format!("ns1.{origin}"), "A");
        records.put(RecordSet {
            name: origin.clone(),
            rtype: "NS".into(),
            ttl: 21600,
            data: vec!["ns-gcp-private.googledomains.com.".into()],
        });
        records.put(RecordSet {
            name: origin,
            rtype: "SOA".into(),
            ttl: 21600,
            data: vec![
                "ns-gcp-private.googledomains.com. cloud-dns-hostmaster.google.com. 1 21600 3600 259200 300".into(),
            ],
        });
        Self::serve(project, zone, Arc::new(records)).await
    }

    /// Serves `records` as managed zone `zone` of `project` (its DNS name is
    /// the store's origin) on 127.0.0.1 at a free port: the lab's front over
    /// its private zone. Must be called inside a tokio runtime.
    pub async fn serve(project: &str, zone: &str, records: Arc<Zone>) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(State {
            project: project.to_owned(),
            zone: zone.to_owned(),
            zone_id: 4_242_424_242,
            records,
            changes: Vec::new(),
            requests: Vec::new(),
            failures: Vec::new(),
            page_size: 100,
            pending_polls: 1,
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    // Out of file descriptors or similar: let the condition pass.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(&state, req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(FakeCloudDns {
            base_url: format!("http://{addr}"),
            state,
            task,
        })
    }

    /// Stops accepting connections (dropping the fake does too).
    pub fn stop(&self) {
        self.task.abort();
    }

    /// `http://127.0.0.1:PORT`: the `endpoint` of a `dns(...)` spec.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Every request so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.state).requests.clear();
    }

    /// Answers the next `failure.times` matching requests with `failure.status`.
    pub fn fail(&self, failure: Failure) {
        lock(&self.state).failures.push(failure);
    }

    /// At most this many record sets per list page (default 100).
    pub fn set_page_size(&self, size: usize) {
        lock(&self.state).page_size = size.max(1);
    }

    /// How many `changes.get` polls answer `pending` before `done` (default 1).
    pub fn set_pending_polls(&self, polls: u32) {
        lock(&self.state).pending_polls = polls;
    }

    /// Changes the managed zone's id, as if the zone had been recreated.
    pub fn set_zone_id(&self, id: u64) {
        lock(&self.state).zone_id = id;
    }

    fn records(&self) -> Arc<Zone> {
        lock(&self.state).records.clone()
    }

    /// Seeds a record set as if someone else had created it.
    pub fn put_rrset(&self, name: &str, rtype: &str, ttl: i64, rrdatas: &[&str]) {
        self.records().put(RecordSet {
            name: name.to_ascii_lowercase(),
            rtype: rtype.to_ascii_uppercase(),
            ttl: ttl_of(ttl),
            data: rrdatas.iter().map(|s| (*s).to_owned()).collect(),
        });
    }

    /// The record set's rrdatas and TTL, if present.
    pub fn rrset(&self, name: &str, rtype: &str) -> Option<(i64, Vec<String>)> {
        self.records()
            .get(&name.to_ascii_lowercase(), rtype)
            .map(|s| (i64::from(s.ttl), s.data))
    }

    /// Names and types of every record set, sorted.
    pub fn keys(&self) -> Vec<(String, String)> {
        self.records()
            .list()
            .into_iter()
            .map(|s| (s.name, s.rtype))
            .collect()
    }
}

/// A TTL as the store keeps it (the API's is a signed 32-bit number).
fn ttl_of(ttl: i64) -> u32 {
    u32::try_from(ttl.max(0)).unwrap_or(u32::MAX)
}

fn respond(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    response
}

/// Google's JSON error shape.
fn error(code: u16, reason: &str, message: &str) -> Response<Full<Bytes>> {
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

fn injected(code: u16) -> Response<Full<Bytes>> {
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

fn rrset_json(rrset: &RecordSet) -> Value {
    json!({
        "kind": "dns#resourceRecordSet",
        "name": rrset.name,
        "type": rrset.rtype,
        "ttl": rrset.ttl,
        "rrdatas": rrset.data,
    })
}

fn stored(name: String, rtype: String, ttl: i64, rrdatas: Vec<String>) -> RecordSet {
    RecordSet {
        name,
        rtype,
        ttl: ttl_of(ttl),
        data: rrdatas,
    }
}

/// Name, type, TTL and rrdatas of a record set in a request body.
type Parsed = (String, String, i64, Vec<String>);

fn parse_rrset(value: &Value) -> Option<Parsed> {
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

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn handle(state: &Mutex<State>, req: Request<Incoming>) -> Response<Full<Bytes>> {
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
                    true => respond(StatusCode::OK, json!({})),
                    false => missing(),
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

fn create_change(s: &mut State, body: Value) -> Response<Full<Bytes>> {
    let parse_all = |field: &str| -> Result<Vec<Parsed>, ()> {
        match body.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items.iter().map(|v| parse_rrset(v).ok_or(())).collect(),
            Some(_) => Err(()),
        }
    };
    let (Ok(deletions), Ok(additions)) = (parse_all("deletions"), parse_all("additions")) else {
        return error(400, "invalid", "Invalid value for 'entity.change'");
    };
    if deletions.is_empty() && additions.is_empty() {
        return error(
            400,
            "required",
            "The 'entity.change' parameter is required but was missing.",
        );
    }
    let applied = s
        .records
        .transact(|view| check_change(view, &deletions, &additions).map(|edits| (edits, ())));
    if let Err(response) = applied {
        return *response;
    }
    let id = s.changes.len();
    let mut out = body.clone();
    out["kind"] = json!("dns#change");
    out["id"] = json!(id.to_string());
    out["startTime"] = json!("2026-01-01T00:00:00.000Z");
    let polls_left = s.pending_polls;
    s.changes.push(ChangeRecord {
        body: out.clone(),
        polls_left,
    });
    out["status"] = json!(if polls_left > 0 { "pending" } else { "done" });
    respond(StatusCode::OK, out)
}

/// The edits of a change whose deletions match the zone exactly and whose
/// additions do not exist (unless deleted by the same change).
fn check_change(
    view: &View<'_>,
    deletions: &[Parsed],
    additions: &[Parsed],
) -> Result<Vec<Edit>, Box<Response<Full<Bytes>>>> {
    for (i, (name, rtype, ttl, rrdatas)) in deletions.iter().enumerate() {
        match view.get(name, rtype) {
            None => {
                return Err(Box::new(error(
                    404,
                    "notFound",
                    &format!(
                        "The 'entity.change.deletions[{i}]' resource named '{name} ({rtype})' does not exist."
                    ),
                )));
            }
            Some(current)
                if current.ttl != ttl_of(*ttl)
                    || sorted(current.data.clone()) != sorted(rrdatas.clone()) =>
            {
                return Err(Box::new(error(
                    412,
                    "conditionNotMet",
                    &format!(
                        "Precondition not met for 'entity.change.deletions[{i}]': {name} ({rtype}) does not match the current record set"
                    ),
                )));
            }
            Some(_) => {}
        }
    }
    for (i, (name, rtype, _, _)) in additions.iter().enumerate() {
        let deleted = deletions.iter().any(|(n, t, _, _)| n == name && t == rtype);
        if !deleted && view.get(name, rtype).is_some() {
            return Err(Box::new(error(
                409,
                "alreadyExists",
                &format!(
                    "The resource 'entity.change.additions[{i}]' named '{name} ({rtype})' already exists"
                ),
            )));
        }
    }
    let mut edits: Vec<Edit> = deletions
        .iter()
        .map(|(name, rtype, _, _)| Edit::Remove {
            name: name.clone(),
            rtype: rtype.clone(),
        })
        .collect();
    edits.extend(additions.iter().map(|(name, rtype, ttl, rrdatas)| {
        Edit::Put(stored(name.clone(), rtype.clone(), *ttl, rrdatas.clone()))
    }));
    Ok(edits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use google_cloud_dns_v1::client::ResourceRecordSets;
    use google_cloud_dns_v1::model::ResourceRecordSet;
    use google_cloud_gax::paginator::Paginator as _;

    async fn client(fake: &FakeCloudDns) -> ResourceRecordSets {
        crate::settings::install_tls_provider();
        ResourceRecordSets::builder()
            .with_endpoint(fake.base_url())
            .with_credentials(google_cloud_auth::credentials::anonymous::Builder::new().build())
            .with_retry_policy(google_cloud_gax::retry_policy::NeverRetry)
            .build()
            .await
            .unwrap()
    }

    fn rrset(name: &str, ip: &str) -> ResourceRecordSet {
        ResourceRecordSet::new()
            .set_name(name)
            .set_type("A")
            .set_ttl(60)
            .set_rrdatas([ip])
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn the_real_client_creates_patches_lists_by_page_and_deletes() {
        let fake = FakeCloudDns::start("p", "z", "example.internal")
            .await
            .unwrap();
        let c = client(&fake).await;
        let create = |name: &str, ip: &str| {
            c.create()
                .set_project("p")
                .set_managed_zone("z")
                .set_body(rrset(name, ip))
        };
        create("a.example.internal.", "10.0.0.1")
            .send()
            .await
            .unwrap();
        let dup = create("a.example.internal.", "10.0.0.1")
            .send()
            .await
            .unwrap_err();
        assert_eq!(dup.http_status_code(), Some(409));
        assert!(dup.status().unwrap().message.contains("already exists"));
        for i in 2..=4 {
            create(&format!("h{i}.example.internal."), &format!("10.0.0.{i}"))
                .send()
                .await
                .unwrap();
        }
        let patched = c
            .patch()
            .set_project("p")
            .set_managed_zone("z")
            .set_name("a.example.internal.")
            .set_type("A")
            .set_body(rrset("a.example.internal.", "10.9.9.9"))
            .send()
            .await
            .unwrap();
        assert_eq!(patched.rrdatas, vec!["10.9.9.9"]);
        assert_eq!(
            fake.rrset("a.example.internal.", "A").unwrap().1,
            vec!["10.9.9.9"]
        );

        fake.set_page_size(2);
        let mut pages = c.list().set_project("p").set_managed_zone("z").by_page();
        let mut seen = Vec::new();
        let mut count = 0;
        while let Some(page) = pages.next().await {
            let page = page.unwrap();
            assert!(page.rrsets.len() <= 2);
            seen.extend(page.rrsets.into_iter().map(|r| r.name.unwrap()));
            count += 1;
        }
        assert_eq!(seen.len(), 6, "4 records + SOA + NS: {seen:?}");
        assert_eq!(count, 3);
        let tokens: Vec<_> = fake
            .requests()
            .into_iter()
            .filter(|r| r.method == "GET" && r.path.ends_with("/rrsets"))
            .map(|r| r.query.get("pageToken").cloned().unwrap_or_default())
            .collect();
        assert_eq!(tokens, vec!["", "2", "4"]);

        c.delete()
            .set_project("p")
            .set_managed_zone("z")
            .set_name("a.example.internal.")
            .set_type("A")
            .send()
            .await
            .unwrap();
        let gone = c
            .get()
            .set_project("p")
            .set_managed_zone("z")
            .set_name("a.example.internal.")
            .set_type("A")
            .send()
            .await
            .unwrap_err();
        assert_eq!(gone.http_status_code(), Some(404));
        assert!(fake.requests().iter().all(|r| !r.authorized));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn changes_check_deletions_exactly_and_injected_failures_answer_first() {
        let fake = FakeCloudDns::start("p", "z", "example.internal.")
            .await
            .unwrap();
        fake.put_rrset("a.example.internal.", "A", 60, &["10.0.0.1"]);
        crate::settings::install_tls_provider();
        let http = reqwest::Client::new();
        let url = format!(
            "{}/dns/v1/projects/p/managedZones/z/changes",
            fake.base_url()
        );
        let post = |body: Value| http.post(&url).json(&body).send();
        let stale = json!({ "deletions": [{ "name": "a.example.internal.", "type": "A", "ttl": 60, "rrdatas": ["10.0.0.2"] }] });
        assert_eq!(post(stale).await.unwrap().status(), 412);
        let exists = json!({ "additions": [{ "name": "a.example.internal.", "type": "A", "ttl": 60, "rrdatas": ["10.0.0.2"] }] });
        assert_eq!(post(exists).await.unwrap().status(), 409);
        fake.fail(Failure::new("POST", "/changes", 503, 1));
        let swap = json!({
            "deletions": [{ "name": "a.example.internal.", "type": "A", "ttl": 60, "rrdatas": ["10.0.0.1"] }],
            "additions": [{ "name": "a.example.internal.", "type": "A", "ttl": 30, "rrdatas": ["10.0.0.2"] }],
        });
        let failed = post(swap.clone()).await.unwrap();
        assert_eq!(failed.status(), 503);
        let body: Value = failed.json().await.unwrap();
        assert_eq!(body["error"]["status"], "UNAVAILABLE");
        assert_eq!(
            fake.rrset("a.example.internal.", "A").unwrap().1,
            vec!["10.0.0.1"]
        );
        let done: Value = post(swap).await.unwrap().json().await.unwrap();
        assert_eq!(done["status"], "pending");
        assert_eq!(
            fake.rrset("a.example.internal.", "A").unwrap(),
            (30, vec!["10.0.0.2".to_owned()])
        );
        let id = done["id"].as_str().unwrap().to_owned();
        let get = || async {
            let v: Value = http
                .get(format!("{url}/{id}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["status"].as_str().unwrap().to_owned()
        };
        assert_eq!(get().await, "pending");
        assert_eq!(get().await, "done");
    }
}
