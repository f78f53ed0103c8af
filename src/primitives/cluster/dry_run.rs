//! What a mutation would write, shown under its step during `ferry run
//! --dry-run`: a field-by-field diff of the object the server returned for
//! the dry-run request against the live one.

use serde_json::Value;

/// Metadata that changes on every write; not what a script means.
const NOISE: &[&str] = &[
    "metadata.managedFields",
    "metadata.resourceVersion",
    "metadata.generation",
    "metadata.creationTimestamp",
    "metadata.uid",
    "status",
];

fn render(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 120 {
        format!("{}…", text.chars().take(119).collect::<String>())
    } else {
        text
    }
}

/// Lines `~ path: old → new`, `+ path: value`, `- path: value`.
pub fn diff(before: &Value, after: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    walk("", before, after, &mut lines);
    lines
}

fn walk(path: &str, before: &Value, after: &Value, out: &mut Vec<String>) {
    if NOISE.contains(&path) || before == after {
        return;
    }
    let join = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    match (before, after) {
        (Value::Object(b), Value::Object(a)) => {
            for (k, bv) in b {
                match a.get(k) {
                    Some(av) => walk(&join(k), bv, av, out),
                    None if !NOISE.contains(&join(k).as_str()) => {
                        out.push(format!("- {}: {}", join(k), render(bv)))
                    }
                    None => {}
                }
            }
            for (k, av) in a {
                if !b.contains_key(k) && !NOISE.contains(&join(k).as_str()) {
                    out.push(format!("+ {}: {}", join(k), render(av)));
                }
            }
        }
        (Value::Array(b), Value::Array(a)) if b.len() == a.len() => {
            for (i, (bv, av)) in b.iter().zip(a).enumerate() {
                walk(&format!("{path}[{i}]"), bv, av, out);
            }
        }
        _ => out.push(format!("~ {path}: {} → {}", render(before), render(after))),
    }
}

/// The report of one dry-run mutation.
pub fn report(cluster: &str, what: &str, before: Option<&Value>, after: &Value) -> String {
    match before {
        None => {
            let mut text = format!("dry run: would create {what} on cluster `{cluster}`");
            for line in diff(&Value::Object(Default::default()), after) {
                text.push_str("\n  ");
                text.push_str(&line);
            }
            text
        }
        Some(before) => {
            let lines = diff(before, after);
            if lines.is_empty() {
                format!("dry run: {what} on cluster `{cluster}` is already as wanted (no change)")
            } else {
                let mut text = format!("dry run: would change {what} on cluster `{cluster}`:");
                for line in lines {
                    text.push_str("\n  ");
                    text.push_str(&line);
                }
                text
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_conversion_reads_as_what_changes() {
        let before = json!({"metadata": {"name": "app1", "resourceVersion": "1"},
            "spec": {"type": "ClusterIP", "clusterIP": "10.0.0.5", "selector": {"app": "app1"}, "ports": [{"port": 80}]}});
        let after = json!({"metadata": {"name": "app1", "resourceVersion": "2"},
            "spec": {"type": "ExternalName", "externalName": "old.zone", "ports": [{"port": 80}]}});
        let mut lines = diff(&before, &after);
        lines.sort();
        assert_eq!(
            lines,
            vec![
                "+ spec.externalName: \"old.zone\"",
                "- spec.clusterIP: \"10.0.0.5\"",
                "- spec.selector: {\"app\":\"app1\"}",
                "~ spec.type: \"ClusterIP\" → \"ExternalName\"",
            ]
        );
        assert!(
            report("old", "Service app1-ns/app1", Some(&before), &before).contains("no change")
        );
    }
}
