//! `yaml(text)`, `yaml_all(text)` and `to_yaml(value)`: objects in scripts
//! are maps shaped exactly like their YAML.

use crate::engine::control::runtime_error;
use crate::engine::value::{from_json, to_json};
use rhai::{Array, Dynamic, Engine, EvalAltResult, FuncRegistration, NativeCallContext};
use serde::Deserialize;

fn documents(text: &str) -> Result<Vec<serde_json::Value>, String> {
    let mut docs = Vec::new();
    for (i, doc) in serde_yaml_ng::Deserializer::from_str(text).enumerate() {
        let value = serde_json::Value::deserialize(doc)
            .map_err(|e| format!("YAML document {}: {e}", i + 1))?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}

pub fn register(engine: &mut Engine) {
    FuncRegistration::new("yaml")
        .with_params_info(["text: &str", "Dynamic"])
        .with_comments([
            "/// Parses one YAML (or JSON) document into a map (or whatever it holds);",
            "/// several documents are an error: use `yaml_all`.",
            "///",
            "/// ```rhai",
            "/// let svc = yaml(`",
            "/// apiVersion: v1",
            "/// kind: Service",
            "/// metadata: { name: app1-internal, namespace: app1-ns }",
            "/// spec: { selector: { app: app1 }, ports: [{ port: 80 }] }",
            "/// `);",
            "/// ```",
        ])
        .register_into_engine(
            engine,
            |ctx: NativeCallContext, text: &str| -> Result<Dynamic, Box<EvalAltResult>> {
                let pos = ctx.call_position();
                let mut docs = documents(text).map_err(|e| runtime_error(e, pos))?;
                match docs.len() {
                    0 => Ok(Dynamic::UNIT),
                    1 => Ok(from_json(&docs.remove(0))),
                    n => Err(runtime_error(
                        format!("yaml(text) got {n} documents; use yaml_all(text) for several"),
                        pos,
                    )),
                }
            },
        );
    FuncRegistration::new("yaml_all")
        .with_params_info(["text: &str", "Array"])
        .with_comments([
            "/// Parses every document of a multi-document YAML text (`---` separated);",
            "/// empty documents are skipped.",
        ])
        .register_into_engine(
            engine,
            |ctx: NativeCallContext, text: &str| -> Result<Array, Box<EvalAltResult>> {
                let docs = documents(text).map_err(|e| runtime_error(e, ctx.call_position()))?;
                Ok(docs.iter().map(from_json).collect())
            },
        );
    FuncRegistration::new("to_yaml")
        .with_params_info(["value: Dynamic", "String"])
        .with_comments(["/// Renders a value (e.g. an object map) as YAML."])
        .register_into_engine(
            engine,
            |ctx: NativeCallContext, value: Dynamic| -> Result<String, Box<EvalAltResult>> {
                let pos = ctx.call_position();
                let json =
                    to_json(&value).map_err(|e| runtime_error(format!("to_yaml: {e}"), pos))?;
                serde_yaml_ng::to_string(&json)
                    .map_err(|e| runtime_error(format!("to_yaml: {e}"), pos))
            },
        );
}
