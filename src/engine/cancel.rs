//! Cancellation shared by the signal handler, the engine's progress hook and
//! every blocking primitive.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::watch;

#[derive(Clone)]
pub struct Cancel {
    tx: Arc<watch::Sender<bool>>,
    /// The same state for the engine's progress hook, which asks after
    /// every script operation: an atomic load, not the channel's lock.
    flag: Arc<AtomicBool>,
}

impl Default for Cancel {
    fn default() -> Self {
        Cancel {
            tx: Arc::new(watch::channel(false).0),
            flag: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl Cancel {
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.tx.send_replace(true);
    }

    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// Resolves once cancelled.
    pub async fn cancelled(&self) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }
}
