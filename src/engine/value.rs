//! Step values cross the journal as JSON. Maps, arrays, strings, numbers,
//! booleans and unit round-trip exactly (integers stay integers, floats stay
//! floats); a step returning a closure or a handle is an error, not a silent
//! loss.

use rhai::Dynamic;

pub fn to_json(value: &Dynamic) -> Result<serde_json::Value, String> {
    if value.is_fnptr() {
        return Err("a function pointer cannot be journaled".into());
    }
    rhai::serde::from_dynamic::<serde_json::Value>(value).map_err(|e| {
        let e = e.to_string();
        format!(
            "a value of type `{}` cannot be journaled ({})",
            value.type_name(),
            e.trim()
        )
    })
}

pub fn from_json(value: &serde_json::Value) -> Dynamic {
    rhai::serde::to_dynamic(value).unwrap_or(Dynamic::UNIT)
}
