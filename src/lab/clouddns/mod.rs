//! A fake of the Cloud DNS v1 REST routes ferry's adapter uses, over one
//! managed zone kept in a [`ZoneStore`] store (its own in-memory one, or the
//! lab's private zone, shared with the RFC 2136 server): managed zone get, rrsets list (paginated) / get /
//! create / patch / delete, changes create / get. It follows the API's
//! rules that matter to a client: a change's deletions must match the zone
//! exactly (412 `conditionNotMet`, 404 if absent), additions must not exist
//! (409 `alreadyExists`), a change is `pending` for a configurable number of
//! polls before `done`, and errors use Google's JSON error shape.
//!
//! Every request is recorded for assertions, and failures can be injected
//! (`fail`) to exercise retries and error reporting. A change checks and
//! applies inside one [`ZoneStore::transact`], so it is atomic against the other
//! front too.
//!
//! ```ignore
//! let fake = FakeCloudDns::start("p", "mycompany-internal", "mycompany.internal.").await?;
//! // dns(#{ provider: "clouddns", project: "p", zone: "mycompany-internal",
//! //        endpoint: fake.base_url(), credentials: "anonymous" })
//! ```
//!
//! Here: the fake's state, its server loop and the handle tests use;
//! `routes.rs` records and routes each request (managed zone and rrsets);
//! `changes.rs` checks and applies a change; `json.rs` holds the API's JSON
//! shapes, errors included.

mod changes;
mod json;
mod routes;

use crate::lab::zone::{RecordSet, ZoneStore};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use json::ttl_of;
use routes::handle;
use serde_json::Value;
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
    records: Arc<ZoneStore>,
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
        let records = ZoneStore::open(dns_name, None)?;
        // Every managed zone has its SOA and NS records, Google's.
        let origin = records.origin().to_owned();
        records.remove(&format!("ns1.{origin}"), "A")?;
        records.put(RecordSet {
            name: origin.clone(),
            rtype: "NS".into(),
            ttl: 21600,
            data: vec!["ns-gcp-private.googledomains.com.".into()],
        })?;
        records.put(RecordSet {
            name: origin,
            rtype: "SOA".into(),
            ttl: 21600,
            data: vec![
                "ns-gcp-private.googledomains.com. cloud-dns-hostmaster.google.com. 1 21600 3600 259200 300".into(),
            ],
        })?;
        Self::serve(project, zone, Arc::new(records)).await
    }

    /// Serves `records` as managed zone `zone` of `project` (its DNS name is
    /// the store's origin) on 127.0.0.1 at a free port: the lab's front over
    /// its private zone. Must be called inside a tokio runtime.
    pub async fn serve(
        project: &str,
        zone: &str,
        records: Arc<ZoneStore>,
    ) -> std::io::Result<Self> {
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

    fn records(&self) -> Arc<ZoneStore> {
        lock(&self.state).records.clone()
    }

    /// Seeds a record set as if someone else had created it.
    pub fn put_rrset(
        &self,
        name: &str,
        rtype: &str,
        ttl: i64,
        rrdatas: &[&str],
    ) -> std::io::Result<()> {
        self.records().put(RecordSet {
            name: name.to_ascii_lowercase(),
            rtype: rtype.to_ascii_uppercase(),
            ttl: ttl_of(ttl),
            data: rrdatas.iter().map(|s| (*s).to_owned()).collect(),
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use google_cloud_dns_v1::client::ResourceRecordSets;
    use google_cloud_dns_v1::model::ResourceRecordSet;
    use google_cloud_gax::paginator::Paginator as _;
    use serde_json::json;

    async fn client(fake: &FakeCloudDns) -> ResourceRecordSets {
        crate::tls::install_provider();
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
        fake.put_rrset("a.example.internal.", "A", 60, &["10.0.0.1"])
            .unwrap();
        crate::tls::install_provider();
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
