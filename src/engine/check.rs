//! Static checks run by `ferry check` and before every run: imports resolve,
//! every called function exists, literal step names are unique, and the
//! literal `params.require([...])` lists are known before anything runs.

use super::Host;
use rhai::{AST, Expr, Module, Position, Stmt};
use std::sync::Arc;

type SharedModule = Arc<Module>;
use rhai::ASTNode;
use std::collections::{BTreeSet, HashMap, HashSet};

/// Functions Rhai handles itself, outside any package.
const KEYWORDS: &[&str] = &[
    "print",
    "debug",
    "type_of",
    "eval",
    "Fn",
    "call",
    "curry",
    "is_shared",
    "is_def_var",
    "is_def_fn",
    "exit",
];

#[derive(Debug, Default)]
pub struct Analysis {
    /// Problems, each rendered with location and source line.
    pub findings: Vec<String>,
    /// Parameters named in literal `params.require([...])` calls.
    pub required_params: Vec<String>,
    /// Every parameter the script reads (`params.x`, `params["x"]`,
    /// `params.get("x")`, `has`, `require`), or `None` when it also hands
    /// `params` on or reads it with a computed key, so any key may be read.
    pub read_params: Option<BTreeSet<String>>,
}

pub fn analyze(host: &Host, ast: &AST, label: &str) -> Analysis {
    let mut analysis = Analysis::default();
    let sources = &host.session.sources;
    let finding = |message: String, pos: Position| {
        let err = rhai::EvalAltResult::ErrorRuntime(message.into(), pos);
        super::diagnostic::render(&err, label, sources)
    };

    let mut known: HashSet<String> = host
        .engine
        .gen_fn_signatures(true)
        .into_iter()
        .filter_map(|sig| sig.split('(').next().map(str::to_owned))
        .collect();
    known.extend(KEYWORDS.iter().map(|k| k.to_string()));
    known.extend(ast.iter_functions().map(|f| f.name.to_owned()));

    // Imports first: namespaced calls are checked against what they export.
    let mut modules: HashMap<String, SharedModule> = HashMap::new();
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(ASTNode::Stmt(Stmt::Import(x, pos))) = path.last() {
            let (expr, alias) = &**x;
            if let Expr::StringConstant(module_path, _) = expr {
                match host
                    .resolver
                    .load(&host.engine, Some(label), module_path, *pos)
                {
                    Ok(module) => {
                        if !alias.name.is_empty() {
                            modules.insert(alias.name.to_string(), module);
                        }
                    }
                    Err(err) => analysis
                        .findings
                        .push(super::diagnostic::render(&err, label, sources)),
                }
            }
        }
        true
    });
    let exports: HashMap<&str, HashSet<String>> = modules
        .iter()
        .map(|(alias, m)| {
            let names = m
                .gen_fn_signatures_with_mapper(|t| t.into())
                .filter_map(|s| s.split('(').next().map(str::to_owned))
                .collect();
            (alias.as_str(), names)
        })
        .collect();

    // Methods: any registered or script function callable on a value.
    let methods: HashSet<String> = known
        .iter()
        .filter(|n| !n.contains("::"))
        .cloned()
        .collect();
    // Static modules (`probe::`): their functions by module, found once.
    let mut statics: HashMap<&str, HashSet<String>> = HashMap::new();
    for (root, name) in known.iter().filter_map(|k| k.split_once("::")) {
        statics.entry(root).or_default().insert(name.to_owned());
    }
    let mut step_names: HashMap<String, Position> = HashMap::new();
    let (mut params_seen, mut params_understood) = (0usize, 0usize);
    let mut params_read = BTreeSet::new();
    let mut params_dynamic = false;
    ast.walk(&mut |path: &[ASTNode]| {
        let node = path.last();
        if let Some(ASTNode::Expr(Expr::Variable(var, _, _))) = node
            && var.1 == "params"
        {
            params_seen += 1;
        }
        match params_use(node) {
            Some(ParamsUse::Keys(keys)) => {
                params_understood += 1;
                params_read.extend(keys);
            }
            Some(ParamsUse::Dynamic) => params_dynamic = true,
            None => {}
        }
        if let Some((call, pos)) = method_call(node) {
            let name = call.name.as_str();
            let hint = suggest(name, &methods);
            // A name close to a known one is a typo; any other unknown name
            // may be a closure kept in a map property, which Rhai calls too.
            if !methods.contains(name) && !hint.is_empty() {
                analysis
                    .findings
                    .push(finding(format!("unknown method `{name}`{hint}"), *pos));
            }
        }
        if let Some((call, pos)) = function_call(node) {
            let name = call.name.as_str();
            if !call.namespace.is_empty() {
                let root = call.namespace.root();
                if let Some(names) = statics.get(root)
                    && !names.contains(name)
                {
                    let message = format!(
                        "module `{root}` has no function `{name}`{}",
                        suggest(name, names)
                    );
                    analysis.findings.push(finding(message, *pos));
                } else if let Some(names) = exports.get(root)
                    && !names.contains(name)
                {
                    let message = format!(
                        "module `{root}` has no function `{name}`{}",
                        suggest(name, names)
                    );
                    analysis.findings.push(finding(message, *pos));
                }
            } else if !known.contains(name) {
                analysis.findings.push(finding(
                    format!("unknown function `{name}`{}", suggest(name, &known)),
                    *pos,
                ));
            } else if (name == "step" || name == "pause")
                && let Some(Expr::StringConstant(step, _)) = call.args.first()
            {
                match step_names.get(step.as_str()) {
                    Some(first) => {
                        let first = sources.locate(label, *first);
                        analysis.findings.push(finding(
                            format!("duplicate step name `{step}`: already used at {first}"),
                            *pos,
                        ));
                    }
                    None => {
                        step_names.insert(step.to_string(), *pos);
                    }
                }
            }
        }
        analysis.required_params.extend(required_params(node));
        true
    });
    // Every `params` the walk met must be one of the reads counted.
    analysis.read_params =
        (!params_dynamic && params_seen == params_understood).then_some(params_read);
    analysis
}

enum ParamsUse {
    Keys(Vec<String>),
    Dynamic,
}

/// A read of `params` the checker understands: `params.x`, `params["x"]`,
/// `params.get("x", ..)`, `params.has("x")`, `params.require([..])`.
fn params_use(node: Option<&ASTNode>) -> Option<ParamsUse> {
    let (lhs, rhs, index) = match node? {
        ASTNode::Expr(Expr::Dot(x, _, _)) => (&x.lhs, &x.rhs, false),
        ASTNode::Expr(Expr::Index(x, _, _)) => (&x.lhs, &x.rhs, true),
        _ => return None,
    };
    let Expr::Variable(var, _, _) = lhs else {
        return None;
    };
    if var.1 != "params" {
        return None;
    }
    Some(match rhs {
        Expr::StringConstant(key, _) if index => ParamsUse::Keys(vec![key.to_string()]),
        Expr::Property(p, _) if !index => ParamsUse::Keys(vec![p.2.to_string()]),
        Expr::MethodCall(call, _) if !index => match call.name.as_str() {
            "get" | "has" => match call.args.first() {
                Some(Expr::StringConstant(key, _)) => ParamsUse::Keys(vec![key.to_string()]),
                _ => ParamsUse::Dynamic,
            },
            "require" => match required_params(node) {
                keys if !keys.is_empty() => ParamsUse::Keys(keys),
                _ => ParamsUse::Dynamic,
            },
            _ => ParamsUse::Dynamic,
        },
        _ => ParamsUse::Dynamic,
    })
}

/// A method call node (`value.name(...)`).
fn method_call<'a>(node: Option<&'a ASTNode>) -> Option<(&'a rhai::FnCallExpr, &'a Position)> {
    match node? {
        ASTNode::Expr(Expr::Dot(x, _, _)) => match &x.rhs {
            Expr::MethodCall(call, pos) => Some((call, pos)),
            _ => None,
        },
        _ => None,
    }
}

/// A function call node: an expression, or a statement when its value is unused.
fn function_call<'a>(node: Option<&'a ASTNode>) -> Option<(&'a rhai::FnCallExpr, &'a Position)> {
    match node? {
        ASTNode::Expr(Expr::FnCall(call, pos)) | ASTNode::Stmt(Stmt::FnCall(call, pos))
            if !call.is_operator_call() =>
        {
            Some((call, pos))
        }
        _ => None,
    }
}

/// The names in a literal `params.require([...])`.
fn required_params(node: Option<&ASTNode>) -> Vec<String> {
    let Some(ASTNode::Expr(Expr::Dot(x, _, _))) = node else {
        return Vec::new();
    };
    let (Expr::Variable(var, _, _), Expr::MethodCall(call, _)) = (&x.lhs, &x.rhs) else {
        return Vec::new();
    };
    if var.1 != "params" || call.name != "require" {
        return Vec::new();
    }
    match call.args.first() {
        Some(Expr::Array(items, _)) => items
            .iter()
            .filter_map(|item| match item {
                Expr::StringConstant(name, _) => Some(name.to_string()),
                _ => None,
            })
            .collect(),
        // The optimizer folds a literal list into a constant.
        Some(Expr::DynamicConstant(value, _)) => value
            .read_lock::<rhai::Array>()
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| {
                        i.read_lock::<rhai::ImmutableString>()
                            .map(|n| n.to_string())
                    })
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// `; did you mean `x`?` for the closest known name, if close enough.
pub fn suggest(name: &str, known: &HashSet<String>) -> String {
    known
        .iter()
        .map(|k| (strsim::levenshtein(name, k), k))
        .filter(|(d, k)| *d <= (name.len() / 4).max(1) && !k.contains('$'))
        .min()
        .map(|(_, k)| format!("; did you mean `{k}`?"))
        .unwrap_or_default()
}
