//! The scripts in `scripts/` run as the README says.

use crate::common::Sandbox;

#[test]
fn the_tour_runs_stops_at_its_gate_and_finishes_after_approval() {
    let sb = Sandbox::new();
    let tour = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/tour.rhai");
    sb.ferry([
        "run",
        tour,
        "--set",
        "app=app1",
        "--set",
        "ns=app1-ns",
        "--id",
        "tour",
    ])
    .code(3)
    .stdout_has("✔ route app1.app1-ns.svc.cluster.local")
    .stdout_has("✔ bridge app1 via old.mycompany.internal.")
    .stderr_has("ferry approve tour cutover")
    .run();
    sb.ferry(["approve", "tour", "cutover"]).run();
    sb.ferry(["resume", "tour"])
        .stdout_has("✔ cut over app1 to new.mycompany.internal.")
        .stdout_has("app1 now answers from the new cluster")
        .run();
    sb.ferry(["rollback", "tour", "--yes"])
        .stdout_has("undo: point app1 back to old.mycompany.internal.")
        .stdout_has("undo: remove the bridge of app1")
        .run();
    sb.ferry(["check", tour]).run();
}
