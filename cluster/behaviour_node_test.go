package cluster

// Behaviour tests of node preparation (EC2 user data), run in the harness.

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/versions"
)

const (
	testInstanceID = "i-0123456789abcdef0"
	testZone       = "ap-northeast-2a"
	testPause      = "registry.k8s.io/pause:3.10"
)

// ubuntuImage is what the node's Ubuntu image has before user data runs: the folders the script
// writes into, and a swap line in fstab.
var ubuntuImage = map[string]string{
	"/etc/fstab":                             "LABEL=cloudimg-rootfs / ext4 discard,commit=30,errors=remount-ro 0 1\n/swap.img none swap sw 0 0\n",
	"/etc/cloud/cloud.cfg.d/90_dpkg.cfg":     "datasource_list: [ Ec2, None ]\n",
	"/etc/modules-load.d/modules.conf":       "",
	"/etc/sysctl.d/99-sysctl.conf":           "",
	"/etc/apt/sources.list.d/ubuntu.sources": "Types: deb\n",
	"/etc/default/locale":                    "LANG=C.UTF-8\n",
}

// releaseKey is the pkgs.k8s.io Release.key the node downloads; the gpg stand-in reports the
// pinned fingerprint for it and another fingerprint for any other key.
const releaseKey = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n(isv:kubernetes OBS Project)\n"

// The release files the node downloads, as the stand-ins serve them: the genuine files are the
// ones whose sha256 the sha256sum stand-in accepts for the pins in versions/.
const (
	genuineContainerdTarball = "containerd release tarball, linux-amd64, as published\n"
	// genuineRunc is the runc release binary: here a script answering `runc --version`.
	genuineRunc        = "#!/bin/bash\necho 'runc version 1.3.6'\necho 'commit: v1.3.6-0-g8a3c3ea7'\necho 'spec: 1.2.1'\n"
	genuineEtcdTarball = "etcd release tarball, linux-amd64, as published\n"
	// genuineEtcdutl is the tarball's etcdutl: a script answering `etcdutl version`.
	genuineEtcdutl = "#!/bin/bash\necho 'etcdutl version: 3.6.6'\necho 'API version: 3.6'\n"
)

// nodeDownloads is what curl serves for each release URL.
func nodeDownloads() map[string]string {
	return map[string]string{
		versions.Containerd.URL: genuineContainerdTarball,
		versions.Runc.URL:       genuineRunc,
		versions.Etcd.URL:       genuineEtcdTarball,
	}
}

// nodeCurl answers IMDSv2, the Release.key and the release files (served, written to -o).
func nodeCurl(key string, downloads map[string]string) string {
	var files strings.Builder
	for _, u := range sortedKeys(downloads) {
		fmt.Fprintf(&files, "%s) printf '%%s' %s > \"${out}\" ;;\n", shellQuote([]string{u}), shellQuote([]string{downloads[u]}))
	}
	return `url=; out=/dev/stdout; prev=; for a in "$@"; do case "${a}" in http*) url=${a} ;; esac; [ "${prev}" = -o ] && out=${a}; prev=${a}; done
case "${url}" in
*/latest/api/token) echo IMDS-SESSION ;;
*/meta-data/*) [[ " $* " == *" X-aws-ec2-metadata-token: IMDS-SESSION "* ]] || { echo "401 without a session token" >&2; exit 22; }
  case "${url}" in
  */local-hostname) echo ` + testNode + ` ;;
  */instance-id) echo ` + testInstanceID + ` ;;
  */placement/availability-zone) echo ` + testZone + ` ;;
  *) exit 22 ;;
  esac ;;
*/Release.key) printf '%s' ` + shellQuote([]string{key}) + ` > "${out}" ;;
` + files.String() + `*) exit 6 ;;
esac`
}

// nodeCase answers like an EC2 instance in ap-northeast-2a with containerd's default config
// taken from fixture (testdata/containerd/), and the genuine release files.
func nodeCase(t *testing.T, fixture string) scriptCase {
	t.Helper()
	abs, err := filepath.Abs(filepath.Join("testdata", "containerd", fixture))
	if err != nil {
		t.Fatal(err)
	}
	// The containerd binary the release tarball holds: it answers --version and prints the
	// fixture as its default config, recording its calls like the stand-ins.
	containerdBinary := "#!/bin/bash\nprintf -v __args '\\x1f%s' \"$@\"; printf '%s%s\\x1e' containerd \"${__args}\" >> \"${STUB_CALLS}\"\n" +
		"case \"$*\" in\n--version) echo 'containerd github.com/containerd/containerd/v2 v" + versions.Containerd.Version + " 0123abcd' ;;\n" +
		"'config default') exec cat " + shellQuote([]string{abs}) + " ;;\n*) exit 1 ;;\nesac\n"
	return scriptCase{
		files: ubuntuImage,
		stubs: map[string]string{
			"curl": nodeCurl(releaseKey, nodeDownloads()),
			// --show-keys prints the key's colon listing (fingerprint in field 10 of "fpr");
			// --dearmor writes the key to -o.
			"gpg": `case " $* " in
*" --show-keys "*) if grep -qF '(isv:kubernetes OBS Project)' "${*: -1}"; then fpr=` + versions.KubernetesAptKeyFingerprint + `; else fpr=0123456789ABCDEF0123456789ABCDEF01234567; fi
  echo "pub:-:2048:1:${fpr:24}:1690000000:1767000000::-:::scSC::::::23::0:"; echo "fpr:::::::::${fpr}:" ;;
*" --dearmor "*) out=; while [ $# -gt 0 ]; do [ "$1" = -o ] && out=$2; shift; done; cat > "${out}" ;;
*) exit 2 ;;
esac`,
			// --check reads "sha256  file" lines: the genuine release files match their pins,
			// anything else is checked by the real sha256sum (and so fails).
			"sha256sum": `[ "$1" = --check ] || exec /usr/bin/sha256sum "$@"
read -r sum file
case "${sum}" in
` + versions.Containerd.SHA256 + `) cmp -s "${file}" <(printf '%s' ` + shellQuote([]string{genuineContainerdTarball}) + `) && exit 0 ;;
` + versions.Runc.SHA256 + `) cmp -s "${file}" <(printf '%s' ` + shellQuote([]string{genuineRunc}) + `) && exit 0 ;;
` + versions.Etcd.SHA256 + `) cmp -s "${file}" <(printf '%s' ` + shellQuote([]string{genuineEtcdTarball}) + `) && exit 0 ;;
esac
echo "${sum}  ${file}" | /usr/bin/sha256sum "$@"`,
			// tar unpacks the genuine containerd tarball's bin/ under -C, or the etcd tarball's
			// etcdutl (asked for by its path in the archive, one folder stripped).
			"tar": `dir=; file=; member=; while [ $# -gt 0 ]; do case "$1" in -C) dir=$2; shift ;; -x*f) file=$2; shift ;; etcd-v*/*) member=$1 ;; esac; shift; done
if cmp -s "${file}" <(printf '%s' ` + shellQuote([]string{genuineEtcdTarball}) + `); then
  [ "${member}" = etcd-v` + versions.Etcd.Version + `-linux-amd64/etcdutl ] || { echo "tar: ${member}: Not found in archive" >&2; exit 2; }
  printf '%s' ` + shellQuote([]string{genuineEtcdutl}) + ` > "${dir}/etcdutl"; chmod 0755 "${dir}/etcdutl"; exit 0
fi
cmp -s "${file}" <(printf '%s' ` + shellQuote([]string{genuineContainerdTarball}) + `) || { echo "tar: not a release tarball" >&2; exit 2; }
mkdir -p "${dir}/bin"
printf '%s' ` + shellQuote([]string{containerdBinary}) + ` > "${dir}/bin/containerd"
printf '#!/bin/bash\n' > "${dir}/bin/containerd-shim-runc-v2"
chmod 0755 "${dir}/bin/containerd" "${dir}/bin/containerd-shim-runc-v2"`,
			"kubeadm": `case "$*" in
"version -o short") echo v1.35.4 ;;
"config images list --kubernetes-version v1.35.4") printf '%s\n' registry.k8s.io/kube-apiserver:v1.35.4 registry.k8s.io/coredns/coredns:v1.12.1 ` + testPause + ` registry.k8s.io/etcd:3.6.5-0 ;;
*) exit 1 ;;
esac`,
		},
	}
}

func TestNodePreparationPreparesTheNodeForKubeadm(t *testing.T) {
	r := runScript(t, NodePrepareScript(prodConfig(t), config.RoleWorker2), nodeCase(t, "config-default-1.7.toml"))
	if r.code != 0 {
		t.Fatalf("node preparation failed:\n%s", r.describe())
	}
	files := map[string]string{
		// The kubelet registers under the private DNS name the CCM looks up, with the providerID
		// the load balancer controller registers targets by, and its workload label.
		"/etc/default/kubelet":                               "KUBELET_EXTRA_ARGS=--cloud-provider=external --provider-id=aws:///" + testZone + "/" + testInstanceID + " --node-labels=workload=async-workers\n",
		"/etc/cloud/cloud.cfg.d/99-waste-coach-hostname.cfg": "preserve_hostname: true\n",
		"/etc/modules-load.d/kubernetes.conf":                "overlay\nbr_netfilter\n",
		"/etc/sysctl.d/90-kubernetes.conf":                   "net.bridge.bridge-nf-call-iptables = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\nnet.ipv4.ip_forward = 1\n",
		"/etc/fstab":                                         "LABEL=cloudimg-rootfs / ext4 discard,commit=30,errors=remount-ro 0 1\n#/swap.img none swap sw 0 0\n",
		"/etc/apt/sources.list.d/kubernetes.list":            "deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] https://pkgs.k8s.io/core:/stable:/v1.35/deb/ /\n",
		"/etc/apt/keyrings/kubernetes-apt-keyring.gpg":       releaseKey,
		// logind allows the kubelet's graceful shutdown from its first start.
		LogindDropInPath: "[Login]\nInhibitDelayMaxSec=150\n",
	}
	for _, p := range sortedKeys(files) {
		if got, _ := r.root.read(p); got != files[p] {
			t.Errorf("%s is %q, want %q", p, got, files[p])
		}
	}
	for _, want := range []call{
		{"hostnamectl", "set-hostname", testNode},
		{"swapoff", "-a"},
		{"modprobe", "br_netfilter"},
		{"apt-get", "install", "-y", "-q", "--allow-downgrades", "kubelet=1.35.4-1.1", "kubeadm=1.35.4-1.1", "kubectl=1.35.4-1.1"},
		{"apt-mark", "hold", "kubelet", "kubeadm", "kubectl"},
		{"systemctl", "enable", "--now", "containerd"},
		{"systemctl", "enable", "kubelet"},
		{"systemctl", "kill", "-s", "HUP", "systemd-logind"},
	} {
		if len(r.called(want[0], want[1:]...)) == 0 {
			t.Errorf("node preparation never ran %q", want)
		}
	}
	// containerd and runc from the pinned releases, run by a unit of the script's own.
	if _, ok := r.root.read("/usr/local/bin/containerd"); !ok {
		t.Error("containerd was not unpacked to /usr/local/bin from the release tarball")
	}
	if runc, _ := r.root.read("/usr/local/sbin/runc"); runc != genuineRunc || r.root.mode("/usr/local/sbin/runc") != 0o755 {
		t.Errorf("/usr/local/sbin/runc is not the verified runc release, executable: %q", runc)
	}
	if unit, _ := r.root.read("/etc/systemd/system/containerd.service"); !strings.Contains(unit, "\nExecStart=/usr/local/bin/containerd\n") || !strings.Contains(unit, "\nDelegate=yes\n") {
		t.Errorf("the containerd unit does not start the release binary with delegated cgroups:\n%s", unit)
	}
	if reload, enable := r.index("systemctl", "daemon-reload"), r.index("systemctl", "enable", "--now", "containerd"); reload < 0 || reload > enable {
		t.Error("containerd was enabled before systemd re-read its unit (daemon-reload)")
	}
	if install, hold := r.index("apt-get", "install", "-y", "-q", "--allow-downgrades"), r.index("apt-mark", "hold"); hold < install {
		t.Error("the Kubernetes packages are held before they are installed: an unattended upgrade could move them")
	}
	if marker, ok := r.root.read(ReadyMarker); !ok || marker == "" {
		t.Errorf("the ready marker %s, which the deploy waits for, was not written", ReadyMarker)
	}
}

func TestNodePreparationSetsSystemdCgroupsAndThePauseImageForBothContainerdLines(t *testing.T) {
	for _, fixture := range []string{"config-default-1.7.toml", "config-default-2.x.toml"} {
		t.Run(fixture, func(t *testing.T) {
			r := runScript(t, NodePrepareScript(prodConfig(t), config.RoleStorage), nodeCase(t, fixture))
			if r.code != 0 {
				t.Fatalf("node preparation failed on containerd's %s:\n%s", fixture, r.describe())
			}
			conf, _ := r.root.read("/etc/containerd/config.toml")
			if !strings.Contains(conf, "SystemdCgroup = true") || strings.Contains(conf, "SystemdCgroup = false") {
				t.Errorf("containerd does not use systemd cgroups (the kubelet does): kubelet and containerd would fight over cgroups\n%s", conf)
			}
			if strings.Count(conf, testPause) != 1 || strings.Contains(conf, "pause:3.8") {
				t.Errorf("containerd's sandbox image is not kubeadm's %s:\n%s", testPause, conf)
			}
			if n := len(r.called("systemctl", "restart", "containerd")); n != 1 {
				t.Errorf("containerd restarted %d times after its config changed, want once", n)
			}
		})
	}
}

func TestNodePreparationRunTwiceChangesNothing(t *testing.T) {
	script := NodePrepareScript(prodConfig(t), config.RoleWorker1)
	root := newRoot(t)
	first := root.run(script, nodeCase(t, "config-default-1.7.toml"))
	if first.code != 0 {
		t.Fatalf("first run failed:\n%s", first.describe())
	}
	before := root.snapshot()
	second := root.run(script, nodeCase(t, "config-default-1.7.toml"))
	if second.code != 0 {
		t.Fatalf("second run failed: user data that is run again must succeed\n%s", second.describe())
	}
	after := root.snapshot()
	for _, u := range []string{versions.Containerd.URL, versions.Runc.URL} {
		for _, c := range second.called("curl") {
			if slices.Contains(c, u) {
				t.Errorf("the second run downloaded %s again although the pinned version is installed", u)
			}
		}
	}
	if len(second.called("tar")) > 0 {
		t.Error("the second run unpacked containerd over the running one")
	}
	delete(before, ReadyMarker)
	delete(after, ReadyMarker)
	for p, v := range after {
		if before[p] != v {
			t.Errorf("the second run changed %s:\nbefore %q\nafter  %q", p, before[p], v)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			t.Errorf("the second run removed %s", p)
		}
	}
	for _, c := range second.called("systemctl") {
		if len(c) > 1 && (c[1] == "restart" || c[1] == "stop" || c[1] == "reload") {
			t.Errorf("the second run disturbed a running service: %s", c)
		}
	}
}

func TestNodePreparationFailsWhenContainerdsConfigHasNeitherKey(t *testing.T) {
	root := newRoot(t)
	const previous = "# the config containerd runs with\nversion = 2\n"
	root.write("/etc/containerd/config.toml", previous)
	r := root.run(NodePrepareScript(prodConfig(t), config.RoleWorker1), nodeCase(t, "config-default-unknown.toml"))
	if r.code == 0 {
		t.Fatalf("node preparation succeeded although it could set neither SystemdCgroup nor the sandbox image\n%s", r.describe())
	}
	if conf, _ := root.read("/etc/containerd/config.toml"); conf != previous {
		t.Errorf("the running containerd config was replaced by one without systemd cgroups:\n%s", conf)
	}
	if len(r.called("systemctl", "restart", "containerd")) > 0 {
		t.Error("containerd was restarted with a config that lacks systemd cgroups")
	}
	if _, ok := root.read(ReadyMarker); ok {
		t.Error("the ready marker was written: the deploy would run kubeadm on a node that is not ready")
	}
}

// TestNodePreparationNamesTheContainerdKeyItCannotSet is the "fails loudly" half of the promise
// above: the deploy shows the end of cloud-init's log, which must say what went wrong.
func TestNodePreparationNamesTheContainerdKeyItCannotSet(t *testing.T) {
	r := runScript(t, NodePrepareScript(prodConfig(t), config.RoleWorker1), nodeCase(t, "config-default-unknown.toml"))
	if !strings.Contains(r.output(), "SystemdCgroup") {
		t.Errorf("the failure does not name the key it could not set:\n%s", r.describe())
	}
}

// etcdutl on the master comes from etcd's pinned release, verified, once; a download that does
// not match the pin is refused and nothing is installed.
func TestEtcdutlInstallsTheVerifiedReleaseOnce(t *testing.T) {
	root := newRoot(t)
	r := root.run(EtcdutlScript(), nodeCase(t, "config-default-2.x.toml"))
	if r.code != 0 {
		t.Fatalf("the etcdutl step failed:\n%s", r.describe())
	}
	if got, _ := root.read("/usr/local/bin/etcdutl"); got != genuineEtcdutl || root.mode("/usr/local/bin/etcdutl") != 0o755 {
		t.Errorf("/usr/local/bin/etcdutl is not the verified etcdutl of etcd %s, executable: %q", versions.Etcd.Version, got)
	}
	again := root.run(EtcdutlScript(), nodeCase(t, "config-default-2.x.toml"))
	if again.code != 0 || len(again.called("curl")) > 0 {
		t.Errorf("a second run downloaded etcd again although etcdutl %s is installed:\n%s", versions.Etcd.Version, again.describe())
	}

	c := nodeCase(t, "config-default-2.x.toml")
	downloads := nodeDownloads()
	downloads[versions.Etcd.URL] = "a file served in place of the release\n"
	c.stubs["curl"] = nodeCurl(releaseKey, downloads)
	bad := runScript(t, EtcdutlScript(), c)
	if bad.code == 0 || !strings.Contains(bad.stderr, versions.Etcd.URL+" does not match its pinned sha256") {
		t.Errorf("a download that does not match the pin was not refused by name:\n%s", bad.describe())
	}
	if _, ok := bad.root.read("/usr/local/bin/etcdutl"); ok || len(bad.called("tar")) > 0 {
		t.Error("the unverified etcd release was unpacked or installed")
	}
}

func TestNodePreparationRefusesARuntimeDownloadThatDoesNotMatchItsPin(t *testing.T) {
	for _, u := range []string{versions.Containerd.URL, versions.Runc.URL} {
		t.Run(u[strings.LastIndex(u, "/")+1:], func(t *testing.T) {
			c := nodeCase(t, "config-default-1.7.toml")
			downloads := nodeDownloads()
			downloads[u] = "a file served in place of the release\n"
			c.stubs["curl"] = nodeCurl(releaseKey, downloads)
			r := runScript(t, NodePrepareScript(prodConfig(t), config.RoleWorker1), c)
			if r.code == 0 {
				t.Fatalf("node preparation accepted %s although its sha256 is not the pinned one\n%s", u, r.describe())
			}
			if !strings.Contains(r.stderr, u+" does not match its pinned sha256") {
				t.Errorf("the failure does not name the refused download:\n%s", r.describe())
			}
			if u == versions.Containerd.URL && len(r.called("tar")) > 0 {
				t.Error("the unverified tarball was unpacked")
			}
			if _, ok := r.root.read("/usr/local/sbin/runc"); ok && u == versions.Runc.URL {
				t.Error("the unverified runc was installed")
			}
			if _, ok := r.root.read(ReadyMarker); ok {
				t.Error("the ready marker was written for a node without a verified runtime")
			}
		})
	}
}

func TestNodePreparationRefusesAnAptKeyWithAnotherFingerprint(t *testing.T) {
	c := nodeCase(t, "config-default-1.7.toml")
	c.stubs["curl"] = nodeCurl("-----BEGIN PGP PUBLIC KEY BLOCK-----\n(someone else)\n", nodeDownloads())
	r := runScript(t, NodePrepareScript(prodConfig(t), config.RoleWorker1), c)
	if r.code == 0 {
		t.Fatalf("node preparation trusted a pkgs.k8s.io key that is not the pinned one\n%s", r.describe())
	}
	if !strings.Contains(r.stderr, "is not the pinned "+versions.KubernetesAptKeyFingerprint) {
		t.Errorf("the refusal does not name the pinned fingerprint:\n%s", r.describe())
	}
	for _, p := range []string{"/etc/apt/keyrings/kubernetes-apt-keyring.gpg", "/etc/apt/sources.list.d/kubernetes.list"} {
		if _, ok := r.root.read(p); ok {
			t.Errorf("%s was written: apt would trust packages signed by the unknown key", p)
		}
	}
	if len(r.called("apt-get", "install", "-y", "-q", "--allow-downgrades")) > 0 {
		t.Error("the Kubernetes packages were installed from a repository signed by an unknown key")
	}
}
