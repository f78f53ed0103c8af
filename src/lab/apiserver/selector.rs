//! Label selectors (`app=app1,tier in (web,api),!legacy`) and field
//! selectors (`metadata.name=app1`), as `kubectl get -l` / `--field-selector`
//! send them.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector; empty matches everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LabelSelector(Vec<Requirement>);

impl LabelSelector {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let req = if let Some(key) = part.strip_prefix('!') {
                Requirement::NotExists(key.trim().to_owned())
            } else if let Some((key, values)) = split_set(part, " notin ") {
                Requirement::NotIn(key, values?)
            } else if let Some((key, values)) = split_set(part, " in ") {
                Requirement::In(key, values?)
            } else if let Some((key, value)) = part.split_once("!=") {
                Requirement::NotEquals(key.trim().to_owned(), operand(value)?)
            } else if let Some((key, value)) =
                part.split_once("==").or_else(|| part.split_once('='))
            {
                Requirement::Equals(key.trim().to_owned(), operand(value)?)
            } else {
                Requirement::Exists(part.to_owned())
            };
            requirements.push(req);
        }
        Ok(LabelSelector(requirements))
    }

    /// Builds a selector from a Service's or Deployment's `key: value` map.
    pub fn from_map(map: &serde_json::Map<String, Value>) -> Self {
        LabelSelector(
            map.iter()
                .map(|(k, v)| {
                    Requirement::Equals(k.clone(), v.as_str().unwrap_or_default().to_owned())
                })
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn matches(&self, labels: &Value) -> bool {
        let get = |key: &str| labels.get(key).and_then(Value::as_str);
        self.0.iter().all(|req| match req {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            Requirement::NotIn(k, vs) => get(k).is_none_or(|l| !vs.iter().any(|v| v == l)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }
}

/// Commas inside `in (a,b)` do not separate requirements.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn split_set(part: &str, op: &str) -> Option<(String, Result<Vec<String>, String>)> {
    let (key, rest) = part.split_once(op)?;
    let rest = rest.trim();
    let values = rest
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .map(|inner| {
            inner
                .split(',')
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
                .collect()
        })
        .ok_or_else(|| {
            format!("unable to parse requirement: expected a parenthesised set in `{part}`")
        });
    Some((key.trim().to_owned(), values))
}

/// A field selector over dotted paths (`metadata.name`, `status.phase`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldSelector(Vec<(String, bool, String)>);

impl FieldSelector {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut terms = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (path, equal, value) = if let Some((p, v)) = part.split_once("!=") {
                (p, false, v)
            } else if let Some((p, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                (p, true, v)
            } else {
                return Err(format!(
                    "invalid field selector `{part}`: expected field=value or field!=value"
                ));
            };
            terms.push((path.trim().to_owned(), equal, value.trim().to_owned()));
        }
        Ok(FieldSelector(terms))
    }

    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(path, equal, value)| {
            let found = path.split('.').try_fold(object, |v, part| v.get(part));
            let text = match found {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            };
            (text == *value) == *equal
        })
    }
}

/// The value after `=`, `==` or `!=`; another operator there is refused
/// as kube-apiserver's parser refuses it.
fn operand(value: &str) -> Result<String, String> {
    let value = value.trim();
    match value.chars().next() {
        Some(c @ ('=' | '!' | '<' | '>')) => Err(format!(
            "unable to parse requirement: found '{c}', expected: identifier"
        )),
        _ => Ok(value.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors_follow_kubectl_syntax() {
        let labels = json!({ "app": "app1", "tier": "web" });
        let yes = [
            "app=app1",
            "app==app1",
            "app!=app2",
            "tier in (web,api)",
            "tier notin (db)",
            "app",
            "!legacy",
            "app=app1,tier in (web, api)",
        ];
        for s in yes {
            assert!(
                LabelSelector::parse(s).unwrap().matches(&labels),
                "{s} should match"
            );
        }
        let no = [
            "app=app2",
            "tier in (db)",
            "legacy",
            "!app",
            "app=app1,tier=db",
        ];
        for s in no {
            assert!(
                !LabelSelector::parse(s).unwrap().matches(&labels),
                "{s} should not match"
            );
        }
        assert!(LabelSelector::parse("tier in web").is_err());
    }

    #[test]
    fn field_selectors_read_dotted_paths() {
        let obj = json!({ "metadata": { "name": "a", "namespace": "n" }, "status": { "phase": "Running" } });
        assert!(
            FieldSelector::parse("metadata.name=a,status.phase=Running")
                .unwrap()
                .matches(&obj)
        );
        assert!(
            FieldSelector::parse("metadata.namespace!=m")
                .unwrap()
                .matches(&obj)
        );
        assert!(
            !FieldSelector::parse("metadata.name=b")
                .unwrap()
                .matches(&obj)
        );
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
