//! CoreDNS's Corefile, as far as answer lifetimes go: the kubernetes
//! plugin's `ttl` and the `cache` plugin's cap. The recipe reads them from a
//! cluster's `kube-system/coredns` (`parse_corefile` in scripts) to know how
//! long callers may hold an old answer; the lab's cluster DNS caches by them.

/// The kubeadm Corefile the lab seeds into `kube-system/coredns`.
pub const KUBEADM_COREFILE: &str = "\
.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
";

/// What CoreDNS's Corefile says about answer lifetimes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Corefile {
    /// The `ttl` of the kubernetes plugin: the TTL of Service records
    /// (CoreDNS's default is 5 s; kubeadm writes 30).
    pub ttl: u32,
    /// The `cache` plugin's cap on how long an answer is kept: `None`
    /// without the plugin (every query is answered afresh).
    pub cache: Option<u32>,
}

impl Corefile {
    /// Without a Corefile: CoreDNS's own defaults, no cache.
    pub const DEFAULT: Corefile = Corefile {
        ttl: 5,
        cache: None,
    };

    /// Reads `ttl` inside the `kubernetes` block and `cache [SECONDS]`
    /// (3600 without a number, CoreDNS's maximum). Anything else is ignored.
    pub fn parse(text: &str) -> Corefile {
        let mut found = Corefile::DEFAULT;
        let mut in_kubernetes = false;
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["kubernetes", ..] if line.contains('{') => in_kubernetes = true,
                ["}"] => in_kubernetes = false,
                ["ttl", n] if in_kubernetes => {
                    found.ttl = n.parse().unwrap_or(found.ttl);
                }
                ["cache"] | ["cache", "{"] => found.cache = Some(3600),
                ["cache", n, ..] => found.cache = n.parse().ok().or(Some(3600)),
                _ => {}
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kubeadm_corefile_caches_30_s_with_30_s_records() {
        assert_eq!(
            Corefile::parse(KUBEADM_COREFILE),
            Corefile {
                ttl: 30,
                cache: Some(30)
            }
        );
        let edited = KUBEADM_COREFILE
            .replace("ttl 30", "ttl 2")
            .replace("cache 30", "cache 3");
        assert_eq!(
            Corefile::parse(&edited),
            Corefile {
                ttl: 2,
                cache: Some(3)
            }
        );
        let uncached = KUBEADM_COREFILE.replace("    cache 30\n", "");
        assert_eq!(Corefile::parse(&uncached).cache, None);
        assert_eq!(Corefile::parse("").ttl, 5);
    }
}
