//! Run ids: `<script>-<yyyymmdd>-<hhmmss>-<4 hex>`, safe in file names.

use crate::error::{Error, Result};

pub fn new_run_id(script_label: &str) -> String {
    let stem: String = script_label
        .trim_end_matches(".rhai")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    // An id must not start with `-` or `.` (it would read as a flag, or be
    // refused by the id check): `_deploy.rhai` and `.rhai` still get one.
    let stem = stem.trim_start_matches(['-', '.']);
    let stem = if stem.is_empty() { "run" } else { stem };
    let now = std::time::SystemTime::now();
    let stamp: String = humantime::format_rfc3339_seconds(now)
        .to_string()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let nanos = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let salt = (nanos ^ std::process::id().rotate_left(16)) & 0xffff;
    format!("{stem}-{}-{}-{salt:04x}", &stamp[..8], &stamp[8..14])
}

/// Ids name lock files, so they are restricted to a safe alphabet.
pub fn validate_run_id(id: &str) -> Result<String> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && !id.starts_with(['.', '-'])
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(id.to_owned())
    } else {
        Err(Error::usage(format!(
            "bad run id `{id}`: use letters, digits, `-`, `_` and `.` (not first), at most 128 characters"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_always_pass_the_id_check() {
        for label in [
            "_deploy.rhai",
            ".rhai",
            "-x.rhai",
            "two-apps.rhai",
            "ÄÖ.rhai",
            "__.rhai",
        ] {
            let id = new_run_id(label);
            assert!(validate_run_id(&id).is_ok(), "{label} -> {id}");
        }
        assert!(new_run_id("_deploy.rhai").starts_with("deploy-"));
        assert!(new_run_id(".rhai").starts_with("run-"));
    }
}
