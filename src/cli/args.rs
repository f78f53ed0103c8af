//! Flags and commands, parsed by clap into plain data. Validation that needs
//! more than the flags themselves (files, the journal) happens in commands.

use clap::{Args, Parser, Subcommand};
use clap_complete::engine::ArgValueCandidates;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about = "Move applications between Kubernetes clusters without downtime",
    long_about = "ferry runs migration scripts (Rhai) with a durable step journal: a run that halts \
                  (failure, approval gate, Ctrl-C, kill -9) resumes later, by anyone, from where it stopped.",
    // Global flags sit under their own heading; `Options` is only -h/-V here.
    after_help = "Examples:\n  ferry run migrate.rhai --set app=app1 --lab\n  ferry status\n  \
                  ferry approve RUN cutover && ferry resume RUN\n\nExit codes: 0 succeeded, 1 a step failed, 2 usage or script error, 3 paused at a gate, \
                  4 refused (lock held, run ended, changed script, identity mismatch), 130 interrupted."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes, shown under their own heading in each
/// command's `--help` so a command's own options stand out.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Where the journal lives: a directory (or sqlite:DIR), postgres://…,
    /// or kubernetes://CONTEXT/NAMESPACE [default: the nearest ferry.toml's
    /// [state], else .ferry beside it or here]
    #[arg(long, global = true, env = "FERRY_STATE", value_name = "STATE")]
    pub state: Option<String>,
    /// Print events as JSON lines on stdout instead of progress
    #[arg(long, global = true)]
    pub json: bool,
    /// Print only errors
    #[arg(long, short, global = true, conflicts_with = "json")]
    pub quiet: bool,
    /// Show replayed steps and debug output
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Kubeconfig file [default: KUBECONFIG, then ~/.kube/config, then in-cluster]
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// API requests per second per cluster (client-side rate limit)
    /// [default: 50, or the cluster's `qps` in the environment profile]
    #[arg(long, global = true, value_name = "N", value_parser = parse_qps)]
    pub qps: Option<f64>,
    /// Burst above --qps
    /// [default: 100, or the cluster's `burst` in the environment profile]
    #[arg(long, global = true, value_name = "N")]
    pub burst: Option<u32>,
    /// Extra folder to import modules from (repeatable; after the script's folder, before FERRY_PATH)
    #[arg(long = "lib", global = true, value_name = "DIR")]
    pub libs: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a new run of a script
    #[command(after_help = "Examples:\n  \
        ferry run migrate.rhai --set app=app1 --set ns=app1-ns\n  \
        ferry run migrate.rhai --lab --set app=app1 --set ns=app1-ns   # against a lab of its own\n  \
        ferry run fleet.rhai --env prod.toml --id fleet-2026-11")]
    Run {
        /// The migration script (a .rhai file; its folder is searched for modules first)
        #[arg(value_name = "SCRIPT")]
        script: PathBuf,
        /// A parameter the script reads as params.KEY (repeatable)
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Accept --set keys the script never reads (as params.KEY, params.get/has/require)
        #[arg(long)]
        allow_unknown_params: bool,
        /// Run id to use instead of a generated one
        #[arg(long, value_name = "RUN_ID")]
        id: Option<String>,
        /// Show the plan instead of running: the same as `ferry plan` (nothing changes, nothing is recorded)
        #[arg(long)]
        dry_run: bool,
        /// Environment profile mapping cluster and zone names to targets [default: the nearest ferry.toml from the script's folder, else the working directory, upwards]
        #[arg(long = "env", value_name = "FILE", conflicts_with_all = ["lab", "lab_dir"])]
        env: Option<PathBuf>,
        /// Run against a lab of its own (two clusters, DNS, ingress on loopback), kept under the state directory
        #[arg(long, conflicts_with = "lab_dir")]
        lab: bool,
        /// Run against the lab in DIR (a running `ferry lab up --dir DIR`, or its saved state)
        #[arg(long, value_name = "DIR")]
        lab_dir: Option<PathBuf>,
    },
    /// Show what a script would do, changing nothing: every write checked by its server (dry run), waits and proofs noted, gates passed
    #[command(after_help = "Examples:\n  \
        ferry plan migrate.rhai --set app=app1 --set ns=app1-ns\n  \
        ferry plan two-apps.rhai --lab --until-gate cutover   # stop at a gate\n  \
        ferry plan --run RUN                                  # what `ferry resume RUN` would do next\n  \
        ferry plan migrate.rhai --json | jq .summary\n\n\
        Exit codes: 0 the plan went through (or reached --until-gate), 1 a step would fail, 2 usage or script error.")]
    Plan {
        /// The migration script (not with --run)
        #[arg(
            value_name = "SCRIPT",
            required_unless_present = "run",
            conflicts_with = "run"
        )]
        script: Option<PathBuf>,
        /// A parameter the script reads as params.KEY (repeatable)
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_param, conflicts_with = "run")]
        params: Vec<(String, String)>,
        /// Accept --set keys the script never reads
        #[arg(long)]
        allow_unknown_params: bool,
        /// Plan what `ferry resume RUN` would do next, from the run's journal
        #[arg(long, value_name = "RUN", add = ArgValueCandidates::new(super::complete::run_ids))]
        run: Option<String>,
        /// Stop the plan at this gate instead of passing it
        #[arg(long, value_name = "GATE")]
        until_gate: Option<String>,
        /// Environment profile mapping cluster and zone names to targets
        #[arg(long = "env", value_name = "FILE", conflicts_with_all = ["lab", "lab_dir", "run"])]
        env: Option<PathBuf>,
        /// Plan against a lab of its own, removed afterwards
        #[arg(long, conflicts_with_all = ["lab_dir", "run"])]
        lab: bool,
        /// Plan against the lab in DIR (a running `ferry lab up --dir DIR`, or its saved state)
        #[arg(long, value_name = "DIR", conflicts_with = "run")]
        lab_dir: Option<PathBuf>,
    },
    /// Continue a run from its journal
    #[command(
        after_help = "Examples:\n  ferry resume migrate-20261121-060000-a1b2\n  \
        ferry resume RUN --allow-changed   # after editing the script, match steps by name"
    )]
    Resume {
        /// The run id (`ferry runs` lists them)
        #[arg(value_name = "RUN", add = ArgValueCandidates::new(super::complete::run_ids))]
        run: String,
        /// Continue even though the script changed, matching steps by name
        #[arg(long)]
        allow_changed: bool,
    },
    /// Approve a gate a run waits at
    #[command(after_help = "Examples:\n  ferry approve RUN cutover-app1 && ferry resume RUN")]
    Approve {
        /// The run id (`ferry runs` lists them)
        #[arg(value_name = "RUN", add = ArgValueCandidates::new(super::complete::run_ids))]
        run: String,
        /// The gate's name, as `pause("NAME", ...)` gave it (`ferry status RUN` shows the one waited at)
        #[arg(value_name = "GATE", add = ArgValueCandidates::new(super::complete::waiting_gates))]
        gate: String,
    },
    /// Serve the migration board: every app's phase, every run, guarded flips as charts, live
    #[command(
        after_help = "Examples:\n  ferry board                         # http://127.0.0.1:8765/, read-only\n  ferry board --allow-approve         # prints a one-time token URL to approve gates from the page\n  ferry board --listen 0.0.0.0:8765   # beyond this machine (anyone reaching it sees every run)"
    )]
    Board {
        /// Where to listen (loopback unless told otherwise; port 0 picks a free one)
        #[arg(long, value_name = "ADDRESS:PORT", default_value = crate::board::DEFAULT_LISTEN)]
        listen: std::net::SocketAddr,
        /// Let people approve gates from the page, after opening the one-time token URL printed at start
        #[arg(long)]
        allow_approve: bool,
    },
    /// Undo a run: run the undo closures of its completed steps, newest first
    #[command(
        after_help = "Examples:\n  ferry rollback RUN            # lists what it would undo, then asks\n  ferry rollback RUN --yes      # in a script or CI job\n  ferry status RUN   # rolling-back, rolled-back or rollback-failed"
    )]
    Rollback {
        /// The run id (`ferry runs` lists them)
        #[arg(value_name = "RUN", add = ArgValueCandidates::new(super::complete::run_ids))]
        run: String,
        /// Roll back even though the script changed, matching steps by name
        #[arg(long)]
        allow_changed: bool,
        /// Roll back without asking (needed when stdin is not a terminal)
        #[arg(long, short = 'y')]
        yes: bool,
        /// Roll back even past steps that declared they cannot be undone safely
        #[arg(long)]
        force: bool,
    },
    /// Show a run (the most recent one without RUN): its state, step, lock holder and gate
    #[command(
        after_help = "Examples:\n  ferry status\n  ferry status RUN --watch\n  ferry status RUN -o json"
    )]
    Status {
        /// The run id (`ferry runs` lists them) [default: the most recent run]
        #[arg(value_name = "RUN", add = ArgValueCandidates::new(super::complete::run_ids))]
        run: Option<String>,
        /// Refresh whenever the journal changes, until the run stops (Ctrl-C to leave)
        #[arg(long, short)]
        watch: bool,
        #[command(flatten)]
        output: OutputArg,
    },
    /// List runs, newest first
    #[command(
        after_help = "Examples:\n  ferry runs --status paused --status failed\n  \
        ferry runs --script migrate --since 2d -o json"
    )]
    Runs {
        /// Only runs in this state (repeatable): running, paused, failed, interrupted, succeeded,
        /// rolling-back, rolled-back, rollback-failed, aborted
        #[arg(long = "status", value_name = "STATUS", value_parser = parse_status)]
        statuses: Vec<crate::journal::RunStatus>,
        /// Only runs of a script whose path contains TEXT
        #[arg(long, value_name = "TEXT")]
        script: Option<String>,
        /// Only runs started within DURATION (`2h`, `3days`) or since a time (`2026-11-21T06:00:00Z`)
        #[arg(long, value_name = "DURATION|TIME", value_parser = parse_since)]
        since: Option<i64>,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Show every journal record of a run, values in full
    #[command(
        after_help = "Examples:\n  ferry log RUN\n  ferry log RUN -f   # follow a running run\n  ferry log RUN --json | jq .name"
    )]
    Log {
        /// The run id (`ferry runs` lists them)
        #[arg(value_name = "RUN", add = ArgValueCandidates::new(super::complete::run_ids))]
        run: String,
        /// Keep printing records as they change until the run stops
        #[arg(long, short)]
        follow: bool,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Everything recorded about a run, or about one of its steps: value, error, attempts,
    /// timings and guard statistics, untruncated
    #[command(
        after_help = "Examples:\n  ferry describe RUN\n  ferry describe RUN \"cutover app1\" -o yaml"
    )]
    Describe {
        /// The run id (`ferry runs` lists them)
        #[arg(value_name = "RUN", add = ArgValueCandidates::new(super::complete::run_ids))]
        run: String,
        /// A step, gate or timer name, as `ferry log RUN` shows it [default: every record]
        #[arg(value_name = "STEP")]
        step: Option<String>,
        #[command(flatten)]
        output: OutputArg,
    },
    /// End a paused, failed or interrupted run as aborted; its journal stays
    #[command(
        after_help = "Examples:\n  ferry abort RUN\n  ferry abort RUN --force   # stop the process driving it first"
    )]
    Abort {
        /// The run id (`ferry runs` lists them)
        #[arg(value_name = "RUN", add = ArgValueCandidates::new(super::complete::run_ids))]
        run: String,
        /// Abort even if a live process on this host drives it (it is stopped with SIGTERM first)
        #[arg(long)]
        force: bool,
    },
    /// Delete a finished or aborted run and its journal records
    #[command(
        after_help = "Examples:\n  ferry delete RUN\n  ferry delete RUN --force   # a paused, failed or interrupted run too"
    )]
    Delete {
        /// The run id (`ferry runs` lists them)
        #[arg(value_name = "RUN", add = ArgValueCandidates::new(super::complete::run_ids))]
        run: String,
        /// Delete a run that is not finished (paused, failed, interrupted, ...) too
        #[arg(long)]
        force: bool,
    },
    /// Delete finished and aborted runs not updated within DURATION
    #[command(
        after_help = "Examples:\n  ferry prune --older-than 30d --dry-run\n  ferry prune --older-than 90d --any-status"
    )]
    Prune {
        /// Age of the last update (`30d`, `12h`)
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        older_than: std::time::Duration,
        /// Prune runs in any state except one a live process drives
        #[arg(long)]
        any_status: bool,
        /// List what would be deleted, delete nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Compile scripts, resolve imports and report unknown functions and duplicate step names, without running
    #[command(
        after_help = "Examples:\n  ferry check migrate.rhai\n  ferry check scripts/*.rhai --lib ../recipes"
    )]
    Check {
        /// The scripts to check (.rhai files)
        #[arg(required = true, value_name = "SCRIPT")]
        scripts: Vec<PathBuf>,
    },
    /// Print the reference of every script primitive and stdlib module (Markdown; JSON with --json)
    #[command(
        after_help = "Examples:\n  ferry docs > REFERENCE.md\n  ferry docs --json | jq '.functions[].signature'"
    )]
    Docs,
    /// Print a shell completion script
    #[command(after_help = COMPLETIONS_HELP)]
    Completions {
        /// The shell to complete for
        #[arg(value_name = "SHELL")]
        shell: clap_complete::Shell,
    },
    /// Where the journal lives: show it, copy it to another backend, print the RBAC it needs
    #[command(subcommand)]
    State(StateCommand),
    /// The lab: the article's two clusters, private DNS and ingress on loopback
    #[cfg(feature = "lab")]
    #[command(subcommand)]
    Lab(LabCommand),
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// Which state this folder uses, and how it was chosen
    #[command(after_help = "Examples:\n  ferry state show\n  ferry state show -o json")]
    Show {
        #[command(flatten)]
        output: OutputArg,
    },
    /// Copy every run (records, gates, claims, who did what) from one state to another
    #[command(
        after_help = "Examples:\n  ferry state copy --from .ferry --to postgres://ferry@db.internal/ferry\n  \
        ferry state copy --from .ferry --to kubernetes://prod-admin/ferry"
    )]
    Copy {
        /// The state to read [default: the state this folder uses]
        #[arg(long, value_name = "STATE")]
        from: Option<String>,
        /// The state to write (created if needed)
        #[arg(long, value_name = "STATE")]
        to: String,
    },
    /// Print the Role and RoleBinding a kubernetes:// state needs (apply with kubectl)
    #[command(
        after_help = "Examples:\n  ferry state rbac --namespace ferry --subject user:alice@example.com | kubectl apply -f -\n  \
        ferry state rbac --namespace ferry --subject group:platform-team\n  \
        ferry state rbac   # the ServiceAccount `ferry` of the state's namespace, for ferry as a Job"
    )]
    Rbac {
        /// The namespace holding the journal [default: the kubernetes:// state's]
        #[arg(long, value_name = "NAMESPACE")]
        namespace: Option<String>,
        /// Who to bind the Role to: user:NAME, group:NAME or serviceaccount:NS:NAME
        /// [default: the ServiceAccount `ferry` of the namespace]
        #[arg(long, value_name = "SUBJECT")]
        subject: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
#[cfg(feature = "lab")]
pub enum LabCommand {
    /// Serve a lab in the foreground until Ctrl-C (state kept in DIR)
    #[command(
        after_help = "Examples:\n  ferry lab up --dir .ferry/lab --apps 10\n  \
        ferry run migrate.rhai --lab-dir .ferry/lab --set app=app1 --set ns=app1-ns   # in another terminal"
    )]
    Up {
        /// Where the lab keeps its state [default: <state dir>/lab]
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Apps seeded into the old cluster the first time (or a count N: app1:app1-ns .. appN:appN-ns)
        #[arg(
            long,
            value_name = "APP:NS,...|N",
            default_value = "app1:app1-ns,app2:app2-ns"
        )]
        apps: String,
    },
    /// Discard a lab's state
    #[command(after_help = "Examples:\n  ferry lab reset --dir .ferry/lab")]
    Reset {
        /// Where the lab keeps its state [default: <state dir>/lab]
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Whether a lab runs, its addresses, kubeconfig and apps
    #[command(
        after_help = "Examples:\n  ferry lab status\n  ferry lab status --dir .ferry/lab -o json"
    )]
    Status {
        /// Where the lab keeps its state [default: <state dir>/lab]
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Run kubectl with the lab's kubeconfig: `ferry lab kubectl -- --context old get all -A`
    #[command(
        after_help = "Examples:\n  ferry lab kubectl -- --context old get all -A\n  \
        ferry lab kubectl -- --context new -n app1-ns get svc,endpointslices"
    )]
    Kubectl {
        /// Where the lab keeps its state [default: <state dir>/lab]
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// Arguments for kubectl
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<String>,
    },
}

/// Where each shell looks for completion files (the help of `ferry completions`).
const COMPLETIONS_HELP: &str = "Examples (dynamic: run ids and waiting gates complete from the journal):
  bash        echo 'source <(COMPLETE=bash ferry)' >> ~/.bashrc
  zsh         echo 'source <(COMPLETE=zsh ferry)' >> ~/.zshrc
  fish        echo 'COMPLETE=fish ferry | source' >> ~/.config/fish/completions/ferry.fish
  elvish      echo 'eval (E:COMPLETE=elvish ferry | slurp)' >> ~/.config/elvish/rc.elv
  powershell  add to $PROFILE:
    $env:COMPLETE = \"powershell\"; ferry | Out-String | Invoke-Expression; Remove-Item Env:\\COMPLETE

  Static scripts (commands and flags only), where each shell looks for the file:
  bash        ferry completions bash > ~/.local/share/bash-completion/completions/ferry
              (bash-completion loads it on first use; or `source <(ferry completions bash)` in ~/.bashrc)
  zsh         ferry completions zsh > ~/.zfunc/_ferry
              (with `fpath=(~/.zfunc $fpath)` before `autoload -U compinit && compinit` in ~/.zshrc)
  fish        ferry completions fish > ~/.config/fish/completions/ferry.fish
  elvish      ferry completions elvish >> ~/.config/elvish/rc.elv
  powershell  ferry completions powershell >> $PROFILE
Open a new shell afterwards.";

/// `-o text|json|yaml` of the commands that print data.
#[derive(Debug, Clone, Copy, Args)]
pub struct OutputArg {
    /// Output format [default: text; json with --json]
    #[arg(long, short, value_name = "FORMAT", value_enum)]
    pub output: Option<Format>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Yaml,
}

impl OutputArg {
    /// `-o` wins; `--json` means JSON.
    pub fn format(self, json: bool) -> Format {
        self.output
            .unwrap_or(if json { Format::Json } else { Format::Text })
    }
}

/// Requests per second: 0 means no limit; otherwise at least one request
/// every 1000 s, so the interval between requests is a real duration.
pub fn parse_qps(text: &str) -> Result<f64, String> {
    let qps: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    crate::settings::check_qps(qps).map(|()| qps)
}

fn parse_status(text: &str) -> Result<crate::journal::RunStatus, String> {
    crate::journal::RunStatus::parse(text).ok_or_else(|| {
        format!(
            "`{text}` is not a run state (running, paused, failed, interrupted, succeeded, \
             rolling-back, rolled-back, rollback-failed, aborted)"
        )
    })
}

/// `30d`, `12h`, `90min`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration like 30d, 12h or 90min ({e})"))
}

/// A duration back from now, or a time: milliseconds since the epoch.
fn parse_since(text: &str) -> Result<i64, String> {
    if let Ok(time) = humantime::parse_rfc3339_weak(text) {
        return Ok(time
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0));
    }
    let ago = parse_duration(text).map_err(|_| {
        format!("`{text}` is neither a duration (2h, 3days) nor a time (2026-11-21T06:00:00Z)")
    })?;
    Ok(crate::journal::now_ms().saturating_sub(ago.as_millis().min(i64::MAX as u128) as i64))
}

/// `KEY=VALUE`, with a key a script can write as `params.KEY`.
pub fn parse_param(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not KEY=VALUE"))?;
    let valid = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "`{key}` is not a parameter name (letters, digits and _, not starting with a digit)"
        ));
    }
    Ok((key.to_owned(), value.to_owned()))
}
