//! How busy a lab API server is, kept apart from the objects it stores:
//! benchmarks read the request and connection counts (`/metrics`), and
//! tests make some paths answer 429 to exercise clients' retries.

use std::sync::Mutex;

/// Counters of the API server's traffic: HTTP requests and the (TLS)
/// connections they came on; and, for tests, throttling (429) of requests
/// to some paths.
#[derive(Debug, Default)]
pub struct Traffic {
    pub requests: std::sync::atomic::AtomicU64,
    pub connections: std::sync::atomic::AtomicU64,
    /// `pods/exec` sessions opened: a guard from a pod should open one,
    /// not one per probe.
    pub exec_sessions: std::sync::atomic::AtomicU64,
    throttle: Mutex<Option<Throttle>>,
}

/// Requests whose path contains `path`: when each arrived, and how many of
/// the next ones are answered 429 Too Many Requests.
#[derive(Debug, Clone)]
pub struct Throttle {
    pub path: String,
    pub refuse: u64,
    pub refused: u64,
    pub arrivals: Vec<std::time::Instant>,
}

impl Traffic {
    /// (requests, connections) so far.
    pub fn counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.requests.load(Relaxed), self.connections.load(Relaxed))
    }

    /// `pods/exec` sessions so far.
    pub fn exec_sessions(&self) -> u64 {
        self.exec_sessions
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// From now on, records requests whose path contains `path` and answers
    /// the next `refuse` of them 429 (`Retry-After: 0`).
    pub fn throttle(&self, path: &str, refuse: u64) {
        *self.throttle.lock().unwrap_or_else(|p| p.into_inner()) = Some(Throttle {
            path: path.to_owned(),
            refuse,
            refused: 0,
            arrivals: Vec::new(),
        });
    }

    /// What [`Traffic::throttle`] saw so far.
    pub fn throttled(&self) -> Option<Throttle> {
        self.throttle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Counts a request to `path`; true if it must be answered 429.
    pub fn arrive(&self, path: &str) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        self.requests.fetch_add(1, Relaxed);
        let mut throttle = self.throttle.lock().unwrap_or_else(|p| p.into_inner());
        let Some(t) = throttle.as_mut().filter(|t| path.contains(&t.path)) else {
            return false;
        };
        t.arrivals.push(std::time::Instant::now());
        if t.refused < t.refuse {
            t.refused += 1;
            return true;
        }
        false
    }
}
