//! The `ferry` command line: parse flags, open the journal, dispatch.

mod args;
mod inspect;
#[cfg(feature = "lab")]
mod lab;
mod reference;

#[cfg(feature = "lab")]
pub use args::LabCommand;
pub use args::{Cli, Command, GlobalArgs};

use crate::error::{Result, exit};
use crate::events::{EventSink, JsonSink, NullSink, PlainSink, ProgressSink};
use crate::journal::SqliteStore;
use crate::runner::{EnvironmentChoice, Outcome, Runner, StartRequest};
use crate::settings::Settings;
use clap::{CommandFactory, Parser};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

/// Runs the command line; returns the process exit code.
pub fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                exit::USAGE
            } else {
                exit::SUCCEEDED
            };
        }
    };
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", e.to_string().trim_start_matches("error: "));
            e.exit_code()
        }
    }
}

fn dispatch(cli: Cli) -> Result<i32> {
    let global = &cli.global;
    match cli.command {
        Command::Run {
            script,
            params,
            id,
            dry_run,
            env,
            lab,
            lab_dir,
        } => {
            let environment = match (env, lab, lab_dir) {
                (Some(file), _, _) => EnvironmentChoice::File(file),
                (None, true, _) => EnvironmentChoice::Lab(None),
                (None, false, Some(dir)) => EnvironmentChoice::Lab(Some(dir)),
                (None, false, None) => EnvironmentChoice::Auto,
            };
            let runner = runner(global)?;
            let (id, outcome) = runner.start(StartRequest {
                script,
                params: params.into_iter().collect(),
                id,
                dry_run,
                environment,
            })?;
            Ok(report(&id, outcome))
        }
        Command::Resume { run, allow_changed } => {
            let outcome = runner(global)?.resume(&run, allow_changed)?;
            Ok(report(&run, outcome))
        }
        Command::Rollback { run, allow_changed } => {
            let outcome = runner(global)?.rollback(&run, allow_changed)?;
            if matches!(outcome, Outcome::Interrupted) {
                // The rollback has begun: only rollback may continue it.
                eprintln!(
                    "rollback of run {run} interrupted; continue it with: ferry rollback {run}"
                );
                return Ok(outcome.exit_code());
            }
            Ok(report(&run, outcome))
        }
        Command::Approve { run, gate } => {
            let approved = runner(global)?.approve(&run, &gate)?;
            if !global.quiet {
                println!(
                    "approved gate `{gate}` of run {run} ({}); continue with: ferry resume {run}",
                    approved.approved_by.unwrap_or_default()
                );
            }
            Ok(exit::SUCCEEDED)
        }
        Command::Status { run } => {
            inspect::status(&open_store(global)?, run.as_deref(), global.json)
        }
        Command::Runs => inspect::runs(&open_store(global)?, global.json),
        Command::Log { run } => inspect::log(&open_store(global)?, &run, global.json),
        Command::Check { scripts } => reference::check(&scripts, &global.libs, global.quiet),
        Command::Docs => reference::docs(global.json),
        #[cfg(feature = "lab")]
        Command::Lab(command) => lab::run(command, &state_dir(global), global.quiet),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "ferry", &mut std::io::stdout());
            Ok(exit::SUCCEEDED)
        }
    }
}

fn state_dir(global: &GlobalArgs) -> PathBuf {
    global
        .state
        .clone()
        .unwrap_or_else(|| PathBuf::from(".ferry"))
}

fn open_store(global: &GlobalArgs) -> Result<SqliteStore> {
    SqliteStore::open(&state_dir(global))
}

fn runner(global: &GlobalArgs) -> Result<Runner> {
    let store = Arc::new(open_store(global)?);
    let settings = Settings {
        kubeconfig: global.kubeconfig.clone(),
        qps: global.qps.unwrap_or(Settings::default().qps),
        burst: global.burst.unwrap_or(Settings::default().burst),
        explicit_limits: global.qps.is_some() || global.burst.is_some(),
        ..Settings::default()
    };
    Runner::new(store, sink(global), global.libs.clone(), settings)
}

/// Progress bars on a terminal, plain lines in a pipe, JSON with `--json`.
fn sink(global: &GlobalArgs) -> Arc<dyn EventSink> {
    let verbose = global.verbose > 0;
    if global.json {
        Arc::new(JsonSink)
    } else if global.quiet {
        Arc::new(NullSink)
    } else if std::io::stderr().is_terminal() && std::io::stdout().is_terminal() {
        Arc::new(ProgressSink::new(verbose))
    } else {
        Arc::new(PlainSink { verbose })
    }
}

/// Tells the user how the run ended and what to do next; returns the exit code.
fn report(id: &str, outcome: Outcome) -> i32 {
    match &outcome {
        Outcome::Succeeded | Outcome::RolledBack => {}
        Outcome::StepFailed { step, rendered } => {
            eprintln!(
                "{rendered}\nstep `{step}` failed; fix the cause and continue with: ferry resume {id}"
            );
        }
        Outcome::UndoFailed { step, error } => {
            eprintln!(
                "error: undo of `{step}` failed: {error}\nfix the cause and continue with: ferry rollback {id}"
            );
        }
        Outcome::Paused { gate, message } => {
            eprintln!(
                "run {id} paused at gate `{gate}`: {message}\n  approve: ferry approve {id} {gate}\n  then:    ferry resume {id}"
            );
        }
        Outcome::Interrupted => eprintln!("run {id} interrupted; continue with: ferry resume {id}"),
    }
    outcome.exit_code()
}
