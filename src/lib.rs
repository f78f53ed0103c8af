//! ferry moves applications between Kubernetes clusters without downtime.
//!
//! Migration scripts are Rhai; ferry runs them with a durable step journal so
//! a halted run resumes from where it stopped. Layout:
//!
//! * [`cli`]: flags and commands; `main.rs` only calls [`run`].
//! * [`runner`]: starts, resumes and rolls back runs; maps outcomes to exit codes.
//! * [`engine`]: the Rhai host (session, module resolver, diagnostics, checks).
//! * [`primitives`]: what scripts call, one file per Rhai name.
//! * [`journal`]: the durable step journal and its stores.
//! * [`plan`]: `ferry plan`, the script run against overlays that change nothing.
//! * [`ports`] / [`adapters`]: the traits every side effect goes through, and their real implementations.
//! * [`probes`]: HTTP, TCP and DNS probes and the guard's prober (no Rhai).
//! * [`settings`]: how to reach targets (kubeconfig, rate limits, dry run).
//! * [`tls`]: the one TLS stack (rustls + ring) every client and server shares.
//! * [`events`]: progress, plain and JSON rendering of what a run does.
//! * [`board`]: `ferry board`, the web page over the journal.
//! * `lab` (cargo feature `lab`, on by default): loopback stand-ins for the
//!   outside world, reached by the runner only through `runner::labs`.

pub mod adapters;
pub mod board;
pub mod cli;
pub mod corefile;
pub mod engine;
pub mod environment;
pub mod error;
pub mod events;
pub mod journal;
#[cfg(feature = "lab")]
pub mod lab;
pub mod plan;
pub mod ports;
pub mod primitives;
pub mod probes;
pub mod runner;
pub mod settings;
pub mod state;
pub mod tls;

pub use cli::run;
