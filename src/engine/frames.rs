//! Which step the current thread is inside. The engine's thread and every
//! `parallel` branch thread keep their own stack; a branch starts with a copy
//! of its parent's, so mutations in a branch of a step are inside that step.
//!
//! A frame also says what runs in it: a step's body, a completed step's body
//! re-entered by rollback only to collect its nested steps' undos (nothing
//! may change the world there), or an undo closure.

use std::cell::RefCell;

#[derive(Clone, Default)]
pub struct Frames {
    stack: Vec<Frame>,
}

#[derive(Clone)]
struct Frame {
    name: String,
    role: Role,
    sleeps: u32,
    /// Guards running in this frame: their watch windows are never durable.
    guards: u32,
}

/// What runs inside a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A step's body, run for real.
    Body,
    /// A step's body replayed by rollback to collect nested undos.
    Collect,
    /// An undo closure run by rollback.
    Undo,
}

thread_local! {
    static FRAMES: RefCell<Frames> = RefCell::new(Frames::default());
}

/// The innermost step's name.
pub fn current() -> Option<String> {
    FRAMES.with(|f| f.borrow().stack.last().map(|frame| frame.name.clone()))
}

/// How many steps deep the current thread is.
pub fn depth() -> usize {
    FRAMES.with(|f| f.borrow().stack.len())
}

/// What the innermost frame runs, if any.
pub fn role() -> Option<Role> {
    FRAMES.with(|f| f.borrow().stack.last().map(|frame| frame.role))
}

/// Whether a guard is watching on this thread's innermost frame.
pub fn in_guard() -> bool {
    FRAMES.with(|f| {
        f.borrow()
            .stack
            .last()
            .is_some_and(|frame| frame.guards > 0)
    })
}

/// Runs `f` as a guard's body: sleeps inside it are watch windows that start
/// over whenever the step runs again, never durable timers. Also returns
/// when the body first changed the world ([`note_change`]): the flip the
/// guard's chart marks.
pub fn with_guard<R>(f: impl FnOnce() -> R) -> (R, Option<std::time::Instant>) {
    fn adjust(delta: i32) {
        FRAMES.with(|f| {
            if let Some(frame) = f.borrow_mut().stack.last_mut() {
                frame.guards = frame.guards.saturating_add_signed(delta);
            }
        })
    }
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            adjust(-1);
        }
    }
    adjust(1);
    let _leave = Leave;
    let outer = FIRST_CHANGE.with(|c| c.take());
    let result = f();
    let first = FIRST_CHANGE.with(|c| c.replace(outer));
    (result, first)
}

/// A check that says a guard's limits are already broken.
pub type Breach = std::sync::Arc<dyn Fn() -> bool + Send + Sync>;

thread_local! {
    /// The checks of the guards with `stop_early` whose bodies run on this thread.
    static BREACHES: std::cell::RefCell<Vec<Breach>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` (a guard's body) with `breach` checked by every wait inside it.
pub fn with_breach<R>(breach: Option<Breach>, f: impl FnOnce() -> R) -> R {
    let Some(breach) = breach else {
        return f();
    };
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            BREACHES.with(|b| b.borrow_mut().pop());
        }
    }
    BREACHES.with(|b| b.borrow_mut().push(breach));
    let _pop = Pop;
    f()
}

/// A check for waits: whether any enclosing guard with `stop_early` has
/// broken its limits (`None` when there is none to ask).
pub fn breach() -> Option<Breach> {
    let all: Vec<Breach> = BREACHES.with(|b| b.borrow().clone());
    if all.is_empty() {
        return None;
    }
    Some(std::sync::Arc::new(move || all.iter().any(|b| b())))
}

/// Resolves once `breach` says so (polled: the counts it reads are atomics).
pub async fn breached(breach: &Breach) {
    while !breach() {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

thread_local! {
    /// When the innermost guard's body on this thread first changed the world.
    static FIRST_CHANGE: std::cell::Cell<Option<std::time::Instant>> =
        const { std::cell::Cell::new(None) };
}

/// A primitive is about to change the world: inside a guard, the first such
/// moment is the flip its statistics mark.
pub fn note_change() {
    if in_guard() {
        FIRST_CHANGE.with(|c| {
            if c.get().is_none() {
                c.set(Some(std::time::Instant::now()));
            }
        });
    }
}

/// Runs `f` inside step `name`; the frame is popped even if `f` unwinds.
pub fn with_frame<R>(name: &str, f: impl FnOnce() -> R) -> R {
    with_role(name, Role::Body, f)
}

/// Runs `f` in a frame named `name` with the given role.
pub fn with_role<R>(name: &str, role: Role, f: impl FnOnce() -> R) -> R {
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            FRAMES.with(|f| f.borrow_mut().stack.pop());
        }
    }
    FRAMES.with(|f| {
        f.borrow_mut().stack.push(Frame {
            name: name.to_owned(),
            role,
            sleeps: 0,
            guards: 0,
        })
    });
    let _pop = Pop;
    f()
}

/// A copy of this thread's frames, for a branch thread to start from.
pub fn snapshot() -> Frames {
    FRAMES.with(|f| f.borrow().clone())
}

/// Makes this (branch) thread continue from `frames`.
pub fn enter_branch(frames: Frames) {
    FRAMES.with(|f| *f.borrow_mut() = frames);
}

/// Names the next durable timer of the innermost step: `<step>/sleep#<n>`.
pub fn next_timer_name() -> Option<String> {
    FRAMES.with(|f| {
        let mut frames = f.borrow_mut();
        let frame = frames.stack.last_mut()?;
        frame.sleeps += 1;
        Some(format!("{}/sleep#{}", frame.name, frame.sleeps))
    })
}
