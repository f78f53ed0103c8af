//! Lease (`coordination.k8s.io/v1`), as ferry's journal uses them for its
//! run locks: a positive duration, non-negative transitions.

use super::Causes;
use serde_json::Value;

pub fn validate(causes: &mut Causes, object: &Value) {
    let spec = &object["spec"];
    if let Some(n) = spec["leaseDurationSeconds"].as_i64()
        && n <= 0
    {
        causes.invalid(
            "spec.leaseDurationSeconds",
            &spec["leaseDurationSeconds"],
            "must be greater than 0",
        );
    }
    if let Some(n) = spec["leaseTransitions"].as_i64()
        && n < 0
    {
        causes.invalid(
            "spec.leaseTransitions",
            &spec["leaseTransitions"],
            "must be greater than or equal to 0",
        );
    }
}
