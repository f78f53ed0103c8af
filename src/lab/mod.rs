//! The lab: stand-ins for the outside world that speak the real protocols on
//! loopback, so ferry's real adapters run against them unchanged.
//!
//! * [`clouddns`]: an in-process fake of the Cloud DNS v1 REST API (Google
//!   ships no emulator) over an in-memory managed zone. Tests use it to
//!   check the Cloud DNS adapter's requests and its handling of 409, 412,
//!   403, 429 and 500; the lab serves its private zone through it.

pub mod clouddns;
