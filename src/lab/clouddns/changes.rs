//! `changes.create`, the only way ferry's adapter writes: every deletion must
//! match the zone exactly and no addition may exist unless the same change
//! deletes it, checked and applied inside one [`ZoneStore::transact`] so that a
//! concurrent RFC 2136 update to the same store cannot slip in between.
//! The change is then `pending` for the configured number of polls.
//!
//! [`ZoneStore::transact`]: crate::lab::zone::ZoneStore::transact

use super::json::{Parsed, error, parse_rrset, respond, stored, ttl_of};
use super::{ChangeRecord, State};
use crate::lab::zone::{Edit, View};
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::{Value, json};

pub(super) fn create_change(s: &mut State, body: Value) -> Response<Full<Bytes>> {
    let parse_all = |field: &str| -> Result<Vec<Parsed>, ()> {
        match body.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items.iter().map(|v| parse_rrset(v).ok_or(())).collect(),
            Some(_) => Err(()),
        }
    };
    let (Ok(deletions), Ok(additions)) = (parse_all("deletions"), parse_all("additions")) else {
        return error(400, "invalid", "Invalid value for 'entity.change'");
    };
    if deletions.is_empty() && additions.is_empty() {
        return error(
            400,
            "required",
            "The 'entity.change' parameter is required but was missing.",
        );
    }
    let applied = s
        .records
        .transact(|view| check_change(view, &deletions, &additions).map(|edits| (edits, ())));
    if let Err(response) = applied {
        return *response;
    }
    let id = s.changes.len();
    let mut out = body.clone();
    out["kind"] = json!("dns#change");
    out["id"] = json!(id.to_string());
    out["startTime"] = json!("2026-01-01T00:00:00.000Z");
    let polls_left = s.pending_polls;
    s.changes.push(ChangeRecord {
        body: out.clone(),
        polls_left,
    });
    out["status"] = json!(if polls_left > 0 { "pending" } else { "done" });
    respond(StatusCode::OK, out)
}

/// The edits of a change whose deletions match the zone exactly and whose
/// additions do not exist (unless deleted by the same change).
fn check_change(
    view: &View<'_>,
    deletions: &[Parsed],
    additions: &[Parsed],
) -> Result<Vec<Edit>, Box<Response<Full<Bytes>>>> {
    for (i, (name, rtype, ttl, rrdatas)) in deletions.iter().enumerate() {
        match view.get(name, rtype) {
            None => {
                return Err(Box::new(error(
                    404,
                    "notFound",
                    &format!(
                        "The 'entity.change.deletions[{i}]' resource named '{name} ({rtype})' does not exist."
                    ),
                )));
            }
            Some(current)
                if current.ttl != ttl_of(*ttl)
                    || sorted(current.data.clone()) != sorted(rrdatas.clone()) =>
            {
                return Err(Box::new(error(
                    412,
                    "conditionNotMet",
                    &format!(
                        "Precondition not met for 'entity.change.deletions[{i}]': {name} ({rtype}) does not match the current record set"
                    ),
                )));
            }
            Some(_) => {}
        }
    }
    for (i, (name, rtype, _, _)) in additions.iter().enumerate() {
        let deleted = deletions.iter().any(|(n, t, _, _)| n == name && t == rtype);
        if !deleted && view.get(name, rtype).is_some() {
            return Err(Box::new(error(
                409,
                "alreadyExists",
                &format!(
                    "The resource 'entity.change.additions[{i}]' named '{name} ({rtype})' already exists"
                ),
            )));
        }
    }
    let mut edits: Vec<Edit> = deletions
        .iter()
        .map(|(name, rtype, _, _)| Edit::Remove {
            name: name.clone(),
            rtype: rtype.clone(),
        })
        .collect();
    edits.extend(additions.iter().map(|(name, rtype, ttl, rrdatas)| {
        Edit::Put(stored(name.clone(), rtype.clone(), *ttl, rrdatas.clone()))
    }));
    Ok(edits)
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}
