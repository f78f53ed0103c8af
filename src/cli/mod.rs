//! The `ferry` command line: parse flags, open the journal, dispatch.

mod args;
mod complete;
mod describe;
mod follow;
mod inspect;
#[cfg(feature = "lab")]
mod lab;
mod lifecycle;
mod output;
pub(crate) mod phases;
mod reference;
mod state;

#[cfg(feature = "lab")]
pub use args::LabCommand;
pub use args::{Cli, Command, GlobalArgs};

use crate::error::{Error, Result, exit};
use crate::events::{EventSink, JsonSink, NullSink, PlainSink, ProgressSink};
use crate::journal::Store;
use crate::runner::{EnvironmentChoice, Outcome, PlanOf, Runner, StartRequest};
use crate::settings::Settings;
use crate::state::{OpenSettings, StateChoice};
use clap::{CommandFactory, Parser};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;

/// Runs the command line; returns the process exit code.
pub fn run() -> i32 {
    // `COMPLETE=bash ferry …`: the shell asks for candidates; answer and exit.
    clap_complete::CompleteEnv::with_factory(Cli::command).complete();
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
        Err(Error::OutputClosed) => exit::SUCCEEDED,
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
            allow_unknown_params,
            id,
            dry_run,
            env,
            lab,
            lab_dir,
        } => {
            let environment = environment_choice(env, lab, lab_dir);
            let runner = runner(global)?;
            if dry_run {
                // One way to preview: the plan.
                let what = PlanOf::Start {
                    script,
                    params: once_each(params)?,
                    environment,
                    allow_unknown_params,
                };
                return show_plan(&runner, what, None, global);
            }
            let (id, outcome) = runner.start(StartRequest {
                script,
                params: once_each(params)?,
                id,
                environment,
                allow_unknown_params,
            })?;
            Ok(report(&id, outcome))
        }
        Command::Plan {
            script,
            params,
            allow_unknown_params,
            run,
            until_gate,
            env,
            lab,
            lab_dir,
        } => {
            let what = match (run, script) {
                (Some(run), _) => PlanOf::Resume { run },
                (None, Some(script)) => PlanOf::Start {
                    script,
                    params: once_each(params)?,
                    environment: environment_choice(env, lab, lab_dir),
                    allow_unknown_params,
                },
                (None, None) => return Err(Error::usage("give a SCRIPT to plan, or --run RUN")),
            };
            show_plan(&runner(global)?, what, until_gate, global)
        }
        Command::Resume { run, allow_changed } => {
            let outcome = runner(global)?.resume(&run, allow_changed)?;
            Ok(report(&run, outcome))
        }
        Command::Rollback {
            run,
            allow_changed,
            yes,
            force,
        } => {
            let runner = runner(global)?;
            let confirm = |run: &crate::journal::Run, records: &[crate::journal::Step]| {
                if yes {
                    Ok(())
                } else {
                    confirm_rollback(&runner, run, records)
                }
            };
            let outcome = runner.rollback(&run, allow_changed, force, &confirm)?;
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
            let approval = runner(global)?.approve(&run, &gate)?;
            if !global.quiet {
                let by = approval.gate.approved_by.clone().unwrap_or_default();
                let what = if approval.already {
                    format!(
                        "gate `{}` of run {run} was already approved ({by}, {})",
                        output::line(&gate),
                        approval
                            .gate
                            .approved_at
                            .map(crate::journal::format_ms)
                            .unwrap_or_default()
                    )
                } else {
                    format!(
                        "approved gate `{}` of run {run} ({by})",
                        output::line(&gate)
                    )
                };
                let next = if crate::runner::finished(approval.status) {
                    format!("; the run is {}: nothing to resume", approval.status)
                } else {
                    format!("; continue with: ferry resume {run}")
                };
                output::emit(&format!("{what}{next}\n"))?;
            }
            Ok(exit::SUCCEEDED)
        }
        Command::Board {
            listen,
            allow_approve,
        } => {
            let options = crate::board::BoardOptions {
                listen,
                allow_approve,
            };
            // Approving writes a gate: open for writing only when asked to.
            let store = if allow_approve {
                open_store(global)?
            } else {
                open_for_reading(global)?
            };
            crate::board::serve(store, &options, global.quiet)?;
            Ok(exit::SUCCEEDED)
        }
        Command::Status { run, watch, output } => {
            let store = open_for_reading(global)?;
            let format = output.format(global.json);
            let id = match run {
                Some(id) => id,
                None => match inspect::newest(&*store)? {
                    Some(id) => id,
                    None => {
                        output::emit(&format!("no runs in {}\n", store.location()))?;
                        return Ok(exit::SUCCEEDED);
                    }
                },
            };
            if watch {
                follow::watch(&*store, &id, format)
            } else {
                inspect::status(&*store, &id, format)
            }
        }
        Command::Runs {
            statuses,
            script,
            since,
            output,
        } => {
            let filter = inspect::RunFilter {
                statuses,
                script,
                since,
            };
            inspect::runs(
                &*open_for_reading(global)?,
                &filter,
                output.format(global.json),
            )
        }
        Command::Log {
            run,
            follow,
            output,
        } => {
            let store = open_for_reading(global)?;
            // `--json` keeps its JSON lines (one record per line); `-o json` is one document.
            let json_lines = global.json && output.output.is_none();
            if follow {
                follow::follow_log(
                    &*store,
                    &run,
                    json_lines || output.output == Some(args::Format::Json),
                )
            } else {
                inspect::log(&*store, &run, output.format(global.json), json_lines)
            }
        }
        Command::Describe { run, step, output } => describe::describe(
            &*open_for_reading(global)?,
            &run,
            step.as_deref(),
            output.format(global.json),
        ),
        Command::Abort { run, force } => {
            lifecycle::abort(&*open_store(global)?, &run, force, global.quiet)
        }
        Command::Delete { run, force } => {
            lifecycle::delete(&*open_store(global)?, &run, force, global.quiet)
        }
        Command::Prune {
            older_than,
            any_status,
            dry_run,
        } => lifecycle::prune(
            &*open_store(global)?,
            older_than,
            any_status,
            dry_run,
            global.quiet,
        ),
        Command::Check { scripts } => reference::check(&scripts, &global.libs, global.quiet),
        Command::Docs => reference::docs(global.json),
        Command::State(command) => state::run(command, global),
        #[cfg(feature = "lab")]
        Command::Lab(command) => lab::run(command, &state_dir(global)?, global.quiet),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "ferry", &mut std::io::stdout());
            Ok(exit::SUCCEEDED)
        }
    }
}

/// Shows what `ferry rollback RUN` would undo (its plan: the undos run
/// against overlays, with the diffs they would apply) and asks on a
/// terminal; without one (a script, CI), `--yes` says it.
fn confirm_rollback(
    runner: &Runner,
    run: &crate::journal::Run,
    records: &[crate::journal::Step],
) -> Result<()> {
    use std::io::{BufRead, Write};
    let undos = crate::runner::undo_plan(records);
    let mut text = format!(
        "rollback of run {} ({}) would undo {} step{}, newest first:\n",
        run.id,
        run.status,
        undos.len(),
        if undos.len() == 1 { "" } else { "s" }
    );
    if !std::io::stdin().is_terminal() {
        for step in &undos {
            text.push_str(&format!(
                "  - {} ({})\n",
                output::line(&step.name),
                step.status
            ));
        }
        eprint!("{text}");
        return Err(Error::RollbackDeclined {
            run: run.id.clone(),
            what: "asks before it undoes anything and stdin is not a terminal: pass --yes".into(),
        });
    }
    match runner.plan(
        PlanOf::Rollback {
            run: run.id.clone(),
        },
        None,
    ) {
        Ok(planned) => text.push_str(&planned.report.text()),
        Err(e) => {
            // The listing still says what would be undone; the diffs could not be planned.
            for step in &undos {
                text.push_str(&format!(
                    "  - {} ({})\n",
                    output::line(&step.name),
                    step.status
                ));
            }
            text.push_str(&format!("(no diffs: planning the undos failed: {e})\n"));
        }
    }
    eprint!("{text}");
    eprint!("undo them? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(Error::RollbackDeclined {
            run: run.id.clone(),
            what: "was not confirmed".into(),
        })
    }
}

fn environment_choice(
    env: Option<PathBuf>,
    lab: bool,
    lab_dir: Option<PathBuf>,
) -> EnvironmentChoice {
    match (env, lab, lab_dir) {
        (Some(file), _, _) => EnvironmentChoice::File(file),
        (None, true, _) => EnvironmentChoice::Lab(None),
        (None, false, Some(dir)) => EnvironmentChoice::Lab(Some(dir)),
        (None, false, None) => EnvironmentChoice::Auto,
    }
}

/// Plans `what` and prints it (JSON with `--json`); the exit code says
/// whether it went through.
fn show_plan(
    runner: &Runner,
    what: PlanOf,
    until_gate: Option<String>,
    global: &GlobalArgs,
) -> Result<i32> {
    let planned = runner.plan(what, until_gate)?;
    let (code, ended) = match &planned.outcome {
        Outcome::Succeeded | Outcome::RolledBack => (exit::SUCCEEDED, "complete".to_owned()),
        Outcome::Paused { gate, .. } => (exit::SUCCEEDED, format!("stopped at gate `{gate}`")),
        Outcome::StepFailed { step, .. } => {
            (exit::STEP_FAILED, format!("step `{step}` would fail"))
        }
        Outcome::UndoFailed { step, .. } => {
            (exit::STEP_FAILED, format!("undo of `{step}` would fail"))
        }
        Outcome::Interrupted => (exit::INTERRUPTED, "interrupted".to_owned()),
    };
    if global.json {
        let mut value = serde_json::to_value(&planned.report).unwrap_or_default();
        value["ended"] = serde_json::Value::String(ended);
        println!("{value}");
    } else if !global.quiet {
        print!("{}", planned.report.text());
        println!("Plan {ended}; nothing was changed.");
        if let Outcome::StepFailed { rendered, .. } = &planned.outcome {
            eprintln!("{rendered}");
        }
    }
    Ok(code)
}

/// The state this command uses: `--state`, else the nearest `ferry.toml`.
fn state_choice(global: &GlobalArgs) -> Result<StateChoice> {
    let cwd = std::env::current_dir().map_err(|source| Error::Io {
        action: "read the working directory",
        path: PathBuf::from("."),
        source,
    })?;
    StateChoice::find(global.state.as_deref(), &cwd)
}

/// The local folder labs live in (`ferry lab up` without `--dir`).
#[cfg(feature = "lab")]
fn state_dir(global: &GlobalArgs) -> Result<PathBuf> {
    Ok(state_choice(global)?.work_dir)
}

fn open_settings(global: &GlobalArgs) -> OpenSettings {
    OpenSettings {
        kubeconfig: global.kubeconfig.clone(),
    }
}

fn open_store(global: &GlobalArgs) -> Result<Arc<dyn Store>> {
    state_choice(global)?.open(&open_settings(global), false)
}

/// For commands that only read: a state this user cannot write is read read-only.
fn open_for_reading(global: &GlobalArgs) -> Result<Arc<dyn Store>> {
    state_choice(global)?.open(&open_settings(global), true)
}

fn runner(global: &GlobalArgs) -> Result<Runner> {
    let choice = state_choice(global)?;
    let store = choice.open(&open_settings(global), false)?;
    let settings = Settings {
        work_dir: choice.work_dir.clone(),
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
    use output::line;
    match &outcome {
        Outcome::Succeeded | Outcome::RolledBack => {}
        Outcome::StepFailed { step, rendered } => {
            eprintln!(
                "{rendered}\nstep `{}` failed; fix the cause and continue with: ferry resume {id}",
                line(step)
            );
        }
        Outcome::UndoFailed { step, error } => {
            eprintln!(
                "error: undo of `{}` failed: {error}\nfix the cause and continue with: ferry rollback {id}",
                line(step)
            );
        }
        Outcome::Paused { gate, message } => {
            eprintln!(
                "run {id} paused at gate `{0}`: {1}\n  approve: ferry approve {id} {0}\n  then:    ferry resume {id}",
                line(gate),
                line(message)
            );
        }
        Outcome::Interrupted => eprintln!("run {id} interrupted; continue with: ferry resume {id}"),
    }
    outcome.exit_code()
}

/// `--set` pairs as a map, refusing a key given twice (the last one would
/// win silently otherwise).
fn once_each(pairs: Vec<(String, String)>) -> Result<std::collections::BTreeMap<String, String>> {
    let mut params = std::collections::BTreeMap::new();
    for (key, value) in pairs {
        if let Some(first) = params.get(&key) {
            return Err(Error::RepeatedParam {
                first: format!("{key}={first}"),
                second: format!("{key}={value}"),
                key,
            });
        }
        params.insert(key, value);
    }
    Ok(params)
}
