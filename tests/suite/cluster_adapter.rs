//! The kube adapter against a fake API server (tower_test mock): verb, path,
//! query and body of every primitive's requests, discovery, retries and
//! error messages.

use crate::kube_mock::{FakeApi, app1_service, expect, kube_system, ok, status};
use ferry::ports::cluster::{Cluster, Deleted, ListOptions, PatchType};
use ferry::ports::exec::PodExec;
use serde_json::{Value, json};
use std::sync::atomic::Ordering;

const SVC: &str = "/api/v1/namespaces/app1-ns/services/app1";

#[tokio::test]
async fn identity_is_the_kube_system_uid() {
    let (client, api) = FakeApi::start(vec![kube_system("uid-old")]);
    let old = api.cluster(client, "old", false);
    assert_eq!(old.identity().await.unwrap(), "uid-old");
    assert_eq!(old.name(), "old");
    api.assert_done();
}

#[tokio::test]
async fn get_resolves_kinds_through_discovery_once_and_absent_is_none() {
    let (client, api) = FakeApi::start(vec![
        expect("GET", SVC, ok(app1_service())),
        expect("GET", SVC, ok(app1_service())),
        expect(
            "GET",
            "/api/v1/namespaces/app1-ns/services/nope",
            status(404, "NotFound", "services \"nope\" not found"),
        ),
        expect(
            "GET",
            "/apis/apps/v1/namespaces/app1-ns/deployments/app1",
            status(404, "NotFound", "x"),
        ),
        expect(
            "GET",
            "/api/v1/namespaces/kube-system",
            ok(json!({"metadata": {"uid": "u"}})),
        ),
    ]);
    let old = api.cluster(client, "old", false);
    let svc = old
        .get("Service", "app1-ns", "app1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(svc["spec"]["clusterIP"], "10.96.12.34");
    assert_eq!(svc, app1_service(), "objects cross unchanged");
    assert!(old.get("svc", "app1-ns", "app1").await.unwrap().is_some());
    assert_eq!(old.get("services", "app1-ns", "nope").await.unwrap(), None);
    assert_eq!(old.get("deploy", "app1-ns", "app1").await.unwrap(), None);
    // Cluster-scoped kinds ignore the namespace.
    assert!(
        old.get("ns", "whatever", "kube-system")
            .await
            .unwrap()
            .is_some()
    );
    api.assert_done();
    let disc = api.discoveries();
    assert_eq!(
        disc.iter().filter(|p| *p == "/api").count(),
        1,
        "cached: {disc:?}"
    );
    assert_eq!(
        disc.iter().filter(|p| *p == "/apis").count(),
        1,
        "cached: {disc:?}"
    );
}

#[tokio::test]
async fn kinds_resolve_by_name_plural_short_name_group_and_fully_qualified() {
    let (client, api) = FakeApi::start(vec![]);
    let c = api.cluster(client, "old", false);
    for (wanted, plural, api_version) in [
        ("Service", "services", "v1"),
        ("services", "services", "v1"),
        ("svc", "services", "v1"),
        ("deploy", "deployments", "apps/v1"),
        ("deployments.apps", "deployments", "apps/v1"),
        ("apps/v1/StatefulSet", "statefulsets", "apps/v1"),
        ("v1/Service", "services", "v1"),
        ("IngressRoute", "ingressroutes", "traefik.io/v1alpha1"),
    ] {
        let r = c.resolve(wanted).await.unwrap();
        assert_eq!(
            (r.plural.as_str(), r.api_version.as_str()),
            (plural, api_version),
            "{wanted}"
        );
    }
    assert!(!c.resolve("ns").await.unwrap().namespaced);
    let err = c.resolve("Servce").await.unwrap_err();
    assert_eq!(err.reason, "UnknownKind");
    assert!(err.message.contains("did you mean Service"), "{err}");
    let err = c.resolve("apps/v1/Deploymnet").await.unwrap_err();
    assert!(err.message.contains("did you mean Deployment"), "{err}");
    assert!(
        err.to_string().starts_with("cluster `old`: resolve kind"),
        "{err}"
    );
    let err = c.resolve("bad group/v1/X").await.unwrap_err();
    assert!(err.message.contains("no apiVersion"), "{err}");
    api.assert_done();
}

#[tokio::test]
async fn a_crd_is_found_by_its_group_version_alone_and_after_it_is_installed() {
    let (client, api) = FakeApi::start(vec![expect(
        "GET",
        "/apis/traefik.io/v1alpha1/namespaces/app1-ns/ingressroutes/app1",
        ok(json!({"kind": "IngressRoute"})),
    )]);
    api.crd.store(false, Ordering::SeqCst);
    let c = api.cluster(client, "old", false);
    let err = c.resolve("IngressRoute").await.unwrap_err();
    assert!(err.message.contains("no kind `IngressRoute`"), "{err}");
    // The CRD gets installed (a script step did it): the next miss refreshes.
    api.crd.store(true, Ordering::SeqCst);
    let before = api.discoveries().len();
    assert!(
        c.get("traefik.io/v1alpha1/IngressRoute", "app1-ns", "app1")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        api.discoveries()[before..],
        ["/apis/traefik.io/v1alpha1".to_owned()],
        "a fully qualified kind reads only its group version"
    );
    assert_eq!(
        c.resolve("ingressroutes").await.unwrap().kind,
        "IngressRoute"
    );
    api.assert_done();
}

#[tokio::test]
async fn apply_is_a_forced_server_side_apply_by_ferry_and_dry_runs_say_so() {
    let live = app1_service();
    let (client, api) = FakeApi::start(vec![
        expect(
            "PATCH",
            "/api/v1/namespaces/app1-ns/services/app1-internal",
            ok(live.clone()),
        ),
        expect(
            "PATCH",
            "/api/v1/namespaces/default/services/app1-internal",
            ok(live.clone()),
        ),
    ]);
    let c = api.cluster(client.clone(), "old", false);
    let mut obj = json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "app1-internal", "namespace": "app1-ns", "resourceVersion": "5", "managedFields": []},
        "spec": {"selector": {"app": "app1"}, "ports": [{"port": 80}]}});
    assert_eq!(c.apply(obj.clone()).await.unwrap(), live);
    let dry = api.cluster(client, "old", true);
    obj["metadata"].as_object_mut().unwrap().remove("namespace");
    dry.apply(obj).await.unwrap();
    api.assert_done();
    let reqs = api.requests();
    let r = &reqs[0];
    assert_eq!(r.content_type, "application/apply-patch+yaml");
    assert_eq!(r.q("fieldManager"), Some("ferry"));
    assert_eq!(r.q("force"), Some("true"));
    assert_eq!(r.q("dryRun"), None);
    assert_eq!(
        r.body,
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "app1-internal", "namespace": "app1-ns"},
               "spec": {"selector": {"app": "app1"}, "ports": [{"port": 80}]}})
    );
    assert_eq!(reqs[1].q("dryRun"), Some("All"));
    assert_eq!(
        reqs[1].body["metadata"]["namespace"], "default",
        "the context's namespace"
    );
}

#[tokio::test]
async fn apply_refuses_objects_without_kind_or_name() {
    let (client, api) = FakeApi::start(vec![]);
    let c = api.cluster(client, "old", false);
    let err = c
        .apply(json!({"kind": "Service", "metadata": {"name": "a"}}))
        .await
        .unwrap_err();
    assert!(
        err.message
            .contains("needs `apiVersion`, `kind` and `metadata.name`"),
        "{err}"
    );
    let err = c.apply(json!([1, 2])).await.unwrap_err();
    assert_eq!(err.reason, "Invalid");
    let err = c.get("svc", "app1-ns", "a/../../b").await.unwrap_err();
    assert!(err.message.contains("no valid name"), "{err}");
    api.assert_done();
}

#[tokio::test]
async fn create_tolerates_an_identical_object_and_names_a_difference() {
    let existing = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "a", "uid": "x", "resourceVersion": "3"}, "data": {"k": "v"}});
    let (client, api) = FakeApi::start(vec![
        expect(
            "POST",
            "/api/v1/namespaces/a/configmaps",
            status(409, "AlreadyExists", "configmaps \"c\" already exists"),
        ),
        expect(
            "GET",
            "/api/v1/namespaces/a/configmaps/c",
            ok(existing.clone()),
        ),
        expect(
            "POST",
            "/api/v1/namespaces/a/configmaps",
            status(409, "AlreadyExists", "configmaps \"c\" already exists"),
        ),
        expect(
            "GET",
            "/api/v1/namespaces/a/configmaps/c",
            ok(existing.clone()),
        ),
    ]);
    let c = api.cluster(client, "old", false);
    let want = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "a"}, "data": {"k": "v"}});
    assert_eq!(c.create(want.clone()).await.unwrap(), existing);
    let mut other = want;
    other["data"]["k"] = json!("w");
    let err = c.create(other).await.unwrap_err();
    assert_eq!(err.status, Some(409));
    assert!(
        err.message.contains("data.k: wanted \"w\", found \"v\""),
        "{err}"
    );
    api.assert_done();
    let post = &api.requests()[0];
    assert_eq!(post.q("fieldManager"), Some("ferry"));
    assert_eq!(post.body["data"], json!({"k": "v"}));
}

#[tokio::test]
async fn replace_uses_the_live_resource_version_and_retries_conflicts() {
    let mut v1 = app1_service();
    let mut v2 = app1_service();
    v1["metadata"]["resourceVersion"] = json!("1");
    v2["metadata"]["resourceVersion"] = json!("2");
    let (client, api) = FakeApi::start(vec![
        expect("GET", SVC, ok(v1)),
        expect(
            "PUT",
            SVC,
            status(
                409,
                "Conflict",
                "the object has been modified; please apply your changes to the latest version",
            ),
        ),
        expect("GET", SVC, ok(v2.clone())),
        expect("PUT", SVC, ok(v2)),
    ]);
    let c = api.cluster(client, "old", false);
    let ext = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "app1", "namespace": "app1-ns"},
        "spec": {"type": "ExternalName", "externalName": "old.mycompany.internal"}});
    c.replace(ext).await.unwrap();
    api.assert_done();
    let puts: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .collect();
    assert_eq!(puts[0].body["metadata"]["resourceVersion"], "1");
    assert_eq!(puts[1].body["metadata"]["resourceVersion"], "2");
    assert_eq!(
        puts[1].body["spec"]["externalName"],
        "old.mycompany.internal"
    );
    assert!(
        api.notes()
            .iter()
            .any(|n| n.contains("409 Conflict") && n.contains("reading it again")),
        "{:?}",
        api.notes()
    );
}

#[tokio::test]
async fn patch_types_have_their_content_types() {
    let path = "/apis/apps/v1/namespaces/app1-ns/deployments/app1";
    let (client, api) = FakeApi::start(vec![
        expect("PATCH", path, ok(json!({}))),
        expect("PATCH", path, ok(json!({}))),
        expect("PATCH", path, ok(json!({}))),
    ]);
    let c = api.cluster(client, "new", false);
    c.patch(
        "deploy",
        "app1-ns",
        "app1",
        json!({"spec": {"replicas": 3}}),
        PatchType::Merge,
    )
    .await
    .unwrap();
    let ops = json!([{"op": "replace", "path": "/spec/replicas", "value": 2}]);
    c.patch("deploy", "app1-ns", "app1", ops.clone(), PatchType::Json)
        .await
        .unwrap();
    c.patch(
        "deploy",
        "app1-ns",
        "app1",
        json!({"spec": {"replicas": 1}}),
        PatchType::Strategic,
    )
    .await
    .unwrap();
    api.assert_done();
    let reqs = api.requests();
    assert_eq!(reqs[0].content_type, "application/merge-patch+json");
    assert_eq!(reqs[1].content_type, "application/json-patch+json");
    assert_eq!(reqs[1].body, ops);
    assert_eq!(
        reqs[2].content_type,
        "application/strategic-merge-patch+json"
    );
}

#[tokio::test]
async fn delete_of_an_absent_object_is_success() {
    let (client, api) = FakeApi::start(vec![
        expect(
            "DELETE",
            SVC,
            status(404, "NotFound", "services \"app1\" not found"),
        ),
        expect("DELETE", SVC, ok(app1_service())),
    ]);
    let c = api.cluster(client, "old", true);
    assert_eq!(
        c.delete("svc", "app1-ns", "app1").await.unwrap(),
        Deleted::Absent
    );
    assert!(matches!(
        c.delete("svc", "app1-ns", "app1").await.unwrap(),
        Deleted::Gone(_)
    ));
    api.assert_done();
    let r = &api.requests()[0];
    // Deletes carry dry run in their DeleteOptions body.
    assert_eq!(r.body["dryRun"], json!(["All"]));
    assert_eq!(r.body["propagationPolicy"], "Background");
}

#[tokio::test]
async fn list_pages_through_with_selectors_and_fills_in_kinds() {
    let path = "/api/v1/namespaces/app1-ns/pods";
    let (client, api) = FakeApi::start(vec![
        expect(
            "GET",
            path,
            ok(
                json!({"kind": "PodList", "apiVersion": "v1", "metadata": {"continue": "t1"},
            "items": [{"metadata": {"name": "a"}}]}),
            ),
        ),
        expect(
            "GET",
            path,
            ok(
                json!({"kind": "PodList", "apiVersion": "v1", "metadata": {},
            "items": [{"metadata": {"name": "b"}}]}),
            ),
        ),
    ]);
    let c = api.cluster(client, "old", false);
    let options = ListOptions {
        labels: Some("app=app1".into()),
        fields: Some("status.phase=Running".into()),
    };
    let items = c.list("po", "app1-ns", &options).await.unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        items[1],
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "b"}})
    );
    api.assert_done();
    let reqs = api.requests();
    assert_eq!(reqs[0].q("labelSelector"), Some("app=app1"));
    assert_eq!(reqs[0].q("fieldSelector"), Some("status.phase=Running"));
    assert_eq!(reqs[0].q("limit"), Some("500"));
    assert_eq!(reqs[1].q("continue"), Some("t1"));
}

#[tokio::test]
async fn cluster_ip_to_external_name_and_back_is_one_write_each() {
    let live = app1_service();
    let mut external = app1_service();
    let converted_patch: std::sync::Arc<std::sync::Mutex<Value>> = Default::default();
    external["spec"] = json!({"type": "ExternalName", "externalName": "old.mycompany.internal",
        "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}], "sessionAffinity": "None"});
    let (client, api) = FakeApi::start(vec![
        expect("GET", SVC, ok(live.clone())),
        expect("PATCH", SVC, ok(external.clone())),
    ]);
    let c = api.cluster(client, "old", false);
    c.to_external_name("app1-ns", "app1", "old.mycompany.internal")
        .await
        .unwrap();
    api.assert_done();
    let patch = api.requests()[1].clone();
    assert_eq!(patch.content_type, "application/merge-patch+json");
    assert_eq!(patch.q("fieldManager"), Some("ferry"));
    assert_eq!(
        patch.body["spec"],
        json!({"type": "ExternalName", "externalName": "old.mycompany.internal", "selector": null}),
        "clusterIP(s) and ipFamilies are left unchanged so the server drops them (dropTypeDependentFields)"
    );
    let saved = patch.body["metadata"]["annotations"]["ferry.dev/cluster-ip-spec"]
        .as_str()
        .unwrap()
        .to_owned();
    let saved: Value = serde_json::from_str(&saved).unwrap();
    assert_eq!(saved["clusterIP"], "10.96.12.34");
    assert_eq!(saved["selector"], json!({"app": "app1"}));
    *converted_patch.lock().unwrap() = patch.body.clone();

    // The server's answer carries the annotation: the way back reads it.
    external["metadata"]["annotations"] = patch.body["metadata"]["annotations"].clone();
    let (client, api) = FakeApi::start(vec![
        expect("GET", SVC, ok(external.clone())),
        // Already an ExternalName to the same host: nothing is written.
        expect("GET", SVC, ok(external.clone())),
        expect("PATCH", SVC, ok(live.clone())),
        expect("GET", SVC, ok(live.clone())),
    ]);
    let c = api.cluster(client, "old", false);
    c.to_external_name("app1-ns", "app1", "old.mycompany.internal")
        .await
        .unwrap();
    c.to_cluster_ip("app1-ns", "app1").await.unwrap();
    // Already a ClusterIP Service: nothing is written.
    c.to_cluster_ip("app1-ns", "app1").await.unwrap();
    api.assert_done();
    let back = &api.requests()[2];
    assert_eq!(back.method, "PATCH");
    assert_eq!(
        back.body["metadata"]["annotations"]["ferry.dev/cluster-ip-spec"],
        Value::Null
    );
    assert_eq!(back.body["spec"]["type"], "ClusterIP");
    assert_eq!(back.body["spec"]["externalName"], Value::Null);
    assert_eq!(
        back.body["spec"]["clusterIP"], "10.96.12.34",
        "the old IP is asked for again"
    );
    assert_eq!(back.body["spec"]["clusterIPs"], json!(["10.96.12.34"]));
    assert_eq!(back.body["spec"]["selector"], json!({"app": "app1"}));
    assert_eq!(
        back.body["spec"]["ports"],
        json!([{"port": 80, "protocol": "TCP", "targetPort": 80}])
    );
}

#[tokio::test]
async fn flipping_an_external_name_to_the_new_cluster_only_changes_the_host() {
    let mut external = app1_service();
    external["spec"] = json!({"type": "ExternalName", "externalName": "old.mycompany.internal"});
    let (client, api) = FakeApi::start(vec![
        expect("GET", SVC, ok(external.clone())),
        expect("PATCH", SVC, ok(external)),
    ]);
    let c = api.cluster(client, "old", false);
    c.to_external_name("app1-ns", "app1", "new.mycompany.internal")
        .await
        .unwrap();
    api.assert_done();
    assert_eq!(
        api.requests()[1].body,
        json!({"spec": {"externalName": "new.mycompany.internal"}})
    );
}

#[tokio::test]
async fn a_taken_cluster_ip_falls_back_to_a_new_one() {
    let mut external = app1_service();
    external["spec"] = json!({"type": "ExternalName", "externalName": "old.mycompany.internal"});
    external["metadata"]["annotations"] = json!({"ferry.dev/cluster-ip-spec":
        r#"{"type":"ClusterIP","clusterIP":"10.96.12.34","clusterIPs":["10.96.12.34"],"ports":[{"port":80,"nodePort":30080}],"selector":{"app":"app1"}}"#});
    let (client, api) = FakeApi::start(vec![
        expect("GET", SVC, ok(external)),
        expect(
            "PATCH",
            SVC,
            status(
                422,
                "Invalid",
                "Service \"app1\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.96.12.34\"}: failed to allocate IP 10.96.12.34: provided IP is already allocated",
            ),
        ),
        expect("PATCH", SVC, ok(app1_service())),
    ]);
    let c = api.cluster(client, "old", false);
    c.to_cluster_ip("app1-ns", "app1").await.unwrap();
    api.assert_done();
    let second = &api.requests()[2];
    assert!(
        second.body["spec"].get("clusterIP").is_none(),
        "{}",
        second.body
    );
    assert!(second.body["spec"].get("clusterIPs").is_none());
    assert_eq!(second.body["spec"]["ports"], json!([{"port": 80}]));
    assert!(
        api.notes().iter().any(|n| n.contains("no longer free")),
        "{:?}",
        api.notes()
    );
}

#[tokio::test]
async fn to_cluster_ip_without_a_saved_spec_explains_itself() {
    let mut external = app1_service();
    external["spec"] = json!({"type": "ExternalName", "externalName": "x.example"});
    let (client, api) = FakeApi::start(vec![expect("GET", SVC, ok(external))]);
    let c = api.cluster(client, "old", false);
    let err = c.to_cluster_ip("app1-ns", "app1").await.unwrap_err();
    assert_eq!(err.reason, "NoSavedSpec");
    assert!(
        err.to_string()
            .contains("to_cluster_ip Service app1-ns/app1"),
        "{err}"
    );
    let err = c
        .to_external_name("app1-ns", "app1", "not a host")
        .await
        .unwrap_err();
    assert_eq!(err.reason, "Invalid");
    api.assert_done();
}

#[tokio::test]
async fn export_strips_what_the_source_cluster_owns() {
    let (client, api) = FakeApi::start(vec![expect("GET", SVC, ok(app1_service()))]);
    let c = api.cluster(client, "old", false);
    let obj = c.export("svc", "app1-ns", "app1").await.unwrap().unwrap();
    assert_eq!(
        obj,
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "app1", "namespace": "app1-ns", "labels": {"app": "app1"}},
               "spec": {"type": "ClusterIP", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                        "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
                        "selector": {"app": "app1"}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}})
    );
    api.assert_done();
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_visibly() {
    let (client, api) = FakeApi::start(vec![
        expect(
            "GET",
            SVC,
            status(429, "TooManyRequests", "slow down").header("Retry-After", "0"),
        ),
        expect(
            "GET",
            SVC,
            status(503, "ServiceUnavailable", "etcd leader changed"),
        ),
        expect("GET", SVC, ok(app1_service())),
    ]);
    let c = api.cluster(client, "old", false);
    assert!(c.get("svc", "app1-ns", "app1").await.unwrap().is_some());
    api.assert_done();
    let notes = api.notes();
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(
        notes[0].contains("GET /api/v1/namespaces/app1-ns/services/app1")
            && notes[0].contains("429 TooManyRequests")
            && notes[0].contains("retry 1/3"),
        "{notes:?}"
    );
    assert!(
        notes[1].contains("503 ServiceUnavailable") && notes[1].contains("retry 2/3"),
        "{notes:?}"
    );
}

#[tokio::test]
async fn retries_are_bounded() {
    let (client, api) = FakeApi::start(
        (0..4)
            .map(|_| expect("GET", SVC, status(503, "ServiceUnavailable", "down")))
            .collect(),
    );
    let c = api.cluster(client, "old", false);
    let err = c.get("svc", "app1-ns", "app1").await.unwrap_err();
    assert_eq!(err.status, Some(503));
    assert_eq!(api.notes().len(), 3);
    api.assert_done();
}

#[tokio::test]
async fn a_forbidden_request_names_cluster_verb_object_status_reason_and_message() {
    let (client, api) = FakeApi::start(vec![expect(
        "PATCH",
        SVC,
        status(
            403,
            "Forbidden",
            "services \"app1\" is forbidden: User \"bob\" cannot patch resource \"services\" in API group \"\" in the namespace \"app1-ns\"",
        ),
    )]);
    let c = api.cluster(client, "old", false);
    let err = c
        .patch("svc", "app1-ns", "app1", json!({}), PatchType::Merge)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "cluster `old`: patch Service app1-ns/app1 failed: 403 Forbidden: services \"app1\" is forbidden: User \"bob\" cannot patch resource \"services\" in API group \"\" in the namespace \"app1-ns\""
    );
    assert!(api.notes().is_empty(), "403 is not retried");
    api.assert_done();
}

#[tokio::test]
async fn credentials_in_server_messages_are_redacted() {
    let (client, api) = FakeApi::start(vec![expect(
        "GET",
        SVC,
        status(401, "Unauthorized", "token s3cr3t-token expired"),
    )]);
    let c = api.cluster(client, "old", false);
    let err = c.get("svc", "app1-ns", "app1").await.unwrap_err();
    assert!(!err.to_string().contains("s3cr3t-token"), "{err}");
    assert!(
        err.to_string().contains("token [redacted] expired"),
        "{err}"
    );
}

#[tokio::test]
async fn exec_goes_to_the_pods_exec_subresource_and_reports_refusals() {
    let (client, api) = FakeApi::start(vec![expect(
        "GET",
        "/api/v1/namespaces/app2-ns/pods/app2/exec",
        status(
            403,
            "Forbidden",
            "pods \"app2\" is forbidden: cannot create resource \"pods/exec\"",
        ),
    )]);
    let c = api.cluster(client, "old", false);
    let cmd: Vec<String> = [
        "curl",
        "-s",
        "-H",
        "Host: app1.app1-ns",
        "http://old.mycompany.internal",
    ]
    .map(String::from)
    .to_vec();
    let err = c
        .exec_in("app2-ns", "app2", Some("app2"), &cmd)
        .await
        .unwrap_err();
    assert_eq!(err.status, Some(403));
    assert!(
        err.to_string()
            .starts_with("cluster `old`: exec in Pod app2-ns/app2 failed: 403 Forbidden"),
        "{err}"
    );
    // The PodExec port (probe::http_from) sees the same failure as text.
    let via_port = c.exec("app2-ns", "app2", None, &cmd).await.unwrap_err();
    assert!(
        via_port.contains("exec in Pod app2-ns/app2 failed: 500"),
        "{via_port}"
    );
    let r = &api.requests()[0];
    assert_eq!(
        r.qs("command"),
        [
            "curl",
            "-s",
            "-H",
            "Host: app1.app1-ns",
            "http://old.mycompany.internal"
        ]
    );
    assert_eq!(r.q("container"), Some("app2"));
    assert_eq!(r.q("stdout"), Some("true"));
    assert_eq!(r.q("stdin"), None);
}

#[tokio::test]
async fn an_unreachable_server_fails_fast_naming_its_address() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let config = kube::Config::new(format!("http://127.0.0.1:{port}").parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let (_, api) = FakeApi::start(vec![]);
    let c = api.cluster(client, "gone", false);
    let started = std::time::Instant::now();
    let err = c.identity().await.unwrap_err();
    assert_eq!(err.reason, "Unreachable");
    assert!(
        err.message
            .contains("cannot reach the API server at https://gone.example:6443"),
        "{err}"
    );
    assert!(
        api.notes().is_empty(),
        "opening does not retry: {:?}",
        api.notes()
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[tokio::test]
async fn requests_are_spaced_by_the_client_side_rate_limit() {
    let (client, api) = FakeApi::start((0..4).map(|_| kube_system("u")).collect());
    // 20 requests per second, burst 2: the 3rd and 4th wait 50ms each.
    let c = api.limited(client, "old", false, 20.0, 2);
    let started = std::time::Instant::now();
    for _ in 0..4 {
        c.identity().await.unwrap();
    }
    assert!(
        started.elapsed() >= std::time::Duration::from_millis(95),
        "{:?}",
        started.elapsed()
    );
    api.assert_done();
}
