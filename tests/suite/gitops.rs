//! Apps that Argo CD, Flux or Helm manage: the recipe refuses to bridge
//! them before changing anything, unless told to pause their
//! reconciliation (undone by rollback) or to go ahead.

use crate::common::Sandbox;
use crate::common::lab::LabFixture;
use ferry::lab::apiserver::Write;
use ferry::lab::apiserver::patch::PatchKind;
use serde_json::{Value, json};

const MIGRATE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/migrate-app.rhai");

/// Creates `object` (its kind served by `group/version/plural`) in `old`.
fn create(lab: &LabFixture, group: &str, version: &str, plural: &str, object: Value) {
    let store = lab.lab.cluster("old").unwrap();
    let resource = store.resource(group, version, plural).unwrap();
    let ns = object["metadata"]["namespace"].as_str().map(str::to_owned);
    store
        .create(&resource, ns.as_deref(), object, Write::default())
        .unwrap();
}

fn crd(lab: &LabFixture, group: &str, kind: &str, plural: &str, version: &str) {
    create(
        lab,
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": { "name": format!("{plural}.{group}") },
            "spec": { "group": group, "scope": "Namespaced",
                      "names": { "kind": kind, "plural": plural, "singular": kind.to_ascii_lowercase() },
                      "versions": [{ "name": version, "served": true, "storage": true,
                                     "schema": { "openAPIV3Schema": { "type": "object", "x-kubernetes-preserve-unknown-fields": true } } }] },
        }),
    );
}

fn namespace(lab: &LabFixture, name: &str) {
    create(
        lab,
        "",
        "v1",
        "namespaces",
        json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": name } }),
    );
}

/// Merges `patch` into `old`'s `plural/ns/name` (a core kind).
fn mark(lab: &LabFixture, plural: &str, group: &str, ns: &str, name: &str, patch: Value) {
    let store = lab.lab.cluster("old").unwrap();
    let resource = store.resource(group, "v1", plural).unwrap();
    store
        .patch(
            &resource,
            Some(ns),
            name,
            PatchKind::Merge,
            &patch,
            Write::default(),
        )
        .unwrap();
}

fn migrate<'a>(
    sb: &'a Sandbox,
    lab: &LabFixture,
    id: &str,
    extra: &[&str],
) -> crate::common::Invocation<'a> {
    let dir = lab.dir_arg();
    let mut args = vec!["run", MIGRATE, "--id", id, "--lab-dir", &dir];
    args.extend(["--set", "app=app1", "--set", "ns=app1-ns"]);
    args.extend([
        "--set",
        "client_ns=app2-ns",
        "--set",
        "client_labels=app=app2",
    ]);
    args.extend(extra);
    let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
    sb.ferry(args)
}

#[test]
fn a_flux_managed_service_is_refused_untouched_then_moved_with_flux_suspended() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    crd(
        &lab,
        "kustomize.toolkit.fluxcd.io",
        "Kustomization",
        "kustomizations",
        "v1",
    );
    namespace(&lab, "flux-system");
    create(
        &lab,
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "kustomizations",
        json!({ "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization",
                "metadata": { "name": "apps", "namespace": "flux-system" },
                "spec": { "interval": "5m", "path": "./apps", "prune": true, "suspend": false } }),
    );
    mark(
        &lab,
        "services",
        "",
        "app1-ns",
        "app1",
        json!({ "metadata": { "labels": {
            "kustomize.toolkit.fluxcd.io/name": "apps",
            "kustomize.toolkit.fluxcd.io/namespace": "flux-system" } } }),
    );
    let before = lab.object("old", "services/app1-ns/app1").unwrap();

    migrate(&sb, &lab, "refused", &[])
        .code(1)
        .stdout_has("is managed by Flux Kustomization flux-system/apps (label kustomize.toolkit.fluxcd.io/name)")
        .stdout_has("Nothing was changed")
        .run();
    let after = lab.object("old", "services/app1-ns/app1").unwrap();
    assert_eq!(after["spec"], before["spec"], "the Service is untouched");
    assert!(
        lab.object("old", "services/app1-ns/app1-internal")
            .is_none()
    );
    // The refused run holds app1 (it failed, so it could be resumed) until
    // it is ended; a new run with other parameters is refused until then.
    migrate(&sb, &lab, "s", &["--set", "gitops=suspend"])
        .code(4)
        .stderr_has("is claimed by run `refused` (failed")
        .run();
    sb.ferry(["abort", "refused"]).run();
    migrate(&sb, &lab, "s", &["--set", "gitops=suspend"])
        .code(3)
        .run();
    let kustomization = "kustomizations.kustomize.toolkit.fluxcd.io/flux-system/apps";
    assert_eq!(
        lab.object("old", kustomization).unwrap()["spec"]["suspend"],
        true
    );
    assert!(
        lab.object("old", "services/app1-ns/app1").unwrap()["spec"]["selector"].is_null(),
        "bridged while Flux is paused"
    );
    sb.ferry(["rollback", "s", "--yes"]).run();
    assert_eq!(
        lab.object("old", kustomization).unwrap()["spec"]["suspend"],
        false
    );
    assert_eq!(
        lab.object("old", "services/app1-ns/app1").unwrap()["spec"]["selector"]["app"],
        "app1"
    );
}

#[test]
fn an_argo_cd_application_loses_its_automated_sync_during_the_move_and_gets_it_back() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    crd(
        &lab,
        "argoproj.io",
        "Application",
        "applications",
        "v1alpha1",
    );
    namespace(&lab, "argocd");
    let automated = json!({ "prune": true, "selfHeal": true });
    create(
        &lab,
        "argoproj.io",
        "v1alpha1",
        "applications",
        json!({ "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                "metadata": { "name": "app1", "namespace": "argocd" },
                "spec": { "project": "default", "syncPolicy": { "automated": automated } } }),
    );
    mark(
        &lab,
        "deployments",
        "apps",
        "app1-ns",
        "app1",
        json!({ "metadata": { "annotations": {
            "argocd.argoproj.io/tracking-id": "app1:apps/Deployment:app1-ns/app1" } } }),
    );
    migrate(&sb, &lab, "refused", &[])
        .code(1)
        .stdout_has("is managed by Argo CD Application argocd/app1")
        .run();
    sb.ferry(["abort", "refused"]).run();
    migrate(&sb, &lab, "a", &["--set", "gitops=suspend"])
        .code(3)
        .run();
    let app = "applications.argoproj.io/argocd/app1";
    let paused = lab.object("old", app).unwrap();
    assert!(
        paused["spec"]["syncPolicy"]["automated"].is_null(),
        "{paused}"
    );
    sb.ferry(["rollback", "a", "--yes"]).run();
    let back = lab.object("old", app).unwrap();
    assert_eq!(back["spec"]["syncPolicy"]["automated"], automated);
    assert!(back["metadata"]["annotations"]["ferry.dev/automated"].is_null());
}
