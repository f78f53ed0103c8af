//! Where the journal lives, found the way git finds its repository.
//!
//! One setting chooses the backend: `--state` / `FERRY_STATE`, else the
//! `[state]` table of the nearest `ferry.toml` from the working directory
//! upwards, else `.ferry` beside that `ferry.toml` (or in the working
//! directory when there is none). So every command run anywhere inside a
//! team's migration repository reaches the same journal.
//!
//! ```toml
//! [state]
//! url = "postgres://ferry@db.internal:5432/ferry"   # or kubernetes://CONTEXT/NAMESPACE, or a path
//! ```

use crate::error::{Error, Result};
use crate::journal::{PostgresStore, SqliteStore, Store};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The journal backend a locator names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locator {
    /// A state directory holding `state.db` (a path, or `sqlite:PATH`).
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://` or `postgresql://` URL).
    Postgres(String),
    /// Objects in a namespace of a cluster (`kubernetes://CONTEXT/NAMESPACE`;
    /// an empty context is the current one, or the pod's own cluster).
    Kubernetes {
        context: Option<String>,
        namespace: String,
    },
}

impl Locator {
    /// Reads a locator; relative paths are taken from `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Locator> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::usage("the state is empty: give a path or a URL"));
        }
        let anchored = |p: &str| {
            let p = PathBuf::from(p);
            if p.is_absolute() { p } else { base.join(p) }
        };
        if let Some(path) = text.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            return Ok(Locator::Sqlite(anchored(path)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(Locator::Postgres(text.to_owned()));
        }
        if let Some(rest) = text.strip_prefix("kubernetes://") {
            let (context, namespace) = rest.split_once('/').ok_or_else(|| {
                Error::usage(format!(
                    "state `{text}`: give kubernetes://CONTEXT/NAMESPACE (an empty CONTEXT is the current one)"
                ))
            })?;
            let namespace = namespace.trim_end_matches('/');
            if !is_dns_label(namespace) {
                return Err(Error::usage(format!(
                    "state `{text}`: `{namespace}` is not a namespace name (lowercase letters, digits and '-', at most 63)"
                )));
            }
            return Ok(Locator::Kubernetes {
                context: (!context.is_empty()).then(|| context.to_owned()),
                namespace: namespace.to_owned(),
            });
        }
        if let Some((scheme, _)) = text.split_once("://") {
            return Err(Error::usage(format!(
                "state `{}`: unknown scheme `{scheme}://`; give a path, sqlite:PATH, postgres://… or kubernetes://CONTEXT/NAMESPACE",
                redact(text)
            )));
        }
        Ok(Locator::Sqlite(anchored(text)))
    }

    /// The locator for messages: a URL's password never shows.
    pub fn redacted(&self) -> String {
        match self {
            Locator::Sqlite(path) => path.display().to_string(),
            Locator::Postgres(url) => redact(url),
            Locator::Kubernetes { context, namespace } => {
                format!(
                    "kubernetes://{}/{namespace}",
                    context.as_deref().unwrap_or("")
                )
            }
        }
    }
}

/// `scheme://user:secret@host/…` → `scheme://user:***@host/…`, and
/// `password=…` query parameters alike.
pub fn redact(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest = &out[scheme_end + 3..];
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        if let Some(at) = rest[..authority_end].rfind('@')
            && let Some(colon) = rest[..at].find(':')
        {
            let start = scheme_end + 3 + colon + 1;
            out.replace_range(start..scheme_end + 3 + at, "***");
        }
    }
    if let Some(query) = out.find('?') {
        let (head, tail) = out.split_at(query + 1);
        let redacted: Vec<String> = tail
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                _ => pair.to_owned(),
            })
            .collect();
        out = format!("{head}{}", redacted.join("&"));
    }
    out
}

fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// The state a command uses, and how it was chosen.
#[derive(Debug, Clone)]
pub struct StateChoice {
    pub locator: Locator,
    /// `--state`, `ferry.toml at PATH`, or `default`: `ferry status` says it.
    pub origin: String,
    /// The nearest `ferry.toml` upwards from the working directory.
    pub profile: Option<PathBuf>,
    /// A local folder for what never leaves this machine (a lab's files):
    /// the SQLite state directory, or `.ferry` beside the `ferry.toml`.
    pub work_dir: PathBuf,
}

/// The nearest `ferry.toml` in `dir` or a folder above it.
pub fn find_profile(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .map(|d| d.join("ferry.toml"))
        .find(|p| p.is_file())
}

impl StateChoice {
    /// Works the state out from `--state`/`FERRY_STATE` (`given`) and the
    /// `ferry.toml` found upwards from `cwd`.
    pub fn find(given: Option<&str>, cwd: &Path) -> Result<StateChoice> {
        let profile = find_profile(cwd);
        let root = profile
            .as_deref()
            .and_then(Path::parent)
            .unwrap_or(cwd)
            .to_path_buf();
        let local = root.join(".ferry");
        let (locator, origin) = match given {
            Some(text) => (Locator::parse(text, cwd)?, "--state".to_owned()),
            None => match profile.as_deref().map(profile_state).transpose()?.flatten() {
                Some(url) => (
                    Locator::parse(&url, &root)?,
                    format!("[state] of {}", profile.as_deref().unwrap_or(cwd).display()),
                ),
                None => (
                    Locator::Sqlite(local.clone()),
                    match &profile {
                        Some(p) => format!("beside {}", p.display()),
                        None => "default".to_owned(),
                    },
                ),
            },
        };
        let work_dir = match &locator {
            Locator::Sqlite(dir) => dir.clone(),
            _ => local,
        };
        Ok(StateChoice {
            locator,
            origin,
            profile,
            work_dir,
        })
    }

    /// Opens the store; `reading` opens a SQLite state this user cannot
    /// write read-only (status, runs, log).
    pub fn open(&self, settings: &OpenSettings, reading: bool) -> Result<Arc<dyn Store>> {
        open(&self.locator, settings, reading)
    }
}

/// What the Kubernetes backend needs beside its locator.
#[derive(Debug, Clone, Default)]
pub struct OpenSettings {
    pub kubeconfig: Option<PathBuf>,
}

/// Opens the store a locator names.
pub fn open(locator: &Locator, settings: &OpenSettings, reading: bool) -> Result<Arc<dyn Store>> {
    match locator {
        Locator::Sqlite(dir) => Ok(if reading {
            Arc::new(SqliteStore::open_for_reading(dir)?)
        } else {
            Arc::new(SqliteStore::open(dir)?)
        }),
        Locator::Postgres(url) => Ok(Arc::new(PostgresStore::open(url)?)),
        Locator::Kubernetes { context, namespace } => {
            Ok(Arc::new(crate::journal::KubernetesStore::open(
                context.as_deref(),
                namespace,
                settings.kubeconfig.as_deref(),
            )?))
        }
    }
}

/// The `url` of a `ferry.toml`'s `[state]` table, if it has one.
fn profile_state(path: &Path) -> Result<Option<String>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        action: "read",
        path: path.to_owned(),
        source,
    })?;
    let table: toml::Table = toml::from_str(&text)
        .map_err(|e| Error::usage(format!("{}: {}", path.display(), e.to_string().trim())))?;
    let Some(state) = table.get("state") else {
        return Ok(None);
    };
    let bad = || {
        Error::usage(format!(
            "{}: [state] takes one key, url = \"PATH | sqlite:PATH | postgres://… | kubernetes://CONTEXT/NAMESPACE\"",
            path.display()
        ))
    };
    let state = state.as_table().ok_or_else(bad)?;
    if state.keys().any(|k| k != "url") {
        return Err(bad());
    }
    match state.get("url") {
        Some(toml::Value::String(url)) => Ok(Some(url.clone())),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locators_parse_and_redact() {
        let base = Path::new("/repo");
        assert_eq!(
            Locator::parse("state", base).unwrap(),
            Locator::Sqlite("/repo/state".into())
        );
        assert_eq!(
            Locator::parse("sqlite:/tmp/s", base).unwrap(),
            Locator::Sqlite("/tmp/s".into())
        );
        assert_eq!(
            Locator::parse("kubernetes://prod/ferry", base).unwrap(),
            Locator::Kubernetes {
                context: Some("prod".into()),
                namespace: "ferry".into()
            }
        );
        assert_eq!(
            Locator::parse("kubernetes:///ferry", base).unwrap(),
            Locator::Kubernetes {
                context: None,
                namespace: "ferry".into()
            }
        );
        assert!(Locator::parse("kubernetes://prod", base).is_err());
        assert!(Locator::parse("kubernetes://prod/Bad_NS", base).is_err());
        let err = Locator::parse("mysql://u:hunter2@h/db", base).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert_eq!(
            redact("postgres://ferry:hunter2@db:5432/ferry?sslmode=require&password=x"),
            "postgres://ferry:***@db:5432/ferry?sslmode=require&password=***"
        );
        assert_eq!(
            redact("postgres://ferry@db/ferry"),
            "postgres://ferry@db/ferry"
        );
    }
}
