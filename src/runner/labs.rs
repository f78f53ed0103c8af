//! The one way the runner reaches the embedded lab: a lab run's targets are
//! the lab in the run's folder, served by `ferry lab up` or brought up here
//! from its saved state for as long as the run is driven. Built without the
//! `lab` feature (a production ferry), a lab run is refused with a clear
//! error instead.

use crate::environment::Environment;
use crate::error::{Error, Result};
use std::path::Path;

/// A lab this process started; it stops when dropped.
pub struct LabGuard {
    #[cfg(feature = "lab")]
    _lab: Option<crate::lab::Lab>,
}

/// The environment of the lab in `dir`, started here unless another process serves it.
#[cfg(feature = "lab")]
pub fn reach(rt: &tokio::runtime::Runtime, dir: &Path) -> Result<(Environment, LabGuard)> {
    if let Some(served) = crate::lab::served_environment(dir) {
        return Ok((served, LabGuard { _lab: None }));
    }
    let lab = rt
        .block_on(crate::lab::Lab::start(crate::lab::LabOptions::new(dir)))
        .map_err(|e| Error::usage(format!("cannot start the lab in {}: {e}", dir.display())))?;
    Ok((lab.environment(), LabGuard { _lab: Some(lab) }))
}

#[cfg(not(feature = "lab"))]
pub fn reach(_rt: &tokio::runtime::Runtime, dir: &Path) -> Result<(Environment, LabGuard)> {
    Err(Error::usage(format!(
        "the run targets the lab in {}, but this ferry was built without the lab (cargo feature `lab`)",
        dir.display()
    )))
}
