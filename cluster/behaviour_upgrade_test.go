package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/versions"
)

// The upgrade steps run against a model of one node and its cluster, kept in $STUB_STATE:
//   - the control plane's static pod manifests are real files under /etc/kubernetes/manifests,
//     which the kubeadm stand-in's `upgrade apply vX` rewrites to vX;
//   - pkg-<name>: the installed version of kubeadm, kubelet and kubectl (dpkg-query reads it,
//     apt-get install writes it); running: the kubelet version the Node reports, which becomes the
//     kubelet package's on `systemctl restart kubelet`;
//   - server: the API server's version; nodes: every node's name and kubelet version;
//     unschedulable: the Node's spec.unschedulable; pods: "namespace/name True|False" lines;
//     madison: the versions the repository serves; fpr: the key's fingerprint.

// upgradeStubs answer as the node and its cluster would in the model above.
func upgradeStubs() map[string]string {
	return map[string]string{
		"dpkg-query": `cat "$STUB_STATE/pkg-${*: -1}" 2> /dev/null || exit 1`,
		"apt-get": `
case "$*" in
  "install "*)
    for a in "$@"; do
      case "$a" in *=*) p=${a%%=*}; v=${a#*=}; echo "$v" > "$STUB_STATE/pkg-$p" ;; esac
    done ;;
esac`,
		"apt-cache": `[ "$1" = madison ] || exit 1
for v in $(cat "$STUB_STATE/madison"); do echo "   $2 | $v | https://pkgs.k8s.io/core:/stable:/v1.36/deb  Packages"; done`,
		"dpkg": `exit 0`,
		"gpg": `
case "$*" in
  "--show-keys --with-colons /etc/apt/keyrings/kubernetes-apt-keyring.asc") [ -e "$STUB_STATE/node-fpr" ] || exec "$0" --show-keys --with-colons downloaded
    read -r fpr expires < "$STUB_STATE/node-fpr"
    echo "pub:-:4096:1:0000000000000000:1:${expires}::-:::scESC::::::23::0:"; echo "fpr:::::::::${fpr}:" ;;
  "--show-keys --with-colons "*) for f in $(cat "$STUB_STATE/fpr"); do echo "pub:-:4096:1:${f: -16}:1:::-:::scESC::::::23::0:"; echo "fpr:::::::::$f:"; done ;;
esac`,
		"curl": `
case "$*" in
  *Release.key*) [ -e "$STUB_STATE/key-unreachable" ] && exit 7
    out=""; prev=""; for a in "$@"; do [ "$prev" = -o ] && out=$a; prev=$a; done; echo key > "$out" ;;
  *healthz*) exit 0 ;;
  *) exit 1 ;;
esac`,
		"systemctl": `
case "$*" in
  "restart kubelet") cut -d- -f1 "$STUB_STATE/pkg-kubelet" > "$STUB_STATE/running"
    if [ -e "$STUB_STATE/restart-unreadies" ]; then p=$(cat "$STUB_STATE/restart-unreadies"); sed -i "s|^$p True$|$p False|" "$STUB_STATE/pods"; fi
    if [ -e "$STUB_STATE/restart-takes-api-down" ]; then touch "$STUB_STATE/api-down"; fi ;;
esac`,
		"kubeadm": `
case "$*" in
  "config images list --kubernetes-version "*) echo registry.k8s.io/kube-apiserver:$4; echo ` + upgradePause + ` ;;
  "upgrade plan "*) [ ! -e "$STUB_STATE/plan-refuses" ] ;;
  "upgrade apply "*)
    v=${3#v}
    for c in kube-apiserver kube-controller-manager kube-scheduler; do
      sed -i "s|\(image: .*/$c:v\).*|\1$v|" "/etc/kubernetes/manifests/$c.yaml"
    done
    echo "$v" > "$STUB_STATE/server"
    [ -e "$STUB_STATE/apply-stops-after-control-plane" ] && exit 1
    echo "$v" > "$STUB_STATE/cluster-config"
    [ -e "$STUB_STATE/kube-proxy" ] && echo "$v" > "$STUB_STATE/kube-proxy"
    exit 0 ;;
esac`,
		"kubectl": `
shift 2 # --kubeconfig FILE
case "$*" in
  "-n kube-system get configmap kubeadm-config -o jsonpath={.data.ClusterConfiguration}") printf 'apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nkubernetesVersion: v%s\n' "$(cat "$STUB_STATE/cluster-config")" ;;
  "-n kube-system get daemonset kube-proxy") [ -e "$STUB_STATE/kube-proxy" ] ;;
  "-n kube-system get daemonset kube-proxy -o jsonpath="*) echo "registry.k8s.io/kube-proxy:v$(cat "$STUB_STATE/kube-proxy")" ;;
  "get --raw /version") printf '{\n  "major": "1",\n  "gitVersion": "v%s",\n  "platform": "linux/amd64"\n}\n' "$(cat "$STUB_STATE/server")" ;;
  "get nodes -o jsonpath="*) cat "$STUB_STATE/nodes" ;;
  "get node "*" -o jsonpath={.status.nodeInfo.kubeletVersion}") echo "v$(cat "$STUB_STATE/running")" ;;
  "get node "*" -o jsonpath={.spec.unschedulable}") cat "$STUB_STATE/unschedulable" 2> /dev/null || true ;;
  "get node "*" -o jsonpath={.status.conditions[?(@.type==\"Ready\")].lastHeartbeatTime}") cat "$STUB_STATE/heartbeat" 2> /dev/null || date -u +%FT%TZ ;;
  "cordon "*) echo true > "$STUB_STATE/unschedulable" ;;
  "uncordon "*) rm -f "$STUB_STATE/unschedulable" ;;
  "wait "*) exit 0 ;;
  "get pods "*".status.conditions"*) [ -e "$STUB_STATE/api-down" ] && exit 1; cat "$STUB_STATE/pods" 2> /dev/null || true ;;
  "get pods "*) cut -d' ' -f1 "$STUB_STATE/pods" 2> /dev/null || true ;;
  *) echo "unexpected kubectl $*" >&2; exit 1 ;;
esac`,
	}
}

// upgradePause is the pause image the kubeadm stand-in names, and the runtime the model's node
// runs unless a case says otherwise: the pins.
const upgradePause = "registry.k8s.io/pause:3.10.1"

// upgradeModel is the state of the model before a run.
type upgradeModel struct {
	controlPlane string // the manifests' version; "" on a node without them
	kubelet      string // the installed and running kubelet (and kubeadm, kubectl)
	server       string
	nodes        string // "name vX" lines; defaults to this node at kubelet
	pods         string
	madison      string // the package versions the repository serves
	fingerprint  string // the primary keys in Release.key, space-separated
	containerd   string // the containerd and runc versions installed, and containerd's pause image
	runc, pause  string
}

func (m upgradeModel) seed(t *testing.T, root *scratchRoot) {
	t.Helper()
	state := func(name, content string) { root.stubState(t, name, content) }
	if m.controlPlane != "" {
		for _, c := range []string{"kube-apiserver", "kube-controller-manager", "kube-scheduler"} {
			root.write("/etc/kubernetes/manifests/"+c+".yaml", fmt.Sprintf("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - command:\n    - %s\n    image: registry.k8s.io/%s:v%s\n", c, c, m.controlPlane))
		}
	}
	for _, p := range []string{"kubeadm", "kubelet", "kubectl"} {
		state("pkg-"+p, m.kubelet+"-1.1\n")
	}
	state("running", m.kubelet+"\n")
	state("server", m.server+"\n")
	if m.controlPlane != "" {
		state("cluster-config", m.controlPlane+"\n")
		state("kube-proxy", m.controlPlane+"\n")
	}
	if m.nodes == "" {
		m.nodes = testNode + " v" + m.kubelet + "\n"
	}
	state("nodes", m.nodes)
	state("pods", m.pods)
	if m.madison == "" {
		m.madison = "1.35.4-1.1 1.36.1-1.1 1.36.2-1.1"
	}
	state("madison", m.madison)
	if m.containerd == "" {
		m.containerd, m.runc, m.pause = versions.Containerd.Version, versions.Runc.Version, upgradePause
	}
	for path, version := range map[string]string{
		"/usr/local/bin/containerd": "echo 'containerd github.com/containerd/containerd/v2 v" + m.containerd + " 0123abcd'",
		"/usr/local/sbin/runc":      "echo 'runc version " + m.runc + "'",
	} {
		root.write(path, "#!/bin/bash\n"+version+"\n")
		if err := os.Chmod(root.path(path), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	root.write("/etc/containerd/config.toml", "version = 3\n[plugins.'io.containerd.cri.v1.images'.pinned_images]\n  sandbox = '"+m.pause+"'\n")
	if m.fingerprint == "" {
		m.fingerprint = versions.KubernetesAptKeyFingerprint
	}
	state("fpr", m.fingerprint+"\n")
}

func upgradeScript(t *testing.T, version string, role config.Role) string {
	t.Helper()
	return UpgradeScript(configWith(t, version), role, testNode)
}

// changed lists the calls that change the node: apt, kubeadm upgrades, systemd, cordons.
func changed(r scriptResult) []string {
	var out []string
	for _, c := range r.calls {
		s := c.String()
		switch {
		case c[0] == "apt-get", c[0] == "apt-mark", c[0] == "dpkg",
			c[0] == "kubeadm" && len(c) > 2 && c[1] == "upgrade" && c[2] != "plan",
			c[0] == "systemctl" && len(c) > 1 && c[1] != "is-active",
			c[0] == "kubectl" && (strings.Contains(s, " cordon ") || strings.Contains(s, " uncordon ")):
			out = append(out, s)
		}
	}
	return out
}

// TestTheControlPlaneUpgradesInOrder: a minor bump on the master runs, in this order, the key
// refresh, kubeadm of the new release, `kubeadm upgrade plan` as a gate, `kubeadm upgrade apply`,
// then the cordon, the kubelet and kubectl packages, daemon-reload, the kubelet's restart and the
// uncordon; the manifests and the Node end at the new release, and a second run changes nothing.
func TestTheControlPlaneUpgradesInOrder(t *testing.T) {
	root := newRoot(t)
	upgradeModel{controlPlane: "1.35.4", kubelet: "1.35.4", server: "1.35.4",
		pods: "data/postgres-0 True\nkube-system/etcd-master True\n"}.seed(t, root)
	script := upgradeScript(t, "1.36.2", config.RoleMaster)
	r := root.run(script, scriptCase{stubs: upgradeStubs()})
	if r.code != 0 {
		t.Fatalf("upgrade of the control plane failed:\n%s", r.describe())
	}
	order := []struct {
		what string
		at   int
	}{
		{"the key download", r.index("curl", "-fsSL", "--retry", "5", "-o")},
		{"the key's fingerprint check", r.index("gpg", "--show-keys")},
		{"apt-get update", r.index("apt-get", "update")},
		{"kubeadm 1.36.2", r.index("apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold", "kubeadm=1.36.2-1.1")},
		{"kubeadm upgrade plan", r.index("kubeadm", "upgrade", "plan", "v1.36.2")},
		{"kubeadm upgrade apply", r.index("kubeadm", "upgrade", "apply", "v1.36.2", "--yes")},
		{"the cordon", r.index("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "cordon")},
		{"kubelet and kubectl 1.36.2", r.index("apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold", "kubelet=1.36.2-1.1", "kubectl=1.36.2-1.1")},
		{"daemon-reload", r.index("systemctl", "daemon-reload")},
		{"the kubelet's restart", r.index("systemctl", "restart", "kubelet")},
		{"the uncordon", r.index("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "uncordon")},
	}
	for i, o := range order {
		if o.at < 0 {
			t.Fatalf("%s did not run:\n%s", o.what, r.describe())
		}
		if i > 0 && o.at <= order[i-1].at {
			t.Errorf("%s ran before %s: %s", o.what, order[i-1].what, r.describe())
		}
	}
	manifest, _ := root.read("/etc/kubernetes/manifests/kube-scheduler.yaml")
	if !strings.Contains(manifest, "kube-scheduler:v1.36.2") {
		t.Errorf("the scheduler's manifest is not at v1.36.2 after the upgrade:\n%s", manifest)
	}
	if list, _ := root.read("/etc/apt/sources.list.d/kubernetes.list"); !strings.Contains(list, "/core:/stable:/v1.36/deb/") {
		t.Errorf("the apt source is not the v1.36 repository: %q", list)
	}
	if readState(t, root, "unschedulable") != "" {
		t.Error("the master stays cordoned after its upgrade")
	}
	// The stack records the release from the step's output (VersionOutput).
	if got := RunningVersion(r.stdout); got != "1.36.2" {
		t.Errorf("the step's output reports %q as the release the master runs, want 1.36.2:\n%s", got, r.stdout)
	}

	again := root.run(script, scriptCase{stubs: upgradeStubs()})
	if again.code != 0 || len(changed(again)) != 0 || strings.Contains(again.stdout, "upgrading") {
		t.Errorf("a second run on the upgraded master changed something (%v):\n%s", changed(again), again.describe())
	}
	if got := RunningVersion(again.stdout); got != "1.36.2" {
		t.Errorf("a run with nothing to do reports %q, want 1.36.2:\n%s", got, again.stdout)
	}
}

// TestTheGuardRefusesBeforeAnythingChanges: a skipped minor, a downgrade (of a minor or a patch),
// a node whose kubelet would fall outside the skew policy and a kubelet newer than the control
// plane stop the master's step with a message naming kubernetesVersion and both versions, before
// any package, repository or component is touched.
func TestTheGuardRefusesBeforeAnythingChanges(t *testing.T) {
	cases := []struct {
		name, target string
		model        upgradeModel
		want         []string
	}{
		{"a skipped minor", "1.35.4", upgradeModel{controlPlane: "1.33.7", kubelet: "1.33.7", server: "1.33.7"},
			[]string{"kubernetesVersion 1.35.4 skips a minor", "runs 1.33.7", "1.34 first"}},
		{"a minor downgrade", "1.34.1", upgradeModel{controlPlane: "1.35.4", kubelet: "1.35.4", server: "1.35.4"},
			[]string{"kubernetesVersion 1.34.1 is older than the control plane's 1.35.4", "does not downgrade"}},
		{"a patch downgrade", "1.35.3", upgradeModel{controlPlane: "1.35.4", kubelet: "1.35.4", server: "1.35.4"},
			[]string{"kubernetesVersion 1.35.3 is older than the control plane's 1.35.4"}},
		{"a minor-only downgrade", "1.34", upgradeModel{controlPlane: "1.35.4", kubelet: "1.35.4", server: "1.35.4"},
			[]string{"kubernetesVersion 1.34 is older than the control plane's 1.35.4"}},
		{"a kubelet beyond the skew", "1.36.2", upgradeModel{controlPlane: "1.35.4", kubelet: "1.35.4", server: "1.35.4",
			nodes: testNode + " v1.35.4\nip-10-0-1-9 v1.32.9\n"},
			[]string{"node ip-10-0-1-9 runs kubelet 1.32.9, more than 3 minors older than 1.36.2"}},
		{"a kubelet newer than the control plane", "1.35.4", upgradeModel{controlPlane: "1.35.4", kubelet: "1.35.4", server: "1.35.4",
			nodes: testNode + " v1.35.4\nip-10-0-1-9 v1.36.2\n"},
			[]string{"node ip-10-0-1-9 runs kubelet 1.36.2, of a newer minor than the control plane's 1.35.4"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := newRoot(t)
			c.model.seed(t, root)
			r := root.run(upgradeScript(t, c.target, config.RoleMaster), scriptCase{stubs: upgradeStubs()})
			if r.code == 0 {
				t.Fatalf("the guard let it through:\n%s", r.describe())
			}
			for _, w := range c.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("the refusal does not say %q:\n%s", w, r.stderr)
				}
			}
			if got := changed(r); len(got) != 0 || len(r.called("curl")) != 0 {
				t.Errorf("the refused step changed the node: %v\n%s", got, r.describe())
			}
		})
	}
}

// TestAnInterruptedUpgradeResumes: a master step cut short after `kubeadm upgrade apply` and its
// cordon (the manifests at the new release, the kubelet still the old one) applies nothing again,
// upgrades the kubelet and undoes its own cordon; a node an operator had cordoned stays cordoned.
func TestAnInterruptedUpgradeResumes(t *testing.T) {
	for _, operatorCordon := range []bool{false, true} {
		t.Run(fmt.Sprintf("operator cordon %v", operatorCordon), func(t *testing.T) {
			root := newRoot(t)
			upgradeModel{controlPlane: "1.36.2", kubelet: "1.35.4", server: "1.36.2"}.seed(t, root)
			root.stubState(t, "pkg-kubeadm", "1.36.2-1.1\n")
			root.stubState(t, "unschedulable", "true\n")
			if !operatorCordon {
				root.write("/var/lib/waste-coach/upgrade-cordoned", "2026-12-06T10:00:00Z\n")
			}
			r := root.run(upgradeScript(t, "1.36.2", config.RoleMaster), scriptCase{stubs: upgradeStubs()})
			if r.code != 0 {
				t.Fatalf("the resumed upgrade failed:\n%s", r.describe())
			}
			if len(r.called("kubeadm", "upgrade", "apply")) != 0 || len(r.called("apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold", "kubeadm=1.36.2-1.1")) != 0 {
				t.Errorf("the resumed step applied the control plane or installed kubeadm again:\n%s", r.describe())
			}
			if r.index("systemctl", "restart", "kubelet") < 0 || readState(t, root, "running") != "1.36.2" {
				t.Errorf("the resumed step did not bring the kubelet to 1.36.2:\n%s", r.describe())
			}
			cordoned := readState(t, root, "unschedulable") == "true"
			if cordoned != operatorCordon {
				t.Errorf("after the resumed step the node is cordoned=%v, want %v (only the step's own cordon is undone)", cordoned, operatorCordon)
			}
		})
	}
}

// TestANodeWaitsForTheControlPlane: a worker's step refuses to touch the node while the API
// server runs an older release, and once it runs the target brings the node there with `kubeadm
// upgrade node` before the kubelet.
func TestANodeWaitsForTheControlPlane(t *testing.T) {
	root := newRoot(t)
	upgradeModel{kubelet: "1.35.4", server: "1.35.4"}.seed(t, root)
	script := upgradeScript(t, "1.36.2", config.RoleStorage)
	r := root.run(script, scriptCase{stubs: upgradeStubs()})
	if r.code == 0 || !strings.Contains(r.stderr, "the API server runs 1.35.4, not 1.36.2") {
		t.Fatalf("the storage node's step went ahead of the control plane:\n%s", r.describe())
	}
	if got := changed(r); len(got) != 0 {
		t.Errorf("the refused step changed the node: %v", got)
	}

	root.stubState(t, "server", "1.36.2\n")
	r = root.run(script, scriptCase{stubs: upgradeStubs()})
	if r.code != 0 {
		t.Fatalf("the storage node's upgrade failed:\n%s", r.describe())
	}
	node := r.index("kubeadm", "upgrade", "node", "--kubeconfig", "/etc/kubernetes/kubelet.conf")
	if node < 0 || node < r.index("apt-get", "install", "-y", "-q", "-o", "DPkg::Lock::Timeout=300", "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold", "kubeadm=1.36.2-1.1") || node > r.index("systemctl", "restart", "kubelet") {
		t.Errorf("kubeadm upgrade node did not run between kubeadm's install and the kubelet's restart:\n%s", r.describe())
	}
	if len(r.called("kubeadm", "upgrade", "apply")) != 0 {
		t.Error("a worker's step ran kubeadm upgrade apply")
	}
	if readState(t, root, "running") != "1.36.2" || readState(t, root, "unschedulable") != "" {
		t.Errorf("the storage node does not end at kubelet 1.36.2, uncordoned:\n%s", r.describe())
	}
}

// TestTheHealthGateHoldsTheRollout: a pod Ready before the kubelet's restart and not after fails
// the step, naming the pod, and leaves the node cordoned, so that the next node does not start.
func TestTheHealthGateHoldsTheRollout(t *testing.T) {
	root := newRoot(t)
	upgradeModel{kubelet: "1.35.4", server: "1.36.2", pods: "data/rabbitmq-0 True\ndata/rabbitmq-1 True\n"}.seed(t, root)
	root.stubState(t, "restart-unreadies", "data/rabbitmq-1")
	r := root.run(upgradeScript(t, "1.36.2", config.RoleStorage), scriptCase{stubs: upgradeStubs()})
	if r.code == 0 || !strings.Contains(r.stderr, "data/rabbitmq-1") || strings.Contains(r.stderr, "data/rabbitmq-0") {
		t.Fatalf("the step did not stop on the one pod that stayed unready:\n%s", r.describe())
	}
	if readState(t, root, "unschedulable") != "true" {
		t.Error("the node was uncordoned though its pods did not come back")
	}
}

// TestTheKeyIsCheckedBeforeAnyPackage: a Release.key with another fingerprint, or with a second
// key beside the pinned one (apt would trust both), stops the step before apt reads the
// repository.
func TestTheKeyIsCheckedBeforeAnyPackage(t *testing.T) {
	other := "0000000000000000000000000000000000000000"
	for name, keys := range map[string]string{
		"another key":            other,
		"a second key beside it": versions.KubernetesAptKeyFingerprint + " " + other,
		"a second key before it": other + " " + versions.KubernetesAptKeyFingerprint,
	} {
		t.Run(name, func(t *testing.T) {
			root := newRoot(t)
			upgradeModel{controlPlane: "1.35.4", kubelet: "1.35.4", server: "1.35.4", fingerprint: keys}.seed(t, root)
			r := root.run(upgradeScript(t, "1.36.2", config.RoleMaster), scriptCase{stubs: upgradeStubs()})
			if r.code == 0 || !strings.Contains(r.stderr, "not the pinned "+versions.KubernetesAptKeyFingerprint+" alone") {
				t.Fatalf("the key file was not refused:\n%s", r.describe())
			}
			if got := changed(r); len(got) != 0 {
				t.Errorf("the step changed the node after refusing the key: %v", got)
			}
		})
	}
}

// TestAFailedHealthGateIsCheckedAgain: after the gate failed, the next run finds the kubelet at
// the target but checks the node's pods again before it uncordons the node and lets the next
// node start; once they are Ready it goes on.
func TestAFailedHealthGateIsCheckedAgain(t *testing.T) {
	root := newRoot(t)
	upgradeModel{kubelet: "1.35.4", server: "1.36.2", pods: "data/rabbitmq-0 True\ndata/rabbitmq-1 True\n"}.seed(t, root)
	root.stubState(t, "restart-unreadies", "data/rabbitmq-1")
	script := upgradeScript(t, "1.36.2", config.RoleStorage)
	if r := root.run(script, scriptCase{stubs: upgradeStubs()}); r.code == 0 {
		t.Fatalf("the gate passed with a pod unready:\n%s", r.describe())
	}
	again := root.run(script, scriptCase{stubs: upgradeStubs()})
	if again.code == 0 || !strings.Contains(again.stderr, "data/rabbitmq-1") || readState(t, root, "unschedulable") != "true" {
		t.Fatalf("the next run did not check the pods again and hold the node cordoned:\n%s", again.describe())
	}
	root.stubState(t, "pods", "data/rabbitmq-0 True\ndata/rabbitmq-1 True\n")
	last := root.run(script, scriptCase{stubs: upgradeStubs()})
	if last.code != 0 || readState(t, root, "unschedulable") != "" || len(last.called("systemctl", "restart", "kubelet")) != 0 {
		t.Errorf("once the pods were Ready again the step did not finish (uncordoned, no second restart):\n%s", last.describe())
	}
}

// TestAnApplyCutShortIsAppliedAgain: an apply that replaced the static pods but stopped before
// uploading the cluster's configuration and upgrading kube-proxy is run again, not skipped.
func TestAnApplyCutShortIsAppliedAgain(t *testing.T) {
	root := newRoot(t)
	upgradeModel{controlPlane: "1.35.4", kubelet: "1.35.4", server: "1.35.4"}.seed(t, root)
	root.stubState(t, "apply-stops-after-control-plane", "")
	script := upgradeScript(t, "1.36.2", config.RoleMaster)
	if r := root.run(script, scriptCase{stubs: upgradeStubs()}); r.code == 0 {
		t.Fatalf("the cut-short apply passed:\n%s", r.describe())
	}
	if err := os.Remove(filepath.Join(root.dir, "state", "apply-stops-after-control-plane")); err != nil {
		t.Fatal(err)
	}
	r := root.run(script, scriptCase{stubs: upgradeStubs()})
	if r.code != 0 || r.index("kubeadm", "upgrade", "apply", "v1.36.2", "--yes") < 0 {
		t.Fatalf("the next run did not apply again:\n%s", r.describe())
	}
	if readState(t, root, "cluster-config") != "1.36.2" || readState(t, root, "kube-proxy") != "1.36.2" {
		t.Error("kubeadm-config and kube-proxy are not at 1.36.2 after the second apply")
	}
}

// TestAMinorOnlyVersionTakesTheNewestPatch: kubernetesVersion "1.36" upgrades a 1.35 control
// plane to the newest 1.36 patch the repository serves, and leaves a 1.36 one at its patch.
func TestAMinorOnlyVersionTakesTheNewestPatch(t *testing.T) {
	root := newRoot(t)
	upgradeModel{controlPlane: "1.35.4", kubelet: "1.35.4", server: "1.35.4",
		madison: "1.36.1-1.1 1.36.10-1.1 1.36.2-1.1"}.seed(t, root)
	script := upgradeScript(t, "1.36", config.RoleMaster)
	r := root.run(script, scriptCase{stubs: upgradeStubs()})
	if r.code != 0 || r.index("kubeadm", "upgrade", "apply", "v1.36.10", "--yes") < 0 {
		t.Fatalf("kubernetesVersion 1.36 did not upgrade to 1.36.10, the newest patch served:\n%s", r.describe())
	}
	again := root.run(script, scriptCase{stubs: upgradeStubs()})
	if again.code != 0 || len(changed(again)) != 0 {
		t.Errorf("a 1.36.10 control plane with kubernetesVersion 1.36 was changed: %v\n%s", changed(again), again.describe())
	}
}

// readState reads a file of the model, "" when it does not exist.
func readState(t *testing.T, root *scratchRoot, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root.dir, "state", name))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestThePinnedRuntimeReachesARunningNode: with the node at the cluster's version but an older
// containerd, runc and pause image than the code pins, the step installs the verified release
// files, points containerd at kubeadm's pause image and restarts containerd, then the kubelet,
// in the node's window (cordoned, checked, uncordoned), without touching the Kubernetes packages;
// the next run changes nothing.
func TestThePinnedRuntimeReachesARunningNode(t *testing.T) {
	root := newRoot(t)
	upgradeModel{kubelet: "1.35.4", server: "1.35.4", containerd: "2.2.6", runc: "1.3.5", pause: "registry.k8s.io/pause:3.10"}.seed(t, root)
	stubs := runtimeStubs(t)
	script := upgradeScript(t, "1.35.4", config.RoleStorage)
	r := root.run(script, scriptCase{stubs: stubs})
	if r.code != 0 {
		t.Fatalf("the runtime upgrade failed:\n%s", r.describe())
	}
	if runc, _ := root.read("/usr/local/sbin/runc"); runc != genuineRunc {
		t.Errorf("runc is not the verified %s release: %q", versions.Runc.Version, runc)
	}
	if len(r.called("tar", "-C", "/usr/local", "-xzf")) != 1 {
		t.Errorf("the containerd release was not unpacked under /usr/local:\n%s", r.describe())
	}
	if conf, _ := root.read("/etc/containerd/config.toml"); !strings.Contains(conf, "sandbox = '"+upgradePause+"'") {
		t.Errorf("containerd's pause image is not kubeadm's %s:\n%s", upgradePause, conf)
	}
	containerd, kubelet := r.index("systemctl", "restart", "containerd"), r.index("systemctl", "restart", "kubelet")
	cordon := r.index("kubectl", "--kubeconfig", "/etc/kubernetes/kubelet.conf", "cordon")
	if cordon < 0 || containerd < cordon || kubelet < containerd {
		t.Errorf("not cordon, then containerd's restart, then the kubelet's:\n%s", r.describe())
	}
	if len(r.called("apt-get", "install")) != 0 || len(r.called("kubeadm", "upgrade")) != 0 {
		t.Errorf("a runtime change touched the Kubernetes packages:\n%s", r.describe())
	}
	if readState(t, root, "unschedulable") != "" {
		t.Error("the node stays cordoned")
	}
	// The unpacked containerd answers the pinned version now: a second run has nothing to do.
	again := root.run(script, scriptCase{stubs: stubs})
	if again.code != 0 || len(changed(again)) != 0 || len(again.called("curl", "-fsSL", "--retry", "5", "-o")) != 0 {
		t.Errorf("a second run changed the node again: %v\n%s", changed(again), again.describe())
	}
}

// TestTheNodesKeyIsFetchedAgainWhenItIsNotThePinOrExpires: a node whose cached pkgs.k8s.io key
// is not the pinned one (the pin changed since its first boot), or is the pinned one but expires
// within 60 days, fetches the key again, checked, even with nothing else to upgrade, and is not
// cordoned for it; a key good for longer is left alone.
func TestTheNodesKeyIsFetchedAgainWhenItIsNotThePinOrExpires(t *testing.T) {
	day := int64(24 * 3600)
	now := time.Now().Unix()
	for name, c := range map[string]struct {
		cached string
		fetch  bool
	}{
		"another key":                 {"0123456789ABCDEF0123456789ABCDEF01234567 " + fmt.Sprint(now+365*day), true},
		"the pin expiring in 20 days": {versions.KubernetesAptKeyFingerprint + " " + fmt.Sprint(now+20*day), true},
		"the pin expired":             {versions.KubernetesAptKeyFingerprint + " " + fmt.Sprint(now-day), true},
		"the pin good for 90 days":    {versions.KubernetesAptKeyFingerprint + " " + fmt.Sprint(now+90*day), false},
		"the pin without expiry":      {versions.KubernetesAptKeyFingerprint + " ", false},
	} {
		t.Run(name, func(t *testing.T) {
			root := newRoot(t)
			upgradeModel{kubelet: "1.35.4", server: "1.35.4"}.seed(t, root)
			root.stubState(t, "node-fpr", c.cached+"\n")
			r := root.run(upgradeScript(t, "1.35.4", config.RoleWorker1), scriptCase{stubs: upgradeStubs()})
			if r.code != 0 {
				t.Fatalf("the step failed:\n%s", r.describe())
			}
			fetched := r.index("curl", "-fsSL", "--retry", "5", "-o") >= 0
			if fetched != c.fetch {
				t.Fatalf("key fetched again: %v, want %v:\n%s", fetched, c.fetch, r.describe())
			}
			if key, ok := root.read("/etc/apt/keyrings/kubernetes-apt-keyring.asc"); c.fetch && (!ok || key != "key\n") {
				t.Errorf("the key downloaded is not in the node's keyring: %q", key)
			}
			if len(r.called("kubectl", "--kubeconfig", "/etc/kubernetes/kubelet.conf", "cordon")) != 0 || len(r.called("systemctl", "restart", "kubelet")) != 0 {
				t.Errorf("a key refresh cordoned the node or restarted its kubelet:\n%s", r.describe())
			}
		})
	}
}

// TestAKeyRefreshNeverStopsAnUp: when only the cached key is due (nothing to install) and
// pkgs.k8s.io cannot be reached, the step warns and succeeds, keeping the cached key; when a
// package is needed, the same failure stops the step before anything changes.
func TestAKeyRefreshNeverStopsAnUp(t *testing.T) {
	expiring := versions.KubernetesAptKeyFingerprint + " " + fmt.Sprint(time.Now().Unix()+10*24*3600)
	root := newRoot(t)
	upgradeModel{kubelet: "1.35.4", server: "1.35.4"}.seed(t, root)
	root.stubState(t, "node-fpr", expiring+"\n")
	root.stubState(t, "key-unreachable", "")
	r := root.run(upgradeScript(t, "1.35.4", config.RoleWorker1), scriptCase{stubs: upgradeStubs()})
	if r.code != 0 || !strings.Contains(r.stderr, "warning: no new pkgs.k8s.io key") {
		t.Fatalf("an unreachable key server failed a step that installs nothing:\n%s", r.describe())
	}
	root = newRoot(t)
	upgradeModel{kubelet: "1.35.4", server: "1.36.2"}.seed(t, root)
	root.stubState(t, "key-unreachable", "")
	r = root.run(upgradeScript(t, "1.36.2", config.RoleWorker1), scriptCase{stubs: upgradeStubs()})
	if r.code == 0 || len(changed(r)) != 0 {
		t.Errorf("an upgrade went on without the key, or changed the node first: %v\n%s", changed(r), r.describe())
	}
}

// runtimeStubs are upgradeStubs that also serve the verified release files (as node-prepare's
// tests do): curl, sha256sum and tar.
func runtimeStubs(t *testing.T) map[string]string {
	stubs := upgradeStubs()
	node := nodeCase(t, "config-default-2.x.toml").stubs
	stubs["curl"] = "case \"$*\" in *healthz*) exit 0 ;; esac\n" + nodeCurl(releaseKey, nodeDownloads())
	stubs["sha256sum"], stubs["tar"] = node["sha256sum"], node["tar"]
	return stubs
}

// TestAContainerdRestartIsOwedUntilDone: a step cut short after the new containerd was unpacked
// (the binary on disk at the pin, the old daemon still running), or while tar wrote it (the
// binary unreadable), unpacks it again and restarts containerd on the next run, though the files
// may say "pinned".
func TestAContainerdRestartIsOwedUntilDone(t *testing.T) {
	root := newRoot(t)
	upgradeModel{kubelet: "1.35.4", server: "1.35.4"}.seed(t, root)
	root.write("/var/lib/waste-coach/containerd-restart-owed", "2026-12-06T10:00:00Z\n")
	root.write("/usr/local/bin/containerd", "") // cut short by the tar: not even a script
	r := root.run(upgradeScript(t, "1.35.4", config.RoleStorage), scriptCase{stubs: runtimeStubs(t)})
	if r.code != 0 || r.index("systemctl", "restart", "containerd") < 0 || len(r.called("tar", "-C", "/usr/local", "-xzf")) != 1 {
		t.Fatalf("the owed containerd restart was not done:\n%s", r.describe())
	}
	if _, ok := root.read("/var/lib/waste-coach/containerd-restart-owed"); ok {
		t.Error("the mark stays after the restart")
	}
}

// TestAContainerdPinMoreThanAMinorAheadIsRefused: containerd is upgraded one minor at a time
// within a major, never back; a pin further ahead of the node's containerd, or behind it, stops
// the step before the node is cordoned or anything is downloaded or changed.
func TestAContainerdPinMoreThanAMinorAheadIsRefused(t *testing.T) {
	for _, running := range []string{"2.0.5", "1.7.27", "2.3.1"} {
		t.Run(running, func(t *testing.T) {
			root := newRoot(t)
			upgradeModel{kubelet: "1.35.4", server: "1.35.4", containerd: running, runc: versions.Runc.Version, pause: upgradePause}.seed(t, root)
			r := root.run(upgradeScript(t, "1.35.4", config.RoleStorage), scriptCase{stubs: upgradeStubs()})
			if r.code == 0 || !strings.Contains(r.stderr, "the node runs containerd "+running+", and the pin "+versions.Containerd.Version+" is neither its minor nor the next") {
				t.Fatalf("a containerd jump from %s to %s was not refused:\n%s", running, versions.Containerd.Version, r.describe())
			}
			if len(r.called("tar")) != 0 || len(r.called("systemctl", "restart", "containerd")) != 0 || len(changed(r)) != 0 {
				t.Errorf("the refused jump changed the node: %v\n%s", changed(r), r.describe())
			}
		})
	}
}

// TestARefreshOfAnotherKeyOnlyWarns: when only the cached key is due and pkgs.k8s.io serves
// another key, the refresh keeps the cached key and warns; the up is not stopped.
func TestARefreshOfAnotherKeyOnlyWarns(t *testing.T) {
	root := newRoot(t)
	upgradeModel{kubelet: "1.35.4", server: "1.35.4", fingerprint: "0000000000000000000000000000000000000000"}.seed(t, root)
	root.stubState(t, "node-fpr", versions.KubernetesAptKeyFingerprint+" "+fmt.Sprint(time.Now().Unix()+10*24*3600)+"\n")
	r := root.run(upgradeScript(t, "1.35.4", config.RoleWorker2), scriptCase{stubs: upgradeStubs()})
	if r.code != 0 || !strings.Contains(r.stderr, "warning: the pkgs.k8s.io key file holds 0000000000000000000000000000000000000000") {
		t.Fatalf("a refresh offered another key did not just warn:\n%s", r.describe())
	}
	if _, ok := root.read("/etc/apt/keyrings/kubernetes-apt-keyring.asc"); ok {
		t.Error("the refused key was installed")
	}
}

// TestTheHealthGateFailsWhenThePodsCannotBeListed: after the kubelet's restart the API server
// does not answer the pod listing; the step fails and the pods stay owed, instead of an empty
// listing passing for "nothing waiting".
func TestTheHealthGateFailsWhenThePodsCannotBeListed(t *testing.T) {
	root := newRoot(t)
	upgradeModel{kubelet: "1.35.4", server: "1.36.2", pods: "data/postgres-0 True\n"}.seed(t, root)
	root.stubState(t, "restart-takes-api-down", "")
	r := root.run(upgradeScript(t, "1.36.2", config.RoleStorage), scriptCase{stubs: upgradeStubs()})
	if r.code == 0 || !strings.Contains(r.stderr, "cannot list the node's pods") {
		t.Fatalf("the gate passed without a pod listing:\n%s", r.describe())
	}
	if owed, ok := root.read("/var/lib/waste-coach/upgrade-pending"); !ok || !strings.Contains(owed, "data/postgres-0") {
		t.Errorf("the owed checks lost the pods that were Ready before: %q", owed)
	}
	if readState(t, root, "unschedulable") != "true" {
		t.Error("the node was uncordoned without its checks")
	}
}

// TestTheChecksWaitForTheRestartedKubeletsReport: a Node status from before the kubelet's
// restart (the last heartbeat older than the restart) proves nothing about the new kubelet; the
// step waits for a newer one and fails, the node cordoned, when none comes.
func TestTheChecksWaitForTheRestartedKubeletsReport(t *testing.T) {
	root := newRoot(t)
	upgradeModel{kubelet: "1.35.4", server: "1.36.2"}.seed(t, root)
	root.stubState(t, "heartbeat", "2026-01-01T00:00:00Z\n")
	r := root.run(upgradeScript(t, "1.36.2", config.RoleWorker1), scriptCase{stubs: upgradeStubs()})
	if r.code == 0 || !strings.Contains(r.stderr, "has reported no node status") {
		t.Fatalf("a status from before the restart passed the checks:\n%s", r.describe())
	}
	if readState(t, root, "unschedulable") != "true" {
		t.Error("the node was uncordoned without a report from its new kubelet")
	}
}

// TestPackageStepsWaitForAnotherAptToFinish: Ubuntu's daily upgrades hold dpkg's lock right
// after a morning start; apt-mark and dpkg then fail at once, so the step runs them again until
// the lock is free, and still fails at once on any other error.
func TestPackageStepsWaitForAnotherAptToFinish(t *testing.T) {
	locked := func(times int, message string) map[string]string {
		stubs := upgradeStubs()
		stubs["apt-mark"] = fmt.Sprintf(`n=$(cat "$STUB_STATE/apt-mark-calls" 2> /dev/null || echo 0); echo $((n + 1)) > "$STUB_STATE/apt-mark-calls"
[ "$n" -ge %d ] || { echo %q >&2; exit 100; }`, times, message)
		return stubs
	}
	root := newRoot(t)
	upgradeModel{kubelet: "1.35.4", server: "1.36.2"}.seed(t, root)
	r := root.run(upgradeScript(t, "1.36.2", config.RoleWorker1), scriptCase{stubs: locked(3, "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 1234 (unattended-upgr)")})
	if r.code != 0 || readState(t, root, "running") != "1.36.2" {
		t.Fatalf("the step did not wait for the other apt and go on:\n%s", r.describe())
	}
	root = newRoot(t)
	upgradeModel{kubelet: "1.35.4", server: "1.36.2"}.seed(t, root)
	r = root.run(upgradeScript(t, "1.36.2", config.RoleWorker1), scriptCase{stubs: locked(3, "E: Unable to locate package kubeadm")})
	if r.code == 0 || len(r.called("apt-mark")) != 1 || !strings.Contains(r.stderr, "Unable to locate package") {
		t.Errorf("an apt error other than a lock was retried or hidden:\n%s", r.describe())
	}
}
