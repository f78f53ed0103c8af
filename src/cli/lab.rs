//! `ferry lab up` and `ferry lab reset`.

use super::LabCommand;
use crate::error::{Error, Result, exit};
use crate::lab::seed::App;
use crate::lab::{Lab, LabOptions, served_environment};
use std::path::{Path, PathBuf};

pub fn run(command: LabCommand, state_dir: &Path, quiet: bool) -> Result<i32> {
    match command {
        LabCommand::Up { dir, apps } => {
            up(dir.unwrap_or_else(|| state_dir.join("lab")), &apps, quiet)
        }
        LabCommand::Reset { dir } => reset(&dir.unwrap_or_else(|| state_dir.join("lab"))),
    }
}

fn up(dir: PathBuf, apps: &str, quiet: bool) -> Result<i32> {
    let apps = App::parse_list(apps).map_err(|e| Error::usage(format!("--apps: {e}")))?;
    if served_environment(&dir).is_some() {
        return Err(Error::usage(format!(
            "a lab is already running in {}",
            dir.display()
        )));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::usage(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async {
        let mut options = LabOptions::new(&dir);
        options.apps = apps;
        let started = std::time::Instant::now();
        let lab = Lab::start(options).await.map_err(|e| Error::usage(format!("cannot start the lab in {}: {e}", dir.display())))?;
        let env = lab.environment();
        let write = |name: &str, text: String| {
            std::fs::write(dir.join(name), text).map_err(|source| Error::Io { action: "write", path: dir.join(name), source })
        };
        write("ferry.toml", env.to_toml())?;
        write("lab.pid", std::process::id().to_string())?;
        if !quiet {
            println!("lab up in {} ms, state in {}", started.elapsed().as_millis(), dir.display());
            for (name, addr) in &lab.api {
                println!("  cluster {name:<4} https://{addr}   kubectl --kubeconfig {} --context {name} get svc -A", lab.kubeconfig.display());
            }
            println!("  profile      {}  (ferry run SCRIPT --lab-dir {})", dir.join("ferry.toml").display(), dir.display());
            println!("Ctrl-C stops it; the state stays (ferry lab reset discards it).");
        }
        crate::runner::shutdown_signal().await;
        let _ = std::fs::remove_file(dir.join("lab.pid"));
        lab.stop();
        Ok(exit::SUCCEEDED)
    })
}

fn reset(dir: &Path) -> Result<i32> {
    if served_environment(dir).is_some() {
        return Err(Error::usage(format!(
            "the lab in {} is running; stop it (Ctrl-C) first",
            dir.display()
        )));
    }
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(exit::SUCCEEDED),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(exit::SUCCEEDED),
        Err(source) => Err(Error::Io {
            action: "remove",
            path: dir.to_owned(),
            source,
        }),
    }
}
