#!/usr/bin/env bash
# Proves the rendered kubeadm configuration with the real kubeadm of each supported version line
# (tools/kubeadm/build.sh builds them into .bin/), for one stack (default prod):
#   1. renders the stack with kubernetesVersion set to the line's release (cmd/render -set);
#   2. `kubeadm config validate --config`;
#   3. `kubeadm init --dry-run --config` in private mount and network namespaces: /etc, /var and
#      /run are overlays on a temporary folder, and only loopback exists (checked first);
#      with the cluster CA installed first, then `kubeadm init phase certs all` (for real, in the
#      overlay) with the whole identity installed as the kubeadm-init script installs the
#      program's (cluster/pki.go): three CAs and the service-account key pair in the tls
#      provider's formats (RSA 2048, PKCS#1 keys), made here with openssl. kubeadm must say it
#      uses each existing CA and the sa key, and its certificates must chain to those CAs;
#   4. checks that the CA hash the program derives (cluster.CACertHash) is the one in the worker
#      join command the dry run printed (KUBEADM_JOIN_COMMAND_FILE, KUBEADM_CA_FILE), and that
#      the line's kubeadm validates the JoinConfiguration the program hands each worker's join
#      script (cluster.JoinConfiguration, in the config API of that minor; KUBEADM_BIN);
#   5. feeds the KubeletConfiguration the dry run stores in kube-system/kubelet-config to the
#      rendered kubelet-configmap script (KUBEADM_KUBELET_CONFIG_FILE): the rollout of the
#      kubelet's pressure settings to a running cluster keeps what kubeadm wrote.
# Usage: tools/kubeadm/check.sh [STACK]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
stack=${1:-prod}
cd "${root}"
tools/kubeadm/build.sh
scratch=$(mktemp -d)
trap 'rm -rf "${scratch}"' EXIT
# The cluster's identity, in the files and formats the program installs (cluster.IdentityFiles).
pki="${scratch}/pki"
mkdir -p "${pki}/etcd"
for ca in ca:kubernetes front-proxy-ca:front-proxy-ca etcd/ca:etcd-ca; do
  openssl genrsa -traditional -out "${pki}/${ca%%:*}.key" 2048 2> /dev/null
  openssl req -x509 -new -key "${pki}/${ca%%:*}.key" -subj "/CN=${ca#*:}" -days 3650 \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign,digitalSignature,keyEncipherment \
    -out "${pki}/${ca%%:*}.crt"
done
openssl genrsa -traditional -out "${pki}/sa.key" 2048 2> /dev/null
openssl rsa -in "${pki}/sa.key" -pubout -out "${pki}/sa.pub" 2> /dev/null
# shellcheck source=tools/kubeadm/lines.sh
. tools/kubeadm/lines.sh
for line in "${kubeadm_lines[@]}"; do
  version=$(line_version "${line}")
  kubeadm="${root}/.bin/kubeadm-${version}"
  work="${scratch}/${line}"
  mkdir -p "${work}"
  echo "::: kubeadm ${version}: render ${stack} with kubernetesVersion=${version#v}"
  go run ./cmd/render -stack "${stack}" -out "${work}/render" -set "kubernetesVersion=${version#v}" > /dev/null
  config=$(ls "${work}"/render/kubeadm/*kubeadm-init*.yaml)
  echo "::: kubeadm ${version}: config validate"
  "${kubeadm}" config validate --config "${config}"
  echo "::: kubeadm ${version}: init --dry-run in private mount and network namespaces"
  for d in etc var run; do mkdir -p "${work}/upper/${d}" "${work}/work/${d}"; done
  unshare --mount --net --fork bash -s "${kubeadm}" "${config}" "${work}" "${pki}" > "${work}/dry-run.log" 2>&1 <<'NS' || { tail -n 40 "${work}/dry-run.log" >&2; exit 1; }
set -euo pipefail
kubeadm=$1 config=$2 work=$3 pki=$4
links=$(ip -o link show | awk -F': ' '{print $2}' | xargs)
if [ "${links}" != "lo" ]; then
  echo "the dry run's network namespace has links other than loopback: ${links}" >&2
  exit 1
fi
ip link set lo up
for d in etc var run; do
  mount -t overlay overlay -o "lowerdir=/${d},upperdir=${work}/upper/${d},workdir=${work}/work/${d}" "/${d}"
done
# The dry run with the cluster CA installed. Only ca.*: a dry run copies any existing CA's files
# to its scratch folder as ca.crt/ca.key (cmd/phases/init/certs.go, both lines), so with the
# front-proxy and etcd CAs installed too it cannot find them there and stops.
mkdir -p /etc/kubernetes/pki
cp "${pki}/ca.crt" "${pki}/ca.key" /etc/kubernetes/pki/
"${kubeadm}" init --dry-run --skip-phases=preflight --config "${config}"
# Then the certificates phase for real (it writes only into the overlay), with the whole identity
# installed as the kubeadm-init script installs it: every CA and the service-account key must
# be used, and the certificates kubeadm makes must chain to the program's CAs.
rm -rf /etc/kubernetes/pki
cp -r "${pki}" /etc/kubernetes/pki
echo "::: certs phase with the whole identity"
"${kubeadm}" init phase certs all --config "${config}"
openssl verify -CAfile /etc/kubernetes/pki/ca.crt /etc/kubernetes/pki/apiserver.crt
openssl verify -CAfile /etc/kubernetes/pki/front-proxy-ca.crt /etc/kubernetes/pki/front-proxy-client.crt
openssl verify -CAfile /etc/kubernetes/pki/etcd/ca.crt /etc/kubernetes/pki/etcd/server.crt
cmp "${pki}/sa.key" /etc/kubernetes/pki/sa.key
NS
  for said in "Using existing ca certificate authority" "Using existing front-proxy-ca certificate authority" \
    "Using existing etcd/ca certificate authority" 'Using the existing "sa" key'; do
    if ! grep -qF "[certs] ${said}" "${work}/dry-run.log"; then
      echo "kubeadm ${version} did not say '${said}' (${work}/dry-run.log): a new master would get an identity of its own" >&2
      exit 1
    fi
  done
  echo "::: kubeadm ${version}: used the installed CAs and service-account key; apiserver, front-proxy-client and etcd server certificates chain to them"
  # The KubeletConfiguration as this kubeadm stores it in kube-system/kubelet-config (the data.kubelet
  # block of the ConfigMap the dry run would create), fed to the rendered kubelet-configmap script
  # in the script harness: kubeadm's own fields kept, every pressure setting set, a rerun a no-op.
  # (kubeadm 1.28 indents the objects of its dry run with a tab, 1.35 does not.)
  awk '{ sub(/^\t/, "") } /^kind: ConfigMap$/ && grab { exit } /^  kubelet: \|$/ { grab = 1; next } grab && /^    / { print substr($0, 5) }' \
    "${work}/dry-run.log" > "${work}/kubelet-config"
  grep -q '^kind: KubeletConfiguration$' "${work}/kubelet-config" ||
    { echo "no kubelet-config ConfigMap in kubeadm ${version}'s dry-run output (${work}/dry-run.log)" >&2; exit 1; }
  KUBEADM_KUBELET_CONFIG_FILE="${work}/kubelet-config" go test ./cluster/ -count=1 -run 'TestKubeletConfigMapKeepsKubeadmsFieldsAndSetsEveryPressureField'
  # The worker join command the dry run printed, as `kubeadm token create --print-join-command`
  # prints it: the same template with its line continuations and tabs removed, then a newline.
  awk '/^kubeadm join /{buf=""; grab=1} grab{buf=buf $0 "\n"; if ($0 !~ /\\$/) {grab=0; last=buf}} END{printf "%s", last}' "${work}/dry-run.log" \
    | sed -e ':a' -e 'N' -e '$!ba' -e 's/\\\n//g' | tr -d '\t' > "${work}/join-command"
  if ! grep -q -- '--discovery-token-ca-cert-hash sha256:' "${work}/join-command"; then
    echo "no worker join command in kubeadm ${version}'s dry-run output (${work}/dry-run.log)" >&2
    exit 1
  fi
  echo "::: kubeadm ${version}: CA hash of $(sed -e 's/--token [^ ]*/--token <redacted>/' "${work}/join-command"), and the program's JoinConfiguration validated"
  KUBEADM_JOIN_COMMAND_FILE="${work}/join-command" KUBEADM_CA_FILE="${pki}/ca.crt" \
    KUBEADM_BIN="${kubeadm}" KUBEADM_VERSION="${version}" \
    go test ./cluster/ -count=1 -run 'TestJoinConfigurationIsOneKubeadmAccepts|TestCACertHashIsKubeadms'
done
echo "::: kubeadm configuration of ${stack} proven with kubeadm ${kubeadm_lines[*]}"
