//! Ports: every side effect a script can cause goes through one of these
//! traits. Registered Rhai functions never hold a client directly; the real
//! adapters (`crate::adapters`) and the lab sit behind the same traits, and
//! tests inject fakes.

pub mod cluster;
pub mod dns;
pub mod exec;
