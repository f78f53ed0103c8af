//! The recipe modules in `stdlib/`, embedded at build time.

include!(concat!(env!("OUT_DIR"), "/stdlib.rs"));

/// The text of `ferry/<name>`.
pub fn get(name: &str) -> Option<&'static str> {
    FILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

pub fn names() -> impl Iterator<Item = &'static str> {
    FILES.iter().map(|(n, _)| *n)
}
