#!/usr/bin/env bash
# Smoke test for the binaries that build.sh produced: runs etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kwok on 127.0.0.1 (free ports,
# temp dir), checks /version, /readyz, healthz, leader leases, and that a pod
# gets scheduled onto a kwok fake node and reported Running. Stops everything
# it started and removes the temp dir (STACKOPS_SMOKE_KEEP=1 keeps it).
# Needs: bash, curl, openssl, python3 (free ports, JSON).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
die() { echo "smoke.sh: ERROR: $*" >&2; exit 1; }

KUBE_VERSION="$(awk '$1 == "require" && $2 == "k8s.io/kubernetes" { print $3; exit }' "$here/go.mod")"
bin="${STACKOPS_CACHE:-$HOME/.cache/stackops}/kube/${KUBE_VERSION}"
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kwok; do
  [[ -x "$bin/$b" ]] || die "$bin/$b missing: run hack/kube/build.sh first"
done
[[ -s "$bin/kwok-stages.yaml" ]] || die "$bin/kwok-stages.yaml missing: run hack/kube/build.sh first"
for c in curl openssl python3; do command -v "$c" >/dev/null || die "$c not found"; done

work="$(mktemp -d "${TMPDIR:-/tmp}/stackops-kube-smoke.XXXXXX")"
pids=()
cleanup() {
  local rc=$?
  # Stop in reverse start order (kwok, scheduler, KCM, apiserver, etcd) so
  # nothing logs connection-refused errors from losing its upstream.
  local i
  for (( i=${#pids[@]}-1; i>=0; i-- )); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  if [[ $rc -ne 0 ]]; then
    echo "smoke.sh: FAILED (rc=$rc); last log lines:" >&2
    for f in "$work"/*.log; do [[ -e "$f" ]] && { echo "--- $f" >&2; tail -n 15 "$f" >&2; }; done
  fi
  if [[ "${STACKOPS_SMOKE_KEEP:-0}" == 1 ]]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$1" "$(now)"; }

# Five free loopback ports, picked at once so they are distinct.
read -r ETCD_CLIENT ETCD_PEER APISERVER KCM SCHED < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(5):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)

TOKEN="admin-$(openssl rand -hex 16)"
KCM_TOKEN="kcm-$(openssl rand -hex 16)"
SCHED_TOKEN="sched-$(openssl rand -hex 16)"
KWOK_TOKEN="kwok-$(openssl rand -hex 16)"
# token,user,uid[,"group1,group2"]
cat > "$work/tokens.csv" <<EOF
${TOKEN},admin,admin,system:masters
${KCM_TOKEN},system:kube-controller-manager,system:kube-controller-manager
${SCHED_TOKEN},system:kube-scheduler,system:kube-scheduler
${KWOK_TOKEN},kwok,kwok,system:masters
EOF
openssl genrsa -out "$work/sa.key" 2048 2>/dev/null

kubeconfig() { # kubeconfig <file> <token>
  cat > "$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:${APISERVER}
    certificate-authority: ${work}/pki/apiserver.crt
users:
- name: user
  user:
    token: $2
contexts:
- name: local
  context: {cluster: local, user: user}
current-context: local
EOF
}
kubeconfig "$work/admin.kubeconfig" "$TOKEN"
kubeconfig "$work/kcm.kubeconfig" "$KCM_TOKEN"
kubeconfig "$work/sched.kubeconfig" "$SCHED_TOKEN"
kubeconfig "$work/kwok.kubeconfig" "$KWOK_TOKEN"

api() { curl -sS --fail --max-time 5 -k -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:${APISERVER}$1"; }
post() { curl -sS --fail --max-time 5 -k -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -X POST --data "$2" "https://127.0.0.1:${APISERVER}$1"; }
wait_for() { # wait_for <seconds> <description> <command...>
  local limit="$1" what="$2"; shift 2
  local start; start="$(now)"
  local deadline=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    (( $(date +%s) < deadline )) || die "timed out after ${limit}s waiting for $what"
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || die "a process exited while waiting for $what"; done
    sleep 0.1
  done
  echo "    $what after $(since "$start")s"
}

echo "==> binaries: $bin"
"$bin/kube-apiserver" --version
"$bin/etcd" --version | head -1
"$bin/kwok" --version

echo "==> etcd on 127.0.0.1:${ETCD_CLIENT}"
t0="$(now)"
"$bin/etcd" \
  --name=stackops \
  --data-dir="$work/etcd" \
  --listen-client-urls="http://127.0.0.1:${ETCD_CLIENT}" \
  --advertise-client-urls="http://127.0.0.1:${ETCD_CLIENT}" \
  --listen-peer-urls="http://127.0.0.1:${ETCD_PEER}" \
  --initial-advertise-peer-urls="http://127.0.0.1:${ETCD_PEER}" \
  --initial-cluster="stackops=http://127.0.0.1:${ETCD_PEER}" \
  --unsafe-no-fsync \
  --log-level=warn \
  > "$work/etcd.log" 2>&1 &
pids+=($!)
wait_for 30 "etcd /health" curl -sf "http://127.0.0.1:${ETCD_CLIENT}/health"

echo "==> kube-apiserver on https://127.0.0.1:${APISERVER}"
"$bin/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:${ETCD_CLIENT}" \
  --cert-dir="$work/pki" \
  --secure-port="${APISERVER}" \
  --bind-address=127.0.0.1 \
  --advertise-address=127.0.0.1 \
  --service-cluster-ip-range=10.0.0.0/24 \
  --service-account-issuer=https://kubernetes.default.svc \
  --service-account-key-file="$work/sa.key" \
  --service-account-signing-key-file="$work/sa.key" \
  --authorization-mode=RBAC \
  --token-auth-file="$work/tokens.csv" \
  --allow-privileged=true \
  --endpoint-reconciler-type=none \
  > "$work/kube-apiserver.log" 2>&1 &
pids+=($!)
wait_for 120 "kube-apiserver /readyz" api /readyz
echo "    /version: $(api /version | python3 -c 'import json,sys; print(json.load(sys.stdin)["gitVersion"])')"
[[ "$(api /version | python3 -c 'import json,sys; print(json.load(sys.stdin)["gitVersion"])')" == "$KUBE_VERSION" ]] \
  || die "/version does not report $KUBE_VERSION"

echo "==> kube-controller-manager on https://127.0.0.1:${KCM}"
"$bin/kube-controller-manager" \
  --kubeconfig="$work/kcm.kubeconfig" \
  --bind-address=127.0.0.1 \
  --secure-port="${KCM}" \
  --leader-elect=true \
  --use-service-account-credentials=true \
  --service-account-private-key-file="$work/sa.key" \
  --root-ca-file="$work/pki/apiserver.crt" \
  > "$work/kube-controller-manager.log" 2>&1 &
pids+=($!)

echo "==> kube-scheduler on https://127.0.0.1:${SCHED}"
"$bin/kube-scheduler" \
  --kubeconfig="$work/sched.kubeconfig" \
  --bind-address=127.0.0.1 \
  --secure-port="${SCHED}" \
  --leader-elect=true \
  > "$work/kube-scheduler.log" 2>&1 &
pids+=($!)

wait_for 60 "kube-controller-manager /healthz" curl -skf "https://127.0.0.1:${KCM}/healthz"
wait_for 60 "kube-scheduler /healthz" curl -skf "https://127.0.0.1:${SCHED}/healthz"
wait_for 60 "kube-controller-manager lease" api /apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-controller-manager
wait_for 60 "kube-scheduler lease" api /apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler
wait_for 60 "default ServiceAccount (KCM serviceaccount controller)" api /api/v1/namespaces/default/serviceaccounts/default

# A new namespace is unusable for pods until KCM creates its default SA.
post /api/v1/namespaces '{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "smoke-ns"}}' >/dev/null
wait_for 30 "default ServiceAccount in a new namespace" api /api/v1/namespaces/smoke-ns/serviceaccounts/default

echo "==> kwok"
"$bin/kwok" \
  --kubeconfig="$work/kwok.kubeconfig" \
  --config="$bin/kwok-stages.yaml" \
  --manage-all-nodes=false \
  --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --node-ip=10.0.2.1 \
  --cidr=10.0.1.0/24 \
  --node-lease-duration-seconds=40 \
  > "$work/kwok.log" 2>&1 &
pids+=($!)

post /api/v1/nodes '{
  "apiVersion": "v1", "kind": "Node",
  "metadata": {"name": "kwok-node-0",
    "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
    "labels": {"kubernetes.io/hostname": "kwok-node-0", "type": "kwok"}},
  "spec": {"taints": [{"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}]},
  "status": {"allocatable": {"cpu": "32", "memory": "256Gi", "pods": "110"},
             "capacity": {"cpu": "32", "memory": "256Gi", "pods": "110"}}
}' >/dev/null
node_ready() { api /api/v1/nodes/kwok-node-0 | python3 -c '
import json, sys
n = json.load(sys.stdin)
sys.exit(0 if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", [])) else 1)'; }
wait_for 60 "kwok node Ready" node_ready

post /api/v1/namespaces/default/pods '{
  "apiVersion": "v1", "kind": "Pod",
  "metadata": {"name": "smoke"},
  "spec": {"containers": [{"name": "c", "image": "fake"}],
           "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}]}
}' >/dev/null
pod_running() { api /api/v1/namespaces/default/pods/smoke | python3 -c '
import json, sys
p = json.load(sys.stdin)
sys.exit(0 if p["spec"].get("nodeName") and p["status"].get("phase") == "Running" else 1)'; }
wait_for 60 "pod scheduled and Running" pod_running

# Deployment -> ReplicaSet -> Pods (KCM) -> scheduled (scheduler) -> Ready (kwok).
post /apis/apps/v1/namespaces/default/deployments '{
  "apiVersion": "apps/v1", "kind": "Deployment",
  "metadata": {"name": "smoke"},
  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "smoke"}},
    "template": {"metadata": {"labels": {"app": "smoke"}},
      "spec": {"containers": [{"name": "c", "image": "fake"}],
               "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists", "effect": "NoSchedule"}]}}}
}' >/dev/null
deploy_ready() { api /apis/apps/v1/namespaces/default/deployments/smoke | python3 -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if d["status"].get("readyReplicas") == 2 else 1)'; }
wait_for 60 "deployment 2/2 ready" deploy_ready

echo "==> OK: whole stack up and verified in $(since "$t0")s"
