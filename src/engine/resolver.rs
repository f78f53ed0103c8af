//! Where `import "..."` finds modules.
//!
//! * `ferry/<name>`: the stdlib embedded in the binary.
//! * anything else: relative to the importing file, then the script's folder,
//!   then each `--lib` folder and each `FERRY_PATH` entry, in order.
//!
//! An import can never leave those roots (`../../etc/x` or a symlink out is
//! refused), so a shared recipe folder cannot reach into arbitrary files.
//! Modules are compiled and evaluated once per process.

use super::diagnostic::Sources;
use super::stdlib;
use rhai::module_resolvers::ModuleResolver;
use rhai::{Engine, EvalAltResult, Module, Position, Scope};

type SharedModule = Arc<Module>;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, RwLock};

#[derive(Clone)]
pub struct Resolver(Arc<Inner>);

struct Inner {
    /// Index 0 is the script's folder; then `--lib` and `FERRY_PATH`.
    roots: Vec<PathBuf>,
    sources: Arc<Sources>,
    /// Where each loaded file sits: label -> (root index, folder inside the root).
    origins: RwLock<HashMap<String, (usize, PathBuf)>>,
    modules: RwLock<HashMap<String, SharedModule>>,
    main_label: String,
    /// Module texts the run recorded, by label: where a resume on another
    /// machine (or in a pod) finds no file at a module's place, the copy
    /// the run executed stands in for it.
    recorded: RwLock<HashMap<String, Arc<str>>>,
}

thread_local! {
    /// Labels of the modules this thread is loading, outermost first.
    static LOADING: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// One module being loaded on this thread; leaving drops it from the chain.
struct Loading;

impl Loading {
    /// Enters `label`, imported from `importer`; the cycle if it is already
    /// being loaded (or is the importing chain's start).
    fn enter(importer: &str, label: &str) -> Result<Loading, Vec<String>> {
        LOADING.with(|stack| {
            let mut stack = stack.borrow_mut();
            if stack.is_empty() {
                stack.push(importer.to_owned());
            }
            if let Some(start) = stack.iter().position(|l| l == label) {
                let mut cycle = stack[start..].to_vec();
                cycle.push(label.to_owned());
                if stack.len() == 1 {
                    stack.clear();
                }
                return Err(cycle);
            }
            stack.push(label.to_owned());
            Ok(Loading)
        })
    }
}

impl Drop for Loading {
    fn drop(&mut self) {
        LOADING.with(|stack| {
            let mut stack = stack.borrow_mut();
            stack.pop();
            if stack.len() == 1 {
                // Only the importing chain's start is left: the chain is done.
                stack.clear();
            }
        })
    }
}

/// A module file found for an import.
pub struct Found {
    pub label: String,
    pub display: String,
    pub text: Arc<str>,
    origin: Option<(usize, PathBuf)>,
}

impl Resolver {
    /// `roots[0]` is the main script's folder; `main_label` its source label.
    pub fn new(roots: Vec<PathBuf>, main_label: &str, sources: Arc<Sources>) -> Self {
        let roots = roots
            .into_iter()
            .map(|r| r.canonicalize().unwrap_or(r))
            .collect();
        let mut origins = HashMap::new();
        origins.insert(main_label.to_owned(), (0, PathBuf::new()));
        Resolver(Arc::new(Inner {
            roots,
            sources,
            origins: RwLock::new(origins),
            modules: RwLock::default(),
            main_label: main_label.to_owned(),
            recorded: RwLock::default(),
        }))
    }

    /// Lets the sources a run recorded stand in for module files missing here.
    pub fn fall_back_to(&self, recorded: &std::collections::BTreeMap<String, String>) {
        let mut map = self.0.recorded.write().unwrap_or_else(|p| p.into_inner());
        for (label, text) in recorded {
            if label != &self.0.main_label && !label.starts_with("ferry/") {
                map.insert(label.clone(), text.as_str().into());
            }
        }
    }

    fn recorded(&self, label: &str) -> Option<Arc<str>> {
        self.0
            .recorded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(label)
            .cloned()
    }

    pub fn roots(&self) -> &[PathBuf] {
        &self.0.roots
    }

    /// Finds the file `path` names when imported from `importer` (a source label).
    pub fn locate(&self, importer: Option<&str>, path: &str) -> Result<Found, String> {
        if let Some(name) = path.strip_prefix("ferry/") {
            return match stdlib::get(name) {
                Some(text) => Ok(Found {
                    label: path.to_owned(),
                    display: format!("<stdlib>/{name}.rhai"),
                    text: text.into(),
                    origin: None,
                }),
                None => Err(format!(
                    "no stdlib module `{path}`; the stdlib has: {}",
                    stdlib::names()
                        .map(|n| format!("ferry/{n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
        }
        let mut rel = PathBuf::from(path);
        if path.is_empty() || rel.is_absolute() {
            return Err(format!(
                "import `{path}`: use a path relative to the script, a --lib folder or FERRY_PATH, not an absolute one"
            ));
        }
        if rel.extension().is_none() {
            rel.set_extension("rhai");
        }
        let origin = importer.and_then(|label| {
            self.0
                .origins
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .get(label)
                .cloned()
        });
        let mut candidates: Vec<(usize, PathBuf)> = Vec::new();
        if let Some((root, dir)) = origin {
            candidates.push((root, dir.join(&rel)));
        }
        candidates.extend((0..self.0.roots.len()).map(|i| (i, rel.clone())));

        let mut escaped = false;
        for (root_index, candidate) in candidates {
            let Some(inside) = normalize(&candidate) else {
                escaped = true;
                continue;
            };
            let root = &self.0.roots[root_index];
            let full = root.join(&inside);
            let label_of = |inside: &Path| {
                let rel_label = inside.to_string_lossy().into_owned();
                if root_index == 0 {
                    rel_label
                } else {
                    format!("@lib{root_index}/{rel_label}")
                }
            };
            if !full.is_file() {
                let label = label_of(&inside);
                if let Some(text) = self.recorded(&label) {
                    let dir = inside.parent().map(Path::to_path_buf).unwrap_or_default();
                    return Ok(Found {
                        display: format!("{} (the copy the run recorded)", display_path(&full)),
                        label,
                        text,
                        origin: Some((root_index, dir)),
                    });
                }
                continue;
            }
            // A symlink must not lead out of the root either.
            match full.canonicalize() {
                Ok(real) if real.starts_with(root) => {}
                _ => {
                    escaped = true;
                    continue;
                }
            }
            let text = std::fs::read_to_string(&full)
                .map_err(|e| format!("cannot read module {}: {e}", full.display()))?;
            let label = label_of(&inside);
            let dir = inside.parent().map(Path::to_path_buf).unwrap_or_default();
            return Ok(Found {
                label,
                display: display_path(&full),
                text: text.into(),
                origin: Some((root_index, dir)),
            });
        }
        if escaped {
            return Err(format!(
                "import `{path}` leads outside the allowed folders (the script's folder, --lib folders and FERRY_PATH)"
            ));
        }
        Err(format!(
            "cannot find module `{path}`; looked in: {}",
            self.0
                .roots
                .iter()
                .map(|r| display_path(r))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }

    /// The text the module recorded under `label` has now (the stdlib built
    /// into this ferry, or the file under its root), if it can still be found.
    pub fn current_text(&self, label: &str) -> Option<String> {
        if let Some(name) = label.strip_prefix("ferry/") {
            return stdlib::get(name).map(str::to_owned);
        }
        let (root, rel) = match label.strip_prefix("@lib") {
            Some(rest) => {
                let (index, rel) = rest.split_once('/')?;
                (index.parse::<usize>().ok()?, rel)
            }
            None => (0, label),
        };
        let inside = normalize(Path::new(rel))?;
        let path = self.0.roots.get(root)?.join(inside);
        if !path.exists() {
            return self.recorded(label).map(|t| t.to_string());
        }
        std::fs::read_to_string(path).ok()
    }

    /// Compiles and evaluates the module `path` names, once per process.
    pub fn load(
        &self,
        engine: &Engine,
        importer: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        let found = self
            .locate(importer, path)
            .map_err(|message| super::control::runtime_error(message, pos))?;
        if let Some(module) = self
            .0
            .modules
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&found.label)
        {
            return Ok(module.clone());
        }
        self.0
            .sources
            .insert(&found.label, found.display.clone(), found.text.clone());
        if let Some(origin) = found.origin.clone() {
            self.0
                .origins
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(found.label.clone(), origin);
        }
        let in_module = |err: Box<EvalAltResult>| -> Box<EvalAltResult> {
            EvalAltResult::ErrorInModule(found.label.clone(), err, pos).into()
        };
        // A module that imports itself, directly or through others, would
        // recurse until the stack overflows: name the cycle instead.
        let _loading = match Loading::enter(importer.unwrap_or(&self.0.main_label), &found.label) {
            Ok(loading) => loading,
            Err(cycle) => {
                let chain: Vec<String> = cycle
                    .iter()
                    .map(|l| self.0.sources.display_label(l))
                    .collect();
                return Err(super::control::runtime_error(
                    format!("import cycle: {}", chain.join(" -> ")),
                    pos,
                ));
            }
        };
        let mut ast = engine.compile(&*found.text).map_err(|e| {
            in_module(EvalAltResult::ErrorParsing(e.err_type().clone(), e.position()).into())
        })?;
        ast.set_source(found.label.as_str());
        let module: SharedModule = Module::eval_ast_as_new(Scope::new(), &ast, engine)
            .map_err(in_module)?
            .into();
        self.0
            .modules
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(found.label.clone(), module.clone());
        Ok(module)
    }
}

impl ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        self.load(engine, source, path, pos)
    }
}

/// Resolves `.` and `..` lexically; `None` if the path climbs above its start.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// A path relative to the working directory when it is inside it.
pub fn display_path(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| {
            path.strip_prefix(cwd.canonicalize().unwrap_or(cwd))
                .ok()
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}
