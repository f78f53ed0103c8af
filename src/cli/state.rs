//! `ferry state show|copy|rbac`: which journal a folder uses, moving a
//! team's history to another backend, and the RBAC the cluster backend needs.

use super::args::{Format, StateCommand};
use super::output::{document, emit};
use super::{GlobalArgs, open_settings, state_choice};
use crate::error::{Result, exit};
use crate::state::{Locator, StateChoice};

pub fn run(command: StateCommand, global: &GlobalArgs) -> Result<i32> {
    match command {
        StateCommand::Show { output } => show(&state_choice(global)?, output.format(global.json)),
        StateCommand::Copy { from, to } => {
            let cwd = std::env::current_dir().unwrap_or_else(|_| ".".into());
            let source = match from {
                Some(text) => Locator::parse(&text, &cwd)?,
                None => state_choice(global)?.locator,
            };
            let target = Locator::parse(&to, &cwd)?;
            if source == target {
                return Err(crate::error::Error::usage(format!(
                    "state copy: --from and --to are the same state ({})",
                    source.redacted()
                )));
            }
            let settings = open_settings(global);
            let from = crate::state::open(&source, &settings, true)?;
            let into = crate::state::open(&target, &settings, false)?;
            let copied = crate::journal::copy(&*from, &*into)?;
            if !global.quiet {
                let records: usize = copied.runs.iter().map(|(_, n)| n).sum();
                let mut text = format!(
                    "copied {} run{} ({records} records, {} claims) from {} to {}\n",
                    copied.runs.len(),
                    if copied.runs.len() == 1 { "" } else { "s" },
                    copied.claims,
                    from.location(),
                    into.location()
                );
                if !copied.skipped.is_empty() {
                    text.push_str(&format!(
                        "left alone (already there): {}\n",
                        copied.skipped.join(", ")
                    ));
                }
                emit(&text)?;
            }
            Ok(exit::SUCCEEDED)
        }
        StateCommand::Rbac { namespace, subject } => {
            let namespace = match namespace {
                Some(ns) => ns,
                None => match state_choice(global)?.locator {
                    Locator::Kubernetes { namespace, .. } => namespace,
                    other => {
                        return Err(crate::error::Error::usage(format!(
                            "state rbac: the state here is {}, not kubernetes://…; pass --namespace NS",
                            other.redacted()
                        )));
                    }
                },
            };
            emit(&crate::journal::rbac_manifest(
                &namespace,
                subject.as_deref(),
            ))?;
            Ok(exit::SUCCEEDED)
        }
    }
}

fn show(choice: &StateChoice, format: Format) -> Result<i32> {
    let data = serde_json::json!({
        "state": choice.locator.redacted(),
        "backend": match choice.locator {
            Locator::Sqlite(_) => "sqlite",
            Locator::Postgres(_) => "postgres",
            Locator::Kubernetes { .. } => "kubernetes",
        },
        "chosen_by": choice.origin,
        "profile": choice.profile.as_ref().map(|p| p.display().to_string()),
        "local_dir": choice.work_dir.display().to_string(),
    });
    if !document(format, &data)? {
        let mut text = format!(
            "state: {} (chosen by {})\n",
            choice.locator.redacted(),
            choice.origin
        );
        if let Some(profile) = &choice.profile {
            text.push_str(&format!("profile: {}\n", profile.display()));
        }
        text.push_str(&format!(
            "local files (labs): {}\n",
            choice.work_dir.display()
        ));
        emit(&text)?;
    }
    Ok(exit::SUCCEEDED)
}
