//! The migration board (`ferry board`): a local web site over the journal
//! a team already shares, whatever its backend, showing which app reached
//! which phase across all runs, each run's timeline, gates and guarded
//! flips as charts, updated live as runs progress. It only reads the
//! journal, except for one thing, off by default: approving a gate
//! (`--allow-approve`), which goes through the same code as `ferry
//! approve`. It never resumes a run nor touches a cluster.
//!
//! * [`fleet`]: apps × phases from the runs' `phase` records.
//! * [`views`]: the maud templates (escaped by construction).
//! * [`chart`]: a guard's time series drawn by plotters as SVG.
//! * [`approve`]: the one-time token, sessions and CSRF checks.
//! * [`routes`]: the axum router and the live stream.
//!
//! The store's calls block (SQLite, PostgreSQL and Kubernetes clients run
//! on their own runtimes), so every read runs on tokio's blocking pool.

pub mod approve;
pub mod chart;
pub mod fleet;
pub mod routes;
pub mod views;

use crate::error::{Error, Result};
use crate::journal::{StepKind, Store, gate_approvers};
use std::net::SocketAddr;
use std::sync::Arc;

/// How `ferry board` serves.
#[derive(Debug, Clone)]
pub struct BoardOptions {
    pub listen: SocketAddr,
    pub allow_approve: bool,
}

/// The default address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8765";

/// A board over one journal: what every request reads through.
pub struct Board {
    store: Arc<dyn Store>,
    cache: fleet::Cache,
    approvals: Option<approve::Approvals>,
    /// Set on Ctrl-C: live streams end, so the server can stop.
    closing: std::sync::atomic::AtomicBool,
}

impl Board {
    /// A board over `store`; `token`: approving allowed through that
    /// one-time login token.
    pub fn new(store: Arc<dyn Store>, token: Option<String>) -> Board {
        Board {
            store,
            cache: fleet::Cache::default(),
            approvals: token.map(|t| approve::Approvals::new(Some(t))),
            closing: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Ends the live streams (they never end by themselves).
    pub fn close(&self) {
        self.closing
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn closing(&self) -> bool {
        self.closing.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// The fleet view's `<main>` as HTML.
    pub fn render_fleet(&self, filter: &views::FleetFilter) -> Result<String> {
        let runs = self.store.runs()?;
        let mut summaries = Vec::with_capacity(runs.len());
        let mut waiting = Vec::new();
        let mut dead = std::collections::HashSet::new();
        for run in &runs {
            if run.status == crate::journal::RunStatus::Running
                && !self.store.lock_state(&run.id)?.held
            {
                dead.insert(run.id.clone());
            }
            let phases = match self.cache.get(run) {
                Some(phases) => phases,
                None => {
                    let steps = self.store.steps(&run.id)?;
                    let mut phases = fleet::RunPhases::of(run, &steps);
                    phases.approvers = steps
                        .iter()
                        .filter(|s| s.kind == StepKind::Gate)
                        .filter_map(|s| Some((s.name.clone(), gate_approvers(&steps, &s.name)?)))
                        .collect();
                    let phases = Arc::new(phases);
                    self.cache.put(run, phases.clone());
                    phases
                }
            };
            if run.status == crate::journal::RunStatus::Paused {
                for gate in self.store.gates(&run.id)? {
                    if gate.approved_at.is_none() {
                        waiting.push(views::Waiting {
                            run: run.id.clone(),
                            approvers: phases.approvers.get(&gate.name).cloned(),
                            gate,
                        });
                    }
                }
            }
            summaries.push((run.clone(), phases));
        }
        let ids = runs.iter().map(|r| r.id.as_str()).collect();
        self.cache.retain(&ids);
        let fleet = fleet::Fleet::build(&summaries);
        Ok(views::fleet(&fleet, &runs, &waiting, &dead, filter).into_string())
    }

    /// The run view's `<main>` as HTML; `None` when there is no such run.
    pub fn render_run(
        &self,
        id: &str,
        csrf: Option<&str>,
        notice: Option<&str>,
    ) -> Result<Option<String>> {
        let Some(run) = self.store.run(id)? else {
            return Ok(None);
        };
        let steps = self.store.steps(id)?;
        let gates = self.store.gates(id)?;
        let lock = self.store.lock_state(id)?;
        let claims: Vec<_> = self
            .store
            .claims()?
            .into_iter()
            .filter(|c| c.run == id)
            .collect();
        let view = views::RunView {
            run: &run,
            steps: &steps,
            gates: &gates,
            lock: &lock,
            claims: &claims,
            csrf,
            allow_approve: self.approvals.is_some(),
            notice,
        };
        Ok(Some(views::run(&view).into_string()))
    }
}

/// Serves the board until Ctrl-C: binds first (a taken port is a clear
/// error), prints where it listens (and, with `--allow-approve`, the
/// one-time token URL), then answers.
pub fn serve(store: Arc<dyn Store>, options: &BoardOptions, quiet: bool) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Listen {
            address: options.listen.to_string(),
            reason: format!("cannot start the server's runtime: {e}"),
        })?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|e| Error::Listen {
                address: options.listen.to_string(),
                reason: match e.kind() {
                    std::io::ErrorKind::AddrInUse => {
                        "the port is taken (another board?); choose another with --listen ADDRESS:PORT".into()
                    }
                    std::io::ErrorKind::AddrNotAvailable => {
                        "this machine has no such address".into()
                    }
                    _ => e.to_string(),
                },
            })?;
        let address = listener.local_addr().map_err(|e| Error::Listen {
            address: options.listen.to_string(),
            reason: e.to_string(),
        })?;
        let token = if options.allow_approve {
            Some(approve::random_hex(24).map_err(|e| Error::Listen {
                address: address.to_string(),
                reason: format!("no randomness for the approval token: {e}"),
            })?)
        } else {
            None
        };
        let base = format!("http://{address}/");
        if !quiet {
            eprintln!("ferry board: {} on {base}", store.location());
            if !address.ip().is_loopback() {
                eprintln!(
                    "warning: the board listens beyond this machine ({address}): anyone who reaches it sees every run"
                );
            }
        }
        if let Some(token) = &token {
            // On stdout, so a wrapper (or a test) can read it; stderr is for people.
            println!("approve from the page: open {base}?token={token} (works once)");
        } else if !quiet {
            eprintln!("read-only: start with --allow-approve to approve gates from the page");
        }
        let board = Arc::new(Board::new(store, token));
        let app = routes::router(board.clone(), address);
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = tokio::signal::ctrl_c().await;
                // Open pages hold their live stream: end those, then stop.
                board.close();
            })
            .await
            .map_err(|e| Error::Listen {
                address: address.to_string(),
                reason: e.to_string(),
            })
    })
}
