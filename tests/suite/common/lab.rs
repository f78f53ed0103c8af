//! A lab served from the test process: ferry reaches it with `--lab-dir`
//! (the test writes the profile and its own pid, as `ferry lab up` does),
//! while the test reads its objects, records and routing directly.

use ferry::lab::apiserver::patch::PatchKind;
use ferry::lab::apiserver::{PodCommands, Write};
use ferry::lab::dataplane::exec::LabCommands;
use ferry::lab::zone::RecordSet;
use ferry::lab::{Lab, LabOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub struct LabFixture {
    pub lab: Lab,
    pub dir: PathBuf,
    rt: tokio::runtime::Runtime,
}

impl LabFixture {
    /// Starts a lab in `dir` and publishes it for `ferry run --lab-dir`.
    pub fn serve(dir: &Path) -> LabFixture {
        let fixture = LabFixture::open(dir);
        std::fs::write(dir.join("ferry.toml"), fixture.lab.environment().to_toml()).unwrap();
        std::fs::write(dir.join("lab.pid"), std::process::id().to_string()).unwrap();
        fixture
    }

    /// Starts the lab saved in `dir` (or a new one there), unpublished.
    pub fn open(dir: &Path) -> LabFixture {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let lab = rt
            .block_on(Lab::start(LabOptions::new(dir)))
            .expect("the lab starts");
        LabFixture {
            lab,
            dir: dir.to_owned(),
            rt,
        }
    }

    pub fn dir_arg(&self) -> String {
        self.dir.display().to_string()
    }

    /// The object at `resource/namespace/name` (e.g. `services/app1-ns/app1`).
    pub fn object(&self, cluster: &str, key: &str) -> Option<Value> {
        self.lab
            .cluster(cluster)
            .unwrap()
            .with_state(|s| s.objects.get(key).cloned())
    }

    /// Names of a resource's objects in a namespace.
    pub fn names(&self, cluster: &str, resource: &str, namespace: &str) -> Vec<String> {
        self.lab.cluster(cluster).unwrap().with_state(|s| {
            s.scan(resource, Some(namespace))
                .filter_map(|o| o["metadata"]["name"].as_str().map(str::to_owned))
                .collect()
        })
    }

    /// Every record of the private zone except its SOA (whose serial moves).
    pub fn records(&self) -> Vec<RecordSet> {
        self.lab
            .zone
            .list()
            .into_iter()
            .filter(|r| r.rtype != "SOA")
            .collect()
    }

    /// Starts a pod `caller` in namespace `callers` of `cluster` (created
    /// once), a caller that stays while apps move around it; returns its name.
    pub fn caller(&self, cluster: &str) -> String {
        let store = self.lab.cluster(cluster).unwrap();
        let namespaces = store.resource("", "v1", "namespaces").unwrap();
        let pods = store.resource("", "v1", "pods").unwrap();
        let _ = store.create(
            &namespaces,
            None,
            serde_json::json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "callers" } }),
            Write::default(),
        );
        let _ = store.create(
            &pods,
            Some("callers"),
            serde_json::json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": { "name": "caller", "namespace": "callers", "labels": { "app": "caller" } },
                "spec": { "containers": [{ "name": "curl", "image": "curlimages/curl:8.10.1", "command": ["sleep", "infinity"] }] },
            }),
            Write::default(),
        );
        "caller".into()
    }

    /// Rewrites `cluster`'s CoreDNS Corefile with `cache` and `ttl` seconds
    /// (the lab reads it on every query, as CoreDNS's `reload` would).
    pub fn set_dns_cache(&self, cluster: &str, cache: u32, ttl: u32) {
        let store = self.lab.cluster(cluster).unwrap();
        let configmaps = store.resource("", "v1", "configmaps").unwrap();
        let corefile = ferry::corefile::KUBEADM_COREFILE
            .replace("cache 30", &format!("cache {cache}"))
            .replace("ttl 30", &format!("ttl {ttl}"));
        store
            .patch(
                &configmaps,
                Some("kube-system"),
                "coredns",
                PatchKind::Merge,
                &serde_json::json!({ "data": { "Corefile": corefile } }),
                Write::default(),
            )
            .unwrap();
        for dns in &self.lab.network.dns {
            dns.flush();
        }
    }

    /// What `curl -s URL` prints from a running pod of `labels` in `namespace`.
    pub fn curl_from(&self, cluster: &str, namespace: &str, app: &str, url: &str) -> String {
        let pod = self
            .lab
            .cluster(cluster)
            .unwrap()
            .with_state(|s| {
                s.scan("pods", Some(namespace))
                    .find(|p| {
                        p["metadata"]["labels"]["app"] == app
                            && p["metadata"]["deletionTimestamp"].is_null()
                    })
                    .and_then(|p| p["metadata"]["name"].as_str().map(str::to_owned))
            })
            .unwrap_or_else(|| panic!("no pod of {app} in {cluster}/{namespace}"));
        // The app's own call, not an exec session: no set-up cost.
        let commands = LabCommands {
            network: self.lab.network.clone(),
            startup: std::time::Duration::ZERO,
        };
        let out = self.rt.block_on(commands.run(
            cluster,
            namespace,
            &pod,
            None,
            vec!["curl".into(), "-sS".into(), url.into()],
        ));
        format!("{}{}", out.stdout, out.stderr).trim().to_owned()
    }
}

impl Drop for LabFixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.dir.join("lab.pid"));
    }
}
