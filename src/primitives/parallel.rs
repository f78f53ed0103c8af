//! `parallel(items, |item| { ... }, #{ limit: N })`: runs the closure for
//! every item on at most `limit` threads. Branches may contain steps (their
//! names must be unique, e.g. include the item). After the first failure no
//! new branch starts; running ones finish; then the call fails with that
//! first error. Results come back in input order.

use crate::engine::control::runtime_error;
use crate::engine::frames;
use crate::primitives::options::with_options;
use rhai::{Array, Dynamic, Engine, EvalAltResult, FnPtr, Map, NativeCallContext};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Branches run when no `limit` is given.
pub const DEFAULT_LIMIT: usize = 8;
/// Rhai recursion needs more than a default thread stack.
const BRANCH_STACK: usize = 8 * 1024 * 1024;

pub fn register(engine: &mut Engine, session: &std::sync::Arc<crate::engine::Session>) {
    let planning = session.plan.is_some();
    with_options!(
        register_into_engine(engine),
        "parallel",
        ["items: Array", "branch: FnPtr"],
        "options: Map",
        "Array",
        [
            "/// Calls `branch(item)` for every item, at most `options.limit` at a time",
            "/// (default 8), and returns the results in input order. The first failure",
            "/// stops new branches from starting and fails the call once running ones finish.",
            "///",
            "/// ```rhai",
            "/// parallel(apps, |app| step(`bridge ${app}`, || bridge(app)), #{ limit: 20 });",
            "/// ```",
        ],
        [planning],
        |ctx, items: Array, branch: FnPtr; options| parallel(&ctx, items, branch, options, planning)
    );
}

fn parallel(
    ctx: &NativeCallContext,
    items: Array,
    branch: FnPtr,
    options: &Map,
    planning: bool,
) -> Result<Array, Box<EvalAltResult>> {
    let pos = ctx.call_position();
    let limit = match options.get("limit") {
        None => DEFAULT_LIMIT,
        Some(v) => match v.as_int() {
            Ok(n) if n >= 1 => n as usize,
            _ => {
                return Err(runtime_error(
                    format!("parallel: `limit` must be a positive integer, got {v}"),
                    pos,
                ));
            }
        },
    };
    if let Some(unknown) = options.keys().find(|k| k.as_str() != "limit") {
        return Err(runtime_error(
            format!("parallel: unknown option `{unknown}` (known: limit)"),
            pos,
        ));
    }
    if items.is_empty() {
        return Ok(Array::new());
    }
    // A plan reads in input order, one branch after the other.
    let limit = if planning { 1 } else { limit };

    #[allow(deprecated)]
    let stored = ctx.store_data();
    let engine = ctx.engine();
    let parent = frames::snapshot();
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let results: Mutex<Vec<Option<Dynamic>>> = Mutex::new(vec![None; items.len()]);
    let first_error: Mutex<Option<Box<EvalAltResult>>> = Mutex::new(None);

    std::thread::scope(|scope| -> Result<(), Box<EvalAltResult>> {
        let workers = limit.min(items.len());
        let mut handles = Vec::with_capacity(workers);
        for _ in 0..workers {
            let worker = || {
                frames::enter_branch(parent.clone());
                #[allow(deprecated)]
                let ctx = stored.create_context(engine);
                // A closure's captured variables are shared values, and a
                // method call locks its receiver for writing: branches running
                // at once would collide ("data race"). Each worker gets its own
                // copies; what a branch changes in them stays in the branch.
                let mut branch = branch.clone();
                let own: Vec<Dynamic> = branch.iter_curry().map(Dynamic::flatten_clone).collect();
                branch.set_curry(own);
                loop {
                    if failed.load(Ordering::SeqCst) {
                        return;
                    }
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(i) else { return };
                    match branch.call_within_context::<Dynamic>(&ctx, (item.clone(),)) {
                        Ok(value) => {
                            results.lock().unwrap_or_else(|p| p.into_inner())[i] = Some(value)
                        }
                        Err(err) => {
                            failed.store(true, Ordering::SeqCst);
                            first_error
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .get_or_insert(err);
                            return;
                        }
                    }
                }
            };
            let handle = std::thread::Builder::new()
                .name("ferry-branch".into())
                .stack_size(BRANCH_STACK)
                .spawn_scoped(scope, worker)
                .map_err(|e| {
                    runtime_error(format!("parallel: cannot start a branch thread: {e}"), pos)
                })?;
            handles.push(handle);
        }
        for handle in handles {
            if handle.join().is_err() {
                failed.store(true, Ordering::SeqCst);
                first_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert_with(|| runtime_error("parallel: a branch panicked", pos));
            }
        }
        Ok(())
    })?;

    if let Some(err) = first_error.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(err);
    }
    Ok(results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .map(|v| v.unwrap_or(Dynamic::UNIT))
        .collect())
}
