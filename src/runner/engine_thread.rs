//! Rhai blocks and the runtime must not: the script runs on a thread of
//! its own, while the calling thread turns Ctrl-C / SIGTERM into a cancel.

use crate::engine::Session;
use crate::error::exit;

/// Runs `work` on a dedicated thread (Rhai blocks; the runtime must not),
/// while this thread turns Ctrl-C / SIGTERM into a cancel. A second
/// signal exits at once: every journal write is a transaction, so the
/// journal stays consistent either way.
pub(super) fn on_engine_thread<R: Send>(
    rt: &tokio::runtime::Runtime,
    session: &Session,
    work: impl FnOnce() -> R + Send,
) -> R {
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("ferry-engine".into())
            .stack_size(16 * 1024 * 1024)
            .spawn_scoped(scope, move || {
                let result = work();
                let _ = done_tx.send(());
                result
            })
            .expect("spawn the engine thread");
        rt.block_on(async {
            tokio::select! {
                _ = &mut done_rx => {}
                _ = shutdown_signal() => {
                    session.cancel.cancel();
                    tokio::spawn(async {
                        shutdown_signal().await;
                        std::process::exit(exit::INTERRUPTED);
                    });
                    let _ = done_rx.await;
                }
            }
        });
        match handle.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Ctrl-C or SIGTERM (what Kubernetes sends a pod that runs ferry).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending::<()>().await } } => {}
    }
}
