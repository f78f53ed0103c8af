//! Who owns a record, and what a mutation must change. Shared by both
//! providers: every record set ferry creates gets a companion TXT record
//! (external-dns style) at `_ferry-<type>.<name>` holding
//! `heritage=ferry,ferry/owner=<owner>`. The owner is the run id, or the
//! zone spec's `owner` so that a team's runs (migrate, later finalize) share
//! their records.
//!
//! `upsert` and `delete` refuse a record set that exists without an
//! ownership record naming the same owner, unless forced; the refusal says
//! who owns it (or that ferry did not create it).

use crate::ports::dns::{Change, RecordSet};

const PREFIX: &str = "_ferry-";

/// The ownership record's name for `name`/`rtype`.
pub fn owner_name(name: &str, rtype: &str) -> String {
    format!("{PREFIX}{}.{name}", rtype.to_ascii_lowercase())
}

/// Whether `name` (absolute) is an ownership record's name, which scripts
/// must not manage directly.
pub fn is_reserved(name: &str) -> bool {
    name.starts_with(PREFIX)
}

pub fn owner_value(owner: &str) -> String {
    format!("heritage=ferry,ferry/owner={owner}")
}

/// A valid owner: letters, digits, `.`, `_`, `-`, `:`, `@`, at most 200.
pub fn valid_owner(owner: &str) -> bool {
    !owner.is_empty()
        && owner.len() <= 200
        && owner
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:@".contains(c))
}

/// What an ownership record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// No ownership record.
    None,
    /// Created by ferry for this owner.
    Ferry(String),
    /// A TXT record there that ferry did not write.
    Foreign(String),
}

pub fn parse_owner(record: Option<&RecordSet>) -> Owner {
    let Some(record) = record else {
        return Owner::None;
    };
    for value in &record.values {
        let mut heritage = false;
        let mut owner = None;
        for part in value.split(',') {
            match part.trim().split_once('=') {
                Some(("heritage", "ferry")) => heritage = true,
                Some(("ferry/owner", o)) => owner = Some(o.to_owned()),
                _ => {}
            }
        }
        if let (true, Some(owner)) = (heritage, owner) {
            return Owner::Ferry(owner);
        }
    }
    Owner::Foreign(record.values.join(" "))
}

/// Why a mutation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
    /// The owner found, if ferry's.
    pub owner: Option<String>,
}

/// Refuses to touch an existing record set that `me` does not own.
fn check(
    current: &RecordSet,
    owner_record: Option<&RecordSet>,
    me: &str,
    verb: &str,
) -> Result<(), Refusal> {
    let oname = owner_name(&current.name, &current.rtype);
    let (why, owner) = match parse_owner(owner_record) {
        Owner::Ferry(o) if o == me => return Ok(()),
        Owner::Ferry(o) => (format!("is owned by `{o}` ({oname} TXT)"), Some(o)),
        Owner::None => (
            format!("was not created by ferry (no ownership record {oname} TXT)"),
            None,
        ),
        Owner::Foreign(text) => (
            format!("was not created by ferry ({oname} TXT holds \"{text}\")"),
            None,
        ),
    };
    Err(Refusal {
        message: format!(
            "refusing to {verb} `{}` {}: it {why}, not by `{me}`; pass #{{ force: true }} to {verb} it anyway",
            current.name, current.rtype
        ),
        owner,
    })
}

/// The change that makes `desired` (and its ownership record) what the zone
/// holds, given what was read. An empty change means nothing to do.
pub fn plan_upsert(
    desired: &RecordSet,
    current: Option<&RecordSet>,
    owner_record: Option<&RecordSet>,
    me: &str,
    force: bool,
) -> Result<Change, Refusal> {
    if let Some(current) = current
        && !force
    {
        check(current, owner_record, me, "overwrite")?;
    }
    let desired_owner = RecordSet::new(
        &owner_name(&desired.name, &desired.rtype),
        "TXT",
        desired.ttl,
        vec![owner_value(me)],
    );
    let mut change = Change::default();
    if current != Some(desired) {
        change.deletions.extend(current.cloned());
        change.additions.push(desired.clone());
    }
    if owner_record != Some(&desired_owner) {
        change.deletions.extend(owner_record.cloned());
        change.additions.push(desired_owner);
    }
    Ok(change)
}

/// The change that removes `current` and its ownership record. A stale
/// ownership record of another owner (its record already gone) is left alone.
pub fn plan_delete(
    current: Option<&RecordSet>,
    owner_record: Option<&RecordSet>,
    me: &str,
    force: bool,
) -> Result<Change, Refusal> {
    let mut change = Change::default();
    match current {
        Some(current) => {
            if !force {
                check(current, owner_record, me, "delete")?;
            }
            change.deletions.push(current.clone());
            change.deletions.extend(owner_record.cloned());
        }
        None => {
            if matches!(parse_owner(owner_record), Owner::Ferry(ref o) if o == me) || force {
                change.deletions.extend(owner_record.cloned());
            }
        }
    }
    Ok(change)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(values: &[&str]) -> RecordSet {
        RecordSet::new(
            "old.z.",
            "A",
            60,
            values.iter().map(|s| (*s).to_owned()).collect(),
        )
    }

    fn owned_by(o: &str) -> RecordSet {
        RecordSet::new("_ferry-a.old.z.", "TXT", 60, vec![owner_value(o)])
    }

    #[test]
    fn creating_adds_the_record_and_its_ownership_record_in_one_change() {
        let c = plan_upsert(&a(&["10.0.0.1"]), None, None, "r1", false).unwrap();
        assert!(c.deletions.is_empty());
        assert_eq!(c.additions.len(), 2);
        assert_eq!(c.additions[1].name, "_ferry-a.old.z.");
        assert_eq!(c.additions[1].values, vec!["heritage=ferry,ferry/owner=r1"]);
    }

    #[test]
    fn an_unchanged_record_needs_no_change_and_a_new_value_replaces_exactly_what_was_read() {
        let cur = a(&["10.0.0.1"]);
        let own = owned_by("r1");
        let c = plan_upsert(&cur, Some(&cur), Some(&own), "r1", false).unwrap();
        assert!(c.is_empty());
        let c = plan_upsert(&a(&["10.0.0.2"]), Some(&cur), Some(&own), "r1", false).unwrap();
        assert_eq!(c.deletions, vec![cur]);
        assert_eq!(c.additions, vec![a(&["10.0.0.2"])]);
    }

    #[test]
    fn foreign_records_are_refused_naming_the_owner_unless_forced() {
        let cur = a(&["10.0.0.1"]);
        let e = plan_upsert(&cur, Some(&cur), Some(&owned_by("team-y")), "r1", false).unwrap_err();
        assert!(e.message.contains("owned by `team-y`"), "{}", e.message);
        assert_eq!(e.owner.as_deref(), Some("team-y"));
        let e = plan_delete(Some(&cur), None, "r1", false).unwrap_err();
        assert!(e.message.contains("not created by ferry"), "{}", e.message);
        let txt = RecordSet::new("_ferry-a.old.z.", "TXT", 60, vec!["v=spf1".into()]);
        let e = plan_delete(Some(&cur), Some(&txt), "r1", false).unwrap_err();
        assert!(e.message.contains("v=spf1"), "{}", e.message);
        let c = plan_delete(Some(&cur), Some(&owned_by("team-y")), "r1", true).unwrap();
        assert_eq!(c.deletions.len(), 2);
        let c = plan_upsert(&cur, Some(&cur), None, "r1", true).unwrap();
        assert_eq!(c.additions.len(), 1, "forcing takes ownership");
    }

    #[test]
    fn deleting_nothing_is_a_no_op_and_stale_foreign_claims_stay() {
        assert!(plan_delete(None, None, "r1", false).unwrap().is_empty());
        assert!(
            plan_delete(None, Some(&owned_by("x")), "r1", false)
                .unwrap()
                .is_empty()
        );
        assert_eq!(
            plan_delete(None, Some(&owned_by("r1")), "r1", false)
                .unwrap()
                .deletions
                .len(),
            1
        );
    }
}
