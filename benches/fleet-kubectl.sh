#!/usr/bin/env bash
# The shell-loop baseline of benches/fleet.rs: what teams do today, one app
# after another, a kubectl (or knsupdate) process and a fresh connection per
# call. Per app it makes the reads and writes ferry/migrate makes (checks,
# the <app>-internal copy and IngressRoute in both clusters, the two DNS
# records, proofs and guard requests from a pod with kubectl exec, the
# ExternalName flips, the Deployment and Service copied to the new cluster,
# finalize), against the lab `ferry lab up --dir LAB_DIR --apps N` serves.
#
#   benches/fleet-kubectl.sh LAB_DIR N
set -euo pipefail

LAB=$1
N=$2
ZONE=mycompany.internal
KC=(kubectl --kubeconfig "$LAB/kubeconfig" --cache-dir "$LAB/kubectl-cache")
OLD=("${KC[@]}" --context old)
NEW=("${KC[@]}" --context new)
SERVER=$(sed -n '/^\[dns.private\]/,/^\[/ s/^server = "\(.*\)"/\1/p' "$LAB/ferry.toml")
KEY="hmac-sha256:ferry-lab:$(cat "$LAB/tsig.key")"

record() { # record NAME IP
    printf 'server %s %s\nzone %s.\nupdate delete %s.%s. A\nupdate add %s.%s. 60 A %s\nsend\n' \
        "${SERVER%:*}" "${SERVER#*:}" "$ZONE" "$1" "$ZONE" "$1" "$ZONE" "$2" | knsupdate -y "$KEY"
}

unrecord() { # unrecord NAME
    printf 'server %s %s\nzone %s.\nupdate delete %s.%s. A\nsend\n' \
        "${SERVER%:*}" "${SERVER#*:}" "$ZONE" "$1" "$ZONE" | knsupdate -y "$KEY"
}

route() { # route APP NS
    cat <<EOF
apiVersion: traefik.io/v1alpha1
kind: IngressRoute
metadata: { name: $1, namespace: $2 }
spec:
  entryPoints: [web]
  routes:
  - kind: Rule
    match: Host(\`$1.$2\`) || Host(\`$1.$2.svc\`) || Host(\`$1.$2.svc.cluster.local\`)
    services: [{ name: $1-internal, port: 80 }]
EOF
}

# A copy of a Service as <app>-internal (ClusterIP, selector and ports kept).
internal() { # internal APP
    jq --arg name "$1-internal" '{apiVersion, kind, metadata: {name: $name, namespace: .metadata.namespace, labels: {"app.kubernetes.io/managed-by": "ferry"}},
        spec: {type: "ClusterIP", selector: .spec.selector, ports: .spec.ports}}'
}

probe() { # probe CONTEXT-ARGS... -- NS POD URL HOST
    local ns=$1 pod=$2 url=$3 host=$4
    "${OLD[@]}" exec -n "$ns" "$pod" -- curl -s -H "Host: $host" "$url" | grep -q "Hello, I'm"
}

for i in $(seq 1 "$N"); do
    app=app$i
    ns=app$i-ns
    # bridge_old
    "${OLD[@]}" get svc "$app" -n "$ns" -o json >/dev/null
    "${OLD[@]}" get pods -n "$ns" -l "app=$app" -o name >/dev/null
    old_ip=$("${OLD[@]}" get svc traefik -n traefik -o jsonpath='{.status.loadBalancer.ingress[0].ip}')
    "${OLD[@]}" get svc "$app" -n "$ns" -o json | internal "$app" | "${OLD[@]}" apply -f - >/dev/null
    route "$app" "$ns" | "${OLD[@]}" apply -f - >/dev/null
    record old "$old_ip"
    pod=$("${OLD[@]}" get pods -n "$ns" -l "app=$app" -o jsonpath='{.items[0].metadata.name}')
    for _ in 1 2 3; do probe "$ns" "$pod" "http://old.$ZONE/" "$app.$ns"; done
    probe "$ns" "$pod" "http://$app.$ns/" "$app.$ns"
    "${OLD[@]}" patch svc "$app" -n "$ns" --type merge \
        -p "{\"spec\":{\"type\":\"ExternalName\",\"externalName\":\"old.$ZONE\",\"selector\":null}}" >/dev/null
    probe "$ns" "$pod" "http://$app.$ns/" "$app.$ns"
    # prepare_new
    "${NEW[@]}" get ns "$ns" -o name >/dev/null
    "${OLD[@]}" get deploy "$app" -n "$ns" -o json \
        | jq 'del(.metadata.uid, .metadata.resourceVersion, .metadata.creationTimestamp, .metadata.generation, .metadata.managedFields, .status)' \
        | "${NEW[@]}" apply -f - >/dev/null
    "${NEW[@]}" rollout status "deploy/$app" -n "$ns" --timeout=60s >/dev/null
    "${OLD[@]}" get svc "$app-internal" -n "$ns" -o json \
        | jq --arg app "$app" '{apiVersion, kind, metadata: {name: $app, namespace: .metadata.namespace, labels: {app: $app}}, spec: {selector: .spec.selector, ports: .spec.ports}}' \
        | "${NEW[@]}" apply -f - >/dev/null
    new_ip=$("${NEW[@]}" get svc traefik -n traefik -o jsonpath='{.status.loadBalancer.ingress[0].ip}')
    "${NEW[@]}" get svc "$app" -n "$ns" -o json | internal "$app" | "${NEW[@]}" apply -f - >/dev/null
    route "$app" "$ns" | "${NEW[@]}" apply -f - >/dev/null
    record new "$new_ip"
    for _ in 1 2 3; do probe "$ns" "$pod" "http://new.$ZONE/" "$app.$ns"; done
    # cutover
    "${OLD[@]}" get svc "$app" -n "$ns" -o jsonpath='{.spec.type}' >/dev/null
    for _ in 1 2 3; do probe "$ns" "$pod" "http://new.$ZONE/" "$app.$ns"; done
    probe "$ns" "$pod" "http://$app.$ns/" "$app.$ns"
    "${OLD[@]}" patch svc "$app" -n "$ns" --type merge -p "{\"spec\":{\"externalName\":\"new.$ZONE\"}}" >/dev/null
    probe "$ns" "$pod" "http://$app.$ns/" "$app.$ns"
    # finalize
    "${NEW[@]}" get svc "$app" -n "$ns" -o jsonpath='{.spec.type}' >/dev/null
    "${OLD[@]}" get svc "$app" -n "$ns" -o jsonpath='{.spec.externalName}' >/dev/null
    "${NEW[@]}" delete ingressroute.traefik.io "$app" -n "$ns" >/dev/null
    "${NEW[@]}" delete svc "$app-internal" -n "$ns" >/dev/null
    "${OLD[@]}" delete ingressroute.traefik.io "$app" -n "$ns" >/dev/null
    "${OLD[@]}" delete svc "$app-internal" -n "$ns" >/dev/null
    "${OLD[@]}" annotate svc "$app" -n "$ns" ferry.dev/finalized=true --overwrite >/dev/null
done
unrecord old
unrecord new
