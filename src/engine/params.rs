//! The run's parameters as the engine hands them to a script: the constant
//! `params` in every script's scope. Its methods are registered with the
//! other primitives (`primitives::params`).

use std::collections::BTreeMap;
use std::sync::Arc;

/// The `params` value scripts see.
#[derive(Clone)]
pub struct Params(pub Arc<BTreeMap<String, String>>);

impl Params {
    /// Names in `wanted` that are not set.
    pub fn missing<'a>(&self, wanted: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        wanted
            .into_iter()
            .filter(|n| !self.0.contains_key(*n))
            .map(str::to_owned)
            .collect()
    }
}
