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
        Poller::start_with(network, cluster, namespace, pod, urls, interval, &[])
    }

    /// Like [`Poller::start`], with more curl arguments (`-H`, `Host: ...`).
    pub fn start_with(
        network: Arc<Network>,
        cluster: &str,
        namespace: &str,
        pod: &str,
        urls: &[&str],
        interval: Duration,
        curl_args: &[&str],
    ) -> Poller {
        let curl_args: Vec<String> = curl_args.iter().map(|a| (*a).to_owned()).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let (cluster, namespace, pod) = (cluster.to_owned(), namespace.to_owned(), pod.to_owned());
        let urls: Vec<String> = urls.iter().map(|u| (*u).to_owned()).collect();
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
                for url in &urls {
                    let at = started.elapsed();
                    let mut argv: Vec<String> = ["curl", "-sS", "-m", "2"]
                        .iter()
                        .map(|a| (*a).to_owned())
                        .collect();
                    argv.extend(curl_args.iter().cloned());
                    argv.push(url.clone());
                    let out = rt.block_on(commands.run(&cluster, &namespace, &pod, None, argv));
                    calls.push(Call {
                        url: url.clone(),
                        at,
                        reply: format!("{}{}", out.stdout, out.stderr).trim().to_owned(),
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
