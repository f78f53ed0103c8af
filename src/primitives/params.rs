//! `params`: the run's `--set KEY=VALUE` values, read-only. A script states
//! what it needs with `params.require(["app", "ns"])`; ferry checks literal
//! lists before the run starts, so a missing value is a usage error (exit 2)
//! before anything changes.

use crate::engine::control::{Control, runtime_error};
pub use crate::engine::params::Params;
use rhai::{Array, Dynamic, Engine, EvalAltResult, FuncRegistration, Map, NativeCallContext};

pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Params>("Params");
    engine.register_indexer_get(
        |ctx: NativeCallContext, p: &mut Params, key: &str| -> Result<String, Box<EvalAltResult>> {
            p.0.get(key).cloned().ok_or_else(|| {
                runtime_error(
                    format!("parameter `{key}` is not set: pass --set {key}=..."),
                    ctx.call_position(),
                )
            })
        },
    );
    FuncRegistration::new("require")
        .with_params_info(["params: Params", "names: Array", "()"])
        .with_comments([
            "/// Declares the parameters the script needs. With a literal list, ferry checks",
            "/// them before the run starts; a missing one is a usage error (exit 2).",
            "///",
            "/// ```rhai",
            "/// params.require([\"app\", \"ns\"]);",
            "/// ```",
        ])
        .register_into_engine(
            engine,
            |ctx: NativeCallContext,
             p: &mut Params,
             names: Array|
             -> Result<(), Box<EvalAltResult>> {
                let names: Vec<String> = names.into_iter().map(|n| n.to_string()).collect();
                let missing = p.missing(names.iter().map(String::as_str));
                if missing.is_empty() {
                    Ok(())
                } else {
                    Err(Control::MissingParams { names: missing }.raise(ctx.call_position()))
                }
            },
        );
    FuncRegistration::new("get")
        .with_params_info([
            "params: Params",
            "name: &str",
            "default: Dynamic",
            "Dynamic",
        ])
        .with_comments(["/// The parameter's value, or `default` when it is not set."])
        .register_into_engine(
            engine,
            |p: &mut Params, name: &str, default: Dynamic| -> Dynamic {
                p.0.get(name)
                    .map(|v| Dynamic::from(v.clone()))
                    .unwrap_or(default)
            },
        );
    FuncRegistration::new("has")
        .with_params_info(["params: Params", "name: &str", "bool"])
        .with_comments(["/// Whether the parameter is set."])
        .register_into_engine(engine, |p: &mut Params, name: &str| p.0.contains_key(name));
    FuncRegistration::new("to_map")
        .with_params_info(["params: Params", "Map"])
        .with_comments(["/// All parameters as a map."])
        .register_into_engine(engine, |p: &mut Params| -> Map {
            p.0.iter()
                .map(|(k, v)| (k.as_str().into(), Dynamic::from(v.clone())))
                .collect()
        });
    engine.register_fn("to_string", |p: &mut Params| format!("{:?}", p.0));
    engine.register_fn("to_debug", |p: &mut Params| format!("params {:?}", p.0));
}
