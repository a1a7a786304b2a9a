package cluster

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/waste-coach/infra/config"
)

// kubeadmKubeletConfig is the KubeletConfiguration as kubeadm stores it in kube-system/kubelet-config
// on a cluster initialised before the pressure settings: keys sorted, lists at their key's
// indentation, the old reservations, only three hard thresholds, and the zero shutdown periods
// kubeadm always writes.
const kubeadmKubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
authentication:
  anonymous:
    enabled: false
  webhook:
    cacheTTL: 0s
    enabled: true
  x509:
    clientCAFile: /etc/kubernetes/pki/ca.crt
authorization:
  mode: Webhook
  webhook:
    cacheAuthorizedTTL: 0s
    cacheUnauthorizedTTL: 0s
cgroupDriver: systemd
clusterDNS:
- 10.96.0.10
clusterDomain: cluster.local
containerLogMaxFiles: 5
containerRuntimeEndpoint: ""
evictionHard:
  imagefs.available: 15%
  memory.available: 100Mi
  nodefs.available: 10%
evictionPressureTransitionPeriod: 0s
healthzBindAddress: 127.0.0.1
healthzPort: 10248
kind: KubeletConfiguration
kubeReserved:
  cpu: 100m
  memory: 256Mi
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
  verbosity: 0
memorySwap: {}
rotateCertificates: true
serverTLSBootstrap: false
shutdownGracePeriod: 0s
shutdownGracePeriodCriticalPods: 0s
staticPodPath: /etc/kubernetes/manifests
systemReserved:
  cpu: 100m
  memory: 256Mi
tlsCipherSuites:
- TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
volumeStatsAggPeriod: 0s
`

// kubeletConfigSample is the KubeletConfiguration the ConfigMap holds before the update: the
// sample above, or, with KUBEADM_KUBELET_CONFIG_FILE set, the data.kubelet that the real kubeadm of
// a version line prints in its dry run (tools/kubeadm/check.sh), in kubeadm's own layout.
func kubeletConfigSample(t *testing.T) string {
	t.Helper()
	f := os.Getenv("KUBEADM_KUBELET_CONFIG_FILE")
	if f == "" {
		return kubeadmKubeletConfig
	}
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatalf("KUBEADM_KUBELET_CONFIG_FILE: %v", err)
	}
	if !strings.Contains(string(b), "kind: KubeletConfiguration") {
		t.Fatalf("KUBEADM_KUBELET_CONFIG_FILE %s holds no KubeletConfiguration", f)
	}
	return string(b)
}

// configMapStubs answer kubectl as the API server would for kube-system/kubelet-config, whose
// data.kubelet lives in $STUB_STATE/kubelet: a get prints it, a merge patch of data.kubelet (the
// block scalar the script writes) replaces it. Each patch file is kept for the test to parse.
func configMapStubs() map[string]string {
	return map[string]string{"kubectl": `
case "$*" in
  *" get configmap kubelet-config -o jsonpath={.data.kubelet}") cat "$STUB_STATE/kubelet" ;;
  *" patch configmap kubelet-config --type merge --patch-file "*)
    f="${*: -1}"
    n=$(ls "$STUB_STATE" | grep -c '^patch' || true)
    cp "$f" "$STUB_STATE/patch$n.yaml"
    sed '1,2d; s/^    //' "$f" > "$STUB_STATE/kubelet" ;;
  *) echo "unexpected kubectl $*" >&2; exit 1 ;;
esac`}
}

func parseYAML(t *testing.T, what, text string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal([]byte(text), &m); err != nil {
		t.Fatalf("%s is not YAML: %v\n%s", what, err, text)
	}
	return m
}

func TestKubeletConfigMapKeepsKubeadmsFieldsAndSetsEveryPressureField(t *testing.T) {
	root := newRoot(t)
	state := filepath.Join(root.dir, "state")
	sample := kubeletConfigSample(t)
	if err := os.WriteFile(filepath.Join(state, "kubelet"), []byte(sample), 0o644); err != nil {
		t.Fatal(err)
	}
	r := root.run(KubeletConfigMapScript(), scriptCase{stubs: configMapStubs()})
	if r.code != 0 {
		t.Fatalf("kubelet-configmap failed:\n%s", r.describe())
	}
	patch, err := os.ReadFile(filepath.Join(state, "patch0.yaml"))
	if err != nil {
		t.Fatalf("no patch of the ConfigMap:\n%s", r.describe())
	}
	// The patch as the API server reads it: data.kubelet only.
	p := parseYAML(t, "the patch", string(patch))
	data, _ := p["data"].(map[string]any)
	if len(p) != 1 || len(data) != 1 {
		t.Fatalf("the patch must touch data.kubelet alone, got %v", p)
	}
	stored, _ := data["kubelet"].(string)
	before := parseYAML(t, "kubeadm's configuration", sample)
	after := parseYAML(t, "the patched configuration", stored)
	want := parseYAML(t, "the program's settings", kubeletSettings())
	owned := KubeletPressureKeys()
	for k, v := range before {
		if !slices.Contains(owned, k) && !reflect.DeepEqual(after[k], v) {
			t.Errorf("kubeadm's field %s changed from %v to %v", k, v, after[k])
		}
	}
	for _, k := range owned {
		if !reflect.DeepEqual(after[k], want[k]) {
			t.Errorf("pressure field %s is %v, want the program's %v", k, after[k], want[k])
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok && !slices.Contains(owned, k) {
			t.Errorf("the patch added %s, which the program does not own", k)
		}
	}
	// Each inode threshold is set: the old configuration had none, which turned them off.
	hard, _ := after["evictionHard"].(map[string]any)
	for _, signal := range []string{"memory.available", "nodefs.available", "nodefs.inodesFree", "imagefs.available", "imagefs.inodesFree"} {
		if hard[signal] == nil {
			t.Errorf("evictionHard lacks %s after the update", signal)
		}
	}

	// The same settings again: nothing to write.
	again := root.run(KubeletConfigMapScript(), scriptCase{stubs: configMapStubs()})
	if again.code != 0 {
		t.Fatalf("the rerun failed:\n%s", again.describe())
	}
	if n := len(again.called("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "-n", "kube-system", "patch")); n != 0 {
		t.Errorf("the rerun with the same settings patched the ConfigMap %d times, want none:\n%s", n, again.describe())
	}
	if !strings.Contains(again.stdout, "nothing to do") {
		t.Errorf("the rerun does not say it had nothing to do:\n%s", again.describe())
	}
}

func TestKubeletConfigMapRefusesAConfigMapWithoutAKubeletConfiguration(t *testing.T) {
	root := newRoot(t)
	if err := os.WriteFile(filepath.Join(root.dir, "state", "kubelet"), []byte("apiVersion: v1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := root.run(KubeletConfigMapScript(), scriptCase{stubs: configMapStubs()})
	if r.code == 0 || !strings.Contains(r.stderr, "no KubeletConfiguration") {
		t.Fatalf("want a refusal naming the missing KubeletConfiguration:\n%s", r.describe())
	}
	if len(r.called("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "-n", "kube-system", "patch")) != 0 {
		t.Error("the ConfigMap was patched anyway")
	}
}

// nodeRolloutCase is a node whose kubelet runs with the old file; kubeadm writes what
// $STUB_STATE/configmap holds, and kubectl's Ready wait answers with ready.
func nodeRolloutCase(ready bool) scriptCase {
	wait := `exit 0`
	if !ready {
		wait = `[ "$3" = wait ] && { echo "error: timed out waiting for the condition on nodes/$4" >&2; exit 1; }; exit 0`
	}
	return scriptCase{stubs: map[string]string{
		"kubeadm":    `[ "$*" = "upgrade node phase kubelet-config --kubeconfig ${KUBECONFIG_WANT}" ] || { echo "unexpected kubeadm $*" >&2; exit 1; }; cat "$STUB_STATE/configmap" > /var/lib/kubelet/config.yaml`,
		"kubectl":    wait,
		"systemctl":  `[ "$1" = restart ] && [ -e "$STUB_STATE/restart-fails" ] && exit 1; exit 0`,
		"journalctl": `echo "kubelet journal"`,
	}}
}

func setupNode(t *testing.T, root *scratchRoot, running, configMap string) {
	t.Helper()
	root.write("/var/lib/kubelet/config.yaml", running)
	if err := os.WriteFile(filepath.Join(root.dir, "state", "configmap"), []byte(configMap), 0o644); err != nil {
		t.Fatal(err)
	}
}

func restarts(r scriptResult) int { return len(r.called("systemctl", "restart", "kubelet")) }

func TestKubeletRolloutGoesNodeByNodeAndStopsOnANodeThatDoesNotComeBack(t *testing.T) {
	cfg := prodConfig(t)
	newConfig := kubeadmKubeletConfig + "# new settings\n"
	var done []config.Role
	for _, n := range cfg.Nodes {
		// Pulumi runs each node's step once the one before it has succeeded (cluster.go,
		// kubeletRollout): a failure leaves every later node alone.
		root := newRoot(t)
		setupNode(t, root, kubeadmKubeletConfig, newConfig)
		c := nodeRolloutCase(n.Role != config.RoleWorker2)
		kubeconfig := "/etc/kubernetes/kubelet.conf"
		if n.Role.ControlPlane() {
			kubeconfig = "/etc/kubernetes/admin.conf"
		}
		c.env = []string{"KUBECONFIG_WANT=" + kubeconfig}
		r := root.run(KubeletConfigScript(n.Role, testNode), c)
		if restarts(r) != 1 {
			t.Errorf("%s: %d kubelet restarts, want 1 for a changed configuration:\n%s", n.Role, restarts(r), r.describe())
		}
		if got, _ := root.read("/var/lib/kubelet/config.yaml"); got != newConfig {
			t.Errorf("%s: the kubelet's file is not the ConfigMap's", n.Role)
		}
		restart := r.index("systemctl", "restart", "kubelet")
		wait := r.index("kubectl", "--kubeconfig", kubeconfig, "wait", "--for=condition=Ready", "node/"+testNode)
		if wait < 0 || wait < restart {
			t.Errorf("%s: the step does not wait for the node to be Ready after the restart:\n%s", n.Role, r.describe())
		}
		if r.code != 0 {
			if n.Role != config.RoleWorker2 {
				t.Fatalf("%s failed:\n%s", n.Role, r.describe())
			}
			if !strings.Contains(r.stderr, "rollout stopped on "+testNode+" (worker-2): the node is not Ready") {
				t.Errorf("the failure does not say where and why the rollout stopped:\n%s", r.describe())
			}
			break
		}
		if n.Role == config.RoleWorker2 {
			t.Fatalf("worker-2 never came back, yet its step succeeded:\n%s", r.describe())
		}
		done = append(done, n.Role)
	}
	if want := []config.Role{config.RoleMaster, config.RoleWorker1}; !slices.Equal(done, want) {
		t.Errorf("rolled out to %v, want %v before the stop", done, want)
	}
}

func TestKubeletRolloutRerunChangesNothing(t *testing.T) {
	root := newRoot(t)
	setupNode(t, root, kubeadmKubeletConfig, kubeadmKubeletConfig+"# new\n")
	c := nodeRolloutCase(true)
	c.env = []string{"KUBECONFIG_WANT=/etc/kubernetes/kubelet.conf"}
	first := root.run(KubeletConfigScript(config.RoleWorker1, testNode), c)
	if first.code != 0 || restarts(first) != 1 {
		t.Fatalf("the first run did not restart the kubelet once:\n%s", first.describe())
	}
	again := root.run(KubeletConfigScript(config.RoleWorker1, testNode), c)
	if again.code != 0 {
		t.Fatalf("the rerun failed:\n%s", again.describe())
	}
	if restarts(again) != 0 {
		t.Errorf("the rerun with the same configuration restarted the kubelet:\n%s", again.describe())
	}
}

func TestKubeletRolloutLeavesANewNodesKubeletAlone(t *testing.T) {
	// A node that joined with the ConfigMap's settings: kubeadm writes the same file.
	root := newRoot(t)
	setupNode(t, root, kubeadmKubeletConfig, kubeadmKubeletConfig)
	c := nodeRolloutCase(true)
	c.env = []string{"KUBECONFIG_WANT=/etc/kubernetes/admin.conf"}
	r := root.run(KubeletConfigScript(config.RoleMaster, testNode), c)
	if r.code != 0 || restarts(r) != 0 {
		t.Fatalf("a kubelet already on the ConfigMap's settings was restarted, or the step failed:\n%s", r.describe())
	}
}

func TestKubeletRolloutCutShortRestartsOnTheRerun(t *testing.T) {
	// kubeadm wrote the new file, then the restart failed: the rerun finds the file unchanged
	// by kubeadm, and must restart all the same.
	root := newRoot(t)
	setupNode(t, root, kubeadmKubeletConfig, kubeadmKubeletConfig+"# new\n")
	state := filepath.Join(root.dir, "state", "restart-fails")
	if err := os.WriteFile(state, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c := nodeRolloutCase(true)
	c.env = []string{"KUBECONFIG_WANT=/etc/kubernetes/kubelet.conf"}
	if r := root.run(KubeletConfigScript(config.RoleStorage, testNode), c); r.code == 0 {
		t.Fatalf("a failed restart passed:\n%s", r.describe())
	}
	if err := os.Remove(state); err != nil {
		t.Fatal(err)
	}
	r := root.run(KubeletConfigScript(config.RoleStorage, testNode), c)
	if r.code != 0 || restarts(r) != 1 {
		t.Fatalf("the rerun after a cut-short run did not restart the kubelet:\n%s", r.describe())
	}
}

func TestKubeletConfigHashFollowsTheSettingsOnly(t *testing.T) {
	if len(KubeletConfigHash()) != 64 {
		t.Fatalf("hash %q is no sha256", KubeletConfigHash())
	}
	want := []string{"systemReserved", "kubeReserved", "evictionHard", "evictionSoft", "evictionSoftGracePeriod",
		"evictionMaxPodGracePeriod", "evictionMinimumReclaim", "imageGCHighThresholdPercent", "imageGCLowThresholdPercent",
		"containerLogMaxSize", "containerLogMaxFiles", "shutdownGracePeriod", "shutdownGracePeriodCriticalPods"}
	if got := KubeletPressureKeys(); !slices.Equal(got, want) {
		t.Errorf("owned keys %v, want %v", got, want)
	}
	if strings.Contains(kubeletSettings(), "#") {
		t.Error("the settings the rollout writes still carry comments")
	}
}

// kubeadm135Stub writes the new configuration as kubeadm 1.35 does on a node without
// instance-config.yaml: config.yaml, a new instance-config.yaml and a rewritten kubeadm-flags.env.
const kubeadm135Stub = `cat "$STUB_STATE/configmap" > /var/lib/kubelet/config.yaml
echo "new instance config" > /var/lib/kubelet/instance-config.yaml
echo 'KUBELET_KUBEADM_ARGS="--new"' > /var/lib/kubelet/kubeadm-flags.env`

func TestKubeletRolloutRestoresTheFilesOfAKubeletThatDoesNotComeBack(t *testing.T) {
	const flags = `KUBELET_KUBEADM_ARGS="--old"` + "\n"
	for _, recovers := range []bool{true, false} {
		root := newRoot(t)
		setupNode(t, root, kubeadmKubeletConfig, kubeadmKubeletConfig+"# new\n")
		root.write("/var/lib/kubelet/kubeadm-flags.env", flags)
		c := nodeRolloutCase(true)
		c.stubs["kubeadm"] = kubeadm135Stub
		// The kubelet answers on the old files only (or, when it does not recover, not at all).
		c.stubs["curl"] = `grep -q '# new' /var/lib/kubelet/config.yaml && exit 7; exit 0`
		if !recovers {
			c.stubs["curl"] = `exit 7`
		}
		c.stubs["journalctl"] = `echo "E1206 kubelet: failed to load kubelet config file"`
		r := root.run(KubeletConfigScript(config.RoleWorker1, testNode), c)
		if r.code == 0 {
			t.Fatalf("a kubelet that never answered passed its step:\n%s", r.describe())
		}
		if got, _ := root.read("/var/lib/kubelet/config.yaml"); got != kubeadmKubeletConfig {
			t.Errorf("config.yaml was not restored:\n%s", r.describe())
		}
		if got, _ := root.read("/var/lib/kubelet/kubeadm-flags.env"); got != flags {
			t.Errorf("kubeadm-flags.env was not restored, it holds %q", got)
		}
		if got, ok := root.read("/var/lib/kubelet/instance-config.yaml"); ok && got != "" {
			t.Errorf("instance-config.yaml, which kubeadm created, is still there")
		}
		if n := restarts(r); n != 2 {
			t.Errorf("%d kubelet restarts, want 2 (on the new files, then on the restored ones):\n%s", n, r.describe())
		}
		wantProbes := 2 * KubeletHealthSeconds / 5
		if recovers {
			wantProbes = KubeletHealthSeconds/5 + 1
		}
		if n := len(r.called("curl")); n != wantProbes {
			t.Errorf("%d health probes, want %d (%d s on the new files, then the restored ones)", n, wantProbes, KubeletHealthSeconds)
		}
		for _, want := range []string{"rollout stopped on " + testNode + " (worker-1)", "within 60 s", "failed to load kubelet config file"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("the failure does not say %q:\n%s", want, r.describe())
			}
		}
		wantOutcome := "restored and it runs again"
		if !recovers {
			wantOutcome = "does not answer either"
		}
		if !strings.Contains(r.stderr, wantOutcome) {
			t.Errorf("the failure does not say %q:\n%s", wantOutcome, r.describe())
		}
		if len(r.called("kubectl", "--kubeconfig", "/etc/kubernetes/kubelet.conf", "wait")) != 0 {
			t.Errorf("the step waited for Ready after the rollback instead of failing:\n%s", r.describe())
		}
	}
}

func TestKubeletRolloutKeepsNoBackupOnceDone(t *testing.T) {
	root := newRoot(t)
	setupNode(t, root, kubeadmKubeletConfig, kubeadmKubeletConfig+"# new\n")
	c := nodeRolloutCase(true)
	c.stubs["kubeadm"] = kubeadm135Stub
	if r := root.run(KubeletConfigScript(config.RoleStorage, testNode), c); r.code != 0 {
		t.Fatalf("the rollout failed:\n%s", r.describe())
	}
	if _, ok := root.read("/var/lib/waste-coach/kubelet-config.backup/config.yaml"); ok {
		t.Error("the backup outlived a rollout that succeeded")
	}
}

func TestKubeletRolloutFailsNamingThePodsTheRestartedKubeletRefused(t *testing.T) {
	root := newRoot(t)
	setupNode(t, root, kubeadmKubeletConfig, kubeadmKubeletConfig+"# new\n")
	c := nodeRolloutCase(true)
	// Before the restart one pod was already refused long ago; after it, two more are.
	c.stubs["kubectl"] = `[ "$3" = get ] || exit 0
echo "ops/old-job OutOfmemory"
echo "app/done Completed"
if grep -q restarted "$STUB_STATE/log" 2>/dev/null; then
  echo "app/api-1 OutOfephemeral-storage"
  echo "app/worker-2 OutOfcpu"
fi`
	c.stubs["systemctl"] = `[ "$1" = restart ] && echo restarted >> "$STUB_STATE/log"; exit 0`
	c.env = []string{"KUBECONFIG_WANT=/etc/kubernetes/kubelet.conf"}
	r := root.run(KubeletConfigScript(config.RoleWorker2, testNode), c)
	if r.code == 0 {
		t.Fatalf("pods refused by the restarted kubelet passed the step:\n%s", r.describe())
	}
	for _, want := range []string{"app/api-1 (OutOfephemeral-storage)", "app/worker-2 (OutOfcpu)"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the failure does not name %s:\n%s", want, r.describe())
		}
	}
	for _, old := range []string{"ops/old-job", "app/done"} {
		if strings.Contains(r.stderr, old) {
			t.Errorf("the failure names %s, which was not refused by this restart:\n%s", old, r.describe())
		}
	}
	get := r.called("kubectl", "--kubeconfig", "/etc/kubernetes/kubelet.conf", "get", "pods", "--all-namespaces", "--field-selector", "spec.nodeName="+testNode+",status.phase=Failed")
	if len(get) != 2 {
		t.Errorf("%d listings of the node's failed pods, want one before and one after the restart:\n%s", len(get), r.describe())
	}
}

// logindModel answers systemctl and systemd-inhibit as logind and the kubelet's shutdown manager
// (v1.35, pkg/kubelet/nodeshutdown) behave: a HUP to logind re-reads its drop-ins from /etc and
// /run in file-name order (the same name in /etc wins), the last InhibitDelayMaxSec counting
// (default 5); a kubelet start finding less than its grace period writes its own 99-kubelet.conf
// and reloads logind, and takes its delay lock only if the delay is then allowed.
func logindModel(ready bool) scriptCase {
	c := nodeRolloutCase(ready)
	c.stubs["systemctl"] = `
reload_logind() {
  local delay=5 name f v
  for name in $(ls /etc/systemd/logind.conf.d /run/systemd/logind.conf.d 2> /dev/null | grep '\.conf$' | LC_ALL=C sort -u); do
    f=/etc/systemd/logind.conf.d/${name}
    [ -e "${f}" ] || f=/run/systemd/logind.conf.d/${name}
    v=$(sed -n 's/^InhibitDelayMaxSec=//p' "${f}" | tail -n 1)
    [ -n "${v}" ] && delay=${v}
  done
  echo "${delay}" > "$STUB_STATE/logind-delay"
}
case "$*" in
  "kill -s HUP systemd-logind") reload_logind ;;
  "restart kubelet")
    rm -f "$STUB_STATE/kubelet-lock"
    if [ "$(cat "$STUB_STATE/logind-delay" 2> /dev/null || echo 5)" -lt 150 ]; then
      mkdir -p /etc/systemd/logind.conf.d
      printf '# Kubelet logind override\n[Login]\nInhibitDelayMaxSec=150\n' > /etc/systemd/logind.conf.d/99-kubelet.conf
      reload_logind
    fi
    if [ "$(cat "$STUB_STATE/logind-delay")" -ge 150 ]; then touch "$STUB_STATE/kubelet-lock"; fi ;;
esac
exit 0`
	c.stubs["systemd-inhibit"] = `[ "$*" = "--list --no-pager --no-legend" ] || { echo "unexpected systemd-inhibit $*" >&2; exit 1; }
echo "Unattended Upgrades Shutdown 0 root 811 unattended-upgr shutdown Stop ongoing upgrades or perform upgrades before shutdown delay"
[ -e "$STUB_STATE/kubelet-lock" ] && echo "kubelet 0 root 4581 kubelet shutdown Kubelet needs time to handle node shutdown delay"
exit 0`
	c.env = []string{"KUBECONFIG_WANT=/etc/kubernetes/kubelet.conf"}
	return c
}

// unattendedUpgradesDropIn is what Ubuntu 24.04's unattended-upgrades ships (in /usr/lib, which
// sorts by name with /etc and /run; the harness overlays only /run of the two).
const unattendedUpgradesDropIn = "/run/systemd/logind.conf.d/unattended-upgrades-logind-maxdelay.conf"

// A running node of a stack deployed before graceful shutdown: its kubelet holds no lock, and
// unattended-upgrades' drop-in would beat the kubelet's own override. The rollout must write a
// drop-in that sorts last, have logind reload it before the kubelet restarts, and see the lock.
func TestKubeletRolloutGivesTheKubeletItsShutdownLock(t *testing.T) {
	root := newRoot(t)
	setupNode(t, root, kubeadmKubeletConfig, kubeadmKubeletConfig+"# new settings\n")
	root.write(unattendedUpgradesDropIn, "[Login]\n# delay\nInhibitDelayMaxSec=30\n")
	r := root.run(KubeletConfigScript(config.RoleWorker1, testNode), logindModel(true))
	if r.code != 0 {
		t.Fatalf("the rollout failed:\n%s", r.describe())
	}
	if got, _ := root.read(LogindDropInPath); got != LogindDropIn() {
		t.Errorf("%s is %q, want %q", LogindDropInPath, got, LogindDropIn())
	}
	hup, restart := r.index("systemctl", "kill", "-s", "HUP", "systemd-logind"), r.index("systemctl", "restart", "kubelet")
	if hup < 0 || restart < 0 || hup > restart {
		t.Errorf("logind was not reloaded before the kubelet restarted (reload at %d, restart at %d):\n%s", hup, restart, r.describe())
	}
	if _, err := os.Stat(filepath.Join(root.dir, "state", "kubelet-lock")); err != nil {
		t.Errorf("the kubelet holds no shutdown lock after the rollout, yet the step passed:\n%s", r.describe())
	}

	// Without the program's drop-in, the same node keeps 30 s: the kubelet's own override loses
	// to unattended-upgrades', and the step must say so instead of passing.
	bare := newRoot(t)
	setupNode(t, bare, kubeadmKubeletConfig, kubeadmKubeletConfig+"# new settings\n")
	bare.write(unattendedUpgradesDropIn, "[Login]\n# delay\nInhibitDelayMaxSec=30\n")
	// A drop-in that sorts after the program's and allows less, as another package could ship.
	bare.write("/run/systemd/logind.conf.d/zzz-other-package.conf", "[Login]\nInhibitDelayMaxSec=30\n")
	failed := bare.run(KubeletConfigScript(config.RoleWorker1, testNode), logindModel(true))
	if failed.code == 0 || !strings.Contains(failed.stderr, "holds no delay lock on shutdown") {
		t.Errorf("a kubelet left without its shutdown lock passed the rollout:\n%s", failed.describe())
	}
}

// A kubelet already on the ConfigMap's settings but without its lock (it started before logind
// allowed the delay) is restarted once; once it holds the lock, a rerun restarts nothing.
func TestKubeletRolloutRestartsAKubeletWithoutItsShutdownLockOnce(t *testing.T) {
	root := newRoot(t)
	setupNode(t, root, kubeadmKubeletConfig, kubeadmKubeletConfig)
	root.write(unattendedUpgradesDropIn, "[Login]\n# delay\nInhibitDelayMaxSec=30\n")
	first := root.run(KubeletConfigScript(config.RoleStorage, testNode), logindModel(true))
	if first.code != 0 || restarts(first) != 1 {
		t.Fatalf("a kubelet without its shutdown lock was not restarted once:\n%s", first.describe())
	}
	again := root.run(KubeletConfigScript(config.RoleStorage, testNode), logindModel(true))
	if again.code != 0 || restarts(again) != 0 {
		t.Errorf("a kubelet holding its lock on the ConfigMap's settings was restarted again, or the rerun failed:\n%s", again.describe())
	}
	if hups := again.called("systemctl", "kill", "-s", "HUP", "systemd-logind"); len(hups) != 0 {
		t.Errorf("the rerun reloaded logind although its drop-in was already in place:\n%s", again.describe())
	}
}
