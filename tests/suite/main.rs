//! ferry's integration tests, as one binary: every test binary links the
//! whole crate, so one binary instead of one per file saves minutes of
//! linking on a 2-core CI machine. Each module covers one area; `common`
//! holds the sandbox, the `#[must_use]` invocation builder, journal
//! histories and the real servers (Knot, Traefik, backends, the lab).

mod common;
mod kube_mock;

mod bad_input;
mod board;
mod cluster_adapter;
mod cluster_live;
mod cluster_scripts;
mod core_hooks;
mod display;
mod dns_clouddns;
mod dns_probes;
mod dns_rfc2136;
mod dns_servers;
mod drain;
mod fleet;
mod gates;
mod gitops;
mod guard;
mod guard_stream;
mod http_from;
mod journal_kubernetes;
mod journal_postgres;
mod journal_store;
mod lab;
mod lab_dns;
mod lab_recorded;
mod ledger;
mod lifecycle;
mod modules;
mod multiport;
mod parallel;
mod plan;
mod probes;
mod progressive;
mod recipes;
mod recipes_crash;
mod reference;
mod resume;
mod rollback;
mod runs;
mod scripts;
mod status;
mod team_state;
mod traefik;
mod zero_downtime;
