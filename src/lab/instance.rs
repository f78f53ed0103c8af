//! A running lab: its clusters' API servers, data plane and private zone,
//! with their state under one directory so the same lab comes back after a
//! restart (a run paused at a gate for days resumes against it).

use super::apiserver::{self, ClusterStore};
use super::clouddns::FakeCloudDns;
use super::dataplane::exec::LabCommands;
use super::dataplane::{Network, controllers, endpointslices, kubelet, loadbalancer, network};
use super::dns::{self, tsig::ServerKey};
use super::seed::{self, App};
use super::zone::ZoneStore;
use super::{kubeconfig, tls};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::watch;

pub const ZONE: &str = "mycompany.internal.";
pub const TSIG_KEY_NAME: &str = "ferry-lab";
/// The Cloud DNS project the lab's private zone is served under.
pub const CLOUDDNS_PROJECT: &str = "ferry-lab";

#[derive(Debug, Clone)]
pub struct LabOptions {
    pub dir: PathBuf,
    /// Apps seeded into the old cluster the first time.
    pub apps: Vec<App>,
    pub zone: String,
    /// What opening one `pods/exec` session costs (a real one goes through
    /// the kubelet and the container runtime: tens of milliseconds).
    pub exec_startup: std::time::Duration,
}

/// [`LabOptions::exec_startup`] unless `FERRY_LAB_EXEC_STARTUP_MS` says otherwise.
pub const EXEC_STARTUP: std::time::Duration = std::time::Duration::from_millis(30);

impl LabOptions {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LabOptions {
            dir: dir.into(),
            apps: App::article(),
            zone: ZONE.into(),
            exec_startup: std::env::var("FERRY_LAB_EXEC_STARTUP_MS")
                .ok()
                .and_then(|ms| ms.parse().ok())
                .map(std::time::Duration::from_millis)
                .unwrap_or(EXEC_STARTUP),
        }
    }
}

pub struct Lab {
    pub dir: PathBuf,
    pub kubeconfig: PathBuf,
    /// (cluster name, API server address)
    pub api: Vec<(String, SocketAddr)>,
    pub network: Arc<Network>,
    pub zone: Arc<ZoneStore>,
    /// The private zone's DNS server (UDP and TCP): queries, AXFR and
    /// RFC 2136 UPDATE with the TSIG key `ferry-lab`.
    pub dns: SocketAddr,
    /// (cluster name, its cluster DNS address)
    pub cluster_dns: Vec<(String, SocketAddr)>,
    /// Base URL of the Cloud DNS front over the private zone.
    pub clouddns: String,
    /// The Cloud DNS managed zone name (`mycompany-internal`).
    pub clouddns_zone: String,
    cloud_dns: FakeCloudDns,
    shutdown: watch::Sender<bool>,
    /// `DIR/lab.lock`, held while this lab runs: one lab per directory.
    _lock: std::fs::File,
}

/// The Cloud DNS managed zone name of a zone: `mycompany.internal.` ->
/// `mycompany-internal`.
pub fn managed_zone_name(origin: &str) -> String {
    origin.trim_end_matches('.').replace('.', "-")
}

fn read_or_create(path: &Path, make: impl FnOnce() -> String) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let text = make();
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .mode(0o600)
                .open(path)?;
            std::io::Write::write_all(&mut file, text.as_bytes())?;
            Ok(text)
        }
        Err(e) => Err(e),
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    let _ = getrandom::fill(&mut buf);
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

impl Lab {
    /// Starts the lab (on the current tokio runtime), seeding it the first time.
    pub async fn start(options: LabOptions) -> std::io::Result<Lab> {
        // Absolute, because every path the lab hands out (its kubeconfig and
        // TSIG key in the profile it writes) is read from other folders: a
        // relative `ferry.toml` entry resolves against the file's own folder.
        let dir = std::path::absolute(&options.dir)?;
        std::fs::create_dir_all(&dir)?;
        let lock = lock_dir(&dir)?;
        // Seeding is resumable: `seeding` marks a lab whose first seeding
        // has not finished (killed in its first milliseconds), which the
        // next start seeds again (every seeded object is created only if
        // absent). A lab from before the marker counts as seeded.
        let marker = dir.join("seeding");
        let fresh = !dir.join("clusters").exists() || marker.exists();
        if fresh {
            std::fs::write(&marker, b"")?;
        }
        let token = read_or_create(&dir.join("token"), || random_hex(24))?;
        // The lab's TSIG key: base64 of 32 random bytes, in a file the lab
        // profile points at (never in scripts, never in the journal).
        read_or_create(&dir.join("tsig.key"), || {
            let mut key = [0u8; 32];
            let _ = getrandom::fill(&mut key);
            data_encoding::BASE64.encode(&key)
        })?;
        let tls = tls::load_or_create(Some(&dir))?;
        let zone = Arc::new(ZoneStore::open(&options.zone, Some(&dir.join("zone")))?);
        let clusters_dir = dir.join("clusters");
        let clusters: Vec<Arc<ClusterStore>> = vec![
            Arc::new(ClusterStore::open("old", 1, Some(&clusters_dir))?),
            Arc::new(ClusterStore::open("new", 2, Some(&clusters_dir))?),
        ];
        if fresh {
            seed::seed(&clusters[0], &options.apps, true)?;
            seed::seed(&clusters[1], &options.apps, false)?;
            std::fs::remove_file(&marker)?;
        }
        let network = Arc::new(Network::new(zone.clone(), clusters.clone()));
        let (shutdown, watch_shutdown) = watch::channel(false);
        let commands = Arc::new(LabCommands {
            network: network.clone(),
            startup: options.exec_startup,
        });
        let mut api = Vec::new();
        for cluster in &clusters {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            api.push((cluster.name.clone(), listener.local_addr()?));
            tokio::spawn(apiserver::serve(
                cluster.clone(),
                listener,
                tls.acceptor.clone(),
                token.clone(),
                commands.clone(),
                watch_shutdown.clone(),
            ));
            tokio::spawn(controllers::run(cluster.clone(), watch_shutdown.clone()));
            tokio::spawn(endpointslices::run(cluster.clone(), watch_shutdown.clone()));
            tokio::spawn(kubelet::run(
                network.clone(),
                cluster.clone(),
                watch_shutdown.clone(),
            ));
            tokio::spawn(network::proxy(
                network.clone(),
                cluster.clone(),
                watch_shutdown.clone(),
            ));
            tokio::spawn(loadbalancer::run(
                network.clone(),
                cluster.clone(),
                watch_shutdown.clone(),
            ));
        }
        // The DNS fronts, all over the one zone store.
        let key = ServerKey::from_file(TSIG_KEY_NAME, &dir.join("tsig.key"))?;
        let dns = dns::start_zone_server(zone.clone(), key, watch_shutdown.clone()).await?;
        let mut cluster_dns = Vec::new();
        for cluster_dns_of in &network.dns {
            let addr =
                dns::start_cluster_dns(cluster_dns_of.clone(), watch_shutdown.clone()).await?;
            cluster_dns.push((cluster_dns_of.cluster().name.clone(), addr));
        }
        let clouddns_zone = managed_zone_name(zone.origin());
        let cloud_dns = FakeCloudDns::serve(CLOUDDNS_PROJECT, &clouddns_zone, zone.clone()).await?;
        ready(&network).await;
        let kubeconfig = dir.join("kubeconfig");
        kubeconfig::write(&kubeconfig, &api, &token, &tls.ca_pem)?;
        Ok(Lab {
            dir,
            kubeconfig,
            api,
            network,
            zone,
            dns,
            cluster_dns,
            clouddns: cloud_dns.base_url().to_owned(),
            clouddns_zone,
            cloud_dns,
            shutdown,
            _lock: lock,
        })
    }

    pub fn cluster(&self, name: &str) -> Option<&Arc<ClusterStore>> {
        self.network.cluster(name)
    }

    /// The lab's TSIG secret (base64), for the RFC 2136 front.
    pub fn tsig_secret_file(&self) -> PathBuf {
        self.dir.join("tsig.key")
    }

    /// The profile scripts reach the lab with: clusters `old` and `new`
    /// through the lab's kubeconfig; zone `private` through the RFC 2136
    /// front (the lab's TSIG key) and zone `clouddns` through the Cloud DNS
    /// front, both owned as `lab` so a later run (finalize) may release what
    /// an earlier one created.
    pub fn environment(&self) -> crate::environment::Environment {
        use crate::environment::{ClusterTarget, Environment};
        let mut env = Environment::lab(self.dir.clone());
        env.kubeconfig = Some(self.kubeconfig.clone());
        for (name, _) in &self.api {
            // Loopback API servers: room for guards that probe from pods at 200/s.
            env.clusters.insert(
                name.clone(),
                ClusterTarget {
                    context: name.clone(),
                    kubeconfig: None,
                    qps: Some(5000.0),
                    burst: Some(5000),
                    dns_cache: None,
                    dns_ttl: None,
                },
            );
        }
        let spec = |pairs: &[(&str, String)]| -> serde_json::Map<String, serde_json::Value> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
                .collect()
        };
        env.dns.insert(
            "private".into(),
            spec(&[
                ("provider", "rfc2136".into()),
                ("server", self.dns.to_string()),
                ("zone", self.zone.origin().to_owned()),
                ("tsig_name", TSIG_KEY_NAME.into()),
                (
                    "tsig_secret_file",
                    self.tsig_secret_file().display().to_string(),
                ),
                ("owner", "lab".into()),
            ]),
        );
        env.dns.insert(
            "clouddns".into(),
            spec(&[
                ("provider", "clouddns".into()),
                ("project", CLOUDDNS_PROJECT.into()),
                ("zone", self.clouddns_zone.clone()),
                ("endpoint", self.clouddns.clone()),
                ("credentials", "anonymous".into()),
                ("owner", "lab".into()),
            ]),
        );
        env
    }

    /// The Cloud DNS front, to inspect its requests or inject failures.
    pub fn cloud_dns(&self) -> &FakeCloudDns {
        &self.cloud_dns
    }

    /// The DNS server of cluster `name`.
    pub fn cluster_dns(&self, name: &str) -> Option<SocketAddr> {
        self.cluster_dns
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, addr)| *addr)
    }

    /// Stops every server and process of the lab; its state stays on disk.
    pub fn stop(&self) {
        let _ = self.shutdown.send(true);
        self.cloud_dns.stop();
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The environment of a lab that `ferry lab up` serves from `dir`, if one
/// does (its process is alive); `None` when the lab must be started.
pub fn served_environment(dir: &Path) -> Option<crate::environment::Environment> {
    let pid: i32 = std::fs::read_to_string(dir.join("lab.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    if !process_alive(pid) {
        return None;
    }
    let mut env = crate::environment::Environment::load(&dir.join("ferry.toml")).ok()?;
    env.source = format!("lab:{}", dir.display());
    env.lab = Some(dir.to_path_buf());
    Some(env)
}

/// Takes `DIR/lab.lock` for this process, or says who runs the lab there:
/// two labs on the same files would tear each other's state.
fn lock_dir(dir: &Path) -> std::io::Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    let path = dir.join("lab.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0)?;
            file.seek(std::io::SeekFrom::Start(0))?;
            write!(file, "{}", std::process::id())?;
            Ok(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            Err(std::io::Error::other(format!(
                "the lab in {} already runs in another process (pid {}): serve it once with `ferry lab up --dir {}` and point every run at it, or wait for that run to end",
                dir.display(),
                holder.trim(),
                dir.display()
            )))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Whether `pid` runs (a zombie left by a killed `lab up` does not count).
fn process_alive(pid: i32) -> bool {
    // SAFETY: kill(pid, 0) only checks that the process exists.
    if pid <= 0 || unsafe { libc::kill(pid, 0) } != 0 {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_none_or(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => true,
    }
}

/// Waits until every workload has its pods and every pod's processes serve,
/// so the first request after start is answered (bounded: a lab with a
/// broken object still starts).
async fn ready(network: &Network) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline && !all_serving(network) {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

fn all_serving(network: &Network) -> bool {
    network.clusters.iter().all(|cluster| {
        cluster.with_state(|s| {
            let pods: Vec<&serde_json::Value> = s
                .scan("pods", None)
                .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
                .collect();
            let workloads_filled = s
                .scan("deployments.apps", None)
                .chain(s.scan("statefulsets.apps", None))
                .all(|w| {
                    let want = w["spec"]["replicas"].as_u64().unwrap_or(1) as usize;
                    let have = pods
                        .iter()
                        .filter(|p| {
                            p["metadata"]["ownerReferences"]
                                .as_array()
                                .is_some_and(|r| r.iter().any(|o| o["uid"] == w["metadata"]["uid"]))
                        })
                        .count();
                    have >= want
                });
            workloads_filled
                && pods.iter().all(|pod| {
                    let Some(ip) = pod["status"]["podIP"]
                        .as_str()
                        .and_then(|ip| ip.parse().ok())
                    else {
                        return true;
                    };
                    pod["spec"]["containers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .flat_map(super::dataplane::kubelet::serving_ports)
                        .all(|port| network.serves(ip, port))
                })
        })
    })
}
