//! Traefik's per-service request counters, as a lab ingress pod serves
//! them: with `--metrics.prometheus=true` and a `metrics` entry point
//! (`--entryPoints.metrics.address=:9100`, `--metrics.prometheus.entryPoint=metrics`),
//! `GET /metrics` on that port answers Prometheus text with
//! `traefik_service_requests_total{code,method,protocol,service}`, one
//! counter per ingress pod (each Traefik replica counts what it served).
//! The service label is what Traefik's Kubernetes CRD provider names a
//! route's backend: `<namespace>-<service>-<port>@kubernetescrd`.
//! `ferry/drain` reads these before finalize removes a bridge.

use super::http::{self, Handler};
use ::http::StatusCode;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// One ingress pod's counters: (service, method, code) -> requests.
#[derive(Default)]
pub struct Counters(Mutex<BTreeMap<(String, String, u16), u64>>);

impl Counters {
    pub fn count(&self, service: &str, method: &str, code: u16) {
        *self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((service.to_owned(), method.to_owned(), code))
            .or_default() += 1;
    }

    /// The Prometheus text exposition Traefik serves.
    pub fn render(&self) -> String {
        let mut out = String::from(
            "# HELP traefik_service_requests_total How many HTTP requests processed on a service, partitioned by status code, protocol, and method.\n# TYPE traefik_service_requests_total counter\n",
        );
        for ((service, method, code), n) in self.0.lock().unwrap_or_else(|p| p.into_inner()).iter()
        {
            out.push_str(&format!(
                "traefik_service_requests_total{{code=\"{code}\",method=\"{method}\",protocol=\"http\",service=\"{service}\"}} {n}\n"
            ));
        }
        out
    }
}

/// The backend's name in Traefik's metrics.
pub fn service_label(namespace: &str, service: &str, port: &Value) -> String {
    let port = match port {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        _ => String::new(),
    };
    format!("{namespace}-{service}-{port}@kubernetescrd")
}

/// The port of the metrics entry point, when the container enables
/// Prometheus metrics on one.
pub fn port(container: &Value) -> Option<u16> {
    let args: Vec<&str> = container["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if !args.contains(&"--metrics.prometheus=true") && !args.contains(&"--metrics.prometheus") {
        return None;
    }
    let entry = args
        .iter()
        .find_map(|a| a.strip_prefix("--metrics.prometheus.entryPoint="))
        .unwrap_or("traefik");
    let prefix = format!("--entryPoints.{entry}.address=");
    args.iter()
        .find_map(|a| a.strip_prefix(prefix.as_str()))
        .and_then(|address| address.rsplit(':').next())
        .and_then(|p| p.parse().ok())
}

pub fn handler(counters: Arc<Counters>) -> Handler {
    Arc::new(move |req| {
        let counters = counters.clone();
        Box::pin(async move {
            if req.uri().path() == "/metrics" {
                http::text(StatusCode::OK, counters.render())
            } else {
                http::text(StatusCode::NOT_FOUND, "404 page not found\n")
            }
        })
    })
}
