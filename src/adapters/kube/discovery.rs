//! Kind resolution through API discovery, cached per handle: `Service`,
//! `services`, `svc`, `deploy.apps` and `traefik.io/v1alpha1/IngressRoute`
//! all resolve, for built-in kinds and CRDs alike. kube's own `Discovery`
//! drops short names, so this reads the discovery documents (`/api`,
//! `/api/v1`, `/apis`, `/apis/<group>/<version>`) itself; a miss refreshes
//! the cache once (a CRD may have been created since) before failing with
//! the nearest names.

use super::client::{Prepared, Transport};
use super::errors::{Failure, Target};
use super::retry::RetryPolicy;
use crate::ports::cluster::{ClusterError, Resource};
use serde::Deserialize;
use std::collections::HashMap;
use tokio::sync::Mutex;

#[derive(Debug, Clone)]
pub struct Entry {
    pub resource: Resource,
    pub singular: String,
    pub short_names: Vec<String>,
}

#[derive(Default)]
struct Cache {
    /// Resources by group version (`v1`, `apps/v1`).
    by_gv: HashMap<String, Vec<Entry>>,
    /// Preferred group versions, core first, in the server's order; `None`
    /// until the full discovery ran.
    preferred: Option<Vec<String>>,
}

#[derive(Default)]
pub struct Discovery {
    cache: Mutex<Cache>,
}

#[derive(Deserialize)]
struct ApiVersions {
    #[serde(default)]
    versions: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupList {
    #[serde(default)]
    groups: Vec<Group>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Group {
    #[serde(default)]
    versions: Vec<GroupVersion>,
    preferred_version: Option<GroupVersion>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GroupVersion {
    group_version: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceList {
    #[serde(default)]
    resources: Vec<ApiResource>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApiResource {
    name: String,
    #[serde(default)]
    singular_name: String,
    #[serde(default)]
    namespaced: bool,
    kind: String,
    #[serde(default)]
    short_names: Vec<String>,
}

fn gv_path(gv: &str) -> String {
    if gv.contains('/') {
        format!("/apis/{gv}")
    } else {
        format!("/api/{gv}")
    }
}

fn get(path: &str) -> Prepared {
    let mut req = http::Request::new(Vec::new());
    *req.uri_mut() = path.parse().unwrap_or_default();
    Prepared::new(req)
}

fn parse_gv(gv: &str, list: ResourceList) -> Vec<Entry> {
    let (group, version) = match gv.split_once('/') {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (String::new(), gv.to_owned()),
    };
    list.resources
        .into_iter()
        .filter(|r| !r.name.contains('/'))
        .map(|r| Entry {
            singular: if r.singular_name.is_empty() {
                r.kind.to_lowercase()
            } else {
                r.singular_name
            },
            short_names: r.short_names,
            resource: Resource {
                group: group.clone(),
                version: version.clone(),
                api_version: gv.to_owned(),
                kind: r.kind,
                plural: r.name,
                namespaced: r.namespaced,
            },
        })
        .collect()
}

impl Entry {
    fn matches(&self, wanted: &str) -> bool {
        let w = wanted.to_lowercase();
        self.resource.kind.to_lowercase() == w
            || self.resource.plural == w
            || self.singular == w
            || self.short_names.contains(&w)
    }
}

impl Discovery {
    /// Resources of one group version, from the cache or the server.
    async fn load_gv(
        &self,
        t: &Transport,
        gv: &str,
        refresh: bool,
        policy: &RetryPolicy,
    ) -> Result<Option<Vec<Entry>>, Failure> {
        if !refresh && let Some(entries) = self.cache.lock().await.by_gv.get(gv) {
            return Ok(Some(entries.clone()));
        }
        match t.send_with(&get(&gv_path(gv)), policy).await {
            Ok(value) => {
                let list: ResourceList =
                    serde_json::from_value(value).map_err(|e| Failure::Transport {
                        message: format!("discovery document {} is malformed: {e}", gv_path(gv)),
                        retryable: false,
                    })?;
                let entries = parse_gv(gv, list);
                self.cache
                    .lock()
                    .await
                    .by_gv
                    .insert(gv.to_owned(), entries.clone());
                Ok(Some(entries))
            }
            Err(Failure::Status { status: 404, .. }) => Ok(None),
            Err(f) => Err(f),
        }
    }

    /// Every preferred group version (N+2 requests, like kubectl). Groups
    /// that fail (an aggregated API that is down) are skipped, as kubectl does.
    async fn load_all(&self, t: &Transport) -> Result<Vec<String>, Failure> {
        let core: ApiVersions =
            serde_json::from_value(t.send_raw(&get("/api")).await?).map_err(|e| {
                Failure::Transport {
                    message: format!("discovery document /api is malformed: {e}"),
                    retryable: false,
                }
            })?;
        let groups: GroupList =
            serde_json::from_value(t.send_raw(&get("/apis")).await?).map_err(|e| {
                Failure::Transport {
                    message: format!("discovery document /apis is malformed: {e}"),
                    retryable: false,
                }
            })?;
        let mut preferred: Vec<String> = core.versions.into_iter().take(1).collect();
        preferred.extend(groups.groups.into_iter().filter_map(|g| {
            g.preferred_version
                .or_else(|| g.versions.into_iter().next())
                .map(|v| v.group_version)
        }));
        let once = RetryPolicy::once();
        let loads = preferred.iter().map(|gv| self.load_gv(t, gv, true, &once));
        let results = futures::future::join_all(loads).await;
        if let (Some(Err(f)), Some(first)) = (results.first(), preferred.first())
            && first == "v1"
        {
            // The core group is not optional.
            return Err(f.clone());
        }
        let loaded: Vec<String> = preferred
            .into_iter()
            .zip(results)
            .filter(|(_, r)| matches!(r, Ok(Some(_))))
            .map(|(gv, _)| gv)
            .collect();
        self.cache.lock().await.preferred = Some(loaded.clone());
        Ok(loaded)
    }

    pub async fn resolve(&self, t: &Transport, wanted: &str) -> Result<Resource, ClusterError> {
        let target = Target::new("resolve kind", wanted, "", "");
        let wanted = wanted.trim();
        if wanted.is_empty() {
            return Err(target.error(&t.cluster, None, "UnknownKind", "a kind is needed".into()));
        }
        // Fully qualified: `v1/Service`, `apps/v1/Deployment`, `traefik.io/v1alpha1/IngressRoute`.
        if let Some((gv, kind)) = wanted.rsplit_once('/') {
            let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '/');
            if gv.is_empty() || !gv.chars().all(valid) || gv.matches('/').count() > 1 {
                return Err(target.error(
                    &t.cluster,
                    None,
                    "UnknownKind",
                    format!(
                        "`{gv}` is no apiVersion (e.g. `v1`, `apps/v1`, `traefik.io/v1alpha1`)"
                    ),
                ));
            }
            for refresh in [false, true] {
                let entries = self
                    .load_gv(t, gv, refresh, &t.retry)
                    .await
                    .map_err(|f| t.error(&target, &f))?;
                let Some(entries) = entries else {
                    return Err(target.error(
                        &t.cluster,
                        Some(404),
                        "UnknownKind",
                        format!("the server does not serve {gv}"),
                    ));
                };
                if let Some(e) = entries.iter().find(|e| e.matches(kind)) {
                    return Ok(e.resource.clone());
                }
                if refresh {
                    let names = entries.iter().map(|e| e.resource.kind.clone()).collect();
                    return Err(unknown(t, &target, kind, &format!(" in {gv}"), names));
                }
            }
        }
        // `deployments.apps`: a resource name qualified by its group.
        let (name, group) = match wanted.split_once('.') {
            Some((n, g)) => (n, Some(g)),
            None => (wanted, None),
        };
        for refresh in [false, true] {
            let cache = self.cache.lock().await;
            let preferred = cache.preferred.clone();
            drop(cache);
            let preferred = match preferred {
                Some(p) if !refresh => p,
                _ => self.load_all(t).await.map_err(|f| t.error(&target, &f))?,
            };
            let cache = self.cache.lock().await;
            let mut all = Vec::new();
            let mut found: Vec<&Resource> = Vec::new();
            for gv in &preferred {
                for e in cache.by_gv.get(gv).into_iter().flatten() {
                    if e.matches(name)
                        && group.is_none_or(|g| e.resource.group == g)
                        && !found.iter().any(|f| f.group == e.resource.group)
                    {
                        found.push(&e.resource);
                    }
                    all.push(e.resource.kind.clone());
                    all.push(e.resource.plural.clone());
                    all.extend(e.short_names.iter().cloned());
                }
            }
            // The core group wins as in kubectl (`events`); two other groups
            // serving the name (Traefik 2 and 3 side by side during an
            // upgrade) would make the choice silent, so it is refused.
            if let Some(core) = found.iter().find(|r| r.group.is_empty()) {
                return Ok((*core).clone());
            }
            match found.as_slice() {
                [one] => return Ok((*one).clone()),
                [] => {}
                many => {
                    let names: Vec<String> = many
                        .iter()
                        .map(|r| format!("`{}/{}`", r.api_version, r.kind))
                        .collect();
                    return Err(target.error(
                        &t.cluster,
                        None,
                        "AmbiguousKind",
                        format!(
                            "`{wanted}` is served by {}: name one of them",
                            names.join(" and ")
                        ),
                    ));
                }
            }
            if refresh {
                return Err(unknown(t, &target, wanted, "", all));
            }
        }
        Err(unknown(t, &target, wanted, "", Vec::new()))
    }
}

/// "unknown kind `Servce`; did you mean Service, services?"
fn unknown(
    t: &Transport,
    target: &Target,
    wanted: &str,
    scope: &str,
    names: Vec<String>,
) -> ClusterError {
    let mut near: Vec<(f64, String)> = names
        .into_iter()
        .map(|n| {
            (
                strsim::jaro_winkler(&n.to_lowercase(), &wanted.to_lowercase()),
                n,
            )
        })
        .filter(|(score, _)| *score > 0.8)
        .collect();
    near.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut seen = Vec::new();
    for (_, n) in near {
        if !seen.contains(&n) && seen.len() < 5 {
            seen.push(n);
        }
    }
    let hint = if seen.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", seen.join(", "))
    };
    target.error(
        &t.cluster,
        None,
        "UnknownKind",
        format!("the server knows no kind `{wanted}`{scope}{hint}"),
    )
}
