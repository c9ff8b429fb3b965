#!/usr/bin/env bash
# A local Kubernetes control plane for tests, built from Go modules (no images, no
# downloads of prebuilt binaries): etcd + kube-apiserver + kube-controller-manager on
# 127.0.0.1, like controller-runtime's envtest plus the controller-manager. kubectl and
# helm of matching versions are built alongside: put $(hack/k8s-env.sh bindir) on PATH.
# There is no scheduler and no kubelet: Pods stay Pending and PVCs stay Pending (no
# provisioner); making them look Running is the test harness's job.
#
# Usage:
#   hack/k8s-env.sh build         build (or reuse) the binaries in $(hack/k8s-env.sh bindir)
#   hack/k8s-env.sh bindir        print the directory holding the binaries
#   hack/k8s-env.sh start DIR     start the control plane with its state, pids and logs in DIR;
#                                 stdout is only `export KUBECONFIG=DIR/kubeconfig`, so
#                                 `eval "$(hack/k8s-env.sh start DIR)"` works
#   hack/k8s-env.sh stop DIR      stop what `start DIR` started (SIGTERM, then SIGKILL)
#   hack/k8s-env.sh status DIR    show the processes and the apiserver's readiness
#
# Versions are pinned by the wrapper modules in hack/k8s/{kube,etcd,helm} (go.mod/go.sum).
# Cache: ${TRIBUTARY_CACHE:-~/.cache/tributary}/k8s-<k8s version>/bin, with a stamp of the
# versions, the wrapper modules' checksums and the Go version; a matching stamp skips the build.
# Env: TRIBUTARY_K8S_START_TIMEOUT (seconds, default 90), TRIBUTARY_GO_NICE (default 10).
set -euo pipefail

_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=hack/lib.sh
source "${_repo}/hack/lib.sh"
_mods="${_repo}/hack/k8s"
_cache="${TRIBUTARY_CACHE:-$HOME/.cache/tributary}"

say() { printf 'k8s-env: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# The version a wrapper module requires of MODULE (read from go.mod, without running go).
mod_version() { awk -v m="$2" '($1 == m || $1 == "require" && $2 == m) && $0 !~ /=>/ {print ($1 == m ? $2 : $3); exit}' "${_mods}/$1/go.mod"; }

K8S_VERSION="$(mod_version kube k8s.io/kubernetes)"
ETCD_VERSION="$(mod_version etcd go.etcd.io/etcd/server/v3)"
HELM_VERSION="$(mod_version helm helm.sh/helm/v3)"
[[ -n $K8S_VERSION && -n $ETCD_VERSION && -n $HELM_VERSION ]] || die "cannot read the pinned versions from ${_mods}/*/go.mod"
BIN_DIR="${_cache}/k8s-${K8S_VERSION}/bin"
_bins=(kube-apiserver kube-controller-manager kubectl etcd helm)

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1fs", b - a}'; }

stamp_text() {
  printf 'k8s=%s\netcd=%s\nhelm=%s\n' "$K8S_VERSION" "$ETCD_VERSION" "$HELM_VERSION"
  printf 'go=%s\n' "$(go env GOVERSION)"
  (cd "$_mods" && sha256sum kube/go.mod kube/go.sum etcd/go.mod etcd/go.sum etcd/main.go helm/go.mod helm/go.sum)
  # bump when the build commands below change (ldflags, flags): it forces a rebuild
  echo "recipe=2"
}

# go build in a wrapper module, niced so a concurrent build keeps some CPU.
gobuild() {
  local mod="$1"; shift
  (cd "${_mods}/${mod}" && GOFLAGS="${GOFLAGS:-} -mod=readonly -trimpath" \
    nice -n "${TRIBUTARY_GO_NICE:-10}" go build "$@")
}

cmd_build() {
  command -v go >/dev/null || die "go is not on PATH (Go >= 1.26 is needed by etcd 3.6 and helm 3.22)"
  local t0 want have ok=1
  t0="$(now)"
  want="$(stamp_text)"
  for b in "${_bins[@]}"; do [[ -x "${BIN_DIR}/${b}" ]] || ok=0; done
  have="$(cat "${BIN_DIR}/.stamp" 2>/dev/null || true)"
  if ((ok)) && [[ "$have" == "$want" ]]; then
    say "binaries up to date in ${BIN_DIR} (k8s ${K8S_VERSION}, etcd ${ETCD_VERSION}, helm ${HELM_VERSION}); checked in $(since "$t0")"
    return 0
  fi
  say "building into ${BIN_DIR} (k8s ${K8S_VERSION}, etcd ${ETCD_VERSION}, helm ${HELM_VERSION})"
  local tmp="${BIN_DIR}.tmp.$$" t
  rm -rf "$tmp"; mkdir -p "$tmp"
  # shellcheck disable=SC2064 # $tmp is local: expanded now, on purpose
  trap "rm -rf '$tmp'" EXIT

  local kmaj kmin
  kmaj="${K8S_VERSION#v}"; kmaj="${kmaj%%.*}"
  kmin="${K8S_VERSION#v*.}"; kmin="${kmin%%.*}"
  t="$(now)"
  gobuild kube -o "$tmp/" -ldflags "-s -w \
    -X k8s.io/component-base/version.gitVersion=${K8S_VERSION} \
    -X k8s.io/component-base/version.gitMajor=${kmaj} \
    -X k8s.io/component-base/version.gitMinor=${kmin} \
    -X k8s.io/component-base/version.gitTreeState=clean \
    -X k8s.io/component-base/version.buildDate=1970-01-01T00:00:00Z" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kubectl
  say "kube-apiserver + kube-controller-manager + kubectl built in $(since "$t")"

  t="$(now)"
  gobuild etcd -o "$tmp/etcd" -ldflags "-s -w" .
  say "etcd built in $(since "$t")"

  # Helm's lint rules and chartutil default to the Kubernetes version of its client-go
  # (its Makefile sets them from client-go's version the same way).
  local cg cmaj cmin
  cg="$(mod_version helm k8s.io/client-go)"; cg="${cg#v}"
  cmaj=$(( ${cg%%.*} + 1 )); cmin="${cg#*.}"; cmin="${cmin%%.*}"
  t="$(now)"
  gobuild helm -o "$tmp/helm" -ldflags "-s -w \
    -X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} \
    -X helm.sh/helm/v3/internal/version.metadata= \
    -X helm.sh/helm/v3/internal/version.gitTreeState=clean \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=${cmaj} \
    -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=${cmin} \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=${cmaj} \
    -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=${cmin}" \
    helm.sh/helm/v3/cmd/helm
  say "helm built in $(since "$t")"

  mkdir -p "$BIN_DIR"
  for b in "${_bins[@]}"; do mv -f "$tmp/$b" "${BIN_DIR}/$b"; done
  printf '%s\n' "$want" >"${BIN_DIR}/.stamp"
  rm -rf "$tmp"; trap - EXIT
  say "build done in $(since "$t0"); $(du -sh "$BIN_DIR" | cut -f1) in ${BIN_DIR}"
}

# alive PIDFILE: the process it names runs and is the binary the file is named after
# (so a pid reused by another process after a reboot does not count).
alive() {
  local pid
  [[ -f "$1" ]] && pid="$(cat "$1")" && kill -0 "$pid" 2>/dev/null &&
    tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -q "/$(basename "$1" .pid) "
}

# gen_certs DIR: a CA, a serving cert for 127.0.0.1/localhost, an admin client cert
# (O=system:masters), the service-account signing key pair and a static admin token.
gen_certs() {
  local d="$1/pki"
  [[ -f "$d/.done" ]] && return 0
  mkdir -p "$d"; chmod 700 "$d"
  (
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
      -subj "/CN=tributary-test-ca" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout apiserver.key -out apiserver.csr -subj "/CN=kube-apiserver" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' >apiserver.ext
    openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile apiserver.ext -out apiserver.crt 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=admin" 2>/dev/null
    printf 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' >admin.ext
    openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile admin.ext -out admin.crt 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    printf '%s,admin,admin,system:masters\n' "$(openssl rand -hex 24)" >tokens.csv
    rm -f ./*.csr ./*.ext
    touch .done
  )
}

write_kubeconfig() { # FILE PORT PKI
  local b64="base64 -w0"
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: tributary-test
  cluster:
    server: https://127.0.0.1:$2
    certificate-authority-data: $($b64 <"$3/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $($b64 <"$3/admin.crt")
    client-key-data: $($b64 <"$3/admin.key")
contexts:
- name: tributary-test
  context: {cluster: tributary-test, user: admin, namespace: default}
current-context: tributary-test
EOF
  chmod 600 "$1"
}

start_proc() { # NAME DIR ARGS...
  local name="$1" dir="$2"; shift 2
  printf '==== %s start %s\n' "$name" "$(date -u +%FT%TZ)" >>"${dir}/${name}.log"
  setsid "$@" </dev/null >>"${dir}/${name}.log" 2>&1 &
  echo $! >"${dir}/${name}.pid"
}

cmd_start() {
  local dir="${1:?usage: start DIR}"
  mkdir -p "$dir"; dir="$(cd "$dir" && pwd)"
  local timeout="${TRIBUTARY_K8S_START_TIMEOUT:-90}" t0
  t0="$(now)"
  for b in "${_bins[@]}"; do [[ -x "${BIN_DIR}/$b" ]] || die "${BIN_DIR}/$b missing: run hack/k8s-env.sh build"; done
  for n in etcd kube-apiserver kube-controller-manager; do
    alive "${dir}/${n}.pid" && die "$n is already running from ${dir} (pid $(cat "${dir}/${n}.pid")); stop it first"
  done
  gen_certs "$dir"
  local pki="${dir}/pki" etcd_port peer_port api_port kcm_port
  # A restart in the same DIR keeps its ports when they are still free, so the kubeconfig,
  # the service-account issuer and etcd's member URLs stay the same. Picked here (port_or_free,
  # racy) because etcd, kube-apiserver and kube-controller-manager cannot report a port-0 bind (and
  # etcd and kube-apiserver are told their own URLs up front).
  local ETCD_PORT="" ETCD_PEER_PORT="" APISERVER_PORT="" KCM_PORT=""
  # shellcheck disable=SC1091 # written below by an earlier start
  [[ -f "${dir}/ports.env" ]] && source "${dir}/ports.env"
  etcd_port="$(port_or_free "$ETCD_PORT")"; peer_port="$(port_or_free "$ETCD_PEER_PORT")"
  api_port="$(port_or_free "$APISERVER_PORT")"; kcm_port="$(port_or_free "$KCM_PORT")"
  printf 'ETCD_PORT=%s\nETCD_PEER_PORT=%s\nAPISERVER_PORT=%s\nKCM_PORT=%s\n' \
    "$etcd_port" "$peer_port" "$api_port" "$kcm_port" >"${dir}/ports.env"

  start_proc etcd "$dir" "${BIN_DIR}/etcd" --name=tributary-test --data-dir="${dir}/etcd-data" \
    --listen-client-urls="http://127.0.0.1:${etcd_port}" --advertise-client-urls="http://127.0.0.1:${etcd_port}" \
    --listen-peer-urls="http://127.0.0.1:${peer_port}" --initial-advertise-peer-urls="http://127.0.0.1:${peer_port}" \
    --initial-cluster="tributary-test=http://127.0.0.1:${peer_port}" \
    --unsafe-no-fsync=true --quota-backend-bytes=$((2 * 1024 * 1024 * 1024)) --log-level=warn

  start_proc kube-apiserver "$dir" "${BIN_DIR}/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:${etcd_port}" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="${api_port}" \
    --cert-dir="${dir}/apiserver-certs" \
    --tls-cert-file="${pki}/apiserver.crt" --tls-private-key-file="${pki}/apiserver.key" \
    --client-ca-file="${pki}/ca.crt" --token-auth-file="${pki}/tokens.csv" \
    --authorization-mode=RBAC --allow-privileged=true \
    --service-cluster-ip-range=10.0.0.0/24 \
    --service-account-issuer="https://127.0.0.1:${api_port}/" \
    --service-account-key-file="${pki}/sa.pub" --service-account-signing-key-file="${pki}/sa.key" \
    --endpoint-reconciler-type=none \
    --profiling=false --v=1

  write_kubeconfig "${dir}/kubeconfig" "$api_port" "$pki"

  local deadline=$(( $(date +%s) + timeout )) dead=""
  # started_alive: every process started so far from DIR still runs; the first that does not is in $dead.
  started_alive() {
    for n in etcd kube-apiserver kube-controller-manager; do
      if [[ -f "${dir}/${n}.pid" ]] && ! alive "${dir}/${n}.pid"; then dead="$n"; return 1; fi
    done
  }
  wait_for() { # WHAT CMD...: eventually, within the start's deadline, as long as every process runs
    local what="$1" rc=0 left=$(( deadline - $(date +%s) ))
    (( left > 0 )) || left=1
    eventually --timeout "$left" --interval 0.3 --while started_alive "$@" || rc=$?
    if (( rc == 2 )); then
      log_tail "${dir}/${dead}.log" 30; die "$dead exited while waiting for ${what}; log: ${dir}/${dead}.log"
    fi
    (( rc == 0 )) || die "timed out after ${timeout}s waiting for ${what}; logs in ${dir}"
  }
  local kc=("${BIN_DIR}/kubectl" --kubeconfig "${dir}/kubeconfig" --request-timeout=5s)
  wait_for "kube-apiserver /readyz" "${kc[@]}" get --raw /readyz
  say "kube-apiserver ready on https://127.0.0.1:${api_port} after $(since "$t0")"

  start_proc kube-controller-manager "$dir" "${BIN_DIR}/kube-controller-manager" \
    --kubeconfig="${dir}/kubeconfig" \
    --authentication-kubeconfig="${dir}/kubeconfig" --authorization-kubeconfig="${dir}/kubeconfig" \
    --authentication-skip-lookup=true \
    --bind-address=127.0.0.1 --secure-port="${kcm_port}" --cert-dir="${dir}/kcm-certs" \
    --leader-elect=false --controllers='*' \
    --service-account-private-key-file="${pki}/sa.key" --root-ca-file="${pki}/ca.crt" \
    --use-service-account-credentials=false \
    --cluster-name=tributary-test --service-cluster-ip-range=10.0.0.0/24 \
    --concurrent-statefulset-syncs=5 --profiling=false --v=1

  wait_for "namespace default" "${kc[@]}" get namespace default
  # the serviceaccount controller of kube-controller-manager creates it; Pods need it
  wait_for "serviceaccount default/default" "${kc[@]}" get serviceaccount default -n default
  say "control plane up in $(since "$t0") (etcd :${etcd_port}, apiserver :${api_port}, logs ${dir}/*.log)"
  echo "export KUBECONFIG=${dir}/kubeconfig"
}

cmd_stop() {
  local dir="${1:?usage: stop DIR}" n pid
  [[ -d "$dir" ]] || die "no such directory: $dir"
  for n in kube-controller-manager kube-apiserver etcd; do
    local pf="${dir}/${n}.pid"
    [[ -f "$pf" ]] || continue
    pid="$(cat "$pf")"
    if alive "$pf"; then
      stop_process "$pid" 10 "k8s-env: $n" || true
      say "stopped $n (pid $pid)"
    fi
    rm -f "$pf"
  done
}

cmd_status() {
  local dir="${1:?usage: status DIR}" n rc=0
  for n in etcd kube-apiserver kube-controller-manager; do
    if alive "${dir}/${n}.pid"; then printf '%-24s running (pid %s)\n' "$n" "$(cat "${dir}/${n}.pid")"
    else printf '%-24s not running\n' "$n"; rc=1; fi
  done
  if [[ -f "${dir}/kubeconfig" ]] && "${BIN_DIR}/kubectl" --kubeconfig "${dir}/kubeconfig" --request-timeout=5s get --raw /readyz >/dev/null 2>&1; then
    printf '%-24s ok (KUBECONFIG=%s)\n' "readyz" "${dir}/kubeconfig"
  else
    printf '%-24s not ready\n' "readyz"; rc=1
  fi
  return "$rc"
}

case "${1:-}" in
  build) cmd_build ;;
  bindir) echo "$BIN_DIR" ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  status) shift; cmd_status "$@" ;;
  *) sed -n '2,21p' "${BASH_SOURCE[0]}" >&2; exit 2 ;;
esac
