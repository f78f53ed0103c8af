//! The live display, on a pseudo-terminal at 80 and 160 columns: every
//! line fits, each finished step leaves one line, nothing live is left on
//! screen when the run ends, a `parallel` shows one live line per branch
//! and prints each branch's steps as one block, and names are escaped.
//! Plain output (a pipe) keeps its content.

use crate::common::Sandbox;
use crate::common::backend::Backend;
use crate::common::pty::{self, Screen};

const APPS: [&str; 5] = ["app1", "app2", "app3", "app4", "app5"];
const LIMIT: usize = 3;

fn script(url: &str) -> String {
    format!(
        r#"step("prepare", || 1);
step("long value", || {{ let s = ""; for i in 0..40 {{ s += "abcdefghij"; }} s }});
step("evil \x1b[31mred\nname", || 2);
step("guarded flip", || guard(#{{ http: "{url}", expect_status: 200 }}, #{{ rate: 20 }}, || {{ sleep(0.6); "flipped" }}));
step("settle", || sleep(0.6));
step("fleet", || parallel({apps:?}, |app| step(`move ${{app}}`, || {{
    step(`bridge ${{app}}`, || {{ sleep(0.3); app }});
    step(`cut over ${{app}} with a step name long enough to be cut on an eighty column terminal, and on one of a hundred and sixty columns too, as this one goes on`, || {{ sleep(0.3); app }})
}}), #{{ limit: {LIMIT} }}));
"#,
        apps = APPS
    )
}

fn on_terminal(cols: u16) -> (Screen, Vec<u8>) {
    let sb = Sandbox::new();
    let backend = Backend::start("display");
    sb.write("show.rhai", &script(&backend.url("/")));
    let mut cmd = sb.command();
    cmd.args(["run", "show.rhai"]).env("TERM", "xterm-256color");
    let (code, bytes) = pty::run(cmd, cols, 50);
    let mut screen = Screen::new(cols as usize);
    screen.feed(&bytes);
    assert_eq!(code, 0, "the run succeeds:\n{}", screen.lines().join("\n"));
    (screen, bytes)
}

fn check(cols: u16) {
    let (screen, bytes) = on_terminal(cols);
    let lines = screen.lines();
    let shown = lines.join("\n");

    assert!(
        screen.overflows.is_empty(),
        "lines wider than {cols} columns: {:#?}",
        screen.overflows
    );
    for line in &lines {
        assert!(
            console::measure_text_width(line) < cols as usize,
            "too wide: {line}"
        );
    }
    // Nothing live stays after the run: no spinner, no countdown.
    assert!(
        !lines
            .iter()
            .any(|l| l.chars().any(|c| pty::SPINNER.contains(&c) || c == '⏳')),
        "a live line is left on screen:\n{shown}"
    );
    // One line per finished step, in a block per branch.
    let one = |prefix: &str| -> usize {
        let at: Vec<usize> = (0..lines.len())
            .filter(|i| lines[*i].trim_start().starts_with(prefix))
            .collect();
        assert_eq!(
            at.len(),
            1,
            "`{prefix}` is on screen {} times:\n{shown}",
            at.len()
        );
        at[0]
    };
    for step in ["prepare", "long value", "guarded flip", "settle", "fleet"] {
        one(&format!("✔ {step} ("));
    }
    for app in APPS {
        let bridge = one(&format!("✔ bridge {app} ("));
        let cut = one(&format!("✔ cut over {app} with a step name"));
        let moved = one(&format!("✔ move {app} ("));
        assert_eq!(
            (cut, moved),
            (bridge + 1, bridge + 2),
            "the steps of {app} are not one block:\n{shown}"
        );
    }
    // Long values and names are cut with an ellipsis, not wrapped.
    let long = &lines[one("✔ long value (")];
    assert!(long.ends_with('…'), "{long}");
    assert!(lines[one("✔ cut over app1 ")].ends_with('…'));
    // The guard's summary line is there, fitted.
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start().starts_with("✔ guard http://")),
        "{shown}"
    );
    // An escape in a step name is shown, never sent to the terminal.
    one("✔ evil \\u{1b}[31mred\\nname (");
    assert!(
        !bytes.windows(8).any(|w| w == b"\x1b[31mred"),
        "the step name's escape reached the terminal"
    );
    // parallel: at most one live line per branch, plus the step around it.
    assert!(screen.most_spinners >= 2, "no live lines were drawn");
    assert!(
        screen.most_spinners <= LIMIT + 1,
        "{} live lines at once for {LIMIT} branches",
        screen.most_spinners
    );
    // A branch's live line names its item's step and the step it is in.
    for app in APPS {
        let lane = format!("move {app} › bridge {app}");
        assert!(
            screen.live.iter().any(|l| l.contains(&lane)),
            "no live line `{lane}`: {:#?}",
            screen.live
        );
    }
    assert!(lines.last().unwrap().contains("succeeded"), "{shown}");
}

#[test]
fn live_display_fits_80_columns_and_leaves_one_line_per_step() {
    check(80);
}

#[test]
fn live_display_fits_160_columns_and_leaves_one_line_per_step() {
    check(160);
}

#[test]
fn plain_output_keeps_its_lines_and_escapes_names() {
    let sb = Sandbox::new();
    sb.write(
        "plain.rhai",
        "step(\"evil \\x1b[31mred\\nname\", || 2);\nstep(\"fleet\", || parallel([\"a\", \"b\"], |x| step(`move ${x}`, || x)));\n",
    );
    let out = sb.ferry(["run", "plain.rhai"]).run().stdout;
    assert!(!out.contains('\u{1b}'), "{out}");
    for line in [
        "▶ evil \\u{1b}[31mred\\nname",
        "✔ evil \\u{1b}[31mred\\nname (",
        "▶ fleet",
        "  ▶ move a",
        "  ✔ move a (",
        "✔ fleet (",
    ] {
        assert!(
            out.lines().any(|l| l.starts_with(line)),
            "plain output lacks `{line}`:\n{out}"
        );
    }
    // --json keeps the name as it is (JSON escapes it).
    let json = sb.ferry(["run", "plain.rhai", "--json"]).run().stdout;
    assert!(
        json.contains(r#""step":"evil \u001b[31mred\nname""#),
        "{json}"
    );
}

/// A run that stops (a failed guarded step, a gate) leaves no live line either.
#[test]
fn a_run_that_fails_or_pauses_leaves_no_live_line() {
    let sb = Sandbox::new();
    let backend = Backend::start("display-stop");
    sb.write(
        "fail.rhai",
        &format!(
            "step(\"before\", || 1);\nstep(\"flip\", || guard(#{{ http: \"{}\" }}, #{{ rate: 20 }}, || {{ sleep(0.3); throw \"flip failed\"; }}));\n",
            backend.url("/")
        ),
    );
    sb.write("gate.rhai", "step(\"before\", || sleep(0.3));\npause(\"cutover\", \"check the dashboards\");\nstep(\"after\", || 2);\n");
    for (script, code, finished) in [
        ("fail.rhai", 1, "✖ flip ("),
        ("gate.rhai", 3, "⏸ gate cutover"),
    ] {
        let mut cmd = sb.command();
        cmd.args(["run", script]).env("TERM", "xterm-256color");
        let (exit, bytes) = pty::run(cmd, 80, 50);
        let mut screen = Screen::new(80);
        screen.feed(&bytes);
        let lines = screen.lines();
        let shown = lines.join("\n");
        assert_eq!(exit, code, "{script}:\n{shown}");
        assert!(
            !lines
                .iter()
                .any(|l| l.chars().any(|c| pty::SPINNER.contains(&c) || c == '⏳')),
            "{script} left a live line:\n{shown}"
        );
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.trim_start().starts_with(finished))
                .count(),
            1,
            "{script}:\n{shown}"
        );
        assert_eq!(
            lines
                .iter()
                .filter(|l| l.trim_start().starts_with("✔ before ("))
                .count(),
            1,
            "{script}:\n{shown}"
        );
    }
}
