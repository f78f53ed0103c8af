//! A caller inside a lab cluster: a thread that calls URLs from a pod every
//! `interval` (curl through the lab's exec, the pod's own vantage point:
//! its cluster's DNS with the cache, kube-proxy, the ingress) and keeps
//! every reply, until stopped or dropped, so a failing test never leaves it
//! running. Calling at a fixed rhythm is the point here, not a wait.

use ferry::lab::apiserver::PodCommands;
use ferry::lab::dataplane::Network;
use ferry::lab::dataplane::exec::LabCommands;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Call {
    pub url: String,
    /// From the poller's start.
    pub at: Duration,
    pub reply: String,
    /// The command's exit code.
    pub status: Option<i32>,
}

impl Call {
    /// Whether the app answered (`Hello, I'm ...`).
    pub fn ok(&self) -> bool {
        self.reply.starts_with("Hello, I'm")
    }
}

pub struct Poller {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Vec<Call>>>,
}

impl Poller {
    pub fn start(
        network: Arc<Network>,
        cluster: &str,
        namespace: &str,
        pod: &str,
        urls: &[&str],
        interval: Duration,
    ) -> Poller {
        let commands = urls
            .iter()
            .map(|url| {
                let argv = ["curl", "-sS", "-m", "2", url];
                (
                    (*url).to_owned(),
                    argv.iter().map(|a| (*a).to_owned()).collect(),
                )
            })
            .collect();
        Poller::start_commands(network, cluster, namespace, pod, commands, interval)
    }

    /// [`Poller::start`] with a command line of its own per call, each
    /// `(label, argv)`; a call's `url` is its label.
    pub fn start_commands(
        network: Arc<Network>,
        cluster: &str,
        namespace: &str,
        pod: &str,
        commands: Vec<(String, Vec<String>)>,
        interval: Duration,
    ) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let (cluster, namespace, pod) = (cluster.to_owned(), namespace.to_owned(), pod.to_owned());
        let urls = commands;
        let stopped = stop.clone();
        let handle = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            // The app's own calls, not exec sessions: no set-up cost.
            let commands = LabCommands {
                network,
                startup: std::time::Duration::ZERO,
            };
            let started = Instant::now();
            let mut calls = Vec::new();
            while !stopped.load(Ordering::SeqCst) {
                for (url, argv) in &urls {
                    let at = started.elapsed();
                    let out =
                        rt.block_on(commands.run(&cluster, &namespace, &pod, None, argv.clone()));
                    calls.push(Call {
                        url: url.clone(),
                        at,
                        reply: format!("{}{}", out.stdout, out.stderr).trim().to_owned(),
                        status: out.status,
                    });
                }
                std::thread::sleep(interval);
            }
            calls
        });
        Poller {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops calling and returns every call made.
    pub fn stop(mut self) -> Vec<Call> {
        self.stop.store(true, Ordering::SeqCst);
        self.handle
            .take()
            .map(|h| h.join().unwrap())
            .unwrap_or_default()
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
