//! Which step the current thread is inside. The engine's thread and every
//! `parallel` branch thread keep their own stack; a branch starts with a copy
//! of its parent's, so mutations in a branch of a step are inside that step.

use std::cell::RefCell;

#[derive(Clone, Default)]
pub struct Frames {
    stack: Vec<Frame>,
    in_branch: bool,
}

#[derive(Clone)]
struct Frame {
    name: String,
    sleeps: u32,
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

/// Whether this thread runs a `parallel` branch.
pub fn in_branch() -> bool {
    FRAMES.with(|f| f.borrow().in_branch)
}

/// Runs `f` inside step `name`; the frame is popped even if `f` unwinds.
pub fn with_frame<R>(name: &str, f: impl FnOnce() -> R) -> R {
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            FRAMES.with(|f| f.borrow_mut().stack.pop());
        }
    }
    FRAMES.with(|f| {
        f.borrow_mut().stack.push(Frame {
            name: name.to_owned(),
            sleeps: 0,
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
pub fn enter_branch(mut frames: Frames) {
    frames.in_branch = true;
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
