//! `ferry lab up`, `status`, `kubectl` and `reset`.

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
        LabCommand::Status { dir, output } => status(
            &dir.unwrap_or_else(|| state_dir.join("lab")),
            output.format(false),
        ),
        LabCommand::Kubectl { dir, args } => {
            kubectl(&dir.unwrap_or_else(|| state_dir.join("lab")), &args)
        }
    }
}

/// What `ferry lab status` reports: whether the lab in `dir` is served,
/// where to reach it, and the apps its clusters run.
fn status(dir: &Path, format: super::args::Format) -> Result<i32> {
    let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.to_owned());
    let served = served_environment(&dir);
    let pid = std::fs::read_to_string(dir.join("lab.pid")).ok();
    let kubeconfig = dir.join("kubeconfig");
    // API server addresses from the kubeconfig the lab wrote when it started.
    let servers: Vec<(String, String)> = std::fs::read_to_string(&kubeconfig)
        .ok()
        .and_then(|text| serde_yaml_ng::from_str::<serde_json::Value>(&text).ok())
        .and_then(|config| config["clusters"].as_array().cloned())
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let name = c["name"].as_str()?.trim_start_matches("lab-").to_owned();
            Some((name, c["cluster"]["server"].as_str()?.to_owned()))
        })
        .collect();
    let mut apps = serde_json::Map::new();
    for cluster in ["old", "new"] {
        let table = crate::lab::persist::read(&dir.join("clusters"), cluster).unwrap_or_default();
        let names: Vec<String> = table
            .entries
            .keys()
            .filter_map(|key| {
                let rest = key
                    .strip_prefix("deployments.apps/")
                    .or_else(|| key.strip_prefix("statefulsets.apps/"))?;
                let (ns, name) = rest.split_once('/')?;
                Some(format!("{name} ({ns})"))
            })
            .collect();
        apps.insert(cluster.into(), names.into());
    }
    let exists = dir.join("clusters").exists();
    let dns = served
        .as_ref()
        .and_then(|env| env.dns.get("private").cloned());
    let clouddns = served
        .as_ref()
        .and_then(|env| env.dns.get("clouddns").cloned());
    let value = serde_json::json!({
        "dir": dir,
        "running": served.is_some(),
        "exists": exists,
        "pid": served.as_ref().and(pid.as_deref().map(str::trim)),
        "kubeconfig": kubeconfig,
        "profile": dir.join("ferry.toml"),
        "clusters": servers.iter().map(|(n, s)| serde_json::json!({ "name": n, "server": s })).collect::<Vec<_>>(),
        "dns": dns.as_ref().map(|d| &d["server"]),
        "clouddns": clouddns.as_ref().map(|d| &d["endpoint"]),
        "apps": apps,
    });
    if super::output::document(format, &value)? {
        return Ok(exit::SUCCEEDED);
    }
    let shown = dir.display();
    let mut text = String::new();
    use std::fmt::Write;
    match (&served, exists) {
        (Some(_), _) => {
            let _ = writeln!(
                text,
                "lab in {shown}: running (pid {})",
                pid.as_deref().unwrap_or("?").trim()
            );
            let _ = writeln!(text, "  kubeconfig  {}", kubeconfig.display());
            for (name, server) in &servers {
                let _ = writeln!(
                    text,
                    "  cluster     {name:<4} {server}   (ferry lab kubectl --dir {shown} -- --context {name} get all -A)"
                );
            }
            if let Some(dns) = &dns {
                let _ = writeln!(
                    text,
                    "  dns         {} (zone {}, RFC 2136 with TSIG key {})",
                    dns["server"].as_str().unwrap_or("?"),
                    dns["zone"].as_str().unwrap_or("?"),
                    dns["tsig_name"].as_str().unwrap_or("?")
                );
            }
            if let Some(clouddns) = &clouddns {
                let _ = writeln!(
                    text,
                    "  cloud dns   {}",
                    clouddns["endpoint"].as_str().unwrap_or("?")
                );
            }
            let _ = writeln!(
                text,
                "  profile     {}  (ferry run SCRIPT --lab-dir {shown})",
                dir.join("ferry.toml").display()
            );
        }
        (None, true) => {
            let _ = writeln!(
                text,
                "lab in {shown}: not running; its state stays (ferry lab up --dir {shown} serves it again)"
            );
        }
        (None, false) => {
            let _ = writeln!(
                text,
                "no lab in {shown} (ferry lab up --dir {shown} starts one)"
            );
            super::output::emit(&text)?;
            return Ok(exit::SUCCEEDED);
        }
    }
    for (cluster, names) in &apps {
        let names: Vec<&str> = names
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n.as_str())
            .collect();
        let list = if names.is_empty() {
            "-".to_owned()
        } else {
            names.join(", ")
        };
        let _ = writeln!(text, "  apps in {cluster:<4}{list}");
    }
    super::output::emit(&text)?;
    Ok(exit::SUCCEEDED)
}

/// Runs kubectl against the lab in `dir` with its kubeconfig, in place of
/// this process, so its output, exit code and signals are kubectl's own.
fn kubectl(dir: &Path, args: &[String]) -> Result<i32> {
    use std::os::unix::process::CommandExt;
    let kubeconfig = dir.join("kubeconfig");
    if served_environment(dir).is_none() || !kubeconfig.is_file() {
        return Err(Error::usage(format!(
            "no lab runs in {0}; start it with: ferry lab up --dir {0}",
            dir.display()
        )));
    }
    let error = std::process::Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(args)
        .exec();
    Err(Error::usage(format!("cannot run kubectl: {error}")))
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
