# Sourced by build.sh and check.sh: where each supported Kubernetes version line's kubeadm is
# built from. v1.35, the pinned release, comes from tools/kube, the module of the local control
# plane, so that a cold machine compiles the Kubernetes libraries once for both; v1.28 from its own
# wrapper module here, and v1.36, the newest minor the program walks to (cluster/upgrade.go), from
# another. The release is read from the module's go.mod, written down once.
# shellcheck shell=bash
kubeadm_lines=(v1.35 v1.28 v1.36)

# line_module LINE: the folder of the module that builds LINE's kubeadm.
line_module() {
  local tools
  tools=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  case "$1" in
    v1.35) echo "${tools}/kube" ;;
    v1.28) echo "${tools}/kubeadm/v1.28" ;;
    v1.36) echo "${tools}/kubeadm/v1.36" ;;
    *) echo "unknown version line $1: expected one of ${kubeadm_lines[*]}" >&2; return 1 ;;
  esac
}

# line_package LINE: the main package of kubeadm in that module.
line_package() {
  case "$1" in
    v1.35) echo ./cmd/kubeadm ;;
    *) echo k8s.io/kubernetes/cmd/kubeadm ;;
  esac
}

# line_version LINE: the Kubernetes release that module requires.
line_version() {
  local module
  module=$(line_module "$1") || return 1
  "$(dirname "${BASH_SOURCE[0]}")/../module-version.sh" "${module}" k8s.io/kubernetes
}
