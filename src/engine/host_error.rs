//! Failures of the world (API servers, DNS servers, probes) as a script
//! catches them: an opaque `HostError`, not a map, so a script's own
//! `throw #{ source: "cluster" }` can never pass for one. Scripts read it
//! like a map (`e.message`, `e.source`, `e.status`, `e.reason`, ...: Rhai
//! falls back to the indexer for property access), print it (its message),
//! test `"status" in e`, and take `e.to_map()` to keep or journal it.

use rhai::{Dynamic, Engine, Map};

#[derive(Debug, Clone)]
pub struct HostError {
    fields: Map,
}

impl HostError {
    /// `message` and `source` (e.g. "cluster", "dns", "probe") beside the details.
    pub fn new(source: &str, message: String, details: Map) -> Self {
        let mut fields = details;
        fields.insert("message".into(), Dynamic::from(message));
        fields.insert("source".into(), Dynamic::from(source.to_owned()));
        HostError { fields }
    }

    /// The host failure an error carries, looking through module and call
    /// wrappers; `None` for a script's own error.
    pub fn of(err: &rhai::EvalAltResult) -> Option<HostError> {
        match err {
            rhai::EvalAltResult::ErrorRuntime(value, _) => value.clone().try_cast::<HostError>(),
            rhai::EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
            | rhai::EvalAltResult::ErrorInModule(_, inner, _) => HostError::of(inner),
            _ => None,
        }
    }

    /// A field as text (`verb`, `kind`, ...), if the failure carries it.
    pub fn field(&self, key: &str) -> Option<String> {
        self.fields
            .get(key)
            .filter(|v| !v.is_unit())
            .map(|v| v.to_string())
    }

    /// Whether it failed opening a target (a kubeconfig context or DNS zone
    /// that is not there): a configuration error, not the world failing.
    pub fn is_open(&self) -> bool {
        self.field("verb").as_deref() == Some("open")
    }

    pub fn message(&self) -> String {
        self.fields
            .get("message")
            .map(|m| m.to_string())
            .unwrap_or_default()
    }

    /// Its fields as a plain map (what a step journals if it returns one).
    pub fn to_map(&self) -> Map {
        self.fields.clone()
    }
}

pub fn register(engine: &mut Engine) {
    engine
        .register_type_with_name::<HostError>("HostError")
        // A field the failure does not carry reads as `()`, as a map's would.
        .register_indexer_get(|e: &mut HostError, key: &str| {
            e.fields.get(key).cloned().unwrap_or(Dynamic::UNIT)
        })
        .register_fn("contains", |e: &mut HostError, key: &str| {
            e.fields.contains_key(key)
        })
        .register_fn("to_map", |e: &mut HostError| e.to_map())
        .register_fn("to_string", |e: &mut HostError| e.message())
        .register_fn("to_debug", |e: &mut HostError| {
            format!("HostError({})", Dynamic::from_map(e.fields.clone()))
        });
}
