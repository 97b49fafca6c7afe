#!/usr/bin/env bash
# Build a real Kubernetes control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler), a real node's kubelet, kube-proxy, CoreDNS and kube-router, etcd and kwok from Go modules pinned in this directory
# (and with the argument `cert-manager`, cert-manager's controllers and CRDs alone), into
#   ${STACKOPS_CACHE:-$HOME/.cache/stackops}/kube/<kubernetes version>/
# Binaries already present there are skipped, so a second run is a no-op.
#
# Environment:
#   STACKOPS_CACHE   cache root (default: $HOME/.cache/stackops)
#   STACKOPS_NICE    nice level for the go builds (default: 10)
#   STACKOPS_FORCE=1 rebuild binaries even if present
# Any other Go setting (GOMODCACHE, GOCACHE, GOPROXY, GOFLAGS) is honoured.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() { echo "build.sh: ERROR: $*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "go not found in PATH (Go >= 1.26 is needed: etcd 3.6.16 and kwok 0.8.0 declare 'go 1.26.0')"

# Single source of truth for versions: the go.mod files next to this script.
modver() { # modver <go.mod> <module path>
  awk -v m="$2" '($1 == m || ($1 == "require" && $2 == m)) { v = ($1 == "require") ? $3 : $2; print v; exit }' "$1"
}
KUBE_VERSION="$(modver "$here/go.mod" k8s.io/kubernetes)"
ETCD_VERSION="$(modver "$here/etcd/go.mod" go.etcd.io/etcd/server/v3)"
KWOK_VERSION="$(modver "$here/kwok/go.mod" sigs.k8s.io/kwok)"
COREDNS_VERSION="$(modver "$here/coredns/go.mod" github.com/coredns/coredns)"
KUBE_ROUTER_VERSION="$(modver "$here/kube-router/go.mod" github.com/cloudnativelabs/kube-router/v2)"
[[ "$KUBE_VERSION" =~ ^v1\.([0-9]+)\.[0-9]+$ ]] || die "cannot parse k8s.io/kubernetes version from $here/go.mod (got '$KUBE_VERSION')"
KUBE_MINOR="${BASH_REMATCH[1]}"
[[ -n "$ETCD_VERSION" ]] || die "cannot parse etcd version from $here/etcd/go.mod"
[[ -n "$KWOK_VERSION" ]] || die "cannot parse kwok version from $here/kwok/go.mod"

out="${STACKOPS_CACHE:-$HOME/.cache/stackops}/kube/${KUBE_VERSION}"
mkdir -p "$out" || die "cannot create $out"

export CGO_ENABLED=0
nice_level="${STACKOPS_NICE:-10}"

# buildDate: the release time of the pinned module (deterministic, unlike
# "now"). gitCommit is left at upstream's "$Format:%H$" placeholder: the
# module proxy does not record the commit.
# Only looked up when a Kubernetes binary is actually built, so a warm run
# needs neither the module cache nor the network.
KUBE_BUILD_DATE=1970-01-01T00:00:00Z
for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
  if [[ ! -x "$out/$b" || "${STACKOPS_FORCE:-0}" == 1 ]]; then
    KUBE_BUILD_DATE="$(cd "$here" && go list -m -f '{{.Time.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)" \
      || die "go list -m k8s.io/kubernetes failed (module download? see above)"
    break
  fi
done

kube_ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=${KUBE_VERSION} \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=${KUBE_MINOR} \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/component-base/version.buildDate=${KUBE_BUILD_DATE} \
 -X k8s.io/client-go/pkg/version.gitVersion=${KUBE_VERSION} \
 -X k8s.io/client-go/pkg/version.gitMajor=1 \
 -X k8s.io/client-go/pkg/version.gitMinor=${KUBE_MINOR} \
 -X k8s.io/client-go/pkg/version.gitTreeState=clean \
 -X k8s.io/client-go/pkg/version.buildDate=${KUBE_BUILD_DATE}"

tmp=""
cleanup() { if [[ -n "$tmp" && -e "$tmp" ]]; then rm -f "$tmp"; fi; }
trap cleanup EXIT
trap 'cleanup; echo "build.sh: interrupted" >&2; exit 130' INT
trap 'cleanup; echo "build.sh: terminated" >&2; exit 143' TERM

total_start=$(date +%s)
built=0

# build <binary name> <module dir> <package> <tags> <ldflags>
build() {
  local name="$1" moddir="$2" pkg="$3" tags="$4" ldflags="$5"
  local dest="$out/$name"
  if [[ -x "$dest" && "${STACKOPS_FORCE:-0}" != 1 ]]; then
    echo "==> $name: present, skipping ($dest)"
    return 0
  fi
  echo "==> $name: building $pkg ..."
  local start
  start=$(date +%s)
  tmp="$out/.$name.tmp.$$"
  # -buildvcs=false: the main module sits inside the stackops git repo; VCS
  # stamping would shell out to git (and fail on "dubious ownership" etc.).
  local -a args=(build -mod=readonly -buildvcs=false -trimpath -o "$tmp" -ldflags "$ldflags")
  [[ -n "$tags" ]] && args+=(-tags "$tags")
  args+=("$pkg")
  if ! (cd "$moddir" && nice -n "$nice_level" go "${args[@]}"); then
    die "building $name ($pkg in $moddir) failed after $(( $(date +%s) - start ))s"
  fi
  mv -f "$tmp" "$dest"
  tmp=""
  built=$((built + 1))
  echo "==> $name: done in $(( $(date +%s) - start ))s"
}

# `build.sh cert-manager`: cert-manager's controllers (cert-manager/main.go) and its CRDs only, which
# tests/cluster/test_issuer.py alone needs; a plain run does not build them.
if [[ "${1:-}" == cert-manager ]]; then
  build cert-manager-controller "$here/cert-manager" stackops.dev/hack/kube/cert-manager "" "-s -w"
  crds="$out/cert-manager-crds.yaml"
  if [[ ! -s "$crds" || "${STACKOPS_FORCE:-0}" == 1 ]]; then
    cmdir="$(cd "$here/cert-manager" && go list -m -f '{{.Dir}}' github.com/cert-manager/cert-manager)" \
      || die "cannot locate the github.com/cert-manager/cert-manager module (go list -m failed)"
    tmp="$crds.tmp.$$"
    cat "$cmdir"/deploy/crds/*.yaml > "$tmp"
    mv -f "$tmp" "$crds"
    tmp=""
    echo "==> cert-manager-crds.yaml: written"
  fi
  echo "$out"
  exit 0
fi

echo "==> kubernetes ${KUBE_VERSION}, etcd ${ETCD_VERSION}, kwok ${KWOK_VERSION} -> $out"

for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
  build "$b" "$here" "k8s.io/kubernetes/cmd/$b" providerless "$kube_ldflags"
done
build etcd "$here/etcd" go.etcd.io/etcd/server/v3 "" "-s -w"
# CoreDNS with only the cluster-DNS plugins (coredns/main.go): ~4x faster to build than the
# default set, and no forward plugin exists to resolve anything outside the cluster.
build coredns "$here/coredns" stackops.dev/hack/kube/coredns "" \
  "-s -w -X github.com/coredns/coredns/coremain.GitCommit=${COREDNS_VERSION}"
# kube-router enforces the real node's NetworkPolicies (its firewall only: stackops.devcluster.realnode).
build kube-router "$here/kube-router" github.com/cloudnativelabs/kube-router/v2/cmd/kube-router "" \
  "-s -w -X github.com/cloudnativelabs/kube-router/v2/pkg/version.Version=${KUBE_ROUTER_VERSION}"
build kwok "$here/kwok" sigs.k8s.io/kwok/cmd/kwok "" \
  "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION}"

# kwok ships no stages when run without kwokctl ("no stages found"): assemble
# kwokctl's defaults (node fast + heartbeat-with-lease, pod fast) from the
# pinned kwok module. Use with: kwok --config=<out>/kwok-stages.yaml
# --node-lease-duration-seconds=40
stages="$out/kwok-stages.yaml"
if [[ ! -s "$stages" || "${STACKOPS_FORCE:-0}" == 1 ]]; then
  kwokdir="$(cd "$here/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)" \
    || die "cannot locate the sigs.k8s.io/kwok module (go list -m failed)"
  tmp="$stages.tmp.$$"
  : > "$tmp"
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    [[ -f "$kwokdir/kustomize/stage/$f" ]] || die "kwok stage $f not found in $kwokdir"
    { echo "---"; echo "# from sigs.k8s.io/kwok@${KWOK_VERSION}/kustomize/stage/$f"; cat "$kwokdir/kustomize/stage/$f"; } >> "$tmp"
  done
  mv -f "$tmp" "$stages"
  tmp=""
  echo "==> kwok-stages.yaml: written"
else
  echo "==> kwok-stages.yaml: present, skipping"
fi

echo "==> built $built binaries in $(( $(date +%s) - total_start ))s"
echo "$out"
