//! Object names, labels and record encodings of the Kubernetes journal (the
//! layout is justified in the module overview, `kubernetes/mod.rs`).

use super::super::{
    Action, Claim, Gate, JournalError, Run, RunStatus, Step, StepKind, StepStatus, UndoStatus,
};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The record format this ferry writes and reads. An object of a higher
/// format was written by a newer ferry and is refused, never rewritten.
pub const FORMAT: i64 = 1;

pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const KIND: &str = "ferry.dev/kind";
pub const RUN: &str = "ferry.dev/run";
pub const FORMAT_LABEL: &str = "ferry.dev/format";
/// The exact run id (a label value is limited to 63 characters of a small
/// alphabet, so the `run` label may be a hash of it).
pub const RUN_ID: &str = "ferry.dev/run-id";
/// The last holder of a run's lease, kept after release for `ferry status`.
pub const LAST_HOLDER: &str = "ferry.dev/last-holder";

/// Largest record (the JSON text in an object's data) written: ConfigMaps
/// hold at most 1 MiB of data and etcd 1.5 MiB per object; 900 KiB leaves
/// room for the key, labels and the server's metadata.
pub const MAX_RECORD_BYTES: usize = 900 * 1024;

/// How deep a record may nest before it is parsed: journaled values are
/// bounded by [`super::super::MAX_VALUE_DEPTH`]; anything deeper is not
/// ferry's and would only cost stack.
const MAX_RECORD_DEPTH: usize = super::super::MAX_VALUE_DEPTH + 16;

fn hash(text: &str, len: usize) -> String {
    let digest = sha2::Sha256::digest(text.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex[..len.min(hex.len())].to_owned()
}

/// The part of an object name that stands for a run: the id itself when it
/// is already a DNS name part, else a readable prefix and a hash (ids may
/// hold capitals, `_` and up to 128 characters).
pub fn run_key(id: &str) -> String {
    let dns = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id.as_bytes()[id.len() - 1].is_ascii_alphanumeric()
        && !id.contains("..");
    if dns {
        return id.to_owned();
    }
    let prefix: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(40)
        .collect();
    let prefix = prefix.trim_matches('-');
    if prefix.is_empty() {
        format!("x{}", hash(id, 16))
    } else {
        format!("{prefix}-{}", hash(id, 16))
    }
}

/// The `ferry.dev/run` label value: the id when it is a valid label value.
pub fn run_label(id: &str) -> String {
    let valid = !id.is_empty()
        && id.len() <= 63
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && id.as_bytes()[0].is_ascii_alphanumeric()
        && id.as_bytes()[id.len() - 1].is_ascii_alphanumeric();
    if valid {
        id.to_owned()
    } else {
        format!("h-{}", hash(id, 32))
    }
}

pub fn run_object(id: &str) -> String {
    format!("ferry-run-{}", run_key(id))
}

pub fn lease_object(id: &str) -> String {
    format!("ferry-lock-{}", run_key(id))
}

pub fn step_object(run: &str, kind: StepKind, name: &str) -> String {
    format!(
        "ferry-step-{}-{}",
        run_key(run),
        hash(&format!("{}\0{name}", kind.as_str()), 16)
    )
}

pub fn gate_object(run: &str, name: &str) -> String {
    format!("ferry-gate-{}-{}", run_key(run), hash(name, 16))
}

pub fn claim_object(key: &str) -> String {
    format!("ferry-claim-{}", hash(key, 32))
}

/// `app.kubernetes.io/managed-by=ferry,ferry.dev/kind=KIND[,ferry.dev/run=RUN]`
pub fn selector(kind: Option<&str>, run: Option<&str>) -> String {
    let mut out = format!("{MANAGED_BY}=ferry");
    if let Some(kind) = kind {
        out.push_str(&format!(",{KIND}={kind}"));
    }
    if let Some(run) = run {
        out.push_str(&format!(",{RUN}={}", run_label(run)));
    }
    out
}

/// Labels and annotations of an object of `kind` (`run`, `step`, ...).
pub fn meta(name: &str, namespace: &str, kind: &str, run: Option<&str>) -> ObjectMeta {
    let mut labels = BTreeMap::from([
        (MANAGED_BY.to_owned(), "ferry".to_owned()),
        (KIND.to_owned(), kind.to_owned()),
        (FORMAT_LABEL.to_owned(), FORMAT.to_string()),
    ]);
    let mut annotations = BTreeMap::new();
    if let Some(run) = run {
        labels.insert(RUN.to_owned(), run_label(run));
        annotations.insert(RUN_ID.to_owned(), run.to_owned());
    }
    ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        labels: Some(labels),
        annotations: (!annotations.is_empty()).then_some(annotations),
        ..Default::default()
    }
}

/// The data key each kind's record is kept under.
pub fn data_key(kind: &str) -> String {
    format!("{kind}.json")
}

#[derive(Serialize, Deserialize)]
struct RunRecord {
    id: String,
    script: PathBuf,
    script_hash: String,
    #[serde(default)]
    params: BTreeMap<String, String>,
    #[serde(default)]
    libs: Vec<PathBuf>,
    status: String,
    dry_run: bool,
    error: Option<String>,
    #[serde(default)]
    identities: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    environment: crate::environment::Environment,
    #[serde(default)]
    sources: BTreeMap<String, String>,
    #[serde(default)]
    actions: Vec<Action>,
    created_at: i64,
    updated_at: i64,
}

#[derive(Serialize, Deserialize)]
struct StepRecord {
    seq: i64,
    name: String,
    position: String,
    kind: String,
    parent: Option<String>,
    status: String,
    value: Option<serde_json::Value>,
    error: Option<String>,
    attempts: u32,
    started_at: Option<i64>,
    ended_at: Option<i64>,
    undo: String,
    undo_error: Option<String>,
    data: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct GateRecord {
    name: String,
    message: String,
    requested_at: i64,
    approved_at: Option<i64>,
    approved_by: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct ClaimRecord {
    key: String,
    run: String,
    claimed_at: i64,
}

pub fn encode_run(run: &Run) -> String {
    to_json(&RunRecord {
        id: run.id.clone(),
        script: run.script.clone(),
        script_hash: run.script_hash.clone(),
        params: run.params.clone(),
        libs: run.libs.clone(),
        status: run.status.as_str().to_owned(),
        dry_run: run.dry_run,
        error: run.error.clone(),
        identities: run.identities.clone(),
        environment: run.environment.clone(),
        sources: run.sources.clone(),
        actions: run.actions.clone(),
        created_at: run.created_at,
        updated_at: run.updated_at,
    })
}

pub fn encode_step(step: &Step, seq: i64) -> String {
    to_json(&StepRecord {
        seq,
        name: step.name.clone(),
        position: step.position.clone(),
        kind: step.kind.as_str().to_owned(),
        parent: step.parent.clone(),
        status: step.status.as_str().to_owned(),
        value: step.value.clone(),
        error: step.error.clone(),
        attempts: step.attempts,
        started_at: step.started_at,
        ended_at: step.ended_at,
        undo: step.undo.as_str().to_owned(),
        undo_error: step.undo_error.clone(),
        data: step.data.clone(),
    })
}

pub fn encode_gate(gate: &Gate) -> String {
    to_json(&GateRecord {
        name: gate.name.clone(),
        message: gate.message.clone(),
        requested_at: gate.requested_at,
        approved_at: gate.approved_at,
        approved_by: gate.approved_by.clone(),
    })
}

pub fn encode_claim(claim: &Claim) -> String {
    to_json(&ClaimRecord {
        key: claim.key.clone(),
        run: claim.run.clone(),
        claimed_at: claim.claimed_at,
    })
}

fn to_json<T: Serialize>(value: &T) -> String {
    // Records hold strings, numbers and JSON values only: serializing them
    // cannot fail.
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// A ConfigMap holding one record.
pub fn config_map(meta: ObjectMeta, kind: &str, record: String) -> ConfigMap {
    ConfigMap {
        metadata: meta,
        data: Some(BTreeMap::from([(data_key(kind), record)])),
        ..Default::default()
    }
}

/// Why an object labelled as ferry's cannot be read as a record.
pub enum Bad {
    /// Written by a newer ferry (format `found`).
    Newer(i64),
    /// Not a ferry record: what is wrong with it.
    Foreign(String),
}

impl Bad {
    /// The journal error for object `name` in `namespace`.
    pub fn into_error(self, namespace: &str, name: &str) -> JournalError {
        match self {
            Bad::Newer(found) => JournalError::NewerSchema {
                found,
                known: FORMAT,
            },
            Bad::Foreign(why) => JournalError::Conflict {
                message: format!(
                    "configmap {namespace}/{name} carries ferry's labels but is not a ferry \
                     record ({why}); delete it or move it aside"
                ),
            },
        }
    }
}

/// The record text of a ConfigMap of `kind`, once its format is checked.
pub fn record_text<'a>(cm: &'a ConfigMap, kind: &str) -> Result<&'a str, Bad> {
    let labels = cm.metadata.labels.as_ref();
    let format = labels
        .and_then(|l| l.get(FORMAT_LABEL))
        .ok_or_else(|| Bad::Foreign(format!("no {FORMAT_LABEL} label")))?;
    let format: i64 = format
        .parse()
        .map_err(|_| Bad::Foreign(format!("{FORMAT_LABEL}={format} is not a number")))?;
    if format > FORMAT {
        return Err(Bad::Newer(format));
    }
    let key = data_key(kind);
    cm.data
        .as_ref()
        .and_then(|d| d.get(&key))
        .map(String::as_str)
        .ok_or_else(|| Bad::Foreign(format!("no data key {key}")))
}

/// The exact run id an object belongs to (its annotation).
pub fn run_id_of(cm: &ConfigMap) -> Option<&str> {
    cm.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RUN_ID))
        .map(String::as_str)
}

/// Nesting depth of a JSON text (brackets outside strings), so a record too
/// deep to be ferry's is refused before the parser recurses into it.
fn depth(text: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Bad> {
    if depth(text) > MAX_RECORD_DEPTH {
        return Err(Bad::Foreign(format!(
            "nested deeper than {MAX_RECORD_DEPTH} levels"
        )));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    // Values may nest as deep as a step could return (checked above).
    de.disable_recursion_limit();
    let value = T::deserialize(&mut de).map_err(|e| Bad::Foreign(e.to_string()))?;
    de.end().map_err(|e| Bad::Foreign(e.to_string()))?;
    Ok(value)
}

fn enum_field<T>(field: &str, text: &str, parse: fn(&str) -> Option<T>) -> Result<T, Bad> {
    parse(text).ok_or_else(|| Bad::Foreign(format!("unknown {field} `{text}`")))
}

pub fn decode_run(cm: &ConfigMap) -> Result<Run, Bad> {
    let r: RunRecord = parse(record_text(cm, "run")?)?;
    Ok(Run {
        status: enum_field("status", &r.status, RunStatus::parse)?,
        id: r.id,
        script: r.script,
        script_hash: r.script_hash,
        params: r.params,
        libs: r.libs,
        dry_run: r.dry_run,
        error: r.error,
        identities: r.identities,
        environment: r.environment,
        sources: r.sources,
        actions: r.actions,
        created_at: r.created_at,
        updated_at: r.updated_at,
    })
}

pub fn decode_step(cm: &ConfigMap) -> Result<Step, Bad> {
    let s: StepRecord = parse(record_text(cm, "step")?)?;
    Ok(Step {
        seq: s.seq,
        kind: enum_field("kind", &s.kind, StepKind::parse)?,
        status: enum_field("status", &s.status, StepStatus::parse)?,
        undo: enum_field("undo", &s.undo, UndoStatus::parse)?,
        name: s.name,
        position: s.position,
        parent: s.parent,
        value: s.value,
        error: s.error,
        attempts: s.attempts,
        started_at: s.started_at,
        ended_at: s.ended_at,
        undo_error: s.undo_error,
        data: s.data,
    })
}

pub fn decode_gate(cm: &ConfigMap) -> Result<Gate, Bad> {
    let g: GateRecord = parse(record_text(cm, "gate")?)?;
    Ok(Gate {
        name: g.name,
        message: g.message,
        requested_at: g.requested_at,
        approved_at: g.approved_at,
        approved_by: g.approved_by,
    })
}

pub fn decode_claim(cm: &ConfigMap) -> Result<Claim, Bad> {
    let c: ClaimRecord = parse(record_text(cm, "claim")?)?;
    Ok(Claim {
        key: c.key,
        run: c.run,
        claimed_at: c.claimed_at,
    })
}

/// `1.2 MiB`, `950 KiB`: sizes in refusals.
pub fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else {
        format!("{} KiB", bytes.div_ceil(1024))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_safe_and_distinct() {
        assert_eq!(
            run_key("deploy-20260101-120000-ab12"),
            "deploy-20260101-120000-ab12"
        );
        let upper = run_key("Fleet_2026");
        assert!(upper.starts_with("fleet-2026-"), "{upper}");
        assert_ne!(run_key("Fleet_2026"), run_key("fleet_2026"));
        for id in ["a", "Fleet_2026", "-x", "ü", &"z".repeat(128)] {
            let name = step_object(id, StepKind::Step, "x/sleep#1");
            assert!(name.len() <= 253, "{name}");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'-'
                    || b == b'.'),
                "{name}"
            );
            let label = run_label(id);
            assert!(label.len() <= 63, "{label}");
        }
        assert_ne!(
            step_object("r", StepKind::Step, "a"),
            step_object("r", StepKind::Sleep, "a"),
            "a step and a timer of one name are two objects"
        );
        assert_eq!(run_label("r1"), "r1");
        assert!(run_label(&"a".repeat(64)).starts_with("h-"));
    }

    #[test]
    fn records_too_deep_are_refused_before_parsing() {
        let deep = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(
            parse::<serde_json::Value>(&deep),
            Err(Bad::Foreign(_))
        ));
        assert_eq!(
            depth(r#"{"a":"[[[[","b":[1]}"#),
            2,
            "brackets in strings do not count"
        );
        assert_eq!(size(2 << 20), "2.0 MiB");
        assert_eq!(size(1000), "1 KiB");
    }
}
