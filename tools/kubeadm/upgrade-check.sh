#!/usr/bin/env bash
# Runs the real `kubeadm upgrade plan` and `kubeadm upgrade apply --dry-run` of the newest version
# line (v1.36) against a control plane made by the pinned line's kubeadm (v1.35) from the stack's
# rendered init configuration and identity: the first hop of the upgrade steps
# (cluster/scripts/upgrade.sh.tmpl), offline. In private mount, network and UTS namespaces (only
# loopback, checked first; /etc, /var and /run are overlays on a temporary folder):
#   1. kubeadm v1.35 writes what `kubeadm init` writes to disk (certificates from the program's
#      CAs, kubeconfig files, static pod manifests, the kubelet's configuration);
#   2. etcd and the pinned kube-apiserver run on loopback with kubeadm's certificates;
#      kubeadm-stage (tools/kube) adds what a running master has: the master's Node, Ready at
#      kubelet v1.35, the mirror pods of the static pods, kubeadm's admin binding; kubeadm v1.35
#      uploads its configuration, marks the control plane, makes the bootstrap token RBAC and the
#      CoreDNS and kube-proxy addons; the controller-manager, scheduler and kwok (which completes
#      the pods of kubeadm's health-check Job) run beside it;
#   3. kubeadm v1.36 `upgrade plan v<release>` must pass its health checks (its Job included) and
#      list every control-plane component at v1.35 going to the release;
#   4. kubeadm v1.36 `upgrade apply v<release> --dry-run --yes` must finish, and the API server
#      and controller-manager manifests it would write must run the release and keep the
#      program's settings (secrets encrypted at rest, the admission configuration, the external
#      cloud provider);
#   5. with the cluster's configuration stored at the release (as apply leaves it), a worker's
#      `kubeadm upgrade node --dry-run` (a node's credentials, no control-plane manifests) must
#      skip the control plane and upgrade the kubelet's configuration.
# Before 3, the reconfiguration's kubeadm commands run on the master as made without the
# admission configuration (upload-config, then `upgrade node phase control-plane --dry-run`).
# What it cannot run: apply, upgrade node and the reconfiguration for real (they swap the static
# pods and wait for a kubelet to restart them), and two preflight checks, ignored by name:
# ContainerRuntimeVersion (no containerd here) and SystemVerification (the kubelet's system
# checks of this machine).
# Usage: tools/kubeadm/upgrade-check.sh [STACK]   (needs root for the namespaces)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
stack=${1:-prod}
cd "${root}"
bin="${root}/.bin"
# shellcheck source=tools/kubeadm/lines.sh
. tools/kubeadm/lines.sh
from=$(line_version v1.35)
to=$(line_version v1.36)
tools/kubeadm/build.sh v1.35 v1.36 > /dev/null
tools/kube/build.sh > /dev/null
(cd tools/kube && go build -o "${bin}/kubeadm-stage" ./cmd/kubeadm-stage)
[ -x "${bin}/kwok" ] || tools/engine/build.sh > /dev/null
kwok_dir=$(tools/engine/module-dir.sh tools/charts sigs.k8s.io/kwok)
stages="${kwok_dir}/kustomize/stage"
scratch=$(mktemp -d)
trap 'rm -rf "${scratch}"' EXIT
go run ./cmd/render -stack "${stack}" -out "${scratch}/render" > /dev/null
config=$(ls "${scratch}"/render/kubeadm/*kubeadm-init*.yaml)
# The master's kubelet, as kubeadm's kubelet-start phase and apply's system check ask it; and
# systemctl, which kubelet-start calls to restart the kubelet: the namespaces do not keep it from
# the machine's systemd (its socket is a file under /run, which is an overlay of the real one).
mkdir -p "${scratch}/stand-in"
printf '#!/bin/sh\necho "Kubernetes %s"\n' "${from}" > "${scratch}/stand-in/kubelet"
printf '#!/bin/sh\nexit 0\n' > "${scratch}/stand-in/systemctl"
chmod +x "${scratch}/stand-in/kubelet" "${scratch}/stand-in/systemctl"
for d in etc var run; do mkdir -p "${scratch}/upper/${d}" "${scratch}/work/${d}"; done
echo "::: kubeadm ${to} upgrade plan and apply --dry-run on a ${from} control plane made by kubeadm ${from} from ${stack}'s configuration"
start=${SECONDS}
# The body runs from a file, not from standard input, which a command in it could swallow. In its
# own PID namespace: whatever it started ends with it, even if this script is killed.
cat > "${scratch}/check.sh" <<'NS'
set -euo pipefail
bin=$1 from=$2 to=$3 config=$4 scratch=$5 stages=$6
links=$(ip -o link show | awk -F': ' '{print $2}' | xargs)
if [ "${links}" != "lo" ]; then
  echo "the check's network namespace has links other than loopback: ${links}" >&2
  exit 1
fi
ip link set lo up
hostname master
for d in etc var run; do
  mount -t overlay overlay -o "lowerdir=/${d},upperdir=${scratch}/upper/${d},workdir=${scratch}/work/${d}" "/${d}"
done
pids=()
# This shell is the PID namespace's first process: when it exits, the kernel kills everything
# else in the namespace. Killing them first, without waiting for a graceful stop, keeps an exit
# from hanging on one that takes its time.
stop() { for pid in "${pids[@]}"; do kill -9 "${pid}" 2> /dev/null || true; done; }
trap stop EXIT
export PATH="${scratch}/stand-in:${PATH}"
old="${bin}/kubeadm-${from}" new="${bin}/kubeadm-${to}"
identity=$(dirname "${config}")/identity
pki=/etc/kubernetes/pki
# dry_run_manifest OUTPUT COMPONENT: the static pod manifest a kubeadm dry run printed for
# COMPONENT, from its "Would write file" line to the next line kubeadm prints with a bracketed
# prefix. Callers write it to a file and grep that: grep -q ending a pipe early reads as a failure
# under pipefail.
dry_run_manifest() {
  awk -v f="/etc/kubernetes/manifests/$2.yaml" 'index($0, "Would write file \"" f "\"") { grab = 1; next } grab && /^\[/ { exit } grab' "$1"
}

# The cluster as masters made before the admission configuration and the pods' issuer have it:
# the program's configuration without the API server's admission flag and its folder, and
# without the service-account flags (kubeadm's default issuer).
before="${scratch}/kubeadm-before-admission.yaml"
awk '/^    - name: (admission-control-config-file|service-account-issuer|service-account-jwks-uri|api-audiences|audit-policy-file|audit-log-path|audit-log-maxsize|audit-log-maxbackup|audit-log-maxage)$/ { skip = 2 }
  /^    - name: (admission-config|audit-policy|audit-log)$/ { skip = 5 } skip > 0 { skip--; next } { print }' "${config}" > "${before}"
if grep -Eq -- '- name: (admission|service-account|api-audiences|audit)' "${before}" || ! grep -q admission "${config}" || ! grep -q service-account-issuer "${config}" ||
  ! grep -q audit-policy-file "${config}"; then
  echo "cannot make the configuration of a master from before the admission configuration and the pods' issuer" >&2
  exit 1
fi
# service_account_flags MANIFEST: the API server's service-account and audit flags in a static
# pod manifest, in their order.
service_account_flags() {
  grep -Eo -- '--(service-account-issuer|service-account-jwks-uri|api-audiences|audit-[a-z-]+)=[^ ]*' "$1" || true
}
# The flags the program's configuration gives, in its order.
want_flags=$(awk '/^    - name: (service-account-issuer|service-account-jwks-uri|api-audiences|audit-policy-file|audit-log-path|audit-log-maxsize|audit-log-maxbackup|audit-log-maxage)$/ { name = $3; getline; gsub(/.*value: "|"$/, ""); print "--" name "=" $0 }' "${config}")
[ "$(printf '%s\n' "${want_flags}" | grep -c -- --service-account-issuer=)" = 2 ] ||
  { echo "the program's configuration does not give two issuers:" >&2; printf '%s\n' "${want_flags}" >&2; exit 1; }
echo "::: kubeadm ${from}: what init writes, from the program's identity and a configuration from before the admission configuration"
mkdir -p "${pki}" /etc/kubernetes/encryption
cp -r "${identity}"/. "${pki}/"
cp "$(dirname "${config}")/encryption-config.yaml" /etc/kubernetes/encryption/config.yaml
for phase in "certs all" "kubeconfig all" "etcd local" "control-plane all" "kubelet-start"; do
  # shellcheck disable=SC2086 # a phase is its words
  "${old}" init phase ${phase} --config "${before}"
done

echo "::: etcd and kube-apiserver ${from} on loopback, with kubeadm's certificates"
etcd --name=master --data-dir="${scratch}/etcd" --listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
  --listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 --initial-cluster=master=http://127.0.0.1:2380 \
  --log-level=error > "${scratch}/etcd.log" 2>&1 &
pids+=("$!")
"${bin}/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port=6443 \
  --tls-cert-file="${pki}/apiserver.crt" --tls-private-key-file="${pki}/apiserver.key" --client-ca-file="${pki}/ca.crt" \
  --kubelet-client-certificate="${pki}/apiserver-kubelet-client.crt" --kubelet-client-key="${pki}/apiserver-kubelet-client.key" \
  --proxy-client-cert-file="${pki}/front-proxy-client.crt" --proxy-client-key-file="${pki}/front-proxy-client.key" \
  --requestheader-client-ca-file="${pki}/front-proxy-ca.crt" --requestheader-allowed-names=front-proxy-client \
  --requestheader-extra-headers-prefix=X-Remote-Extra- --requestheader-group-headers=X-Remote-Group --requestheader-username-headers=X-Remote-User \
  --service-account-key-file="${pki}/sa.pub" --service-account-signing-key-file="${pki}/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local --service-cluster-ip-range=10.96.0.0/12 \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction --enable-bootstrap-token-auth=true --allow-privileged=true \
  --encryption-provider-config=/etc/kubernetes/encryption/config.yaml > "${scratch}/apiserver.log" 2>&1 &
pids+=("$!")
"${bin}/kubeadm-stage" -dir /etc/kubernetes -server https://127.0.0.1:6443 -node master -kubelet-version "${from}"
admin=(--kubeconfig /etc/kubernetes/admin.conf)
"${old}" init phase upload-config all --config "${before}" "${admin[@]}"
"${old}" init phase mark-control-plane --config "${before}"
"${old}" init phase bootstrap-token --config "${before}" "${admin[@]}"
"${old}" init phase addon all --config "${before}" "${admin[@]}"
cm=/etc/kubernetes/controller-manager.conf sched=/etc/kubernetes/scheduler.conf
"${bin}/kube-controller-manager" --kubeconfig="${cm}" --authentication-kubeconfig="${cm}" --authorization-kubeconfig="${cm}" \
  --bind-address=127.0.0.1 --secure-port=10257 --leader-elect=false --use-service-account-credentials=true \
  --service-account-private-key-file="${pki}/sa.key" --root-ca-file="${pki}/ca.crt" \
  --controllers='*,-nodelifecycle,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller' > "${scratch}/controller-manager.log" 2>&1 &
pids+=("$!")
"${bin}/kube-scheduler" --kubeconfig="${sched}" --authentication-kubeconfig="${sched}" --authorization-kubeconfig="${sched}" \
  --bind-address=127.0.0.1 --secure-port=10259 --leader-elect=false > "${scratch}/scheduler.log" 2>&1 &
pids+=("$!")
"${bin}/kwok" --kubeconfig=/etc/kubernetes/super-admin.conf --manage-all-nodes=true --server-address=127.0.0.1:0 \
  --config="${stages}/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" --config="${stages}/pod/fast/pod-ready.yaml" \
  --config="${stages}/pod/fast/pod-complete.yaml" --config="${stages}/pod/fast/pod-delete.yaml" > "${scratch}/kwok.log" 2>&1 &
pids+=("$!")

# The reconfiguration step's kubeadm commands (cluster/scripts/reconfigure.sh.tmpl), with the
# release it runs: the program's configuration stored at the running version, then the static
# pods rendered from the cluster's stored configuration (a dry run: for real it waits for a kubelet
# to restart the API server).
echo "::: kubeadm ${from}: the reconfiguration of a running master"
! grep -q admission-control-config-file /etc/kubernetes/manifests/kube-apiserver.yaml ||
  { echo "the master before the reconfiguration already has the admission flag" >&2; exit 1; }
running=$("${bin}/kubeadm-stage" -dir /etc/kubernetes -print-cluster-configuration | awk '$1 == "kubernetesVersion:" { print $2 }')
[ "${running}" = "${from}" ] || { echo "kubeadm-config names ${running:-no release}, not ${from}" >&2; exit 1; }
sed "s|^kubernetesVersion: .*|kubernetesVersion: ${running}|" "${config}" > "${scratch}/reconfigure.yaml"
"${old}" init phase upload-config kubeadm --config "${scratch}/reconfigure.yaml" "${admin[@]}"
"${old}" upgrade node phase control-plane --certificate-renewal=false --etcd-upgrade=false --dry-run > "${scratch}/reconfigure.out"
dry_run_manifest "${scratch}/reconfigure.out" kube-apiserver > "${scratch}/reconfigured-apiserver.yaml"
admission=$(awk '/^    - name: admission-control-config-file$/ { getline; gsub(/.*value: "|"$/, ""); print }' "${config}")
grep -q -- "--admission-control-config-file=${admission}\$" "${scratch}/reconfigured-apiserver.yaml" &&
  grep -q "mountPath: /etc/kubernetes/admission\$" "${scratch}/reconfigured-apiserver.yaml" &&
  grep -q "image: registry.k8s.io/kube-apiserver:${from}\$" "${scratch}/reconfigured-apiserver.yaml" ||
  { cat "${scratch}/reconfigured-apiserver.yaml"; echo "the reconfigured API server does not read ${admission} at ${from}" >&2; exit 1; }
[ "$(service_account_flags "${scratch}/reconfigured-apiserver.yaml")" = "${want_flags}" ] ||
  { service_account_flags "${scratch}/reconfigured-apiserver.yaml"; echo "the reconfigured API server's service-account flags are not, in order:" >&2; printf '%s\n' "${want_flags}" >&2; exit 1; }
grep -q "mountPath: /var/log/kubernetes/audit\$" "${scratch}/reconfigured-apiserver.yaml" ||
  { echo "the reconfigured API server does not mount the audit log's folder" >&2; exit 1; }
echo "::: the reconfigured API server reads the admission configuration ${admission}, still at ${from}, signs for the pods' issuer and audits:"
printf '%s\n' "${want_flags}" | sed 's/^/:::     /'

echo "::: kubeadm ${to}: upgrade plan ${to}"
"${new}" upgrade plan "${to}" > "${scratch}/plan.out"
cat "${scratch}/plan.out"
for component in kube-apiserver kube-controller-manager kube-scheduler; do
  grep -Eq "^${component} +master +${from} +${to}\$" "${scratch}/plan.out" ||
    { echo "the plan does not take ${component} from ${from} to ${to}" >&2; exit 1; }
done
grep -q "You can now apply the upgrade by executing" "${scratch}/plan.out" || { echo "the plan does not offer the upgrade" >&2; exit 1; }

echo "::: kubeadm ${to}: upgrade apply ${to} --dry-run"
"${new}" upgrade apply "${to}" --dry-run --yes --ignore-preflight-errors=ContainerRuntimeVersion,SystemVerification > "${scratch}/apply.out"
grep -F "[upgrade/successful] Finished dryrunning successfully!" "${scratch}/apply.out"
for component in kube-apiserver kube-controller-manager; do
  dry_run_manifest "${scratch}/apply.out" "${component}" > "${scratch}/upgraded-${component}.yaml"
done
grep -q "image: registry.k8s.io/kube-apiserver:${to}\$" "${scratch}/upgraded-kube-apiserver.yaml" ||
  { echo "the upgraded API server does not run ${to}" >&2; exit 1; }
grep -q -- "--encryption-provider-config=/etc/kubernetes/encryption/config.yaml" "${scratch}/upgraded-kube-apiserver.yaml" ||
  { echo "the upgraded API server lost the encryption of secrets at rest" >&2; exit 1; }
grep -q -- "--admission-control-config-file=${admission}\$" "${scratch}/upgraded-kube-apiserver.yaml" ||
  { echo "the upgraded API server lost the admission configuration" >&2; exit 1; }
[ "$(service_account_flags "${scratch}/upgraded-kube-apiserver.yaml")" = "${want_flags}" ] ||
  { echo "the upgraded API server lost the pods' issuer or audit flags, or their order" >&2; exit 1; }
grep -q -- "--cloud-provider=external" "${scratch}/upgraded-kube-controller-manager.yaml" ||
  { echo "the upgraded controller-manager lost the external cloud provider" >&2; exit 1; }
echo "::: the ${to} manifests keep the encryption at rest, the admission configuration, the pods' issuer, the audit log and the external cloud provider"

# The workers' step (upgrade-worker-1 and the others): `kubeadm upgrade node` once the control
# plane runs the release. The cluster's configuration as apply leaves it (stored at the release),
# then a worker: a node's credentials (kubelet.conf, the system:nodes group the workers' RBAC
# names) and no control-plane manifests.
echo "::: kubeadm ${to}: upgrade node --dry-run on a worker, the cluster's configuration at ${to}"
sed "s|^kubernetesVersion: .*|kubernetesVersion: ${to}|" "${config}" > "${scratch}/at-release.yaml"
"${new}" init phase upload-config all --config "${scratch}/at-release.yaml" --kubeconfig /etc/kubernetes/super-admin.conf
mv /etc/kubernetes/manifests /etc/kubernetes/manifests.master
"${new}" upgrade node --dry-run --ignore-preflight-errors=ContainerRuntimeVersion,SystemVerification > "${scratch}/node.out"
mv /etc/kubernetes/manifests.master /etc/kubernetes/manifests
for said in '[dryrun] Creating a real client from "/etc/kubernetes/kubelet.conf"' \
  '[upgrade/control-plane] Skipping phase. Not a control plane node.' \
  '[upgrade/kubelet-config] The kubelet configuration for this node was successfully upgraded!' \
  '[upgrade/successful] Finished dryrunning successfully!'; do
  grep -qF "${said}" "${scratch}/node.out" || { cat "${scratch}/node.out"; echo "kubeadm upgrade node did not say: ${said}" >&2; exit 1; }
done
echo "::: a worker's kubeadm upgrade node ${to} passed as a dry run, with the node's own credentials"
NS
unshare --mount --net --uts --pid --mount-proc --fork --kill-child bash "${scratch}/check.sh" \
  "${bin}" "${from}" "${to}" "${config}" "${scratch}" "${stages}" > "${scratch}/log" 2>&1 < /dev/null ||
  { tail -n 60 "${scratch}/log" >&2; exit 1; }
grep -q "^::: a worker's kubeadm upgrade node ${to} passed as a dry run, with the node's own credentials\$" "${scratch}/log" ||
  { tail -n 60 "${scratch}/log" >&2; echo "the check ended before its last assertion" >&2; exit 1; }
grep '^:::\|^kube-\|^etcd\|^CoreDNS\|^\[upgrade/successful\]' "${scratch}/log"
echo "::: kubeadm ${to} upgrade plan, apply --dry-run and a worker's upgrade node --dry-run passed in $((SECONDS - start))s"
