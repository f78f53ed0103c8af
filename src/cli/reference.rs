//! `ferry check` and `ferry docs`: the engine without a run.

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

/// The reference, from the engine's own metadata, so it cannot drift from
/// what is registered.
pub fn docs(json: bool) -> Result<i32> {
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
    let documented = |fns: &serde_json::Value, prefix: &str| -> Vec<serde_json::Value> {
        fns.as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["docComments"].as_array().is_some_and(|d| !d.is_empty()))
            .map(|f| {
                let mut f = f.clone();
                if let Some(sig) = f["signature"].as_str() {
                    f["signature"] = format!("{prefix}{sig}").into();
                }
                f
            })
            .collect()
    };
    let mut functions = documented(&metadata["functions"], "");
    // Static modules (`probe::http`, ...) are listed under their path.
    if let Some(modules) = metadata["modules"].as_object() {
        for (name, module) in modules {
            functions.extend(documented(&module["functions"], &format!("{name}::")));
        }
    }

    let mut modules = Vec::new();
    for name in stdlib::names() {
        let text = stdlib::get(name).unwrap_or_default();
        let ast = host.engine.compile(text).map_err(|e| Error::Script {
            rendered: format!("stdlib ferry/{name}: {e}"),
        })?;
        let fns: Vec<serde_json::Value> = ast
            .iter_functions()
            // Closures compile to anonymous functions; they are not the module's API.
            .filter(|f| f.access == rhai::FnAccess::Public && !f.name.starts_with("anon$"))
            .map(|f| {
                serde_json::json!({
                    "name": f.name,
                    "params": f.params,
                    "comments": f.comments.iter().map(|c| strip_doc(c)).collect::<Vec<_>>().join("\n"),
                })
            })
            .collect();
        modules.push(serde_json::json!({ "module": format!("ferry/{name}"), "doc": strip_module_doc(ast.doc()), "functions": fns }));
    }

    if json {
        let out = serde_json::json!({ "functions": functions, "modules": modules });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(exit::SUCCEEDED);
    }
    let mut out = String::from(
        "# ferry script reference\n\nGenerated by `ferry docs` from the engine's registered functions and the embedded stdlib.\n\n## Primitives\n",
    );
    for f in &functions {
        let signature = f["signature"].as_str().unwrap_or_default();
        out.push_str(&format!("\n### `{signature}`\n\n"));
        let doc: Vec<String> = f["docComments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c.as_str())
            .map(strip_doc)
            .collect();
        out.push_str(&doc.join("\n"));
        out.push('\n');
    }
    out.push_str("\n## Stdlib modules\n");
    for m in &modules {
        out.push_str(&format!(
            "\n### `import \"{0}\"`\n\n{1}\n",
            m["module"].as_str().unwrap_or_default(),
            m["doc"].as_str().unwrap_or_default()
        ));
        for f in m["functions"].as_array().into_iter().flatten() {
            let params: Vec<&str> = f["params"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str())
                .collect();
            out.push_str(&format!(
                "\n#### `{}({})`\n\n{}\n",
                f["name"].as_str().unwrap_or_default(),
                params.join(", "),
                f["comments"].as_str().unwrap_or_default()
            ));
        }
    }
    print!("{out}");
    Ok(exit::SUCCEEDED)
}

/// `/// text` -> `text`
fn strip_doc(line: &str) -> String {
    let line = line.trim_start();
    let line = line.strip_prefix("///").unwrap_or(line);
    line.strip_prefix(' ').unwrap_or(line).to_owned()
}

fn strip_module_doc(doc: &str) -> String {
    doc.lines()
        .map(|l| {
            let l = l.trim_start();
            let l = l.strip_prefix("//!").unwrap_or(l);
            l.strip_prefix(' ').unwrap_or(l)
        })
        .collect::<Vec<_>>()
        .join("\n")
}
