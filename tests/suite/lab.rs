//! The lab as users and tests meet it: real kubectl against its API servers,
//! ferry's adapters through an environment profile, the article by hand with
//! app2 watching, state that survives a restart, and `ferry run --lab`.

use crate::common::Sandbox;
use crate::common::lab::LabFixture;
use ferry::lab::Lab;
use ferry::lab::zone::RecordSet;
use std::process::Command;

fn kubectl(lab: &Lab, context: &str, args: &[&str]) -> (bool, String) {
    // A discovery cache of this lab's own: kubectl keys its cache by
    // host:port, and a port an earlier lab (another build) used may still
    // have that lab's discovery cached for hours.
    let cache = lab.kubeconfig.with_file_name("kubectl-cache");
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&lab.kubeconfig)
        .arg("--cache-dir")
        .arg(&cache)
        .args(["--context", context])
        .args(args)
        .output()
        .expect("kubectl is installed");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn kubectl_ok(lab: &Lab, context: &str, args: &[&str]) -> String {
    let (ok, text) = kubectl(lab, context, args);
    assert!(ok, "kubectl {args:?}: {text}");
    text
}

#[test]
fn kubectl_gets_applies_replaces_and_deletes_against_the_lab() {
    let sb = Sandbox::new();
    let running = LabFixture::open(&sb.file("lab"));
    let lab = &running.lab;

    let services = kubectl_ok(lab, "old", &["get", "svc", "-A"]);
    assert!(
        services.contains("app1") && services.contains("traefik"),
        "{services}"
    );
    assert!(
        !kubectl_ok(lab, "new", &["get", "svc", "-A"]).contains("app1"),
        "the new cluster starts without the apps"
    );

    sb.write("svc.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: app1-ns\nspec:\n  selector:\n    app: app1\n  ports:\n  - port: 8080\n    targetPort: 80\n");
    assert!(
        kubectl_ok(
            lab,
            "old",
            &["apply", "-f", sb.file("svc.yaml").to_str().unwrap()]
        )
        .contains("service/web created")
    );
    let ip = kubectl_ok(
        lab,
        "old",
        &[
            "get",
            "svc",
            "web",
            "-n",
            "app1-ns",
            "-o",
            "jsonpath={.spec.clusterIP}",
        ],
    );
    assert!(
        ip.starts_with("127.10."),
        "a clusterIP from the old cluster's range: {ip}"
    );

    sb.write("ext.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: app1-ns\nspec:\n  type: ExternalName\n  externalName: old.mycompany.internal\n");
    kubectl_ok(
        lab,
        "old",
        &["replace", "-f", sb.file("ext.yaml").to_str().unwrap()],
    );
    let spec = kubectl_ok(
        lab,
        "old",
        &[
            "get",
            "svc",
            "web",
            "-n",
            "app1-ns",
            "-o",
            "jsonpath={.spec}",
        ],
    );
    assert!(
        spec.contains("ExternalName") && !spec.contains("clusterIP"),
        "the allocated IP is dropped on the type change: {spec}"
    );

    sb.write("route.yaml", "apiVersion: traefik.containo.us/v1alpha1\nkind: IngressRoute\nmetadata:\n  name: web\n  namespace: app1-ns\nspec:\n  routes:\n  - kind: Rule\n    match: Host(`web.app1-ns`)\n    services:\n    - name: web\n      port: 8080\n");
    kubectl_ok(
        lab,
        "old",
        &["apply", "-f", sb.file("route.yaml").to_str().unwrap()],
    );
    assert!(
        kubectl_ok(
            lab,
            "old",
            &["get", "ingressroutes.traefik.containo.us", "-n", "app1-ns"]
        )
        .contains("web")
    );

    kubectl_ok(
        lab,
        "old",
        &["delete", "-f", sb.file("route.yaml").to_str().unwrap()],
    );
    kubectl_ok(lab, "old", &["delete", "svc", "web", "-n", "app1-ns"]);
    let (found, text) = kubectl(lab, "old", &["get", "svc", "web", "-n", "app1-ns"]);
    assert!(!found && text.contains("NotFound"), "{text}");

    let pod = kubectl_ok(
        lab,
        "old",
        &[
            "get",
            "pods",
            "-n",
            "app2-ns",
            "-o",
            "jsonpath={.items[0].metadata.name}",
        ],
    );
    let hello = kubectl_ok(
        lab,
        "old",
        &[
            "exec",
            "-n",
            "app2-ns",
            &pod,
            "--",
            "curl",
            "-s",
            "http://app1.app1-ns",
        ],
    );
    assert_eq!(hello.trim(), "Hello, I'm app1 (cluster old)");
    let (ok, text) = kubectl(
        lab,
        "old",
        &[
            "exec",
            "-n",
            "app2-ns",
            &pod,
            "--",
            "curl",
            "-sS",
            "http://nope.app1-ns",
        ],
    );
    assert!(!ok && text.contains("Could not resolve host"), "{text}");
}

/// The article by hand, through ferry's primitives: bridge app1 through the
/// old cluster's ingress, prove the path from app2's pod, flip app1's Service
/// to ExternalName while app2 calls it 200 times a second. The flip releases
/// the ClusterIP app2 holds from the cluster DNS's cache, so the guard sees
/// app2's calls refused: the outage real clusters show.
#[test]
fn the_article_by_hand_loses_app2s_calls_across_the_flip() {
    let sb = Sandbox::new();
    let running = LabFixture::open(&sb.file("lab"));
    let lab = &running.lab;
    let lb = lab.cluster("old").unwrap().with_state(|s| {
        s.objects["services/traefik/traefik"]["status"]["loadBalancer"]["ingress"][0]["ip"]
            .as_str()
            .unwrap()
            .to_owned()
    });
    // The private record the DNS primitives create in the recipes.
    lab.zone
        .put(RecordSet {
            name: "old".into(),
            rtype: "A".into(),
            ttl: 60,
            data: vec![lb.clone()],
        })
        .unwrap();
    sb.write("ferry.toml", &lab.environment().to_toml());
    sb.write(
        "article.rhai",
        r#"
        let old = cluster("old");
        let app2 = old.list("pods", "app2-ns", #{ labels: "app=app2" })[0].metadata.name;
        step("app1-internal", || old.copy(old, "svc", "app1-ns", "app1", #{ rename: "app1-internal" }));
        step("route", || old.apply(yaml(
            "apiVersion: traefik.io/v1alpha1\nkind: IngressRoute\nmetadata: { name: app1, namespace: app1-ns }\n" +
            "spec:\n  routes:\n  - kind: Rule\n" +
            "    match: Host(`app1.app1-ns`) || Host(`app1.app1-ns.svc`) || Host(`app1.app1-ns.svc.cluster.local`)\n" +
            "    services: [{ name: app1-internal, port: 80 }]\n")));
        let through = probe::http_from(old, "app2-ns", app2, "http://old.mycompany.internal/", #{ host: "app1.app1-ns", expect_body: "Hello, I'm app1" });
        if !through.ok { throw `the new path does not answer: ${through.error}`; }
        let stats = step("flip", || guard(
            #{ http: "http://app1.app1-ns/", expect_body: "Hello, I'm app1", from: #{ cluster: old, namespace: "app2-ns", pod: app2 } },
            #{ rate: 200, max_failures: 0 },
            || { sleep(0.5); old.to_external_name("app1-ns", "app1", "old.mycompany.internal"); sleep(0.5); }));
        print(`requests=${stats.requests} failures=${stats.failures}`);
        "#,
    );
    sb.ferry(["run", "article.rhai", "--id", "a"])
        .code(1)
        .stdout_has("Couldn't connect to server")
        .run();
    let svc = lab
        .cluster("old")
        .unwrap()
        .with_state(|s| s.objects["services/app1-ns/app1"].clone());
    assert_eq!(svc["spec"]["type"], "ExternalName");
    assert_eq!(svc["spec"]["externalName"], "old.mycompany.internal");
    let guard = &sb.step("a", "flip")["data"]["guard"];
    assert!(guard["requests"].as_u64().unwrap() >= 50, "{guard}");
    assert!(
        guard["error_kinds"]["refused"].as_u64().unwrap() > 0,
        "{guard}"
    );
}

#[test]
fn a_lab_comes_back_with_its_state_and_identity() {
    let sb = Sandbox::new();
    let dir = sb.file("lab");
    let (uid, kept) = {
        let running = LabFixture::open(&dir);
        let lab = &running.lab;
        sb.write("cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n  namespace: app1-ns\ndata:\n  k: v\n");
        kubectl_ok(
            lab,
            "old",
            &["apply", "-f", sb.file("cm.yaml").to_str().unwrap()],
        );
        let uid = kubectl_ok(
            lab,
            "old",
            &["get", "ns", "kube-system", "-o", "jsonpath={.metadata.uid}"],
        );
        lab.zone
            .put(RecordSet {
                name: "old".into(),
                rtype: "A".into(),
                ttl: 60,
                data: vec!["127.11.1.1".into()],
            })
            .unwrap();
        (uid, "kept")
    };
    let running = LabFixture::open(&dir);
    let lab = &running.lab;
    assert_eq!(
        kubectl_ok(
            lab,
            "old",
            &["get", "ns", "kube-system", "-o", "jsonpath={.metadata.uid}"]
        ),
        uid,
        "the cluster's identity survives"
    );
    assert_eq!(
        kubectl_ok(
            lab,
            "old",
            &[
                "get",
                "cm",
                kept,
                "-n",
                "app1-ns",
                "-o",
                "jsonpath={.data.k}"
            ]
        ),
        "v"
    );
    assert_eq!(lab.zone.get("old", "A").unwrap().data, ["127.11.1.1"]);
    assert_eq!(
        kubectl_ok(
            lab,
            "old",
            &["get", "deploy", "-n", "app1-ns", "-o", "name"]
        )
        .trim(),
        "deployment.apps/app1",
        "seeding happens once"
    );
}

#[test]
fn a_lab_run_pauses_and_resumes_against_the_same_lab() {
    let sb = Sandbox::new();
    sb.write(
        "lab.rhai",
        r#"
        let old = cluster("old");
        step("mark", || old.apply(#{ apiVersion: "v1", kind: "ConfigMap", metadata: #{ name: "mark", namespace: "app1-ns" }, data: #{ at: "before the gate" } }));
        pause("go", "look at the lab");
        let mark = old.get("cm", "app1-ns", "mark");
        print(`mark says ${mark.data.at}`);
        "#,
    );
    sb.ferry(["run", "lab.rhai", "--lab", "--id", "l"])
        .code(3)
        .run();
    let status = sb.status("l");
    let lab_dir = status["run"]["environment"]["lab"]
        .as_str()
        .expect("the run records its lab")
        .to_owned();
    assert!(std::path::Path::new(&lab_dir).join("clusters").exists());
    sb.ferry(["approve", "l", "go"]).run();
    sb.ferry(["resume", "l"])
        .stdout_has("mark says before the gate")
        .run();
}

#[test]
fn kubectl_get_all_lists_workloads_through_the_all_category() {
    let sb = Sandbox::new();
    let running = LabFixture::open(&sb.file("lab"));
    let all = kubectl_ok(&running.lab, "old", &["get", "all", "-A"]);
    for expected in ["pod/app1-", "service/app1", "deployment.apps/app1"] {
        assert!(all.contains(expected), "`get all` lacks {expected}: {all}");
    }
    assert!(
        !all.contains("configmap/"),
        "config maps are not in `all`: {all}"
    );
}

#[test]
fn lab_up_with_a_relative_dir_serves_what_it_prints() {
    use crate::common::{await_condition, finish, signal};
    let sb = Sandbox::new();
    let lab = sb.spawn(["lab", "up", "--dir", ".ferry/lab"]);
    await_condition("the lab to publish itself", || {
        sb.file(".ferry/lab/lab.pid").exists() && sb.file(".ferry/lab/ferry.toml").exists()
    });
    let profile = sb.read(".ferry/lab/ferry.toml");
    assert!(
        profile.contains(&sb.file(".ferry/lab/kubeconfig").display().to_string()),
        "absolute paths in the profile: {profile}"
    );
    sb.write(
        "get.rhai",
        r#"let svc = cluster("old").get("svc", "app1-ns", "app1"); print(`got ${svc.metadata.name}`);"#,
    );
    sb.ferry(["run", "get.rhai", "--lab-dir", ".ferry/lab"])
        .stdout_has("got app1")
        .run();
    sb.ferry(["lab", "status", "--dir", ".ferry/lab"])
        .stdout_has(": running (pid ")
        .stdout_has(&format!(
            "kubeconfig  {}",
            sb.file(".ferry/lab/kubeconfig").display()
        ))
        .stdout_has("cluster     old  https://127.0.0.1:")
        .stdout_has("apps in old app1 (app1-ns), app2 (app2-ns)")
        .run();
    sb.ferry([
        "lab",
        "kubectl",
        "--dir",
        ".ferry/lab",
        "--",
        "--context",
        "old",
        "get",
        "svc",
        "-n",
        "app1-ns",
    ])
    .stdout_has("app1")
    .run();
    let json = sb
        .ferry(["lab", "status", "--dir", ".ferry/lab", "-o", "json"])
        .run();
    let status: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(status["running"], true);
    assert_eq!(status["clusters"].as_array().unwrap().len(), 2);

    signal(&lab, libc::SIGINT);
    let out = finish(lab);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stdout.contains("ferry run SCRIPT --lab-dir .ferry/lab"),
        "{}",
        out.stdout
    );
    sb.ferry(["lab", "status", "--dir", ".ferry/lab"])
        .stdout_has("not running; its state stays")
        .run();
    sb.ferry(["lab", "kubectl", "--dir", ".ferry/lab", "--", "get", "ns"])
        .code(2)
        .stderr_has("no lab runs in")
        .run();
}

/// Traefik 2 and 3 both installed (as during an upgrade, and in the lab):
/// the bare kind `IngressRoute` names two resources, and ferry says so
/// instead of picking one; the qualified kind works.
#[test]
fn a_kind_two_groups_serve_is_refused_as_ambiguous() {
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    sb.write(
        "amb.rhai",
        "let old = cluster(\"old\");\nprint(`routes=${old.list(\"traefik.io/v1alpha1/IngressRoute\", \"\", #{}).len()}`);\nstep(\"ambiguous\", || old.list(\"IngressRoute\", \"\", #{}));\n",
    );
    sb.ferry(["run", "amb.rhai", "--lab-dir", &lab.dir_arg()])
        .code(1)
        .stdout_has("routes=0")
        .stderr_has("cluster `old`: resolve kind IngressRoute failed: AmbiguousKind: `IngressRoute` is served by `traefik.containo.us/v1alpha1/IngressRoute` and `traefik.io/v1alpha1/IngressRoute`: name one of them")
        .run();
}

/// Validation as kube-apiserver 1.36 answers it (messages as recorded from
/// the real server, see `lab_recorded`): Service names are RFC 1123 labels
/// (1.36 relaxed them from DNS-1035: `1abc` is a valid name now), ports
/// 1-65535 (a port out of range is reported for the target port it
/// defaults too).
#[test]
fn the_lab_validates_service_names_and_ports_like_the_api_server() {
    use ferry::lab::apiserver::Write;
    let sb = Sandbox::new();
    let running = LabFixture::open(&sb.file("lab"));
    let old = running.lab.cluster("old").unwrap();
    let services = old.resource("", "v1", "services").unwrap();
    let service = |name: &str, port: u64| {
        serde_json::json!({ "apiVersion": "v1", "kind": "Service", "metadata": { "name": name },
                            "spec": { "ports": [{ "port": port }] } })
    };
    let err = old
        .create(
            &services,
            Some("default"),
            service("badport", 70000),
            Write::default(),
        )
        .unwrap_err();
    assert_eq!((err.code, err.reason), (422, "Invalid"));
    assert_eq!(
        err.message,
        "Service \"badport\" is invalid: [spec.ports[0].port: Invalid value: 70000: must be between 1 and 65535, inclusive, spec.ports[0].targetPort: Invalid value: 70000: must be between 1 and 65535, inclusive]"
    );
    old.create(
        &services,
        Some("default"),
        service("1abc", 80),
        Write::default(),
    )
    .unwrap();
    let err = old
        .create(
            &services,
            Some("default"),
            service("Bad_Name", 80),
            Write::default(),
        )
        .unwrap_err();
    assert!(
        err.message.starts_with("Service \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"),
        "{}",
        err.message
    );
    let long = "a".repeat(64);
    let err = old
        .create(
            &services,
            Some("default"),
            service(&long, 80),
            Write::default(),
        )
        .unwrap_err();
    assert!(
        err.message.ends_with("must be no more than 63 characters"),
        "{}",
        err.message
    );
    // Other kinds stay RFC 1123 subdomains: dots allowed.
    let configmaps = old.resource("", "v1", "configmaps").unwrap();
    old.create(
        &configmaps,
        Some("default"),
        serde_json::json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "a.b-c" } }),
        Write::default(),
    )
    .unwrap();
}

/// kube-apiserver stores no write that changes nothing: a repeated
/// server-side apply (or merge patch) keeps the resourceVersion.
#[test]
fn a_write_that_changes_nothing_keeps_the_resource_version() {
    use ferry::lab::apiserver::Write;
    use ferry::lab::apiserver::patch::PatchKind;
    let sb = Sandbox::new();
    let running = LabFixture::open(&sb.file("lab"));
    let old = running.lab.cluster("old").unwrap();
    let configmaps = old.resource("", "v1", "configmaps").unwrap();
    let body = serde_json::json!({ "apiVersion": "v1", "kind": "ConfigMap",
                                   "metadata": { "name": "same", "namespace": "default" }, "data": { "k": "v" } });
    let apply = |body: &serde_json::Value| {
        old.patch(
            &configmaps,
            Some("default"),
            "same",
            PatchKind::Apply,
            body,
            Write {
                field_manager: Some("ferry"),
                ..Write::default()
            },
        )
        .unwrap()
    };
    let first = apply(&body);
    let again = apply(&body);
    assert_eq!(
        again["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );
    let mut changed = body.clone();
    changed["data"]["k"] = "w".into();
    let third = apply(&changed);
    assert_ne!(
        third["metadata"]["resourceVersion"],
        first["metadata"]["resourceVersion"]
    );
}

/// One lab per directory: a run that would start a second lab on files
/// another process's lab is using is refused, naming that process, and the
/// lab's state is left alone.
#[test]
fn a_second_lab_on_the_same_directory_is_refused() {
    let sb = Sandbox::new();
    let dir = sb.file("lab");
    let running = LabFixture::open(&dir);
    sb.write(
        "s.rhai",
        "let old = cluster(\"old\");\nprint(old.context());\n",
    );
    let out = sb
        .ferry(["run", "s.rhai", "--lab-dir", dir.to_str().unwrap()])
        .code(2)
        .stderr_has("already runs in another process (pid ")
        .stderr_has("ferry lab up --dir")
        .run();
    assert!(
        out.stderr.contains(&std::process::id().to_string()),
        "names the process holding it: {}",
        out.stderr
    );
    drop(running);
    // Once that lab stopped, the directory's lab starts again.
    sb.ferry(["run", "s.rhai", "--lab-dir", dir.to_str().unwrap()])
        .stdout_has("old")
        .run();
}

/// A lab killed while it seeded itself the first time (its first
/// milliseconds) is seeded again when it next starts: the run that follows
/// finds every app, instead of "no Service app1-ns/app1".
#[test]
fn a_lab_killed_while_seeding_is_seeded_again() {
    let dir = tempfile::tempdir().unwrap();
    // What a kill mid-seed leaves: the marker and an empty cluster folder.
    std::fs::create_dir_all(dir.path().join("clusters")).unwrap();
    std::fs::write(dir.path().join("seeding"), "").unwrap();
    {
        let lab = LabFixture::open(dir.path());
        assert!(lab.object("old", "services/app1-ns/app1").is_some());
        assert!(!dir.path().join("seeding").exists(), "seeding finished");
    }
    // A seeded lab is never seeded again: what a run deleted stays deleted.
    {
        let lab = LabFixture::open(dir.path());
        let cluster = lab.lab.cluster("old").unwrap();
        let services = cluster.resource("", "v1", "services").unwrap();
        cluster
            .delete(
                &services,
                Some("app2-ns"),
                "app2",
                ferry::lab::apiserver::Write::default(),
            )
            .unwrap();
    }
    let lab = LabFixture::open(dir.path());
    assert!(lab.object("old", "services/app2-ns/app2").is_none());
}

/// A write the lab cannot persist (its disk is full: here the file size
/// limit of the process) fails the request with a 5xx as etcd does, and
/// changes nothing; ferry's step fails naming the server's message.
#[test]
fn a_write_the_lab_cannot_persist_fails_and_changes_nothing() {
    use std::os::unix::process::CommandExt;
    let sb = Sandbox::new();
    let lab = LabFixture::serve(&sb.file("lab"));
    let log = sb.file("lab/clusters/old.log");
    let size = std::fs::metadata(&log).unwrap().len();
    sb.write(
        "cm.rhai",
        r#"
let old = cluster("old");
step("write", || old.apply(#{ apiVersion: "v1", kind: "ConfigMap",
    metadata: #{ name: "kept-out", namespace: "app1-ns" }, data: #{ k: "v" } }));
"#,
    );
    // From here on this process (the lab) cannot grow a file past the log's
    // current size; ferry itself runs without that limit.
    let limit = libc::rlimit {
        rlim_cur: size + 16,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: plain libc calls on this process; SIGXFSZ ignored so the
    // write fails with EFBIG instead of killing the test.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
    let mut cmd = sb.command();
    cmd.args(["run", "cm.rhai", "--lab-dir", &lab.dir_arg()]);
    // SAFETY: only async-signal-safe setrlimit between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let free = libc::rlimit {
                rlim_cur: libc::RLIM_INFINITY,
                rlim_max: libc::RLIM_INFINITY,
            };
            libc::setrlimit(libc::RLIMIT_FSIZE, &free);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let free = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: as above.
    unsafe { libc::setrlimit(libc::RLIMIT_FSIZE, &free) };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot persist the change"),
        "the server's message reaches the user: {stderr}"
    );
    assert!(
        lab.object("old", "configmaps/app1-ns/kept-out").is_none(),
        "nothing changed"
    );
    assert_eq!(std::fs::metadata(&log).unwrap().len(), size, "no torn line");
}
