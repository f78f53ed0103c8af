//! The ledger's two tables: every legal move of a journal record and of a
//! step's undo. Nothing else decides what status a record may take next.

use crate::journal::{StepStatus, UndoStatus};

/// What happens to a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// An attempt begins (the first, or a re-run of one that did not complete).
    Start,
    Complete,
    Fail,
    /// A signal (Ctrl-C, a gate inside the body) stopped it; it runs again.
    Interrupt,
    /// A gate waits for its approval.
    Wait,
}

/// Every legal move of a record: (from, move) -> to. `None` is "no record
/// yet". A completed record never moves again: it only replays.
const TRANSITIONS: &[(Option<StepStatus>, Move, StepStatus)] = {
    use Move::*;
    use StepStatus::*;
    &[
        (None, Start, Running),
        // The process died during the attempt: it runs again.
        (Some(Running), Start, Running),
        (Some(Failed), Start, Running),
        (Some(Interrupted), Start, Running),
        (Some(Running), Complete, Completed),
        (Some(Running), Fail, Failed),
        (Some(Running), Interrupt, Interrupted),
        (Some(Running), Wait, Waiting),
        // An approved gate passes.
        (Some(Waiting), Complete, Completed),
    ]
};

/// What happens to a step's undo during a rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndoMove {
    Start,
    Finish,
    Fail,
    /// Ctrl-C: the undo runs again on the next rollback.
    Interrupt,
}

/// Every legal move of an undo: (from, move) -> to.
const UNDO_TRANSITIONS: &[(UndoStatus, UndoMove, UndoStatus)] = {
    use UndoMove::*;
    use UndoStatus::*;
    &[
        (Pending, Start, Running),
        // The process died during the undo: it runs again.
        (Running, Start, Running),
        (Failed, Start, Running),
        (Running, Finish, Done),
        (Running, Fail, Failed),
        (Running, Interrupt, Pending),
    ]
};

pub(super) fn next_status(from: Option<StepStatus>, mv: Move) -> Option<StepStatus> {
    TRANSITIONS
        .iter()
        .find(|(f, m, _)| *f == from && *m == mv)
        .map(|(_, _, to)| *to)
}

pub(super) fn next_undo(from: UndoStatus, mv: UndoMove) -> Option<UndoStatus> {
    UNDO_TRANSITIONS
        .iter()
        .find(|(f, m, _)| *f == from && *m == mv)
        .map(|(_, _, to)| *to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completed_record_never_moves() {
        for mv in [
            Move::Start,
            Move::Complete,
            Move::Fail,
            Move::Interrupt,
            Move::Wait,
        ] {
            assert_eq!(next_status(Some(StepStatus::Completed), mv), None, "{mv:?}");
        }
    }

    #[test]
    fn every_unfinished_record_can_start_again() {
        for from in [
            None,
            Some(StepStatus::Running),
            Some(StepStatus::Failed),
            Some(StepStatus::Interrupted),
        ] {
            assert_eq!(next_status(from, Move::Start), Some(StepStatus::Running));
        }
        // A waiting gate passes only by approval.
        assert_eq!(next_status(Some(StepStatus::Waiting), Move::Start), None);
        assert_eq!(
            next_status(Some(StepStatus::Waiting), Move::Complete),
            Some(StepStatus::Completed)
        );
    }

    #[test]
    fn a_done_undo_never_runs_again_and_an_interrupted_one_does() {
        assert_eq!(next_undo(UndoStatus::Done, UndoMove::Start), None);
        assert_eq!(next_undo(UndoStatus::None, UndoMove::Start), None);
        assert_eq!(
            next_undo(UndoStatus::Running, UndoMove::Interrupt),
            Some(UndoStatus::Pending)
        );
        assert_eq!(
            next_undo(UndoStatus::Running, UndoMove::Start),
            Some(UndoStatus::Running)
        );
    }
}
