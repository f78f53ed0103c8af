//! Step values cross the journal as JSON. Maps, arrays, strings, numbers,
//! booleans and unit round-trip exactly (integers stay integers, floats stay
//! floats, nesting up to [`MAX_VALUE_DEPTH`] levels); anything else a step
//! returns (a closure, a handle, NaN or infinity, deeper nesting) is an
//! error naming where in the value it sits, never a silent loss.

use crate::journal::MAX_VALUE_DEPTH;
use rhai::Dynamic;

pub fn to_json(value: &Dynamic) -> Result<serde_json::Value, String> {
    if let Some(error) = value.read_lock::<super::host_error::HostError>() {
        // A caught failure a step returns is journaled as its fields.
        return to_json(&Dynamic::from_map(error.to_map()));
    }
    check(value, &mut String::new(), 0)?;
    rhai::serde::from_dynamic::<serde_json::Value>(value).map_err(|e| {
        let e = e.to_string();
        format!(
            "a value of type `{}` cannot be journaled ({})",
            value.type_name(),
            e.trim()
        )
    })
}

/// What JSON cannot carry faithfully, found before serde_json turns it into
/// `null` (NaN) or fails deep inside. `path` is where in the value we are.
fn check(value: &Dynamic, path: &mut String, depth: usize) -> Result<(), String> {
    let at = |path: &str| {
        if path.is_empty() {
            String::new()
        } else {
            format!(" at `{path}`")
        }
    };
    if depth > MAX_VALUE_DEPTH {
        return Err(format!(
            "it nests deeper than {MAX_VALUE_DEPTH} levels{}",
            at(path)
        ));
    }
    if value.is_fnptr() {
        return Err(format!(
            "a function pointer cannot be journaled{}",
            at(path)
        ));
    }
    if let Ok(f) = value.as_float()
        && !f.is_finite()
    {
        return Err(format!(
            "{f} cannot be journaled{} (JSON has no NaN or infinity)",
            at(path)
        ));
    }
    if let Some(array) = value.read_lock::<rhai::Array>() {
        for (i, item) in array.iter().enumerate() {
            let len = path.len();
            path.push_str(&format!("[{i}]"));
            check(item, path, depth + 1)?;
            path.truncate(len);
        }
    } else if let Some(map) = value.read_lock::<rhai::Map>() {
        for (key, item) in map.iter() {
            let len = path.len();
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
            check(item, path, depth + 1)?;
            path.truncate(len);
        }
    }
    Ok(())
}

/// The script value of a JSON value from an API (always representable).
pub fn from_json(value: &serde_json::Value) -> Dynamic {
    rhai::serde::to_dynamic(value).unwrap_or(Dynamic::UNIT)
}

/// The script value of a journaled value: an error rather than `()` if it
/// cannot be represented.
pub fn from_journal(value: &serde_json::Value) -> Result<Dynamic, String> {
    rhai::serde::to_dynamic(value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> Dynamic {
        let mut value = Dynamic::from(1_i64);
        for _ in 0..depth {
            value = Dynamic::from_array(vec![value]);
        }
        value
    }

    #[test]
    fn deep_values_round_trip_up_to_the_limit() {
        let value = nested(MAX_VALUE_DEPTH);
        let json = to_json(&value).expect("journaled");
        let text = serde_json::to_string(&json).expect("text");
        let back = crate::journal::parse_value(&text).expect("parsed");
        assert_eq!(back, json);
        let again = from_journal(&back).expect("value");
        assert_eq!(to_json(&again).expect("journaled"), json);
    }

    #[test]
    fn deeper_values_and_non_finite_floats_are_errors() {
        let err = to_json(&nested(MAX_VALUE_DEPTH + 1)).unwrap_err();
        assert!(err.contains("deeper than"), "{err}");
        let mut map = rhai::Map::new();
        map.insert(
            "a".into(),
            Dynamic::from_array(vec![Dynamic::from(f64::NAN)]),
        );
        let err = to_json(&Dynamic::from_map(map)).unwrap_err();
        assert!(err.contains("NaN cannot be journaled at `a[0]`"), "{err}");
        let err = to_json(&Dynamic::from(f64::INFINITY)).unwrap_err();
        assert!(err.contains("inf cannot be journaled"), "{err}");
    }
}
