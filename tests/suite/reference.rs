//! `ferry check`, `ferry docs`, `ferry completions`, `--help`.

use crate::common::Sandbox;

#[test]
fn check_passes_good_scripts_and_reports_every_problem() {
    let sb = Sandbox::new();
    sb.write("good.rhai", "import \"ferry/names\" as n;\nparams.require([\"app\"]);\nstep(\"a\", || n::hosts(params.app, \"ns\"));\n");
    sb.ferry(["check", "good.rhai"])
        .stdout_has("✔ good.rhai (needs --set app)")
        .run();

    sb.write("bad.rhai", "import \"ferry/names\" as n;\nstep(\"a\", || 1);\nstep(\"a\", || 2);\nn::hostz(1, 2);\nfrobnicate();\n");
    sb.ferry(["check", "good.rhai", "bad.rhai"])
        .code(2)
        .stderr_has("duplicate step name `a`")
        .stderr_has("module `n` has no function `hostz`; did you mean `hosts`?")
        .stderr_has("unknown function `frobnicate`")
        .stderr_has("bad.rhai:5:1")
        .run();
    // check never touches the journal
    assert!(!sb.file(".ferry").exists());
}

#[test]
fn check_covers_the_whole_stdlib() {
    let sb = Sandbox::new();
    let stdlib = concat!(env!("CARGO_MANIFEST_DIR"), "/stdlib");
    let files: Vec<String> = std::fs::read_dir(stdlib)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".rhai"))
        .collect();
    assert!(!files.is_empty());
    let mut args = vec!["check".to_owned()];
    args.extend(files);
    sb.ferry(args).run();
}

#[test]
fn docs_lists_every_primitive_and_stdlib_module() {
    let sb = Sandbox::new();
    let out = sb
        .ferry(["docs"])
        .stdout_has("# ferry script reference")
        .stdout_has("### `step(")
        .stdout_has("### `pause(")
        .stdout_has("import \"ferry/names\"")
        .run();
    for primitive in ["parallel(", "sleep(", "require("] {
        assert!(out.stdout.contains(primitive), "docs lack {primitive}");
    }
    let json = sb.ferry(["docs", "--json"]).run();
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(
        value["functions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "step")
    );
    assert!(
        value["modules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["module"] == "ferry/names")
    );
}

#[test]
fn docs_are_byte_identical_across_runs() {
    let sb = Sandbox::new();
    for args in [vec!["docs"], vec!["docs", "--json"]] {
        let first = sb.ferry(&args).run().stdout;
        // Rhai keeps functions in hash maps seeded per process: a few runs
        // would differ if any list were left in their order.
        for _ in 0..3 {
            assert_eq!(
                sb.ferry(&args).run().stdout,
                first,
                "ferry {args:?} changed"
            );
        }
    }
}

#[test]
fn docs_render_comments_without_markers() {
    let sb = Sandbox::new();
    let out = sb.ferry(["docs"]).run().stdout;
    for marker in ["///", "//!", "/**"] {
        let leaks: Vec<&str> = out.lines().filter(|l| l.contains(marker)).collect();
        assert!(leaks.is_empty(), "{marker} leaks into docs: {leaks:#?}");
    }
    // A multi-line stdlib comment is rendered whole, each line unmarked.
    assert!(out.contains(
        "Creates `<app>-internal` (a copy of the app's Service) and the app's\nIngressRoute"
    ));
}

#[test]
fn docs_hide_private_stdlib_functions() {
    let sb = Sandbox::new();
    let out = sb.ferry(["docs"]).run().stdout;
    let json: serde_json::Value =
        serde_json::from_str(&sb.ferry(["docs", "--json"]).run().stdout).unwrap();
    let listed: Vec<String> = json["modules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["functions"].as_array().unwrap().iter())
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    let stdlib = concat!(env!("CARGO_MANIFEST_DIR"), "/stdlib");
    let mut private = Vec::new();
    for entry in std::fs::read_dir(stdlib).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for line in text.lines() {
            if let Some(rest) = line.trim_start().strip_prefix("private fn ") {
                private.push(rest.split('(').next().unwrap().trim().to_owned());
            }
        }
    }
    assert!(
        private.iter().any(|p| p == "check_serving"),
        "the stdlib has private helpers: {private:?}"
    );
    for name in &private {
        assert!(
            !listed.contains(name),
            "private `{name}` is listed in docs --json"
        );
        assert!(
            !out.contains(&format!("`{name}(")),
            "private `{name}` is listed in docs"
        );
    }
    assert!(
        listed.iter().any(|n| n == "expose"),
        "public functions are listed"
    );
}

#[test]
fn docs_cover_builtins_params_and_getters() {
    let sb = Sandbox::new();
    let out = sb.ferry(["docs"]).run().stdout;
    for heading in [
        "### `print(value)`",
        "### `debug(value)`",
        "### `params`\n",
        "### `params.KEY / params[\"KEY\"] -> String`",
        "### `get(params: Params, name: &str, default: Dynamic) -> Dynamic`",
        "### `require(params: Params, names: Array)`",
        "### `has(params: Params, name: &str) -> bool`",
        "### `zone.origin -> String`",
    ] {
        let at = out
            .find(heading)
            .unwrap_or_else(|| panic!("docs lack {heading}"));
        // Each heading is followed by its text, not by the next heading.
        let body = out[at + heading.len()..].trim_start();
        assert!(!body.starts_with('#'), "{heading} has no text");
    }
}

#[test]
fn completions_and_help_work() {
    let sb = Sandbox::new();
    sb.ferry(["completions", "bash"])
        .stdout_has("_ferry()")
        .run();
    sb.ferry(["--help"]).stdout_has("Exit codes").run();
    for cmd in [
        "run",
        "resume",
        "approve",
        "rollback",
        "status",
        "runs",
        "log",
        "check",
        "docs",
        "completions",
    ] {
        sb.ferry([cmd, "--help"]).stdout_has("Usage: ferry").run();
    }
    sb.ferry(["--version"]).stdout_has("ferry ").run();
    sb.ferry(["frobnicate"]).code(2).run();
}

/// Every command, as its `--help` is asked for.
const COMMANDS: &[&[&str]] = &[
    &["run"],
    &["resume"],
    &["approve"],
    &["rollback"],
    &["status"],
    &["runs"],
    &["log"],
    &["describe"],
    &["abort"],
    &["delete"],
    &["prune"],
    &["check"],
    &["docs"],
    &["completions"],
    &["lab", "up"],
    &["lab", "status"],
    &["lab", "kubectl"],
    &["lab", "reset"],
];

/// The lines of a `--help` section (`Arguments:`), up to the next heading.
fn section<'a>(help: &'a str, heading: &str) -> Vec<&'a str> {
    let name = heading.trim_end_matches(':');
    help.lines()
        .skip_while(|l| *l != heading && !l.starts_with(&format!("{name} (")))
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with(' '))
        .collect()
}

#[test]
fn help_groups_global_options_apart_from_each_commands_own() {
    let sb = Sandbox::new();
    for command in COMMANDS {
        let help = sb
            .ferry(command.iter().copied().chain(["--help"]))
            .run()
            .stdout;
        // A flag's own line: `  --state <DIR>  ...` or `  -q, --quiet  ...`.
        let lists = |lines: &[&str], flag: &str| {
            lines.iter().any(|l| {
                let l = l.trim_start();
                l.starts_with(flag) || l.get(4..).is_some_and(|rest| rest.starts_with(flag))
            })
        };
        let global = section(&help, "Global options:");
        let own = section(&help, "Options:");
        for flag in [
            "--state <STATE>",
            "--json",
            "--quiet",
            "--kubeconfig <FILE>",
            "--qps <N>",
            "--lib <DIR>",
        ] {
            assert!(
                lists(&global, flag),
                "ferry {command:?} --help: {flag} not under Global options:\n{help}"
            );
            assert!(
                !lists(&own, flag),
                "ferry {command:?} --help: {flag} among the command's own options"
            );
        }
    }
    // A command's own flags stay under Options.
    let help = sb.ferry(["run", "--help"]).run().stdout;
    assert!(
        section(&help, "Options:")
            .iter()
            .any(|l| l.trim_start().starts_with("--set <KEY=VALUE>"))
    );
}

#[test]
fn help_describes_every_positional_and_shows_examples() {
    let sb = Sandbox::new();
    let mut seen = Vec::new();
    for command in COMMANDS {
        let help = sb
            .ferry(command.iter().copied().chain(["--help"]))
            .run()
            .stdout;
        for line in section(&help, "Arguments:") {
            let line = line.trim_start();
            if let Some(rest) = line.strip_prefix('<').or_else(|| line.strip_prefix("[")) {
                let (name, text) = rest.split_once(['>', ']']).unwrap();
                let text = text.trim_start_matches(['.', '>', ']']).trim();
                assert!(
                    !text.is_empty(),
                    "ferry {command:?} --help: <{name}> has no description"
                );
                seen.push(name.to_owned());
            }
        }
        let examples = section(&help, "Examples:");
        assert!(
            // `  ferry run ...`, or `  bash  ferry completions bash > ...`
            examples
                .iter()
                .any(|l| l.trim_start().starts_with("ferry ") || l.contains("  ferry ")),
            "ferry {command:?} --help shows no example:\n{help}"
        );
    }
    for positional in ["RUN", "GATE", "STEP", "SCRIPT", "SHELL"] {
        assert!(
            seen.iter().any(|s| s == positional),
            "no command documents <{positional}>: {seen:?}"
        );
    }
}

#[test]
fn completions_help_says_where_to_install_the_file() {
    let sb = Sandbox::new();
    let help = sb.ferry(["completions", "--help"]).run().stdout;
    for (shell, place) in [
        (
            "bash",
            "ferry completions bash > ~/.local/share/bash-completion/completions/ferry",
        ),
        ("zsh", "ferry completions zsh > ~/.zfunc/_ferry"),
        (
            "fish",
            "ferry completions fish > ~/.config/fish/completions/ferry.fish",
        ),
    ] {
        assert!(
            help.contains(place),
            "completions --help does not say where {shell} looks:\n{help}"
        );
    }
    // What the help tells zsh users to write is what zsh expects in that file.
    sb.ferry(["completions", "zsh"])
        .stdout_has("#compdef ferry")
        .run();
    sb.ferry(["completions", "fish"])
        .stdout_has("complete -c ferry")
        .run();
}
