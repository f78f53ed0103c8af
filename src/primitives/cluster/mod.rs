//! Cluster primitives: `cluster("old")` opens a kubeconfig context as a
//! handle, and its methods read and change the cluster through the cluster
//! port (`crate::ports::cluster`, implemented with kube in
//! `crate::adapters::kube`). Where each Rhai name lives:
//!
//! | Rhai | here | adapter |
//! |---|---|---|
//! | `cluster()`, `cluster(name)`, `identity`, `context`, `server` | `handle.rs` | `adapters/kube/config.rs` |
//! | `get`, `exists`, `list` | `reads.rs` | `adapters/kube/mod.rs`, `discovery.rs` |
//! | `apply`, `create`, `replace`, `patch`, `delete` | `writes.rs` | `adapters/kube/mod.rs` |
//! | `copy` | `writes.rs` | `adapters/kube/objects.rs` (what is stripped) |
//! | `to_external_name`, `to_cluster_ip` | `services.rs` | `adapters/kube/services.rs` |
//! | `ingress_address` | `services.rs` (polls with `waits.rs`) | |
//! | `wait`, `rollout` | `waiting.rs` (polls with `waits.rs`) | |
//! | `exec` | `exec.rs` | `adapters/kube/exec.rs` |
//! | options maps, defaults | `options.rs` | |
//!
//! Reads are allowed anywhere; mutations only inside a step. Under `ferry
//! plan` the handle is an overlay (`crate::plan::cluster`): every mutation
//! is sent with `dryRun=All`, recorded, and seen by later reads.

mod exec;
mod handle;
mod options;
mod reads;
mod services;
mod waiting;
pub mod waits;
mod writes;

pub use handle::ClusterHandle;

use crate::engine::Session;
use handle::Clusters;
use rhai::Engine;
use std::sync::Arc;

/// Registration order is the order `ferry docs` lists the functions in.
pub fn register(engine: &mut Engine, session: &Arc<Session>) {
    let h = Clusters::shared(session);
    handle::register(engine, &h);
    reads::register(engine, &h);
    writes::register(engine, &h);
    services::register(engine, &h);
    waiting::register(engine, &h);
    services::register_ingress_address(engine, &h);
    exec::register(engine, &h);
}
