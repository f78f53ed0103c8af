//! Recorded kube-apiserver answers: the fixtures in
//! `tests/suite/fixtures/kube-apiserver-1.36/*.json` each hold a list of
//! exchanges (a request, the fields of the answer that matter, and the
//! answer a real kube-apiserver gave). One driver sends them, to a real
//! server when recording and to the lab when replaying, and reduces every
//! answer to what must match: the status code; for a `Status` its status,
//! reason, message and details (causes included); for an object its kind,
//! whether its resourceVersion is new, the same or changed, and the listed
//! fields. What legitimately differs between two servers is normalised
//! away: uids, timestamps, resourceVersion values, allocated IPs (every
//! dotted quad the request did not name) and node ports.
//!
//! A request body may say `$RV`: the driver puts in the resourceVersion it
//! last saw for the object the request addresses.

use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where the recorded answers live.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/suite/fixtures/kube-apiserver-1.36")
}

/// Every fixture file, in name order, with its parsed content.
pub fn fixtures() -> Vec<(PathBuf, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
        .expect("the fixtures directory exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("a fixture reads");
            let value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
            (path, value)
        })
        .collect()
}

/// Sends exchanges to one API server, remembering resourceVersions.
pub struct Driver {
    client: kube::Client,
    versions: HashMap<String, String>,
}

impl Driver {
    pub async fn connect(kubeconfig: &Path, context: Option<&str>) -> Driver {
        ferry::tls::install_provider();
        let (config, _) = ferry::adapters::kube::load_config(Some(kubeconfig), context)
            .await
            .expect("the kubeconfig loads");
        Driver {
            client: kube::Client::try_from(config).expect("a client"),
            versions: HashMap::new(),
        }
    }

    /// The server's `/version` (`gitVersion`).
    pub async fn version(&self) -> Value {
        let (code, body) = self.raw("GET", "/version", None, "").await;
        assert_eq!(code, 200, "GET /version answered {code}: {body}");
        body
    }

    async fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: &str,
    ) -> (u16, Value) {
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("accept", "application/json");
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let request = request
            .body(kube::client::Body::from(body.as_bytes().to_vec()))
            .expect("a request");
        let response = self
            .client
            .send(request)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let code = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect_bytes()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: reading the answer: {e}"));
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| json!({ "text": String::from_utf8_lossy(&bytes).trim() }));
        (code, value)
    }

    /// Sends one exchange's request and returns its answer, reduced to what
    /// must match.
    pub async fn send(&mut self, exchange: &Value) -> Value {
        let method = exchange["method"].as_str().expect("a method");
        let path = exchange["path"].as_str().expect("a path");
        let bare = path.split('?').next().unwrap_or(path).to_owned();
        // kube-rs sends a delete's dryRun in its DeleteOptions body.
        let dry_run = path.contains("dryRun=All")
            || exchange["body"]["dryRun"]
                .as_array()
                .is_some_and(|modes| modes.iter().any(|m| m == "All"));
        let request_body = exchange.get("body");
        let key = match (method, request_body) {
            ("POST", Some(body)) => match body["metadata"]["name"].as_str() {
                Some(name) => format!("{bare}/{name}"),
                None => bare.clone(),
            },
            _ => bare.clone(),
        };
        let mut text = request_body
            .map(|b| serde_json::to_string(b).expect("a body serialises"))
            .unwrap_or_default();
        if let Some(rv) = self.versions.get(&key) {
            text = text.replace("$RV", rv);
        }
        let content_type = exchange["content_type"].as_str();
        let wanted = exchange["retry_until"].as_u64();
        let mut tries = 0;
        let (code, body) = loop {
            let (code, body) = self.raw(method, path, content_type, &text).await;
            tries += 1;
            match wanted {
                Some(w) if u64::from(code) != w && tries < 60 => {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                }
                _ => break (code, body),
            }
        };
        let before = self.versions.get(&key).cloned();
        let kind = body["kind"].as_str().unwrap_or_default().to_owned();
        let rv = body["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_owned);
        let is_object = !kind.is_empty() && kind != "Status" && !kind.ends_with("List");
        // Set-up answers depend on what the server had before (the lab
        // seeds what a real server is given), so they are not followed.
        let setup = exchange["setup"] == true;
        if !setup && !dry_run && (200..300).contains(&code) && is_object {
            if method == "DELETE" && body["metadata"]["deletionTimestamp"].is_null() {
                self.versions.remove(&key);
            } else if let Some(rv) = &rv {
                self.versions.insert(key.clone(), rv.clone());
            }
        }
        if !dry_run && method == "DELETE" && kind == "Status" && (200..300).contains(&code) {
            self.versions.remove(&key);
        }
        let keep = Keep::from_request(&text);
        let mut answer = Map::new();
        answer.insert("code".into(), json!(code));
        if kind == "Status" {
            for field in ["status", "reason", "message", "details"] {
                if let Some(v) = body.get(field) {
                    answer.insert(field.into(), keep.normalise(field, v));
                }
            }
        } else if kind.is_empty() {
            answer.insert("body".into(), keep.normalise("", &body));
        } else {
            answer.insert("kind".into(), json!(kind));
            if is_object {
                let change = match (&before, &rv) {
                    (_, None) => "none",
                    (None, Some(_)) => "new",
                    (Some(b), Some(a)) if a == b => "same",
                    (Some(_), Some(_)) => "changed",
                };
                answer.insert("resourceVersion".into(), json!(change));
            }
            let mut fields = Map::new();
            for pointer in exchange["fields"].as_array().into_iter().flatten() {
                let pointer = pointer.as_str().expect("a field is a JSON pointer");
                let value = body.pointer(pointer).cloned().unwrap_or(Value::Null);
                let last = pointer.rsplit('/').next().unwrap_or_default();
                fields.insert(pointer.into(), keep.normalise(last, &value));
            }
            if !fields.is_empty() {
                answer.insert("fields".into(), Value::Object(fields));
            }
        }
        Value::Object(answer)
    }
}

/// What normalisation keeps: the IPs the request itself named.
struct Keep {
    ips: Vec<String>,
}

impl Keep {
    fn from_request(text: &str) -> Keep {
        Keep {
            ips: dotted_quads(text)
                .into_iter()
                .map(|(s, e)| text[s..e].to_owned())
                .collect(),
        }
    }

    /// `value` (found under `key`) with what legitimately differs replaced.
    fn normalise(&self, key: &str, value: &Value) -> Value {
        match (key, value) {
            ("uid", Value::String(_)) => json!("<uid>"),
            (
                "creationTimestamp" | "deletionTimestamp" | "time" | "lastTransitionTime"
                | "renewTime" | "acquireTime",
                Value::String(_),
            ) => json!("<time>"),
            ("resourceVersion", Value::String(_)) => json!("<rv>"),
            ("nodePort" | "healthCheckNodePort", Value::Number(_)) => json!("<nodePort>"),
            (_, Value::String(s)) => json!(self.text(s)),
            (_, Value::Array(items)) => {
                Value::Array(items.iter().map(|v| self.normalise(key, v)).collect())
            }
            (_, Value::Object(map)) => Value::Object(
                map.iter()
                    .filter(|(k, _)| !(k.as_str() == "uid" && key == "details"))
                    .map(|(k, v)| (k.clone(), self.normalise(k, v)))
                    .collect(),
            ),
            _ => value.clone(),
        }
    }

    fn text(&self, s: &str) -> String {
        let mut out = String::new();
        let mut at = 0;
        for (start, end) in dotted_quads(s) {
            out.push_str(&s[at..start]);
            let ip = &s[start..end];
            if self.ips.iter().any(|kept| kept == ip) {
                out.push_str(ip);
            } else {
                out.push_str("<ip>");
            }
            at = end;
        }
        out.push_str(&s[at..]);
        out
    }
}

/// Byte ranges of the IPv4 addresses in `s` (four dot-separated numbers,
/// each up to 255, not part of a longer run of digits and dots).
fn dotted_quads(s: &str) -> Vec<(usize, usize)> {
    let bytes = s.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_digit() || bytes[i - 1] == b'.');
        if boundary && bytes[i].is_ascii_digit() {
            let end = (i..bytes.len())
                .find(|&j| !(bytes[j].is_ascii_digit() || bytes[j] == b'.'))
                .unwrap_or(bytes.len());
            let run = s[i..end].trim_end_matches('.');
            let parts: Vec<&str> = run.split('.').collect();
            if parts.len() == 4
                && parts.iter().all(|p| {
                    !p.is_empty() && p.len() <= 3 && p.parse::<u16>().is_ok_and(|n| n <= 255)
                })
            {
                found.push((i, i + run.len()));
            }
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    found
}

#[test]
fn normalising_keeps_requested_ips_and_hides_allocated_ones() {
    let keep = Keep::from_request(r#"{"clusterIP":"127.10.9.11"}"#);
    assert_eq!(
        keep.text("127.10.9.11 is taken, 127.10.3.4 was given; range 127.10.0.0/16, v1.36.2"),
        "127.10.9.11 is taken, <ip> was given; range <ip>/16, v1.36.2"
    );
    assert_eq!(
        keep.normalise(
            "spec",
            &json!({ "ports": [{ "nodePort": 31000, "port": 80 }] })
        ),
        json!({ "ports": [{ "nodePort": "<nodePort>", "port": 80 }] })
    );
}
