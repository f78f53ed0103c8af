//! `ferry check` and `ferry docs`: the engine without a run.
//!
//! The reference is read from the engine's own metadata and the embedded
//! stdlib, so it cannot drift from what is registered; what Rhai registers
//! without docs (getters, indexers, `to_string`) and what is not a
//! registered function at all (`print`, `debug`, the `params` constant) is
//! documented in [`BUILTINS`], and a unit test fails on any registered
//! function the reference lacks. Rhai keeps functions in hash maps, so
//! everything is sorted before it is printed: two runs print the same bytes.

use crate::engine::diagnostic::Sources;
use crate::engine::session::Mode;
use crate::engine::{Host, Script, Session, SessionConfig, check, library_roots, stdlib};
use crate::error::{Error, Result, exit};
use crate::events::{Events, NullSink};
use crate::journal::MemoryStore;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// An engine with every primitive registered and nothing behind it.
fn offline_host(script: &Script, libs: &[PathBuf], rt: &tokio::runtime::Runtime) -> Result<Host> {
    let session = Session::new(SessionConfig {
        run_id: "check".into(),
        mode: Mode::Check,
        store: Arc::new(MemoryStore::new()),
        events: Events::new("check", Arc::new(NullSink)),
        cancel: Default::default(),
        rt: rt.handle().clone(),
        sources: Arc::new(Sources::default()),
        main_label: script.label.clone(),
        params: BTreeMap::new(),
        replay: Default::default(),
        settings: Default::default(),
        identities: Default::default(),
        records: None,
        plan: None,
        backends: crate::adapters::real(),
    })?;
    Ok(Host::new(
        Arc::new(session),
        script,
        libs,
        crate::primitives::register,
    ))
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::usage(format!("cannot start the async runtime: {e}")))
}

pub fn check(scripts: &[PathBuf], libs: &[PathBuf], quiet: bool) -> Result<i32> {
    let libs = library_roots(libs)?;
    let rt = runtime()?;
    let mut failed = 0;
    for path in scripts {
        let problems = match Script::load(path) {
            Err(e) => vec![format!("error: {e}")],
            Ok(script) => {
                let host = offline_host(&script, &libs, &rt)?;
                match host.compile(&script) {
                    Err(e) => vec![e.to_string()],
                    Ok(ast) => {
                        let analysis = check::analyze(&host, &ast, &script.label);
                        if analysis.findings.is_empty() && !quiet {
                            let needs = if analysis.required_params.is_empty() {
                                String::new()
                            } else {
                                format!(" (needs --set {})", analysis.required_params.join(", "))
                            };
                            println!("✔ {}{needs}", script.display);
                        }
                        analysis.findings
                    }
                }
            }
        };
        if !problems.is_empty() {
            failed += 1;
            eprintln!("✖ {}", path.display());
            for problem in problems {
                eprintln!("{problem}\n");
            }
        }
    }
    Ok(if failed == 0 {
        exit::SUCCEEDED
    } else {
        exit::USAGE
    })
}

/// One documented function: a primitive, a built-in or a stdlib function.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Entry {
    /// `probe` for `probe::http`, `ferry/names` for a stdlib function, else empty.
    pub module: String,
    pub name: String,
    pub arity: usize,
    /// The type of the first parameter (`DnsZone`, `i64`), which tells
    /// overloads and methods of different types apart (the signature shows it).
    #[serde(skip)]
    pub receiver: String,
    /// How a script writes it: `step(name: &str, body: FnPtr) -> Dynamic`, `zone.origin -> String`.
    pub signature: String,
    /// Markdown, without comment markers.
    pub doc: String,
}

/// A stdlib module: its overview and its public functions.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModuleDoc {
    pub module: String,
    pub doc: String,
    pub functions: Vec<Entry>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Reference {
    pub functions: Vec<Entry>,
    pub modules: Vec<ModuleDoc>,
}

/// What the engine provides without doc comments of its own: Rhai's
/// `print`/`debug` (routed to the run's output), the `params` constant,
/// and getters, indexers and `to_string`s, which Rhai registers without
/// metadata docs. Keyed by the metadata name and the receiver type.
const BUILTINS: &[Builtin] = &[
    (
        "print",
        "",
        "print(value)",
        "Prints `value` under the current step: a line in the run's output (and an \
         `output` event with `--json`). Clusters, zones and `params` print their label.",
    ),
    (
        "debug",
        "",
        "debug(value)",
        "Like `print`, shown only with `-v` (`output` events with `debug: true`), \
         values in their debug form.",
    ),
    (
        "params",
        "",
        "params",
        "The run's `--set KEY=VALUE` values, read-only (a `Params`): `params.KEY` or \
         `params[\"KEY\"]` is the value (a string; an error naming `--set KEY=...` when \
         it is not set), `params.get`, `params.has`, `params.require` and `params.to_map` \
         below. A resume uses the values the run started with.",
    ),
    (
        "index$get$",
        "Params",
        "params.KEY / params[\"KEY\"] -> String",
        "The value of `--set KEY=VALUE`; an error naming `--set KEY=...` when it is not set.",
    ),
    (
        "get$origin",
        "DnsZone",
        "zone.origin -> String",
        "The zone's origin, fully qualified (`mycompany.internal.`): relative record \
         names are under it.",
    ),
    (
        "index$get$",
        "HostError",
        "error.FIELD / error[\"FIELD\"] -> Dynamic",
        "A field of a failure caught with `try`/`catch` (`message`, `source` such as \
         `cluster`, `dns` or `probe`, `status`, `reason`, ...); `()` when it does not carry it.",
    ),
    (
        "contains",
        "HostError",
        "\"FIELD\" in error -> bool",
        "Whether a caught failure carries the field (`\"status\" in e`).",
    ),
    (
        "to_map",
        "HostError",
        "to_map(error: HostError) -> Map",
        "A caught failure's fields as a plain map, to keep or return from a step.",
    ),
    (
        "to_string",
        "HostError",
        "to_string(error: HostError) -> String",
        "A caught failure's message, as `print(e)` and `${e}` show it.",
    ),
    (
        "to_debug",
        "HostError",
        "to_debug(error: HostError) -> String",
        "Every field of a caught failure, for `debug(e)`.",
    ),
    (
        "to_string",
        "Cluster",
        "to_string(cluster: Cluster) -> String",
        "The cluster's label (its name in the environment profile), as `print(cluster)` \
         and `${cluster}` show it.",
    ),
    (
        "to_debug",
        "Cluster",
        "to_debug(cluster: Cluster) -> String",
        "Like `to_string`, for `debug(cluster)`.",
    ),
    (
        "sleep",
        "i64",
        "sleep(seconds: i64)",
        "`sleep(seconds: f64)` for a whole number of seconds.",
    ),
    (
        "to_string",
        "Params",
        "to_string(params: Params) -> String",
        "Every parameter and its value, as `print(params)` shows them.",
    ),
    (
        "to_debug",
        "Params",
        "to_debug(params: Params) -> String",
        "Like `to_string`, for `debug(params)`.",
    ),
    (
        "to_string",
        "DnsZone",
        "to_string(zone: DnsZone) -> String",
        "The zone's label (its name in the environment profile), as `print(zone)` \
         and `${zone}` show it.",
    ),
    (
        "to_debug",
        "DnsZone",
        "to_debug(zone: DnsZone) -> String",
        "Like `to_string`, for `debug(zone)`.",
    ),
];

type Builtin = (&'static str, &'static str, &'static str, &'static str);

/// The built-in entry for a function the metadata lists without docs.
fn builtin(name: &str, receiver: &str) -> Option<&'static Builtin> {
    BUILTINS
        .iter()
        .find(|(n, r, _, _)| *n == name && !r.is_empty() && *r == receiver)
}

/// Rhai's types as a script author reads them (`&mut DnsZone` -> `DnsZone`).
fn receiver_of(f: &serde_json::Value) -> String {
    f["params"][0]["type"]
        .as_str()
        .unwrap_or_default()
        .trim_start_matches("&mut ")
        .to_owned()
}

/// Builds the reference from the engine's metadata and the embedded stdlib,
/// so it cannot drift from what is registered. Every list is sorted (module,
/// name, arity, signature): the output is the same on every run, whatever
/// order Rhai's hash maps hold functions in.
pub fn reference() -> Result<Reference> {
    let rt = runtime()?;
    let placeholder = Script {
        path: PathBuf::from("docs.rhai"),
        display: "docs.rhai".into(),
        label: "docs.rhai".into(),
        text: "".into(),
        hash: String::new(),
    };
    let host = offline_host(&placeholder, &[], &rt)?;
    let metadata: serde_json::Value = host
        .engine
        .gen_fn_metadata_to_json(false)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();

    let mut functions: Vec<Entry> = BUILTINS
        .iter()
        .filter(|(_, receiver, _, _)| receiver.is_empty())
        .map(|(name, _, signature, doc)| Entry {
            module: String::new(),
            name: (*name).to_owned(),
            arity: usize::from(*name != "params"),
            receiver: String::new(),
            signature: (*signature).to_owned(),
            doc: (*doc).to_owned(),
        })
        .collect();
    let mut registered = |fns: &serde_json::Value, module: &str| {
        for f in fns.as_array().into_iter().flatten() {
            let name = f["name"].as_str().unwrap_or_default();
            let arity = f["numParams"].as_u64().unwrap_or(0) as usize;
            let receiver = receiver_of(f);
            let comments: Vec<&str> = f["docComments"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str())
                .collect();
            let entry = if comments.is_empty() {
                // A registration without docs: documented here, or a test fails.
                let Some((_, _, signature, doc)) = builtin(name, &receiver) else {
                    continue;
                };
                Entry {
                    module: module.to_owned(),
                    name: name.to_owned(),
                    arity,
                    receiver,
                    signature: (*signature).to_owned(),
                    doc: (*doc).to_owned(),
                }
            } else {
                let signature = f["signature"].as_str().unwrap_or(name);
                Entry {
                    module: module.to_owned(),
                    name: name.to_owned(),
                    arity,
                    receiver,
                    signature: if module.is_empty() {
                        signature.to_owned()
                    } else {
                        format!("{module}::{signature}")
                    },
                    doc: render_doc(&comments),
                }
            };
            functions.push(entry);
        }
    };
    registered(&metadata["functions"], "");
    // Static modules (`probe::http`, ...) are listed under their path.
    if let Some(modules) = metadata["modules"].as_object() {
        for (name, module) in modules {
            registered(&module["functions"], name);
        }
    }
    sort(&mut functions);

    let mut modules = Vec::new();
    for name in stdlib::names() {
        let text = stdlib::get(name).unwrap_or_default();
        let ast = host.engine.compile(text).map_err(|e| Error::Script {
            rendered: format!("stdlib ferry/{name}: {e}"),
        })?;
        let module = format!("ferry/{name}");
        let mut fns: Vec<Entry> = ast
            .iter_functions()
            // `private fn` helpers are not API; closures compile to anonymous functions.
            .filter(|f| f.access == rhai::FnAccess::Public && !f.name.starts_with("anon$"))
            .map(|f| Entry {
                module: module.clone(),
                name: f.name.to_owned(),
                arity: f.params.len(),
                receiver: String::new(),
                signature: format!("{}({})", f.name, f.params.join(", ")),
                doc: render_doc(&f.comments),
            })
            .collect();
        sort(&mut fns);
        modules.push(ModuleDoc {
            doc: render_doc(&[ast.doc()]),
            module,
            functions: fns,
        });
    }
    modules.sort_by(|a, b| a.module.cmp(&b.module));
    Ok(Reference { functions, modules })
}

fn sort(entries: &mut [Entry]) {
    entries.sort_by(|a, b| {
        (&a.module, &a.name, a.arity, &a.receiver, &a.signature).cmp(&(
            &b.module,
            &b.name,
            b.arity,
            &b.receiver,
            &b.signature,
        ))
    });
}

/// `ferry docs`: the reference as Markdown, or JSON with `--json`.
pub fn docs(json: bool) -> Result<i32> {
    let reference = reference()?;
    let out = if json {
        let mut text = serde_json::to_string_pretty(&reference).unwrap_or_default();
        text.push('\n');
        text
    } else {
        markdown(&reference)
    };
    crate::cli::output::emit(&out)?;
    Ok(exit::SUCCEEDED)
}

pub fn markdown(reference: &Reference) -> String {
    let mut out = String::from(
        "# ferry script reference\n\nGenerated by `ferry docs` from the engine's registered functions and the embedded stdlib.\n\n## Primitives\n",
    );
    for f in &reference.functions {
        out.push_str(&format!("\n### `{}`\n\n{}\n", f.signature, f.doc));
    }
    out.push_str("\n## Stdlib modules\n");
    for m in &reference.modules {
        out.push_str(&format!("\n### `import \"{}\"`\n\n{}\n", m.module, m.doc));
        for f in &m.functions {
            out.push_str(&format!("\n#### `{}`\n\n{}\n", f.signature, f.doc));
        }
    }
    out
}

/// Doc comments (each possibly several lines) as Markdown: `///`, `//!`,
/// `/** */` markers and the one space after them removed, blank edges trimmed.
fn render_doc<S: AsRef<str>>(comments: &[S]) -> String {
    let mut lines: Vec<String> = Vec::new();
    for comment in comments {
        for line in comment.as_ref().lines() {
            let line = line.trim_start();
            let text = if let Some(rest) = line
                .strip_prefix("///")
                .or_else(|| line.strip_prefix("//!"))
            {
                rest
            } else if let Some(rest) = line
                .strip_prefix("/**")
                .or_else(|| line.strip_prefix("/*!"))
            {
                rest.trim_end().strip_suffix("*/").unwrap_or(rest)
            } else if let Some(rest) = line.strip_suffix("*/") {
                rest.trim_start().strip_prefix('*').unwrap_or(rest)
            } else if let Some(rest) = line.strip_prefix('*') {
                rest
            } else {
                line
            };
            lines.push(text.strip_prefix(' ').unwrap_or(text).trim_end().to_owned());
        }
    }
    while lines.first().is_some_and(|l| l.is_empty()) {
        lines.remove(0);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_markers_are_removed_from_every_line() {
        assert_eq!(
            render_doc(&["/// one\n/// two\n///\n/// ```rhai"]),
            "one\ntwo\n\n```rhai"
        );
        assert_eq!(
            render_doc(&["//! overview\n//!   indented"]),
            "overview\n  indented"
        );
        assert_eq!(render_doc(&["/** block\n * body\n */"]), "block\nbody");
    }

    #[test]
    fn every_registered_function_is_documented() {
        let rt = runtime().unwrap();
        let placeholder = Script {
            path: PathBuf::from("docs.rhai"),
            display: "docs.rhai".into(),
            label: "docs.rhai".into(),
            text: "".into(),
            hash: String::new(),
        };
        let host = offline_host(&placeholder, &[], &rt).unwrap();
        let metadata: serde_json::Value =
            serde_json::from_str(&host.engine.gen_fn_metadata_to_json(false).unwrap()).unwrap();
        let reference = reference().unwrap();
        let mut all: Vec<(String, serde_json::Value)> = metadata["functions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (String::new(), f.clone()))
            .collect();
        for (name, module) in metadata["modules"].as_object().unwrap() {
            for f in module["functions"].as_array().unwrap() {
                all.push((name.clone(), f.clone()));
            }
        }
        let undocumented: Vec<String> = all
            .iter()
            .filter(|(module, f)| {
                !reference.functions.iter().any(|e| {
                    &e.module == module
                        && e.name == f["name"].as_str().unwrap()
                        && e.arity == f["numParams"].as_u64().unwrap() as usize
                        && e.receiver == receiver_of(f)
                        && !e.doc.is_empty()
                })
            })
            .map(|(module, f)| format!("{module}::{} ({})", f["name"], f["signature"]))
            .collect();
        assert!(undocumented.is_empty(), "undocumented: {undocumented:#?}");
    }
}
