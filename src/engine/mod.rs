//! The Rhai host: builds an engine for a session, loads and compiles the
//! script, and holds what primitives share.
//!
//! Rhai is synchronous and ferry is async: the engine runs on its own thread
//! (see `runner`), and primitives that do I/O block on the tokio runtime
//! through the session's handle, never on a runtime worker.

pub mod cancel;
pub mod check;
pub mod control;
pub mod countdown;
pub mod diagnostic;
pub mod frames;
pub mod host_error;
pub mod ledger;
pub mod params;
pub mod resolver;
pub mod session;
pub mod stdlib;
pub mod value;

pub use cancel::Cancel;
pub use countdown::Countdown;
pub use session::{Mode, Session, SessionConfig};

use crate::error::{Error, Result};
use crate::events::Event;
use control::Control;
use params::Params;
use resolver::Resolver;
use rhai::{AST, Dynamic, Engine, Scope};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A migration script as loaded from disk.
pub struct Script {
    /// Absolute path.
    pub path: PathBuf,
    /// The path as the user would type it.
    pub display: String,
    /// Source label: positions in the journal are `label:line:col`. The file
    /// name, so they stay stable when the run is resumed from elsewhere.
    pub label: String,
    pub text: Arc<str>,
    /// Hex SHA-256 of the text.
    pub hash: String,
}

impl Script {
    /// The copy of a script a run recorded, standing in for `path` where
    /// that file does not exist.
    pub fn recorded(path: &Path, label: &str, text: &str) -> Script {
        let hash = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Script {
            path: path.to_owned(),
            display: format!("{} (recorded copy)", path.display()),
            label: label.to_owned(),
            text: text.into(),
            hash,
        }
    }

    pub fn load(path: &Path) -> Result<Script> {
        let read_err = |source| Error::ScriptRead {
            path: path.to_owned(),
            source,
        };
        // A run records the script's path for resume to read it again, so
        // a pipe or device (`/dev/stdin`) is refused before it is consumed.
        let meta = std::fs::metadata(path).map_err(read_err)?;
        if !meta.is_file() {
            return Err(Error::ScriptNotAFile {
                path: path.to_owned(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(read_err)?;
        let abs = path.canonicalize().map_err(read_err)?;
        let label = abs
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "script".into());
        let hash = Sha256::digest(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Script {
            display: resolver::display_path(&abs),
            path: abs,
            label,
            text: text.into(),
            hash,
        })
    }

    pub fn dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."))
    }
}

/// Library roots after the script's folder: `--lib` folders, then `FERRY_PATH`.
pub fn library_roots(libs: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut roots = Vec::new();
    for lib in libs {
        if !lib.is_dir() {
            return Err(Error::usage(format!(
                "--lib {}: not a directory",
                lib.display()
            )));
        }
        roots.push(lib.clone());
    }
    if let Some(path) = std::env::var_os("FERRY_PATH") {
        // Entries that do not exist are skipped, as PATH-like variables are.
        roots.extend(std::env::split_paths(&path).filter(|p| p.is_dir()));
    }
    Ok(roots)
}

/// Registers the functions scripts call on an engine wired to a session:
/// the engine knows nothing of the primitives themselves.
pub type Register = fn(&mut Engine, &Arc<Session>);

/// An engine wired to one session.
pub struct Host {
    pub engine: Engine,
    pub resolver: Resolver,
    pub session: Arc<Session>,
}

impl Host {
    /// Builds the engine: limits, output to the event stream, Ctrl-C through
    /// the progress hook, the module resolver and the primitives `register`
    /// adds.
    pub fn new(
        session: Arc<Session>,
        script: &Script,
        libs: &[PathBuf],
        register: Register,
    ) -> Host {
        session
            .sources
            .insert(&script.label, script.display.clone(), script.text.clone());
        let mut roots = vec![script.dir()];
        roots.extend(libs.iter().cloned());
        let resolver = Resolver::new(roots, &script.label, session.sources.clone());

        let mut engine = Engine::new();
        engine.set_strict_variables(true);
        // Generous: migrations loop over fleets and nest recipes, but a
        // runaway script should still stop rather than hang forever.
        engine.set_max_operations(50_000_000_000);
        engine.set_max_call_levels(256);
        engine.set_max_expr_depths(512, 256);
        engine.set_max_modules(10_000);
        // No data size limits: Rhai enforces them by measuring the whole value
        // after every operation that may grow it, which makes filling an
        // array quadratic (1M pushes did not finish in 30 s). Runaway scripts
        // still stop at the operation limit.
        engine.set_max_string_size(0);
        engine.set_max_array_size(0);
        engine.set_max_map_size(0);
        // Rhai's string interner evicts by scanning its whole cache for every
        // new string once full: a fleet's thousands of distinct step names
        // made it a tenth of a resume. Strings are allocated plainly instead.
        engine.set_max_strings_interned(0);

        let events = session.events.clone();
        engine.on_print(move |text| {
            events.emit(Event::Output {
                step: frames::current(),
                depth: frames::depth(),
                text: text.to_owned(),
                debug: false,
            })
        });
        let events = session.events.clone();
        engine.on_debug(move |text, _source, _pos| {
            events.emit(Event::Output {
                step: frames::current(),
                depth: frames::depth(),
                text: text.to_owned(),
                debug: true,
            })
        });
        let cancel = session.cancel.clone();
        engine.on_progress(move |_| {
            cancel
                .is_cancelled()
                .then(|| Dynamic::from(Control::Cancelled))
        });
        engine.set_module_resolver(resolver.clone());
        host_error::register(&mut engine);
        register(&mut engine, &session);
        Host {
            engine,
            resolver,
            session,
        }
    }

    /// The global scope scripts start with.
    pub fn scope(&self) -> Scope<'static> {
        let mut scope = Scope::new();
        scope.push_constant("params", Params(self.session.params.clone()));
        scope
    }

    /// Compiles the main script; errors are rendered with the source.
    pub fn compile(&self, script: &Script) -> Result<AST> {
        let mut ast = self
            .engine
            .compile_with_scope(&self.scope(), &*script.text)
            .map_err(|e| Error::Script {
                rendered: diagnostic::render_parse(&e, &script.label, &self.session.sources),
            })?;
        ast.set_source(script.label.as_str());
        Ok(ast)
    }

    /// Renders any error raised while running the script.
    pub fn render(&self, err: &rhai::EvalAltResult) -> String {
        diagnostic::render(err, &self.session.main_label, &self.session.sources)
    }
}
