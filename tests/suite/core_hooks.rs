//! Hooks the adapters build on: target identities, step annotations, tagged
//! host errors and dry runs.

use crate::common::Sandbox;

#[test]
fn a_target_whose_identity_changed_is_refused_naming_both() {
    let sb = Sandbox::new();
    sb.write("id", "uid-1");
    sb.write("s.rhai", "test_identity(\"old\", \"id\");\nstep(\"a\", || { if !test_exists(\"flag\") { throw \"later\"; } });\n");
    sb.ferry(["run", "s.rhai", "--id", "r"]).code(1).run();
    assert_eq!(sb.status("r")["run"]["identities"]["old"]["id"], "uid-1");

    sb.write("id", "uid-2");
    sb.write("flag", "");
    sb.ferry(["resume", "r"])
        .code(4)
        .stderr_has("`old` is not the target run `r` recorded")
        .stderr_has("uid-1")
        .stderr_has("uid-2")
        .run();
    assert_eq!(sb.run_status("r"), "failed", "a refusal changes nothing");

    sb.write("id", "uid-1");
    sb.ferry(["resume", "r"]).run();
}

#[test]
fn primitives_can_attach_data_to_the_running_step() {
    let sb = Sandbox::new();
    sb.write("a.rhai", "step(\"g\", || test_annotate(\"guard\", #{ requests: 5, failures: 0 }));\nprint(test_annotate(\"x\", 1));\n");
    sb.ferry(["run", "a.rhai", "--id", "a"])
        .stdout_has("false")
        .run();
    let step = sb.step("a", "g");
    assert_eq!(step["data"]["guard"]["requests"], 5);
    assert_eq!(step["value"], true);
}

#[test]
fn host_errors_cannot_be_forged_by_a_script_s_throw_and_journal_as_their_fields() {
    let sb = Sandbox::new();
    sb.write(
        "f.rhai",
        r#"
        try { throw #{ source: "cluster", status: 503, message: "fake" }; } catch (e) { print(`thrown: ${type_of(e)}`); }
        try { test_host_error("api down"); } catch (e) { print(`host: ${type_of(e)} ${"status" in e} ${"nope" in e} ${e.nope == ()} ${e}`); }
        step("keep", || { let kept = (); try { test_host_error("api down"); } catch (e) { kept = e; } kept });
        "#,
    );
    sb.ferry(["run", "f.rhai", "--id", "f"])
        .stdout_has("thrown: map")
        .stdout_has("host: HostError true false true api down")
        .run();
    let kept = sb.step("f", "keep");
    assert_eq!(kept["value"]["source"], "test", "{kept}");
    assert_eq!(kept["value"]["status"], 503, "{kept}");
    assert_eq!(kept["value"]["message"], "api down", "{kept}");
}

#[test]
fn host_errors_are_maps_a_script_can_inspect_and_read_well_uncaught() {
    let sb = Sandbox::new();
    sb.write("h.rhai", "try { test_host_error(\"api down\"); } catch (e) { print(`${e.source}/${e.status}/${e.message}`); }\ntest_host_error(\"api down\");\n");
    // Uncaught outside a step: the world's failure, exit 1.
    sb.ferry(["run", "h.rhai"])
        .code(1)
        .stdout_has("test/503/api down")
        .stderr_has("error: api down")
        .stderr_has("h.rhai:2:1")
        .run();
}

#[test]
fn a_dry_run_is_the_plan_and_records_nothing() {
    let sb = Sandbox::new();
    sb.write(
        "d.rhai",
        "step(\"a\", || 1);\npause(\"g\", \"look\");\nstep(\"b\", || 2);\n",
    );
    // One way to preview: `run --dry-run` prints the plan, passing the gate.
    sb.ferry(["run", "--dry-run", "d.rhai", "--id", "d"])
        .stdout_has("· a\n⏸ gate g\n")
        .stdout_has("· b\n")
        .stdout_has("Plan complete; nothing was changed.")
        .run();
    sb.ferry(["plan", "d.rhai", "--until-gate", "g"])
        .stdout_has("Plan stopped at gate `g`")
        .stdout_lacks("· b")
        .run();
    sb.ferry(["runs"]).stdout_has("no runs").run();
}

/// Opens no zone: says which target it was asked for.
struct NamingOpener;

impl ferry::ports::dns::ZoneOpener for NamingOpener {
    fn open<'a>(
        &'a self,
        target: &'a ferry::ports::dns::ZoneTarget,
    ) -> ferry::ports::dns::DnsFuture<'a, std::sync::Arc<dyn ferry::ports::dns::DnsZone>> {
        let text = match target {
            ferry::ports::dns::ZoneTarget::Rfc2136 { zone, server, .. } => {
                format!("test opener asked for {zone} at {server}")
            }
            ferry::ports::dns::ZoneTarget::CloudDns(spec) => format!("cloud {}", spec.zone),
        };
        Box::pin(async move { Err(ferry::ports::dns::DnsError::invalid(text)) })
    }
}

#[test]
fn zones_open_through_the_injected_opener() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("z.rhai");
    std::fs::write(
        &script,
        "let zone = dns(#{ provider: \"rfc2136\", server: \"127.0.0.1:5353\", zone: \"example.test.\" });\n",
    )
    .unwrap();
    let store: std::sync::Arc<dyn ferry::journal::Store> =
        std::sync::Arc::new(ferry::journal::MemoryStore::new());
    let backends = ferry::ports::Backends {
        zones: std::sync::Arc::new(NamingOpener),
        ..ferry::adapters::real()
    };
    let runner = ferry::runner::Runner::new(
        store,
        std::sync::Arc::new(ferry::events::NullSink),
        vec![],
        Default::default(),
    )
    .unwrap()
    .with_backends(backends);
    let outcome = runner.start(ferry::runner::StartRequest {
        script,
        params: Default::default(),
        id: Some("z".into()),
        environment: Default::default(),
        allow_unknown_params: false,
    });
    let err = outcome.expect_err("the opener refuses");
    assert!(
        err.to_string()
            .contains("test opener asked for example.test. at 127.0.0.1:5353"),
        "{err}"
    );
}

/// A failure of the world outside any step (a cluster, DNS server or probe
/// the script asks at its top level) exits 1 like a failed step, not 2, the
/// code of usage and script errors; a script's own `throw` there stays 2.
#[test]
fn a_host_failure_outside_a_step_exits_1_and_a_script_error_2() {
    let sb = Sandbox::new();
    sb.write("world.rhai", "test_host_error(\"api server down\");\n");
    sb.ferry(["run", "world.rhai"])
        .code(1)
        .stderr_has("api server down")
        .stderr_has("world.rhai:1:1")
        .run();
    sb.write("own.rhai", "throw \"my own\";\n");
    sb.ferry(["run", "own.rhai"])
        .code(2)
        .stderr_has("my own")
        .run();
}
