//! The lab held to recorded kube-apiserver 1.36 answers: every exchange in
//! `fixtures/kube-apiserver-1.36/*.json` is sent to a fresh lab's `old`
//! cluster and its answer, reduced as `common::exchanges` describes, must
//! equal the one a real kube-apiserver gave. The recorder that wrote those
//! answers is the ignored test below (see the README's lab section).
//!
//! An exchange may carry `lab_differs` (why the lab answers otherwise): the
//! replay then checks that the lab still differs, so a fix shows up as a
//! failure asking to drop the note, and the README lists each one.

use crate::common::exchanges::{Driver, fixtures};
use crate::common::lab::LabFixture;
use serde_json::{Value, json};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_lab_answers_as_kube_apiserver_did() {
    let dir = tempfile::tempdir().unwrap();
    let lab = LabFixture::open(dir.path());
    let rt = runtime();
    let mut driver = rt.block_on(Driver::connect(&lab.lab.kubeconfig, Some("old")));
    let mut failures = Vec::new();
    let mut compared = 0;
    for (path, fixture) in fixtures() {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        for exchange in fixture["exchanges"].as_array().into_iter().flatten() {
            let answer = rt.block_on(driver.send(exchange));
            if exchange["setup"] == true {
                continue;
            }
            let name = exchange["name"].as_str().unwrap_or_default();
            let recorded = &exchange["answer"];
            assert!(
                recorded.is_object(),
                "{file}: `{name}` has no recorded answer: record the fixtures first"
            );
            compared += 1;
            let differs = exchange["lab_differs"].as_str();
            match (answer == *recorded, differs) {
                (true, None) | (false, Some(_)) => {}
                (false, None) => failures.push(format!(
                    "{file}: `{name}` ({} {})\n  kube-apiserver: {recorded}\n  lab:            {answer}",
                    exchange["method"].as_str().unwrap_or_default(),
                    exchange["path"].as_str().unwrap_or_default(),
                )),
                (true, Some(why)) => failures.push(format!(
                    "{file}: `{name}` now answers as kube-apiserver: drop its lab_differs ({why}) and the README's note"
                )),
            }
        }
    }
    assert!(compared > 0, "no recorded exchanges found");
    assert!(
        failures.is_empty(),
        "{} of {compared} exchanges differ from kube-apiserver:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Re-records every fixture's answers against a real server. Run it against
/// a fresh kube-apiserver (nothing else created in it) whose service range
/// is the lab's `old` one, `127.10.0.0/16`; it keeps each exchange's
/// `lab_differs` note.
#[test]
#[ignore = "needs cluster: FERRY_TEST_KUBECONFIG of a fresh kube-apiserver 1.36 with --service-cluster-ip-range=127.10.0.0/16"]
fn record_kube_apiserver_answers() {
    let kubeconfig = std::path::PathBuf::from(
        std::env::var("FERRY_TEST_KUBECONFIG").expect("FERRY_TEST_KUBECONFIG names a kubeconfig"),
    );
    let context = std::env::var("FERRY_TEST_CONTEXT").ok();
    let rt = runtime();
    let mut driver = rt.block_on(Driver::connect(&kubeconfig, context.as_deref()));
    let version = rt.block_on(driver.version());
    for (path, mut fixture) in fixtures() {
        fixture["server"] = json!(format!(
            "kube-apiserver {} ({})",
            version["gitVersion"].as_str().unwrap_or("?"),
            version["gitCommit"].as_str().unwrap_or("?")
        ));
        let exchanges: Vec<Value> = fixture["exchanges"].as_array().cloned().unwrap_or_default();
        let mut recorded = Vec::new();
        for mut exchange in exchanges {
            let answer = rt.block_on(driver.send(&exchange));
            if exchange["setup"] != true {
                exchange["answer"] = answer;
            }
            recorded.push(exchange);
        }
        fixture["exchanges"] = Value::Array(recorded);
        let mut text = serde_json::to_string_pretty(&fixture).unwrap();
        text.push('\n');
        std::fs::write(&path, text).unwrap();
    }
}
