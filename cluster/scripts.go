package cluster

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/internal/s3sh"
	"github.com/waste-coach/infra/versions"
)

//go:embed scripts/*.sh.tmpl
var scriptFS embed.FS

var scripts = template.Must(template.New("").Option("missingkey=error").ParseFS(scriptFS, "scripts/*.sh.tmpl"))

// ReadyMarker is written by the node preparation script when it has finished.
const ReadyMarker = "/var/lib/waste-coach/node-ready"

// Cluster networking of ARCHITECTURE.md section 2.
const (
	PodCIDR     = "192.168.0.0/16"
	ServiceCIDR = "10.96.0.0/12"
)

// JoinTokenTTL bounds how long a join token lives: long enough for one join, never reusable later.
const JoinTokenTTL = "15m"

func render(name string, data any) string {
	var b bytes.Buffer
	if err := scripts.ExecuteTemplate(&b, name+".sh.tmpl", data); err != nil {
		// The templates are embedded and their data typed: a failure is a programming error that
		// every test run would catch.
		panic(fmt.Sprintf("render %s: %v", name, err))
	}
	return b.String()
}

// RoleLabel is the node-role label of a role, set by the control plane after the join.
func RoleLabel(role config.Role) string {
	switch role {
	case config.RoleMaster:
		return "node-role.kubernetes.io/control-plane"
	case config.RoleStorage:
		return "node-role.kubernetes.io/storage"
	}
	return "node-role.kubernetes.io/worker"
}

// WorkloadLabel is the workload=... label of a role ("" for the control plane).
func WorkloadLabel(role config.Role) string {
	if w := role.Workload(); w != "" {
		return config.WorkloadLabel + "=" + w
	}
	return ""
}

// PackagePin returns the apt version suffix for the Kubernetes packages: "=1.35.4-1.1" when a
// patch is configured (pkgs.k8s.io packages carry the revision -1.1), "" for the newest patch of
// the minor's repository.
func PackagePin(v config.KubeVersion) string {
	if !v.HasPatch {
		return ""
	}
	return fmt.Sprintf("=%s-1.1", v)
}

// NodePrepareScript is a node's first-boot preparation for kubeadm, run by its bootstrap user
// data.
func NodePrepareScript(cfg *config.Config, role config.Role) string {
	return render("node-prepare", struct {
		Role                   config.Role
		KubeVersion, KubeMinor string
		PackagePin, NodeLabels string
		ReadyMarker            string
		Containerd, Runc       versions.Artifact
		AptKeyFingerprint      string
		// LogindDropIn is the drop-in's text as a printf format (newlines written \n).
		LogindDropInPath, LogindDropIn string
	}{role, cfg.Kubernetes.String(), cfg.Kubernetes.MinorString(), PackagePin(cfg.Kubernetes), WorkloadLabel(role), ReadyMarker,
		versions.Containerd, versions.Runc, versions.KubernetesAptKeyFingerprint, LogindDropInPath, strings.ReplaceAll(LogindDropIn(), "\n", `\n`)})
}

// EtcdutlScript installs etcdutl of the pinned etcd release on the master, verified against its
// sha256: the offline tool that checks and restores snapshots while no etcd runs.
func EtcdutlScript() string {
	return render("etcdutl", struct{ Etcd versions.Artifact }{versions.Etcd})
}

// WaitSSHScript runs locally and waits for a node's SSH port (NODE_HOST; NODE_ID names the
// instance in the failure message) for up to fifteen minutes. It needs only bash: no GNU
// timeout, which macOS lacks.
func WaitSSHScript() string {
	const total, probe, pause = 900, 5, 10
	return render("wait-ssh", struct{ TotalSeconds, ProbeSeconds, PauseSeconds int }{total, probe, pause})
}

// WaitNodeScript waits for a node's first-boot preparation to finish.
func WaitNodeScript() string {
	return render("wait-node", struct{ ReadyMarker string }{ReadyMarker})
}

// Snapshots is where a new master looks for its cluster's etcd snapshots.
type Snapshots struct {
	// Bucket and Region are the backups bucket's; Prefix is the cluster's (EtcdSnapshotPrefix).
	Bucket, Region, Prefix string
	// Days is how many days back it looks: the backups' retention.
	Days int
}

// EtcdRestoreMarker is where kubeadm-init notes the snapshot it restored etcd from: a second run
// after a failed `kubeadm init` goes on with that data instead of refusing it.
const EtcdRestoreMarker = "/etc/kubernetes/waste-coach/etcd-restored"

// InitPendingMarker is there from the start of kubeadm-init's `kubeadm init` until it succeeds:
// a later run that finds the master initialised (kubeadm wrote admin.conf early) but this marker
// there runs the phases the failed init had not reached instead of calling it done.
const InitPendingMarker = "/etc/kubernetes/waste-coach/kubeadm-init-pending"

// KubeadmInitScript installs the cluster's identity and the EncryptionConfiguration (an
// InitBundle on standard input), restores the newest etcd snapshot of the cluster on a new
// master of a cluster that has one, writes the kubeadm configuration and runs `kubeadm init`
// once.
func KubeadmInitScript(kubeadmConfig string, snapshots Snapshots, masterIP string) string {
	return render("kubeadm-init", struct {
		KubeadmConfig, EncryptionConfigDir, EncryptionConfigPath string
		PKIDir, EncryptionEntry                                  string
		Files                                                    []string
		Snapshots                                                Snapshots
		S3Functions, RestoreMarker, MasterIP                     string
		InstallAdmission, Mark, InitPending                      string
	}{kubeadmConfig, EncryptionConfigDir, EncryptionConfigPath, PKIDir, EncryptionConfigEntry, IdentityFiles,
		snapshots, s3sh.Script + "\n" + s3sh.ReadScript, EtcdRestoreMarker, masterIP, installAdmissionConfig(),
		config.ClusterMark(snapshots.Prefix), InitPendingMarker})
}

// PKIReadScript prints the identity of a control plane initialised before the program owned it
// (an identity bundle), and nothing on one not initialised yet.
func PKIReadScript() string {
	return render("pki-read", struct {
		PKIDir string
		Files  []string
	}{PKIDir, IdentityFiles})
}

// The deploy credential: a kubeconfig for DeployUser, minted on the control plane with an
// explicit validity and minted again when it nears expiry (ReadKubeconfigScript).
const (
	// DeployUser is the client certificate's common name, bound to cluster-admin.
	DeployUser = "waste-coach-deployer"
	// CredentialValidity is the client certificate's validity (kubeadm's --validity-period).
	CredentialValidity = 365 * 24 * time.Hour
	// CredentialRenewBefore is how long before expiry a new certificate is minted. The command
	// runs again every calendar month (CredentialRenewalPeriod), so it must exceed the longest
	// month: a credential kept at one run then still has more than two weeks left at any later
	// run of the same month.
	CredentialRenewBefore = 45 * 24 * time.Hour
)

// CredentialRenewalPeriod is the trigger that makes `pulumi up` look at the credential again:
// the calendar month (UTC) of the run. Plain data, so the number of resources never depends on
// it; a new month replaces the kubeconfig command, which mints only when the certificate nears
// expiry and otherwise prints the same kubeconfig.
func CredentialRenewalPeriod(now time.Time) string { return now.UTC().Format("2006-01") }

// ReadKubeconfigScript prints the deploy credential, minting it first when it is missing, for
// another CA, or within CredentialRenewBefore of expiry.
func ReadKubeconfigScript() string {
	return render("read-kubeconfig", struct {
		User, Validity          string
		RenewDays, RenewSeconds int
	}{DeployUser, fmt.Sprintf("%dh", int(CredentialValidity.Hours())), int(CredentialRenewBefore.Hours() / 24), int(CredentialRenewBefore.Seconds())})
}

// JoinTokenScript prints a fresh, short-lived bootstrap token (JoinCommand builds the command).
func JoinTokenScript(role config.Role) string {
	return render("join-token", struct {
		Role     config.Role
		TokenTTL string
	}{role, JoinTokenTTL})
}

// JoinScript joins a node with the join command given on standard input.
func JoinScript(role config.Role) string {
	return render("join", struct{ Role config.Role }{role})
}

type memberData struct {
	Role                               config.Role
	NodeName, RoleLabel, WorkloadLabel string
}

// MemberScript labels a joined node with its role, on the control plane.
func MemberScript(role config.Role, nodeName string) string {
	return render("member", memberData{role, nodeName, RoleLabel(role), WorkloadLabel(role)})
}

// How long the removal of a node drains it (MemberDeleteScript): within the disruption budgets
// first, then by deleting the pods that are left, each with its full grace period (the Celery
// workers' 300 s is the longest). The remote command has no custom timeout: these bound it.
const (
	DrainEvictSeconds  = 300
	DrainDeleteSeconds = 330
	// DrainStorageEvictSeconds is the storage node's eviction window: its RabbitMQ brokers move
	// one at a time (their budget), each stopping within its 120 s grace period, then its volume
	// detaching from the old node and attaching to the new one and the broker booting and
	// rejoining, about 3 minutes more: 3 x (120 + 180) s. tests/ checks it against the brokers'
	// replicas and grace period.
	DrainStorageEvictSeconds = 900
	// DrainAttachBootSeconds is the share of a broker's move after its grace period (volume
	// detach and attach, boot, rejoin) that DrainStorageEvictSeconds allows for.
	DrainAttachBootSeconds = 180
	// DrainProtectedNamespace holds the data services (workloads.NamespaceData): their pods are
	// never deleted past their budgets. Deleting the RabbitMQ brokers that a budget still holds
	// would stop them all at once and lose the quorum queues' majority; a node removal then fails
	// instead, naming the pods and the command that deletes them knowingly.
	DrainProtectedNamespace = "data"
)

// DrainEvictSecondsFor is how long the removal of role's node evicts within the budgets.
func DrainEvictSecondsFor(role config.Role) int {
	if role == config.RoleStorage {
		return DrainStorageEvictSeconds
	}
	return DrainEvictSeconds
}

// MemberDeleteScript drains and removes a node, on the control plane.
func MemberDeleteScript(role config.Role, nodeName string) string {
	return render("member-delete", struct {
		memberData
		EvictSeconds, DeleteSeconds int
		Protected                   string
	}{memberData{role, nodeName, RoleLabel(role), WorkloadLabel(role)}, DrainEvictSecondsFor(role), DrainDeleteSeconds, DrainProtectedNamespace})
}

// CalicoScript installs Calico through the Tigera operator, from manifests verified against
// their pinned sha256: the release of the cluster's Kubernetes minor (versions.CalicoFor).
func CalicoScript(v config.KubeVersion) string {
	r := versions.CalicoFor(v.MinorString())
	return render("calico", struct {
		CalicoVersion, PodCIDR, Installation string
		CRDsSHA256, OperatorSHA256           string
	}{r.Version, PodCIDR, CalicoInstallation(), r.OperatorCRDsSHA256, r.OperatorSHA256})
}

// NodesReadyScript waits for every node to be Ready with a providerID.
func NodesReadyScript(nodeCount int) string {
	return render("nodes-ready", struct{ NodeCount int }{nodeCount})
}

// CalicoInstallation is the operator's Installation resource: the cluster's network settings.
func CalicoInstallation() string {
	return fmt.Sprintf(`apiVersion: operator.tigera.io/v1
kind: Installation
metadata:
  name: default
spec:
  calicoNetwork:
    bgp: Disabled
    ipPools:
      - name: default-ipv4-ippool
        cidr: %s
        encapsulation: VXLAN
        natOutgoing: Enabled
        nodeSelector: all()
`, PodCIDR)
}

// kubeletSettings is KubeletPressureConfig without its comments: what the rollout writes into
// the kubelet-config ConfigMap and what its hash is taken of, so that a reworded comment rolls
// nothing out.
func kubeletSettings() string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(KubeletPressureConfig(), "\n") {
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		b.WriteString(line)
	}
	return b.String()
}

// KubeletPressureKeys are the top-level KubeletConfiguration fields KubeletPressureConfig owns:
// the rollout replaces these in the kubelet-config ConfigMap and keeps every other field.
func KubeletPressureKeys() []string {
	var keys []string
	for _, line := range strings.Split(kubeletSettings(), "\n") {
		if line != "" && line[0] != ' ' && strings.Contains(line, ":") {
			keys = append(keys, line[:strings.Index(line, ":")])
		}
	}
	return keys
}

// KubeletConfigHash is the sha256 of the kubelet settings the program owns: the trigger of the
// rollout (KubeletConfigMapScript, then KubeletConfigScript node by node), which therefore runs
// again when, and only when, those settings change.
func KubeletConfigHash() string {
	sum := sha256.Sum256([]byte(kubeletSettings()))
	return hex.EncodeToString(sum[:])
}

// KubeletConfigMapScript brings the KubeletConfiguration in kube-system/kubelet-config to the
// program's pressure settings, keeping every field kubeadm wrote there, on the control plane.
func KubeletConfigMapScript() string {
	return render("kubelet-configmap", struct{ Settings, Keys, Hash string }{
		kubeletSettings(), strings.Join(KubeletPressureKeys(), " "), KubeletConfigHash()})
}

// KubeletHealthSeconds is how long a kubelet restarted on new settings has to answer on its
// health port before its previous files are put back (KubeletConfigScript): well within the
// 300 s after which a NotReady node's pods are evicted, long enough for a kubelet start.
const KubeletHealthSeconds = 60

// KubeletConfigScript rewrites a node's kubelet configuration from kube-system/kubelet-config,
// restarts its kubelet when that changed the files, and waits until the node is Ready. It runs
// on the node, with the control plane's admin credential there and the kubelet's own elsewhere
// (a node may read the two kubeadm ConfigMaps and its Node object).
func KubeletConfigScript(role config.Role, nodeName string) string {
	kubeconfig := "/etc/kubernetes/kubelet.conf"
	if role.ControlPlane() {
		kubeconfig = "/etc/kubernetes/admin.conf"
	}
	return render("kubelet-config", struct {
		Role                         config.Role
		NodeName, Kubeconfig, Hash   string
		HealthSeconds, HealthTries   int
		LogindDropInPath, LogindConf string
		ShutdownSeconds              int
	}{role, nodeName, kubeconfig, KubeletConfigHash(), KubeletHealthSeconds, KubeletHealthSeconds / 5,
		LogindDropInPath, strings.TrimSuffix(LogindDropIn(), "\n"), ShutdownGraceSeconds})
}
