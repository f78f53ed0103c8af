//! Routing HTTP requests to the store: URL layout, verbs, query options,
//! bodies in JSON or YAML, watch streams and errors as `Status` objects.

use super::exec::{self, PodCommands};
use super::patch::PatchKind;
use super::resources::{self, Resource};
use super::selector::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::store::{Change, ChangeKind, ClusterStore, Write};
use bytes::Bytes;
use futures::StreamExt;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::watch;

pub type Body = BoxBody<Bytes, Infallible>;

/// Largest request body accepted: kube-apiserver's `MaxRequestBodyBytes`
/// (3 MiB), answered with 413 beyond it.
const MAX_BODY: usize = 3 << 20;

/// The user the lab's token authenticates as (`kubectl auth whoami`).
pub const LAB_USER: &str = "lab-admin";

struct Context {
    cluster: Arc<ClusterStore>,
    token: String,
    commands: Arc<dyn PodCommands>,
    shutdown: watch::Receiver<bool>,
}

/// Serves `cluster` over TLS on `listener` until `shutdown` turns true.
pub async fn serve(
    cluster: Arc<ClusterStore>,
    listener: tokio::net::TcpListener,
    tls: tokio_rustls::TlsAcceptor,
    token: String,
    commands: Arc<dyn PodCommands>,
    mut shutdown: watch::Receiver<bool>,
) {
    let context = Arc::new(Context {
        cluster,
        token,
        commands,
        shutdown: shutdown.clone(),
    });
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let Ok((stream, _)) = accepted else { continue };
        context
            .cluster
            .traffic
            .connections
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let context = context.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let Ok(stream) = tls.accept(stream).await else {
                return;
            };
            let service = hyper::service::service_fn(move |req| {
                let context = context.clone();
                async move { Ok::<_, Infallible>(handle(&context, req).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let _ = builder.serve_connection_with_upgrades(io, service).await;
        });
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

fn json_response(code: StatusCode, value: &Value) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(full(body))
        .unwrap_or_else(|_| Response::new(full("")))
}

fn error_response(error: &ApiError) -> Response<Body> {
    json_response(
        StatusCode::from_u16(error.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &error.to_status(),
    )
}

async fn handle(context: &Context, req: Request<Incoming>) -> Response<Body> {
    if context.cluster.traffic.arrive(req.uri().path()) {
        let mut response = error_response(&ApiError::too_many_requests());
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("0"),
        );
        return response;
    }
    let authorized = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| t == context.token);
    if !authorized {
        return error_response(&ApiError::unauthorized());
    }
    match route(context, req).await {
        Ok(response) => response,
        Err(error) => error_response(&error),
    }
}

/// Where a request points, once its URL is parsed.
struct Target {
    resource: Resource,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

async fn route(context: &Context, req: Request<Incoming>) -> Result<Response<Body>, ApiError> {
    let path = req.uri().path().to_owned();
    let query = parse_query(req.uri().query());
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let cluster = &context.cluster;
    let (group, version, rest): (&str, &str, &[&str]) = match segments.as_slice() {
        ["version"] => {
            return Ok(json_response(
                StatusCode::OK,
                &json!({ "major": "1", "minor": "36", "gitVersion": "v1.36.2-ferry-lab", "platform": "linux/amd64", "goVersion": "go1.26" }),
            ));
        }
        ["healthz" | "readyz" | "livez"] => return Ok(Response::new(full("ok"))),
        ["metrics"] => {
            // Prometheus text, as kube-apiserver's `/metrics` (a small part).
            let (requests, connections) = cluster.traffic.counts();
            let execs = cluster.traffic.exec_sessions();
            return Ok(Response::builder()
                .header("content-type", "text/plain; version=0.0.4")
                .body(full(format!(
                    "# TYPE apiserver_request_total counter\napiserver_request_total {requests}\n\
                     # TYPE ferry_lab_connections_total counter\nferry_lab_connections_total {connections}\n\
                     # TYPE ferry_lab_exec_sessions_total counter\nferry_lab_exec_sessions_total {execs}\n"
                )))
                .unwrap_or_else(|_| Response::new(full(""))));
        }
        ["api"] => return Ok(json_response(StatusCode::OK, &resources::core_versions())),
        ["apis"] => {
            return Ok(json_response(
                StatusCode::OK,
                &resources::group_list(&cluster.resources()),
            ));
        }
        ["api", "v1"] => return discovery(cluster, "", "v1"),
        ["apis", group] => {
            let list = resources::group_list(&cluster.resources());
            let found = list["groups"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|g| g["name"] == *group)
                .cloned();
            return match found {
                Some(mut g) => {
                    g["kind"] = json!("APIGroup");
                    g["apiVersion"] = json!("v1");
                    Ok(json_response(StatusCode::OK, &g))
                }
                None => Ok(page_not_found()),
            };
        }
        ["apis", group, version] => return discovery(cluster, group, version),
        ["openapi", "v3"] => {
            return Ok(json_response(
                StatusCode::OK,
                &resources::openapi_index(&cluster.resources()),
            ));
        }
        ["openapi", "v3", "api", version] => return openapi(cluster, "", version),
        ["openapi", "v3", "apis", group, version] => {
            return openapi(cluster, group, version);
        }
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", group, version, rest @ ..] => (group, version, rest),
        _ => return Err(ApiError::not_found_path()),
    };
    let Some(target) = target(cluster, group, version, rest) else {
        // Built-in groups answer with a `Status`; other paths fall through
        // to kube-apiserver's plain 404 (the CRD handler's, too).
        return if resources::is_builtin_group(group) {
            Err(ApiError::not_found_path())
        } else {
            Ok(page_not_found())
        };
    };
    let dry_run = query.get("dryRun").is_some_and(|v| v == "All");
    let field_manager = query.get("fieldManager").cloned();
    let opts = Write {
        dry_run,
        field_manager: field_manager.as_deref(),
    };
    let ns = target.namespace.as_deref();
    let method = req.method().clone();

    if target.subresource.as_deref() == Some("exec") {
        return exec::handle(
            context.cluster.clone(),
            context.commands.clone(),
            &target.resource,
            ns,
            target.name.as_deref(),
            &query,
            req,
        )
        .await;
    }
    if target.resource.create_only() {
        // A review is answered, not stored: the request body's status is
        // replaced by what the server knows about the caller.
        return match (method, target.name.as_deref()) {
            (Method::POST, None) => {
                let mut review = read_body(req).await?;
                if !review.is_object() {
                    return Err(ApiError::bad_request("the body must be an object"));
                }
                review["apiVersion"] = json!(target.resource.api_version());
                review["kind"] = json!(target.resource.kind);
                review["metadata"] = json!({ "creationTimestamp": super::store::now_rfc3339() });
                review["status"] = json!({ "userInfo": {
                    "username": LAB_USER,
                    "groups": ["system:masters", "system:authenticated"],
                } });
                Ok(json_response(StatusCode::CREATED, &review))
            }
            (_, _) => Err(ApiError::method_not_allowed()),
        };
    }
    let status_only = target.subresource.as_deref() == Some("status");
    match (method, target.name.as_deref()) {
        (Method::GET, None) if query.get("watch").is_some_and(|w| w == "true" || w == "1") => {
            Ok(watch(context, &target, &query))
        }
        (Method::GET, None) => {
            let (labels, fields) = selectors(&query)?;
            Ok(json_response(
                StatusCode::OK,
                &cluster.list(&target.resource, ns, &labels, &fields),
            ))
        }
        (Method::GET, Some(name)) if target.subresource.as_deref() == Some("scale") => {
            Ok(json_response(
                StatusCode::OK,
                &scale(&cluster.get(&target.resource, ns, name)?),
            ))
        }
        (Method::GET, Some(name)) => Ok(json_response(
            StatusCode::OK,
            &cluster.get(&target.resource, ns, name)?,
        )),
        (Method::POST, None) => {
            let body = read_body(req).await?;
            Ok(json_response(
                StatusCode::CREATED,
                &cluster.create(&target.resource, ns, body, opts)?,
            ))
        }
        (Method::PUT, Some(name)) => {
            let body = read_body(req).await?;
            let missing = cluster.get(&target.resource, ns, name).is_err();
            if missing && !status_only && target.resource.creates_on_update() {
                // Services and Leases are created by an update that finds
                // none (`AllowCreateOnUpdate`), whatever resourceVersion it names.
                let mut body = body;
                if body["metadata"]["name"].as_str().is_some_and(|n| n != name) {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({}) does not match the name on the URL ({name})",
                        body["metadata"]["name"].as_str().unwrap_or_default()
                    )));
                }
                if let Some(meta) = body["metadata"].as_object_mut() {
                    meta.remove("resourceVersion");
                }
                return Ok(json_response(
                    StatusCode::CREATED,
                    &cluster.create(&target.resource, ns, body, opts)?,
                ));
            }
            let result = if status_only {
                cluster.replace_status(&target.resource, ns, name, body, opts)?
            } else {
                cluster.replace(&target.resource, ns, name, body, opts)?
            };
            Ok(json_response(StatusCode::OK, &result))
        }
        (Method::PATCH, Some(name)) => {
            let content_type = req
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let kind = PatchKind::from_content_type(&content_type)
                .ok_or_else(ApiError::unsupported_media_type)?;
            if kind == PatchKind::Strategic && target.resource.is_custom() {
                return Err(ApiError::unsupported_patch(&[
                    "application/json-patch+json",
                    "application/merge-patch+json",
                    "application/apply-patch+yaml",
                ]));
            }
            let body = read_body(req).await?;
            kind.check_body(&body).map_err(ApiError::bad_request)?;
            // A server-side apply that creates answers 201, as a create.
            let creates = kind == PatchKind::Apply
                && !status_only
                && cluster.get(&target.resource, ns, name).is_err();
            let result = if status_only {
                cluster.patch_status(&target.resource, ns, name, kind, &body, opts)?
            } else {
                cluster.patch(&target.resource, ns, name, kind, &body, opts)?
            };
            let code = if creates {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            Ok(json_response(code, &result))
        }
        (Method::DELETE, Some(name)) => {
            // kube-rs (ferry's client) sends dryRun in the DeleteOptions
            // body, not in the query.
            let options = read_delete_options(req).await?;
            let opts = Write {
                dry_run: opts.dry_run || options.dry_run,
                ..opts
            };
            Ok(json_response(
                StatusCode::OK,
                &cluster.delete(&target.resource, ns, name, opts)?,
            ))
        }
        (_, _) => Err(ApiError::method_not_allowed()),
    }
}

fn openapi(cluster: &ClusterStore, group: &str, version: &str) -> Result<Response<Body>, ApiError> {
    resources::openapi_document(&cluster.resources(), group, version)
        .map(|doc| json_response(StatusCode::OK, &doc))
        .ok_or_else(ApiError::not_found_path)
}

/// kube-apiserver's answer to a path no handler serves: plain text.
fn page_not_found() -> Response<Body> {
    Response::builder()
        .status(StatusCode::NOT_FOUND)
        .header("content-type", "text/plain; charset=utf-8")
        .body(full("404 page not found\n"))
        .unwrap_or_else(|_| Response::new(full("")))
}

/// A workload's `scale` subresource (`autoscaling/v1` `Scale`).
fn scale(object: &Value) -> Value {
    let meta = &object["metadata"];
    let selector = object["spec"]["selector"]["matchLabels"]
        .as_object()
        .map(|labels| {
            labels
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"], "creationTimestamp": meta["creationTimestamp"],
        },
        "spec": { "replicas": object["spec"]["replicas"] },
        "status": { "replicas": object["status"]["replicas"], "selector": selector },
    })
}

fn discovery(
    cluster: &ClusterStore,
    group: &str,
    version: &str,
) -> Result<Response<Body>, ApiError> {
    match resources::resource_list(&cluster.resources(), group, version) {
        Some(list) => Ok(json_response(StatusCode::OK, &list)),
        None if resources::is_builtin_group(group) => Err(ApiError::not_found_path()),
        None => Ok(page_not_found()),
    }
}

/// `namespaces/{ns}/{plural}[/{name}[/{sub}]]` or `{plural}[/{name}[/{sub}]]`.
fn target(cluster: &ClusterStore, group: &str, version: &str, rest: &[&str]) -> Option<Target> {
    let (namespace, rest) = match rest {
        ["namespaces", ns, plural, tail @ ..]
            if !(group.is_empty()
                && tail.is_empty()
                && matches!(*plural, "status" | "finalize")) =>
        {
            (Some(ns.to_string()), {
                let mut v = vec![*plural];
                v.extend_from_slice(tail);
                v
            })
        }
        other => (None, other.to_vec()),
    };
    let (plural, name, subresource) = match rest.as_slice() {
        [plural] => (*plural, None, None),
        [plural, name] => (*plural, Some(name.to_string()), None),
        [plural, name, sub] => (*plural, Some(name.to_string()), Some(sub.to_string())),
        _ => return None,
    };
    let resource = cluster.resource(group, version, plural)?;
    if namespace.is_some() && !resource.namespaced {
        return None;
    }
    if let Some(sub) = &subresource
        && !resource.subresources.contains(sub)
    {
        return None;
    }
    // A namespaced object is addressed through its namespace.
    if resource.namespaced && namespace.is_none() && name.is_some() {
        return None;
    }
    Some(Target {
        resource,
        namespace,
        name,
        subresource,
    })
}

fn parse_query(query: Option<&str>) -> HashMap<String, String> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn selectors(query: &HashMap<String, String>) -> Result<(LabelSelector, FieldSelector), ApiError> {
    let labels = LabelSelector::parse(
        query
            .get("labelSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    )
    .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(
        query
            .get("fieldSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    )
    .map_err(ApiError::bad_request)?;
    Ok((labels, fields))
}

/// What a DELETE's body asks for (`DeleteOptions`); an empty body asks
/// for nothing.
struct DeleteOptions {
    dry_run: bool,
}

async fn read_delete_options(req: Request<Incoming>) -> Result<DeleteOptions, ApiError> {
    let bytes = http_body_util::Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("cannot read the request body: {e}")))?
        .to_bytes();
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(DeleteOptions { dry_run: false });
    }
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(options) = &body else {
        let json_type = match body {
            Value::Array(_) => "array",
            Value::String(_) => "string",
            Value::Number(_) => "number",
            Value::Bool(_) => "bool",
            _ => "null",
        };
        return Err(ApiError::bad_request(format!(
            "couldn't get version/kind; json parse error: json: cannot unmarshal {json_type} into Go value of type struct {{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind string \"json:\\\"kind,omitempty\\\"\" }}"
        )));
    };
    let dry_run = options
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|modes| modes.iter().any(|m| m == "All"));
    Ok(DeleteOptions { dry_run })
}

/// A JSON or YAML request body.
async fn read_body(req: Request<Incoming>) -> Result<Value, ApiError> {
    let content_type = req
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let limited = http_body_util::Limited::new(req.into_body(), MAX_BODY);
    let bytes = limited
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError::too_large(format!("Request entity too large: limit is {MAX_BODY}"))
            } else {
                ApiError::bad_request(format!("cannot read the request body: {e}"))
            }
        })?
        .to_bytes();
    if content_type.contains("protobuf") {
        return Err(ApiError::unsupported_media_type());
    }
    if content_type.contains("yaml") {
        serde_yaml_ng::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("the body is not valid YAML: {e}")))
    } else {
        serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
    }
}

/// `?watch=true`: JSON lines of `{type, object}`. Without a resourceVersion
/// (or with "0") the stream starts with the current objects as ADDED.
fn watch(context: &Context, target: &Target, query: &HashMap<String, String>) -> Response<Body> {
    let (labels, fields) = match selectors(query) {
        Ok(s) => s,
        Err(e) => return error_response(&e),
    };
    let cluster = &context.cluster;
    let resource = target.resource.clone();
    let namespace = target.namespace.clone();
    let receiver = cluster.subscribe();
    let initial: Vec<Bytes> = match query.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => {
            cluster.list(&resource, namespace.as_deref(), &labels, &fields)["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|o| event_line("ADDED", o))
                .collect()
        }
        Some(_) => Vec::new(),
    };
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(timeout);
    let shutdown = context.shutdown.clone();
    let group_resource = resource.group_resource();
    let live =
        futures::stream::unfold((receiver, shutdown), move |(mut receiver, mut shutdown)| {
            let (group_resource, namespace, labels, fields, resource) = (
                group_resource.clone(),
                namespace.clone(),
                labels.clone(),
                fields.clone(),
                resource.clone(),
            );
            async move {
                loop {
                    let change: Change = tokio::select! {
                        received = receiver.recv() => match received {
                            Ok(change) => change,
                            // Lagged or closed: end the stream; the client re-lists.
                            Err(_) => return None,
                        },
                        _ = tokio::time::sleep_until(deadline) => return None,
                        _ = shutdown.wait_for(|stop| *stop) => return None,
                    };
                    let object = &change.object;
                    let in_scope = change.resource == group_resource
                        && namespace
                            .as_deref()
                            .is_none_or(|ns| object["metadata"]["namespace"].as_str() == Some(ns))
                        && labels.matches(&object["metadata"]["labels"])
                        && fields.matches(object);
                    if in_scope {
                        let kind = match change.kind {
                            ChangeKind::Added => "ADDED",
                            ChangeKind::Modified => "MODIFIED",
                            ChangeKind::Deleted => "DELETED",
                        };
                        let mut object = object.clone();
                        object["apiVersion"] = json!(resource.api_version());
                        object["kind"] = json!(resource.kind);
                        return Some((event_line(kind, &object), (receiver, shutdown)));
                    }
                }
            }
        });
    let stream = futures::stream::iter(initial)
        .chain(live)
        .map(|line| Ok::<_, Infallible>(Frame::data(line)));
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .header("transfer-encoding", "chunked")
        .body(BodyExt::boxed(StreamBody::new(stream)))
        .unwrap_or_else(|_| Response::new(full("")))
}

fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line =
        serde_json::to_vec(&json!({ "type": kind, "object": object })).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}
