//! `pods/{name}/exec` over WebSocket, the way kube-rs (and kubectl >= 1.30)
//! call it: the `v5`/`v4.channel.k8s.io` subprotocols, where every binary
//! frame starts with a channel byte (1 stdout, 2 stderr, 3 the final
//! `Status`). The command itself is run by the lab's data plane through
//! [`PodCommands`], from the pod's own vantage point.
//!
//! ferry's guard probe loop (`crate::probes::stream`, recognised by its
//! marker) is streamed: each line goes out as it is printed, and the loop
//! stops when the client closes the session or stdin, as a real exec's
//! would. Every session is counted (`ferry_lab_exec_sessions_total`).

use super::http::Body;
use super::resources::Resource;
use super::status::ApiError;
use super::store::ClusterStore;
use crate::ports::exec::ExecOutput;
use futures::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::json;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Message, handshake::derive_accept_key};

/// Runs a command in a lab pod.
pub trait PodCommands: Send + Sync {
    fn run(
        &self,
        cluster: &str,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        command: Vec<String>,
    ) -> Pin<Box<dyn Future<Output = ExecOutput> + Send + '_>>;

    /// Runs ferry's probe loop, sending each line (without its newline) to
    /// `lines` as it comes; ends when `lines` closes or the loop's time is up.
    fn stream(
        &self,
        cluster: &str,
        namespace: &str,
        pod: &str,
        container: Option<&str>,
        plan: crate::probes::stream::Plan,
        lines: tokio::sync::mpsc::Sender<String>,
    ) -> Pin<Box<dyn Future<Output = ExecOutput> + Send + '_>>;
}

const PROTOCOLS: &[&str] = &["v5.channel.k8s.io", "v4.channel.k8s.io"];

pub async fn handle(
    cluster: Arc<ClusterStore>,
    commands: Arc<dyn PodCommands>,
    resource: &Resource,
    namespace: Option<&str>,
    pod: Option<&str>,
    query: &HashMap<String, String>,
    req: Request<Incoming>,
) -> Result<Response<Body>, ApiError> {
    let (Some(namespace), Some(pod)) = (namespace, pod) else {
        return Err(ApiError::bad_request("exec needs a namespace and a pod"));
    };
    let live = cluster.get(resource, Some(namespace), pod)?;
    let container = query.get("container").cloned();
    if let Some(c) = &container
        && !live["spec"]["containers"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|x| x["name"] == c.as_str())
    {
        return Err(ApiError::bad_request(format!(
            "container {c} is not valid for pod {pod}"
        )));
    }
    // Repeated `command=` parameters, in order.
    let command: Vec<String> =
        form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
            .filter(|(k, _)| k == "command")
            .map(|(_, v)| v.into_owned())
            .collect();
    if command.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    let offered: Vec<String> = req
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_owned()))
        .collect();
    let protocol = PROTOCOLS
        .iter()
        .find(|p| offered.iter().any(|o| o == *p))
        .copied();
    let (Some(protocol), Some(key)) = (protocol, req.headers().get("sec-websocket-key").cloned())
    else {
        return Err(ApiError::bad_request(
            "exec needs a WebSocket upgrade with the v5.channel.k8s.io or v4.channel.k8s.io protocol",
        ));
    };
    let accept = derive_accept_key(key.as_bytes());
    let (cluster_name, namespace, pod) =
        (cluster.name.clone(), namespace.to_owned(), pod.to_owned());
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(req).await else {
            return;
        };
        let io = hyper_util::rt::TokioIo::new(upgraded);
        let mut socket =
            tokio_tungstenite::WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        cluster
            .traffic
            .exec_sessions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let plan = match command.as_slice() {
            [sh, c, script] if sh == "sh" && c == "-c" => crate::probes::stream::plan_of(script),
            _ => None,
        };
        let output = match plan {
            None => {
                commands
                    .run(
                        &cluster_name,
                        &namespace,
                        &pod,
                        container.as_deref(),
                        command,
                    )
                    .await
            }
            Some(plan) => {
                let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(1024);
                let run = commands.stream(
                    &cluster_name,
                    &namespace,
                    &pod,
                    container.as_deref(),
                    plan,
                    tx,
                );
                tokio::pin!(run);
                let mut output = None;
                let mut open = true;
                while open {
                    tokio::select! {
                        done = &mut run, if output.is_none() => output = Some(done),
                        line = rx.recv() => match line {
                            Some(mut line) => {
                                line.insert(0, 1u8 as char);
                                line.push('\n');
                                if socket.send(Message::binary(line.into_bytes())).await.is_err() {
                                    return;
                                }
                            }
                            None => open = false,
                        },
                        incoming = socket.next() => match incoming {
                            // Stdin's close (v5's channel 255), a close frame or
                            // a dropped connection: the loop's stdin ends, so does it.
                            Some(Ok(Message::Binary(frame))) if frame.first() == Some(&255) => return,
                            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                            Some(Ok(_)) => {}
                        },
                    }
                }
                match output {
                    Some(output) => output,
                    None => run.await,
                }
            }
        };
        for (channel, text) in [(1u8, &output.stdout), (2u8, &output.stderr)] {
            if !text.is_empty() {
                let mut frame = vec![channel];
                frame.extend_from_slice(text.as_bytes());
                let _ = socket.send(Message::binary(frame)).await;
            }
        }
        let status = match output.status {
            Some(0) | None => json!({ "metadata": {}, "status": "Success" }),
            Some(code) => json!({
                "metadata": {}, "status": "Failure",
                "message": format!("command terminated with non-zero exit code: error executing command [{}], exit code {code}", "…"),
                "reason": "NonZeroExitCode",
                "details": { "causes": [{ "reason": "ExitCode", "message": code.to_string() }] },
            }),
        };
        let mut frame = vec![3u8];
        frame.extend_from_slice(status.to_string().as_bytes());
        let _ = socket.send(Message::binary(frame)).await;
        // A normal close: clients treat a close without a code as an error.
        let _ = socket
            .close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            }))
            .await;
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", accept)
        .header("sec-websocket-protocol", protocol)
        .body(Full::new(bytes::Bytes::new()).boxed())
        .map_err(|e| ApiError::internal(e.to_string()))
}
