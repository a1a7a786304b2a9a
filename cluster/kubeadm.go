package cluster

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/infra"
)

// KubeadmParams are the values of the kubeadm configuration that come from outside the config:
// the control plane's public address is known only once its Elastic IP is allocated.
type KubeadmParams struct {
	// PublicIP is the control plane's Elastic IP.
	PublicIP string
	// EndpointName is the control plane's public DNS name.
	EndpointName string
}

// kubeadmAPIVersion returns the newest kubeadm config API a Kubernetes minor accepts: v1beta4
// from 1.31 on (v1beta3 is deprecated there), v1beta3 before.
func kubeadmAPIVersion(v config.KubeVersion) string {
	if v.Minor >= 31 {
		return "kubeadm.k8s.io/v1beta4"
	}
	return "kubeadm.k8s.io/v1beta3"
}

// kubernetesVersion is what kubeadm installs: the pinned patch, or the newest of the minor.
func kubernetesVersion(v config.KubeVersion) string {
	if v.HasPatch {
		return "v" + v.String()
	}
	return "stable-" + v.MinorString()
}

// extraArgs renders component flags in the shape of the API version: a list of name/value
// pairs in v1beta4, a map in v1beta3.
func extraArgs(apiVersion string, indent string, args [][2]string) string {
	var b strings.Builder
	for _, a := range args {
		if strings.HasSuffix(apiVersion, "v1beta4") {
			fmt.Fprintf(&b, "%s- name: %s\n%s  value: %q\n", indent, a[0], indent, a[1])
		} else {
			fmt.Fprintf(&b, "%s%s: %q\n", indent, a[0], a[1])
		}
	}
	return b.String()
}

// KubeadmConfig renders the kubeadm configuration of `kubeadm init`: the configured version,
// the pod and service subnets, the stable endpoint and its SANs, and the external cloud provider
// on the kubelet and the controller-manager (not on the API server, which no longer takes it).
func KubeadmConfig(cfg *config.Config, p KubeadmParams) string {
	api := kubeadmAPIVersion(cfg.Kubernetes)
	masterIP := cfg.MasterPrivateIP().String()
	cloud := [][2]string{{"cloud-provider", "external"}}
	return fmt.Sprintf(`apiVersion: %[1]s
kind: InitConfiguration
# The bootstrap token kubeadm creates at init lives 15 minutes: every join asks for its own.
bootstrapTokens:
  - groups: [system:bootstrappers:kubeadm:default-node-token]
    ttl: 15m0s
    usages: [signing, authentication]
localAPIEndpoint:
  advertiseAddress: %[2]s
  bindPort: 6443
nodeRegistration:
  criSocket: unix:///var/run/containerd/containerd.sock
  kubeletExtraArgs:
%[3]s  # taints are left to kubeadm's default: the control plane keeps its NoSchedule taint.
---
apiVersion: %[1]s
kind: ClusterConfiguration
clusterName: %[4]s
kubernetesVersion: %[5]s
# The master's fixed private address: stable across instance replacement, reachable from every
# node without leaving the VPC.
controlPlaneEndpoint: %[2]s:6443
networking:
  podSubnet: %[6]s
  serviceSubnet: %[7]s
  dnsDomain: cluster.local
apiServer:
  # Secrets are encrypted at rest (EncryptionConfig): the file is written root-only before init.
  # Pod Security applies to every namespace (AdmissionConfig), written before init too.
  # Service-account tokens name the stack's public issuer (ServiceAccountIssuerArgs).
  # Requests are audited (AuditPolicy) to a log Fluent Bit ships.
  extraArgs:
%[11]s  extraVolumes:
    - name: encryption-config
      hostPath: %[12]s
      mountPath: %[12]s
      readOnly: true
      pathType: DirectoryOrCreate
    - name: admission-config
      hostPath: %[14]s
      mountPath: %[14]s
      readOnly: true
      pathType: DirectoryOrCreate
    - name: audit-policy
      hostPath: %[15]s
      mountPath: %[15]s
      readOnly: true
      pathType: DirectoryOrCreate
    - name: audit-log
      hostPath: %[16]s
      mountPath: %[16]s
      readOnly: false
      pathType: DirectoryOrCreate
  certSANs:
    - %[2]s
    - %[8]s
    - %[9]s
    - kubernetes
    - kubernetes.default
controllerManager:
  extraArgs:
%[10]s---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
%[13]sserverTLSBootstrap: false
`, api, masterIP, extraArgs(api, "    ", cloud), cfg.ClusterName, kubernetesVersion(cfg.Kubernetes),
		PodCIDR, ServiceCIDR, p.PublicIP, p.EndpointName, extraArgs(api, "    ", cloud),
		extraArgs(api, "    ", append(append([][2]string{{"encryption-provider-config", EncryptionConfigPath}, {"admission-control-config-file", AdmissionConfigPath()}},
			ServiceAccountIssuerArgs(cfg)...), AuditArgs()...)),
		EncryptionConfigDir, KubeletPressureConfig(), AdmissionConfigDir, AuditPolicyDir, AuditLogDir)
}

// DefaultServiceAccountIssuer is the issuer kubeadm gives the API server when none is set
// (https://kubernetes.default.svc.<dnsDomain>): every token of a cluster deployed before pod
// identities names it, and every in-cluster client asks for it as the audience.
const DefaultServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

// ServiceAccountIssuerArgs are the API server's flags for pod identities. Tokens are signed for
// the stack's public issuer (config.ServiceAccountIssuer), whose JWKS the program publishes, so
// that STS can verify a pod's token; the API server's own discovery names the published JWKS.
// The audiences the API server itself accepts stay kubeadm's default issuer, which is what the
// tokens of every pod already running carry: changing the issuer changes no in-cluster audience.
//
// kubeadm's v1beta4 list also keeps the default issuer as a second, accepted-only issuer, so the
// tokens signed before the change stay valid until the kubelet refreshes them. v1beta3 (1.28 to
// 1.30) is a map, one value per flag: such a cluster takes only the public issuer, which is right
// for a new cluster, and the tokens of an older one are refused until refreshed (up to an hour).
func ServiceAccountIssuerArgs(cfg *config.Config) [][2]string {
	issuer := cfg.ServiceAccountIssuer()
	args := [][2]string{{"service-account-issuer", issuer}}
	if kubeadmAPIVersion(cfg.Kubernetes) == "kubeadm.k8s.io/v1beta4" {
		args = append(args, [2]string{"service-account-issuer", DefaultServiceAccountIssuer})
	}
	return append(args,
		[2]string{"service-account-jwks-uri", issuer + infra.JWKSPath},
		[2]string{"api-audiences", DefaultServiceAccountIssuer})
}

// The API server's audit log: the policy (AuditPolicy) under a content-named file, as the
// admission configuration, and the log on the master's disk, which Fluent Bit ships to the
// stack's log group (workloads.FluentBitConfig). The API server rotates it: at most
// AuditLogMaxBackups+1 files of AuditLogMaxMiB, kept AuditLogMaxAgeDays, so it never fills the
// master's disk.
const (
	AuditPolicyDir     = "/etc/kubernetes/audit"
	AuditLogDir        = "/var/log/kubernetes/audit"
	AuditLogPath       = AuditLogDir + "/audit.log"
	AuditLogMaxMiB     = 100
	AuditLogMaxBackups = 4
	AuditLogMaxAgeDays = 7
)

// AuditPolicyPath is the audit policy's file, named after its content (see AdmissionConfigPath).
func AuditPolicyPath() string {
	sum := sha256.Sum256([]byte(AuditPolicy()))
	return fmt.Sprintf("%s/policy-%s.yaml", AuditPolicyDir, hex.EncodeToString(sum[:6]))
}

// AuditArgs are the API server's audit flags: the policy, and the log file, rotated.
func AuditArgs() [][2]string {
	return [][2]string{
		{"audit-policy-file", AuditPolicyPath()},
		{"audit-log-path", AuditLogPath},
		{"audit-log-maxsize", fmt.Sprint(AuditLogMaxMiB)},
		{"audit-log-maxbackup", fmt.Sprint(AuditLogMaxBackups)},
		{"audit-log-maxage", fmt.Sprint(AuditLogMaxAgeDays)},
	}
}

// AuditPolicy is what the API server records, first matching rule wins. Nothing for the health
// and metrics endpoints and for the constant traffic of the control plane's own components
// (leases, node status reads, kube-proxy's watches): they say nothing an operator looks for, and
// they would be most of the log. Who read or changed a Secret or a ConfigMap, or asked for a
// token, at the metadata level (who, what, when, never the content); the body of every change to
// RBAC (who was given what); every other change, and every exec, attach and port-forward into a
// pod, at the metadata level, whatever the verb (kubectl opens them as a WebSocket, a GET). Other
// reads, and Events, are not recorded.
func AuditPolicy() string {
	return `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    nonResourceURLs: ["/healthz*", "/livez*", "/readyz*", "/version", "/metrics", "/openid/v1/jwks", "/.well-known/openid-configuration"]
  # kubectl exec, attach and port-forward open a WebSocket with a GET: every verb is recorded.
  - level: Metadata
    resources:
      - group: ""
        resources: [pods/exec, pods/attach, pods/portforward, pods/proxy, services/proxy, nodes/proxy]
  - level: None
    resources:
      - group: ""
        resources: [events]
      - group: events.k8s.io
        resources: [events]
  - level: None
    resources:
      - group: coordination.k8s.io
        resources: [leases]
  - level: None
    userGroups: ["system:nodes"]
    verbs: [get, list, watch, patch, update]
    resources:
      - group: ""
        resources: [nodes, nodes/status, pods/status]
  - level: None
    users: ["system:kube-proxy"]
    verbs: [get, list, watch]
  - level: None
    users: ["system:apiserver"]
    verbs: [get, list, watch]
  - level: Metadata
    resources:
      - group: ""
        resources: [secrets, configmaps, serviceaccounts/token]
      - group: authentication.k8s.io
        resources: [tokenreviews]
  - level: Request
    verbs: [create, update, patch, delete, deletecollection]
    resources:
      - group: rbac.authorization.k8s.io
  - level: Metadata
    verbs: [create, update, patch, delete, deletecollection]
  - level: None
`
}

// AdmissionConfigDir is the folder of the API server's AdmissionConfiguration on the master.
const AdmissionConfigDir = "/etc/kubernetes/admission"

// AdmissionConfigPath is the AdmissionConfiguration's file, named after its content: the API
// server reads it only when it starts, so a new content is a new flag value, which makes kubeadm
// restart the API server when the control plane is reconfigured (reconfigure.sh.tmpl).
func AdmissionConfigPath() string {
	sum := sha256.Sum256([]byte(AdmissionConfig()))
	return fmt.Sprintf("%s/config-%s.yaml", AdmissionConfigDir, hex.EncodeToString(sum[:6]))
}

// PodSecurityExempt are the namespaces Pod Security leaves alone, by name: the system ones, whose
// pods need the host (kube-proxy, the CSI node plugin, the CCM; Calico's operator and nodes).
// Every namespace the program makes has its own level (workloads.podSecurity).
var PodSecurityExempt = []string{"calico-system", "kube-system", "tigera-operator"}

// AdmissionConfig is the API server's AdmissionConfiguration: Pod Security's defaults for every
// namespace that does not set its own level (one created later, by hand or by Argo CD): baseline
// enforced (no privileged pod, no host namespaces or paths), restricted warned and audited.
func AdmissionConfig() string {
	return fmt.Sprintf(`apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
  - name: PodSecurity
    configuration:
      apiVersion: pod-security.admission.config.k8s.io/v1
      kind: PodSecurityConfiguration
      defaults:
        enforce: baseline
        enforce-version: latest
        audit: restricted
        audit-version: latest
        warn: restricted
        warn-version: latest
      exemptions:
        usernames: []
        runtimeClasses: []
        namespaces: [%s]
`, strings.Join(PodSecurityExempt, ", "))
}

// Where the API server reads its EncryptionConfiguration on the master (a root-only file).
const (
	EncryptionConfigDir  = "/etc/kubernetes/encryption"
	EncryptionConfigPath = EncryptionConfigDir + "/config.yaml"
)

// EncryptionConfig is the API server's EncryptionConfiguration: Secrets are written with
// secretbox (XSalsa20-Poly1305) under key, a base64-encoded 32-byte key; identity stays last so
// Secrets written before encryption was on can still be read. The result holds the key: it is
// only ever handled as a Pulumi secret.
func EncryptionConfig(key string) string {
	return fmt.Sprintf(`apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - secretbox:
          keys:
            - name: key1
              secret: %s
      - identity: {}
`, key)
}

// What every kubelet reserves, in millicores and MiB (KubeletPressureConfig).
const (
	SystemReservedCPU       = 100
	SystemReservedMemoryMiB = 256
	KubeReservedCPU         = 100
	KubeReservedMemoryMiB   = 256
	EvictionHardMemoryMiB   = 100
)

// The kubelet's disk settings, the same on every node: one KubeletConfiguration serves the
// cluster, so they fit the smallest root volume a node may have (config: 20 GiB for a worker,
// 40 and 30 in the stacks), in absolute figures where the kubelet takes no percentage.
const (
	// SystemReservedDiskMiB keeps the operating system's share of the root volume (packages,
	// the journal, the kubelet's and containerd's binaries) out of what pods may request.
	SystemReservedDiskMiB = 4 * 1024
	// KubeReservedDiskMiB keeps room for the container images of the node's pods and of the
	// next version of each while a rollout pulls it.
	KubeReservedDiskMiB = 6 * 1024
	// EvictionHardDiskPercent: below this share of free disk the kubelet evicts at once, the
	// pods furthest past their disk requests first; EvictionSoftDiskPercent does so after
	// EvictionSoftGrace, giving each pod up to EvictionMaxPodGraceSeconds to stop.
	EvictionHardDiskPercent    = 10
	EvictionSoftDiskPercent    = 15
	EvictionSoftGrace          = "2m"
	EvictionMaxPodGraceSeconds = 60
	// ImageGCHighPercent and ImageGCLowPercent: above the high share of the disk in use the
	// kubelet deletes unused images until the low share is reached, well before the eviction
	// thresholds (15% and 10% free; the kubelet counts ext4's 5% kept for root as used), so
	// images are the first thing a full 40 GB node gives back, before any pod.
	ImageGCHighPercent = 70
	ImageGCLowPercent  = 55
	// ContainerLogMaxSize and ContainerLogMaxFiles: the kubelet rotates a container's log file at
	// this size and keeps this many (Fluent Bit has shipped the lines by then), at most 30 MiB a
	// container (workloads.LogsMiB), which counts against its disk limit.
	ContainerLogMaxSize  = "10Mi"
	ContainerLogMaxFiles = 3
)

// Graceful node shutdown: when a node shuts down (dev's nightly stop, a spot interruption, an
// operator's `shutdown`), its kubelet holds the shutdown back with a logind delay lock while it
// stops the node's pods, the others first, within ShutdownGraceSeconds minus
// ShutdownGraceCriticalSeconds, then the critical ones (priority 2,000,000,000 and above: the
// control plane, Calico, kube-proxy, CoreDNS) within ShutdownGraceCriticalSeconds. Each pod gets
// the shorter of that share and its own terminationGracePeriodSeconds, and the kubelet lets the
// shutdown go on as soon as the pods are gone. EC2 hard-stops an instance whose operating system
// has not shut down "within a few minutes" of StopInstances; three minutes is what EC2 confirmed
// to the EKS node image's maintainers (awslabs/amazon-eks-ami#2390), who use these figures too.
// So the brokers (120 s) and PostgreSQL (60 s) stop cleanly; a Celery worker (300 s to finish
// its tasks on a drain) gets 120 s here.
const (
	ShutdownGraceSeconds         = 150
	ShutdownGraceCriticalSeconds = 30
)

// LogindDropInPath allows the kubelet's shutdown delay. logind applies its drop-ins in file-name
// order across /etc, /run and /usr/lib, the last one winning: Ubuntu's unattended-upgrades ships
// unattended-upgrades-logind-maxdelay.conf (InhibitDelayMaxSec=30), which sorts after the
// kubelet's own 99-kubelet.conf, so the kubelet's override never takes, its shutdown manager
// does not start and no pod is stopped gracefully (kubernetes/kubernetes#102818). This name sorts
// after both.
const LogindDropInPath = "/etc/systemd/logind.conf.d/zz-waste-coach-kubelet-shutdown.conf"

// LogindDropIn is that drop-in: logind waits at most the kubelet's whole shutdown grace period.
func LogindDropIn() string {
	return fmt.Sprintf("[Login]\nInhibitDelayMaxSec=%d\n", ShutdownGraceSeconds)
}

// KubeletPressureConfig is the KubeletConfiguration's reservations, eviction thresholds, image
// garbage collection, log rotation and graceful shutdown. Every hard threshold is written out: a
// kubelet given only some of them sets the others to zero (kubernetes/kubernetes#119985), which
// would turn off eviction on inodes. The root volume holds both the kubelet's filesystem and containerd's
// images, so nodefs and imagefs watch the same disk and get the same thresholds.
func KubeletPressureConfig() string {
	return fmt.Sprintf(`# What the kubelet keeps back from pods; the workloads' fit check subtracts the same figures.
systemReserved:
  cpu: %[1]dm
  memory: %[2]dMi
  ephemeral-storage: %[6]dMi
kubeReserved:
  cpu: %[3]dm
  memory: %[4]dMi
  ephemeral-storage: %[7]dMi
evictionHard:
  memory.available: %[5]dMi
  nodefs.available: "%[8]d%%"
  nodefs.inodesFree: "5%%"
  imagefs.available: "%[8]d%%"
  imagefs.inodesFree: "5%%"
evictionSoft:
  nodefs.available: "%[9]d%%"
  imagefs.available: "%[9]d%%"
evictionSoftGracePeriod:
  nodefs.available: %[10]s
  imagefs.available: %[10]s
evictionMaxPodGracePeriod: %[11]d
# Reclaim at least this much once a threshold is crossed, so eviction does not stop a few MiB
# above it and start again.
evictionMinimumReclaim:
  nodefs.available: 1Gi
  imagefs.available: 1Gi
imageGCHighThresholdPercent: %[12]d
imageGCLowThresholdPercent: %[13]d
containerLogMaxSize: %[14]s
containerLogMaxFiles: %[15]d
# Stop the pods before the node goes down (logind must allow the delay: LogindDropIn).
shutdownGracePeriod: %[16]ds
shutdownGracePeriodCriticalPods: %[17]ds
`, SystemReservedCPU, SystemReservedMemoryMiB, KubeReservedCPU, KubeReservedMemoryMiB, EvictionHardMemoryMiB,
		SystemReservedDiskMiB, KubeReservedDiskMiB, EvictionHardDiskPercent, EvictionSoftDiskPercent, EvictionSoftGrace,
		EvictionMaxPodGraceSeconds, ImageGCHighPercent, ImageGCLowPercent, ContainerLogMaxSize, ContainerLogMaxFiles,
		ShutdownGraceSeconds, ShutdownGraceCriticalSeconds)
}

// Allocatable returns what the kubelet offers to pods on an instance type: capacity minus the
// reservations and the hard eviction threshold.
func Allocatable(it config.InstanceType) (milliCPU, memoryMiB int) {
	return it.VCPU*1000 - SystemReservedCPU - KubeReservedCPU,
		it.MemoryMiB - SystemReservedMemoryMiB - KubeReservedMemoryMiB - EvictionHardMemoryMiB
}

// rootFilesystemOverheadMiB is what a root volume loses before the kubelet sees its capacity:
// the Ubuntu image's boot and EFI partitions (about 1 GiB) and ext4's metadata (about 2%, taken
// per GiB below).
const rootFilesystemOverheadMiB = 1024

// DiskCapacityMiB is the capacity the kubelet reports for a node's root filesystem.
func DiskCapacityMiB(rootVolumeGiB int) int {
	return (rootVolumeGiB*1024 - rootFilesystemOverheadMiB) * 98 / 100
}

// AllocatableDiskMiB is the ephemeral storage the kubelet offers pods on a node whose root
// volume has rootVolumeGiB, as the kubelet computes it: capacity minus the reservations and the
// hard eviction threshold. The scheduler places pods by their disk requests against it.
func AllocatableDiskMiB(rootVolumeGiB int) int {
	capacity := DiskCapacityMiB(rootVolumeGiB)
	return capacity - SystemReservedDiskMiB - KubeReservedDiskMiB - capacity*EvictionHardDiskPercent/100
}
