//! `parse_corefile(text)`: what a CoreDNS Corefile says about how long a
//! cluster's DNS keeps answers, read by `crate::corefile` (the same reading
//! the lab's cluster DNS caches by), so the recipe needs no parser of its own.

use crate::corefile::Corefile;
use rhai::{Dynamic, Engine, FuncRegistration, INT, Map};

pub fn register(engine: &mut Engine) {
    FuncRegistration::new("parse_corefile")
        .with_params_info(["text: &str", "Map"])
        .with_comments([
            "/// `#{ cache, ttl }` in seconds from a Corefile: the `cache` plugin's cap",
            "/// (0 without the plugin, 3600 without a number) and the kubernetes",
            "/// plugin's `ttl` (CoreDNS's default 5).",
            "///",
            "/// ```rhai",
            "/// let cm = cluster(\"old\").get(\"configmap\", \"kube-system\", \"coredns\");",
            "/// print(parse_corefile(cm.data.Corefile).cache);",
            "/// ```",
        ])
        .register_into_engine(engine, |text: &str| {
            let corefile = Corefile::parse(text);
            let mut map = Map::new();
            map.insert(
                "cache".into(),
                Dynamic::from_int(INT::from(corefile.cache.unwrap_or(0))),
            );
            map.insert("ttl".into(), Dynamic::from_int(INT::from(corefile.ttl)));
            map
        });
}
