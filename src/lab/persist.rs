//! Lab state that survives a restart: a JSON snapshot plus an append-only
//! log of changes since, replayed on open and then compacted. Appends are
//! one `write` each and not fsync'd: a lab killed with its ferry run (`kill
//! -9`) loses nothing the kernel already has, which is what a resumed run
//! needs; a torn last line is skipped.
//!
//! An append that fails (a full disk) is an error the caller must turn into
//! a failed request before it changes anything, as etcd refuses a write it
//! cannot persist: a lab that answered "ok" and forgot would resume runs
//! against a world that never was. A partly written line is cut off again,
//! so the next append starts on a line of its own.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Mutex;

/// Keyed JSON entries and the version of their last change.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
pub struct Table {
    #[serde(rename = "rv")]
    pub version: u64,
    #[serde(rename = "objects")]
    pub entries: BTreeMap<String, Value>,
}

/// One logged change.
#[derive(Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Entry {
    Put { key: String, rv: u64, object: Value },
    Del { key: String, rv: u64 },
}

/// Where a table's changes are appended; `None` keeps it in memory only.
#[derive(Default)]
pub struct ChangeLog(Mutex<Option<std::fs::File>>);

impl ChangeLog {
    /// Loads `dir/<name>.json` + `dir/<name>.log`, writes a fresh snapshot and
    /// starts an empty log.
    pub fn open(dir: Option<&Path>, name: &str) -> std::io::Result<(Table, ChangeLog)> {
        let Some(dir) = dir else {
            return Ok((Table::default(), ChangeLog::default()));
        };
        std::fs::create_dir_all(dir)?;
        let snapshot = dir.join(format!("{name}.json"));
        let log = dir.join(format!("{name}.log"));
        let table = load(&snapshot, &log)?;
        let tmp = snapshot.with_extension("json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec(&table).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(tmp, &snapshot)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&log)?;
        Ok((table, ChangeLog(Mutex::new(Some(file)))))
    }

    /// A log appending to `file` (tests: `/dev/full` stands for a full disk).
    pub fn writing_to(file: std::fs::File) -> ChangeLog {
        ChangeLog(Mutex::new(Some(file)))
    }

    pub fn put(&self, key: &str, version: u64, object: &Value) -> std::io::Result<()> {
        self.append(&Entry::Put {
            key: key.to_owned(),
            rv: version,
            object: object.clone(),
        })
    }

    pub fn delete(&self, key: &str, version: u64) -> std::io::Result<()> {
        self.append(&Entry::Del {
            key: key.to_owned(),
            rv: version,
        })
    }

    fn append(&self, entry: &Entry) -> std::io::Result<()> {
        self.append_all(std::slice::from_ref(entry))
    }

    /// Appends several changes in one write: a batch that must apply
    /// together is persisted together, or not at all.
    pub fn append_all(&self, entries: &[Entry]) -> std::io::Result<()> {
        let mut file = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let Some(file) = file.as_mut() else {
            return Ok(());
        };
        let mut line = Vec::new();
        for entry in entries {
            line.extend(serde_json::to_vec(entry).map_err(std::io::Error::other)?);
            line.push(b'\n');
        }
        let before = file.metadata().map(|m| m.len()).ok();
        file.write_all(&line).inspect_err(|_| {
            // Best effort: cut a torn line off so later appends stay whole.
            if let Some(len) = before {
                let _ = file.set_len(len);
            }
        })
    }
}

/// Reads `dir/<name>.json` + `dir/<name>.log` as they stand, writing
/// nothing: safe while a lab serves them (`ferry lab status`).
pub fn read(dir: &Path, name: &str) -> std::io::Result<Table> {
    load(
        &dir.join(format!("{name}.json")),
        &dir.join(format!("{name}.log")),
    )
}

fn load(snapshot: &Path, log: &Path) -> std::io::Result<Table> {
    let mut table: Table = match std::fs::read(snapshot) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Table::default(),
        Err(e) => return Err(e),
    };
    if let Ok(file) = std::fs::File::open(log) {
        for line in std::io::BufReader::new(file).lines() {
            let Ok(entry) = serde_json::from_str::<Entry>(&line?) else {
                continue;
            };
            match entry {
                Entry::Put { key, rv, object } => {
                    table.entries.insert(key, object);
                    table.version = table.version.max(rv);
                }
                Entry::Del { key, rv } => {
                    table.entries.remove(&key);
                    table.version = table.version.max(rv);
                }
            }
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_journal_replays_after_a_restart_and_skips_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (table, journal) = ChangeLog::open(Some(dir.path()), "t").unwrap();
            assert!(table.entries.is_empty());
            journal.put("a", 1, &json!({ "v": 1 })).unwrap();
            journal.put("b", 2, &json!({ "v": 2 })).unwrap();
            journal.delete("a", 3).unwrap();
        }
        std::fs::OpenOptions::new()
            .append(true)
            .open(dir.path().join("t.log"))
            .unwrap()
            .write_all(b"{\"op\":\"put\",\"ke")
            .unwrap();
        let (table, _) = ChangeLog::open(Some(dir.path()), "t").unwrap();
        assert_eq!(table.version, 3);
        assert_eq!(table.entries.keys().collect::<Vec<_>>(), ["b"]);
        let (again, _) = ChangeLog::open(Some(dir.path()), "t").unwrap();
        assert_eq!(
            again.entries, table.entries,
            "the compacted snapshot holds the same state"
        );
    }

    #[test]
    fn an_append_the_disk_refuses_is_an_error() {
        // /dev/full answers every write with ENOSPC, as a full disk does.
        let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") else {
            return;
        };
        let journal = ChangeLog::writing_to(full);
        let err = journal.put("a", 1, &json!({ "v": 1 })).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
        assert!(journal.delete("a", 2).is_err());
        assert!(
            ChangeLog::default().put("a", 1, &json!(1)).is_ok(),
            "in memory only"
        );
    }
}
