//! A Kubernetes API server for the lab, speaking the REST API that kube-rs
//! and kubectl use: discovery, a generic object store for any kind
//! (including CRDs), get/list/watch/create/replace/patch/delete with
//! `dryRun=All`, `Status` errors, bearer-token auth, and `pods/exec` over
//! WebSocket (the `v4/v5.channel.k8s.io` protocols) with commands run by the
//! lab's data plane.
//!
//! Differences from a real API server are listed in the README's lab section
//! (no admission webhooks, no RBAC beyond the token, server-side apply merges
//! without ownership conflicts, watches start at "now").

pub mod admission;
mod decode;
pub(crate) mod defaults;
mod exec;
mod http;
mod metadata;
pub mod patch;
pub mod resources;
pub mod selector;
pub mod status;
pub mod store;
mod traffic;
pub mod validation;

pub use exec::PodCommands;
pub use http::{LAB_USER, serve};
pub use store::{Change, ChangeKind, ClusterStore, Write};
