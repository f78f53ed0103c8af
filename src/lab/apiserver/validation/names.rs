//! The string formats kube-apiserver checks (apimachinery's
//! `util/validation` and `api/validate/content`), each returning the
//! real server's messages, one per rule broken, in its order.

/// `(e.g. 'a',  or 'b', regex used for validation is 're')`, apimachinery's
/// `RegexError` (the doubled space is the original's).
fn regex_error(msg: &str, re: &str, examples: &[&str]) -> String {
    let shown: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!(
        "{msg} (e.g. {}regex used for validation is '{re}')",
        shown.join(" or ")
    )
}

const LABEL_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const SUBDOMAIN_FMT: &str = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const KEY_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";

fn lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| lower_alnum(c) || c == '-')
        && s.starts_with(lower_alnum)
        && s.ends_with(lower_alnum)
}

fn is_subdomain(s: &str) -> bool {
    s.split('.').all(is_label)
}

/// An RFC 1123 label (Namespace, Service and port names).
pub fn dns1123_label(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 characters".to_owned());
    }
    if !is_label(value) {
        if is_subdomain(value) {
            errs.push("must not contain dots".to_owned());
        } else {
            errs.push(regex_error(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                LABEL_FMT,
                &["my-name", "123-abc"],
            ));
        }
    }
    errs
}

/// An RFC 1123 subdomain (most object names, ExternalName hosts).
pub fn dns1123_subdomain(value: &str) -> Vec<String> {
    subdomain_with(value, "must be no more than 253 characters")
}

fn subdomain_with(value: &str, too_long: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push(too_long.to_owned());
    }
    if !is_subdomain(value) {
        errs.push(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

fn is_key_name(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    !s.is_empty()
        && s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
        && s.starts_with(alnum)
        && s.ends_with(alnum)
}

const KEY_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";

/// A label or annotation key: an optional subdomain prefix and `/`, then a
/// name of at most 63 characters.
pub fn label_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_owned());
            } else {
                errs.extend(
                    subdomain_with(prefix, "must be no more than 253 bytes")
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            return vec![format!(
                "a valid label key {} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
                regex_error(KEY_MSG, KEY_FMT, &["MyName", "my.name", "123-abc"])
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        errs.push("name part must be no more than 63 bytes".to_owned());
    }
    if !is_key_name(name) {
        errs.push(format!(
            "name part {}",
            regex_error(KEY_MSG, KEY_FMT, &["MyName", "my.name", "123-abc"])
        ));
    }
    errs
}

/// A label value: empty, or a key name of at most 63 bytes.
pub fn label_value(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push("must be no more than 63 bytes".to_owned());
    }
    if !value.is_empty() && !is_key_name(value) {
        errs.push(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
            &format!("({KEY_FMT})?"),
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// A named port (`targetPort: http`): IANA service name rules.
pub fn port_name(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 15 {
        errs.push("must be no more than 15 characters".to_owned());
    }
    if value.is_empty() || !value.chars().all(|c| lower_alnum(c) || c == '-') {
        errs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_owned(),
        );
    }
    if !value.chars().any(|c| c.is_ascii_lowercase()) {
        errs.push("must contain at least one letter (a-z)".to_owned());
    }
    if value.contains("--") {
        errs.push("must not contain consecutive hyphens".to_owned());
    }
    if value.starts_with('-') || value.ends_with('-') {
        errs.push("must not begin or end with a hyphen".to_owned());
    }
    errs
}

/// A ConfigMap or Secret key.
pub fn config_key(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 253 {
        errs.push("must be no more than 253 characters".to_owned());
    }
    if value.is_empty()
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        errs.push(regex_error(
            "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
            "[-._a-zA-Z0-9]+",
            &["key.name", "KEY_NAME", "key-name"],
        ));
    }
    if value == "." {
        errs.push("must not be '.'".to_owned());
    } else if value == ".." {
        errs.push("must not be '..'".to_owned());
    } else if value.starts_with("..") {
        errs.push("must not start with '..'".to_owned());
    }
    errs
}

/// An IP address as `IsValidIP` checks it (the example is the real one).
pub fn ip(value: &str) -> Result<std::net::IpAddr, String> {
    value
        .parse()
        .map_err(|_| "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)".to_owned())
}

/// A value as Go's `field.Invalid` prints it: strings quoted, numbers bare,
/// structures as JSON.
pub fn shown(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "null".to_owned(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_the_real_servers() {
        assert_eq!(dns1123_label("rec.ns"), ["must not contain dots"]);
        assert!(dns1123_label("Web_1")[0].starts_with("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used"));
        assert!(label_key("a/b/c")[0].starts_with("a valid label key must consist"));
        assert!(label_key("-team")[0].starts_with("name part must consist"));
        assert!(
            label_key("Example.com/team")[0]
                .starts_with("prefix part a lowercase RFC 1123 subdomain")
        );
        assert_eq!(
            label_value(&"v".repeat(64)),
            ["must be no more than 63 bytes"]
        );
        assert!(label_value("").is_empty());
        assert_eq!(
            port_name("Bad_Name")[0],
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
        );
        assert_eq!(config_key("."), ["must not be '.'"]);
        assert!(config_key("a/b")[0].starts_with("a valid config key"));
        assert!(ip("banana").is_err());
    }
}
