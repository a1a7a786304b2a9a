package cluster

import (
	"os"
	"strings"
	"testing"
)

// The master's reconfiguration (reconfigure.sh.tmpl) against a model of its control plane:
// kubectl answers kube-system/kubeadm-config's ClusterConfiguration from $STUB_STATE/cluster-config;
// kubeadm's upload-config stores the --config file there, and `upgrade node phase control-plane`
// fails when $STUB_STATE/rollback exists (kubeadm rolled a component back), else leaves a backup
// folder as kubeadm does (empty: nothing changed).

func reconfigureStubs() map[string]string {
	return map[string]string{
		"kubectl": `
case "$*" in
  *"get configmap kubeadm-config -o jsonpath={.data.ClusterConfiguration}") cat "$STUB_STATE/cluster-config" ;;
  *) echo "unexpected kubectl $*" >&2; exit 1 ;;
esac`,
		"kubeadm": `
case "$*" in
  "init phase upload-config kubeadm --config "*) cp "$6" "$STUB_STATE/cluster-config" ;;
  "upgrade node phase control-plane --certificate-renewal=false --etcd-upgrade=false")
    [ ! -e "$STUB_STATE/rollback" ] || exit 1
    mkdir -p /etc/kubernetes/tmp/kubeadm-backup-manifests-2026-12-07-10-00-00 ;;
  *) echo "unexpected kubeadm $*" >&2; exit 1 ;;
esac`,
	}
}

const reconfigureConfig = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: stable-1.35\napiServer: {}\n"

// reconfigureFiles are what a configured master has: the encryption configuration, an older
// admission configuration and a manifest backup of an earlier upgrade.
func reconfigureFiles(old string) map[string]string {
	return map[string]string{
		EncryptionConfigPath: "kind: EncryptionConfiguration\n",
		old:                  "kind: AdmissionConfiguration\n",
		"/etc/kubernetes/tmp/kubeadm-backup-manifests-2026-01-01-00-00-00/kube-apiserver.yaml": "before the upgrade\n",
	}
}

// TestTheMasterIsReconfiguredInPlace: the admission configuration is installed (under its
// content's name) before kubeadm stores the program's configuration at the release the control
// plane runs (a minor-only version is never resolved to a newer patch there) and renders the
// static pods from it, both under the control plane's lock. Older admission files and the
// backups of earlier upgrades stay (a backup may name one); kubeadm's empty backup of a run that
// changed nothing goes. A second run rewrites nothing.
func TestTheMasterIsReconfiguredInPlace(t *testing.T) {
	root := newRoot(t)
	root.stubState(t, "cluster-config", "apiServer: {}\nkubernetesVersion: v1.35.4\n")
	old := AdmissionConfigDir + "/config-000000000000.yaml"
	r := root.run(ReconfigureScript(reconfigureConfig), scriptCase{stubs: reconfigureStubs(), files: reconfigureFiles(old)})
	if r.code != 0 {
		t.Fatalf("the reconfiguration failed:\n%s", r.describe())
	}
	installed, ok := root.read(AdmissionConfigPath())
	if !ok || installed != AdmissionConfig() {
		t.Errorf("%s holds %q, want the program's AdmissionConfiguration", AdmissionConfigPath(), installed)
	}
	admission := r.index("sudo", "mv", AdmissionConfigPath()+".new", AdmissionConfigPath())
	upload := r.index("sudo", "flock", "-E", "75", "-w", "1800", controlPlaneLock, "kubeadm", "init", "phase", "upload-config", "kubeadm")
	render := r.index("sudo", "flock", "-E", "75", "-w", "1800", controlPlaneLock, "kubeadm", "upgrade", "node", "phase", "control-plane", "--certificate-renewal=false", "--etcd-upgrade=false")
	if admission < 0 || upload < admission || render < upload {
		t.Fatalf("want the admission file in place, then kubeadm storing the configuration, then rendering the static pods, each kubeadm call under the lock:\n%s", r.describe())
	}
	stored, _ := root.read("/etc/kubernetes/waste-coach/kubeadm-reconfigure.yaml")
	if !strings.Contains(stored, "\nkubernetesVersion: v1.35.4\n") || strings.Contains(stored, "stable-1.35") {
		t.Errorf("the configuration kubeadm stored does not name the running release v1.35.4:\n%s", stored)
	}
	if _, ok := root.read(old); !ok {
		t.Error("an older admission configuration was removed: a kept manifest backup may name it")
	}
	if _, ok := root.read("/etc/kubernetes/tmp/kubeadm-backup-manifests-2026-01-01-00-00-00/kube-apiserver.yaml"); !ok {
		t.Error("the manifest backup of an earlier upgrade was removed")
	}
	if _, err := os.Stat(root.path("/etc/kubernetes/tmp/kubeadm-backup-manifests-2026-12-07-10-00-00")); err == nil {
		t.Error("kubeadm's empty backup folder of a run that changed nothing is still there")
	}
	if !strings.Contains(r.stdout, "control plane configured as the program's kubeadm configuration") {
		t.Errorf("the step does not say what it did:\n%s", r.stdout)
	}

	again := root.run(ReconfigureScript(reconfigureConfig), scriptCase{stubs: reconfigureStubs()})
	if again.code != 0 || len(again.called("sudo", "mv", AdmissionConfigPath()+".new", AdmissionConfigPath())) != 0 {
		t.Errorf("a second run rewrote the admission configuration:\n%s", again.describe())
	}
}

// TestAReconfigurationThatKubeadmRolledBackFails: when kubeadm cannot bring a static pod to the
// configuration (it rolls the component back), the step fails and stores the configuration of
// before again, which the next upgrade or join renders from. A cluster whose kubeadm-config names
// no release, or a master without the encryption configuration the API server would read, is
// refused before kubeadm runs at all.
func TestAReconfigurationThatKubeadmRolledBackFails(t *testing.T) {
	root := newRoot(t)
	before := "apiServer: {}\nkubernetesVersion: v1.35.4\n"
	root.stubState(t, "cluster-config", before)
	root.stubState(t, "rollback", "")
	r := root.run(ReconfigureScript(reconfigureConfig), scriptCase{stubs: reconfigureStubs(), files: reconfigureFiles(AdmissionConfigDir + "/config-000000000000.yaml")})
	if r.code == 0 || !strings.Contains(r.stderr, "the previous configuration is stored again") {
		t.Fatalf("a rolled-back reconfiguration passed:\n%s", r.describe())
	}
	if stored := readState(t, root, "cluster-config"); stored != strings.TrimSpace(before) {
		t.Errorf("after the rollback kubeadm-config holds %q, want the configuration of before %q", stored, before)
	}

	root = newRoot(t)
	root.stubState(t, "cluster-config", "apiServer: {}\n")
	r = root.run(ReconfigureScript(reconfigureConfig), scriptCase{stubs: reconfigureStubs(), files: reconfigureFiles(AdmissionConfigDir + "/config-000000000000.yaml")})
	if r.code == 0 || len(r.called("kubeadm")) != 0 || !strings.Contains(r.stderr, "names no release") {
		t.Fatalf("a kubeadm-config without a release was not refused before kubeadm ran:\n%s", r.describe())
	}

	root = newRoot(t)
	root.stubState(t, "cluster-config", before)
	r = root.run(ReconfigureScript(reconfigureConfig), scriptCase{stubs: reconfigureStubs()})
	if r.code == 0 || len(r.called("kubeadm")) != 0 || !strings.Contains(r.stderr, EncryptionConfigPath+" is missing") {
		t.Fatalf("a master without the encryption configuration was not refused before kubeadm ran:\n%s", r.describe())
	}
}

// TestTheAPIServerIsAudited: the API server's configuration names the audit policy under its
// content's name, a rotated log, and both folders; the reconfiguration installs the policy (so
// a running master gets it, and kubeadm restarts the API server for the new flag), whole.
func TestTheAPIServerIsAudited(t *testing.T) {
	cfg := prodConfig(t)
	conf := KubeadmConfig(cfg, KubeadmParams{PublicIP: "198.51.100.10", EndpointName: "k8s.wastecoach.example.com"})
	for _, want := range []string{
		"- name: audit-policy-file\n      value: \"" + AuditPolicyPath() + "\"",
		"- name: audit-log-path\n      value: \"" + AuditLogPath + "\"",
		"- name: audit-log-maxsize\n      value: \"100\"",
		"- name: audit-log-maxbackup\n      value: \"4\"",
		"- name: audit-policy\n      hostPath: " + AuditPolicyDir + "\n      mountPath: " + AuditPolicyDir + "\n      readOnly: true",
		"- name: audit-log\n      hostPath: " + AuditLogDir + "\n      mountPath: " + AuditLogDir + "\n      readOnly: false",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("the kubeadm configuration lacks %q", want)
		}
	}
	root := newRoot(t)
	root.stubState(t, "cluster-config", "apiServer: {}\nkubernetesVersion: v1.35.4\n")
	r := root.run(ReconfigureScript(reconfigureConfig), scriptCase{stubs: reconfigureStubs(), files: reconfigureFiles(AdmissionConfigDir + "/config-000000000000.yaml")})
	if r.code != 0 {
		t.Fatalf("the reconfiguration failed:\n%s", r.describe())
	}
	if got, ok := root.read(AuditPolicyPath()); !ok || got != AuditPolicy() {
		t.Errorf("%s is not the audit policy after the reconfiguration (present %v)", AuditPolicyPath(), ok)
	}
	for _, want := range []string{"omitStages: [RequestReceived]", "resources: [secrets, configmaps, serviceaccounts/token]", "- level: Request\n    verbs: [create, update, patch, delete, deletecollection]\n    resources:\n      - group: rbac.authorization.k8s.io"} {
		if !strings.Contains(AuditPolicy(), want) {
			t.Errorf("the audit policy lacks %q", want)
		}
	}
}
