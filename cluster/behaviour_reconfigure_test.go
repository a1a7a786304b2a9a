package cluster

import (
	"strings"
	"testing"
)

// The master's reconfiguration (reconfigure.sh.tmpl) against a model of its control plane:
// kubectl answers kube-system/kubeadm-config's ClusterConfiguration from $STUB_STATE/cluster-config;
// kubeadm's upload-config stores the --config file's kubernetesVersion there, and `upgrade node
// phase control-plane` fails when $STUB_STATE/rollback exists (kubeadm rolled a component back).

func reconfigureStubs() map[string]string {
	return map[string]string{
		"kubectl": `
case "$*" in
  *"get configmap kubeadm-config -o jsonpath={.data.ClusterConfiguration}") cat "$STUB_STATE/cluster-config" ;;
  *) echo "unexpected kubectl $*" >&2; exit 1 ;;
esac`,
		"kubeadm": `
case "$*" in
  "init phase upload-config kubeadm --config "*) grep '^kubernetesVersion:' "$6" > "$STUB_STATE/cluster-config" ;;
  "upgrade node phase control-plane --certificate-renewal=false --etcd-upgrade=false") [ ! -e "$STUB_STATE/rollback" ] ;;
  *) echo "unexpected kubeadm $*" >&2; exit 1 ;;
esac`,
	}
}

const reconfigureConfig = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: stable-1.35\napiServer: {}\n"

// TestTheMasterIsReconfiguredInPlace: the admission configuration is installed (under its
// content's name) before kubeadm stores the program's configuration at the release the control
// plane runs (a minor-only version is never resolved to a newer patch there) and renders the
// static pods from it; the API server's older admission files and all but the newest manifest
// backup go once that has passed. A second run rewrites nothing.
func TestTheMasterIsReconfiguredInPlace(t *testing.T) {
	root := newRoot(t)
	root.stubState(t, "cluster-config", "apiServer: {}\nkubernetesVersion: v1.35.4\n")
	old := AdmissionConfigDir + "/config-000000000000.yaml"
	r := root.run(ReconfigureScript(reconfigureConfig), scriptCase{stubs: reconfigureStubs(), files: map[string]string{
		old: "kind: AdmissionConfiguration\n",
		"/etc/kubernetes/tmp/kubeadm-backup-manifests-2026-01-01/kube-apiserver.yaml": "old\n",
	}})
	if r.code != 0 {
		t.Fatalf("the reconfiguration failed:\n%s", r.describe())
	}
	installed, ok := root.read(AdmissionConfigPath())
	if !ok || installed != AdmissionConfig() {
		t.Errorf("%s holds %q, want the program's AdmissionConfiguration", AdmissionConfigPath(), installed)
	}
	upload := r.index("kubeadm", "init", "phase", "upload-config", "kubeadm")
	render := r.index("kubeadm", "upgrade", "node", "phase", "control-plane", "--certificate-renewal=false", "--etcd-upgrade=false")
	if upload < 0 || render < upload {
		t.Fatalf("kubeadm did not store the configuration, then render the static pods from it:\n%s", r.describe())
	}
	stored, _ := root.read("/etc/kubernetes/waste-coach/kubeadm-reconfigure.yaml")
	if !strings.Contains(stored, "\nkubernetesVersion: v1.35.4\n") || strings.Contains(stored, "stable-1.35") {
		t.Errorf("the configuration kubeadm stored does not name the running release v1.35.4:\n%s", stored)
	}
	if _, ok := root.read(old); ok {
		t.Error("the API server's older admission configuration is still there after the reconfiguration passed")
	}
	if !strings.Contains(r.stdout, "control plane configured as the program's kubeadm configuration") {
		t.Errorf("the step does not say what it did:\n%s", r.stdout)
	}

	again := root.run(ReconfigureScript(reconfigureConfig), scriptCase{stubs: reconfigureStubs()})
	if again.code != 0 || len(again.called("sudo", "tee", AdmissionConfigPath()+".new")) != 0 {
		t.Errorf("a second run rewrote the admission configuration:\n%s", again.describe())
	}
}

// TestAReconfigurationThatKubeadmRolledBackFails: when kubeadm cannot bring a static pod to the
// configuration (it rolls the component back), the step fails and keeps the admission file the
// running API server may still read; a cluster whose kubeadm-config names no release is refused
// before kubeadm runs at all.
func TestAReconfigurationThatKubeadmRolledBackFails(t *testing.T) {
	root := newRoot(t)
	root.stubState(t, "cluster-config", "kubernetesVersion: v1.35.4\n")
	root.stubState(t, "rollback", "")
	old := AdmissionConfigDir + "/config-000000000000.yaml"
	r := root.run(ReconfigureScript(reconfigureConfig), scriptCase{stubs: reconfigureStubs(), files: map[string]string{old: "kind: AdmissionConfiguration\n"}})
	if r.code == 0 || !strings.Contains(r.stderr, "kubeadm could not bring the static pods to the configuration") {
		t.Fatalf("a rolled-back reconfiguration passed:\n%s", r.describe())
	}
	if _, ok := root.read(old); !ok {
		t.Error("the admission configuration the running API server may still read was removed after a failed reconfiguration")
	}

	root = newRoot(t)
	root.stubState(t, "cluster-config", "apiServer: {}\n")
	r = root.run(ReconfigureScript(reconfigureConfig), scriptCase{stubs: reconfigureStubs()})
	if r.code == 0 || len(r.called("kubeadm")) != 0 || !strings.Contains(r.stderr, "names no release") {
		t.Fatalf("a kubeadm-config without a release was not refused before kubeadm ran:\n%s", r.describe())
	}
}
