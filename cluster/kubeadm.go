package cluster

import (
	"fmt"
	"strings"

	"github.com/waste-coach/infra/config"
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
  extraArgs:
%[16]s  extraVolumes:
    - name: encryption-config
      hostPath: %[17]s
      mountPath: %[17]s
      readOnly: true
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
# What the kubelet keeps back from pods; the workloads' fit check subtracts the same figures.
systemReserved:
  cpu: %[11]dm
  memory: %[12]dMi
kubeReserved:
  cpu: %[13]dm
  memory: %[14]dMi
evictionHard:
  memory.available: %[15]dMi
  nodefs.available: "10%%"
  imagefs.available: "15%%"
serverTLSBootstrap: false
`, api, masterIP, extraArgs(api, "    ", cloud), cfg.ClusterName, kubernetesVersion(cfg.Kubernetes),
		PodCIDR, ServiceCIDR, p.PublicIP, p.EndpointName, extraArgs(api, "    ", cloud),
		SystemReservedCPU, SystemReservedMemoryMiB, KubeReservedCPU, KubeReservedMemoryMiB, EvictionHardMemoryMiB,
		extraArgs(api, "    ", [][2]string{{"encryption-provider-config", EncryptionConfigPath}}), EncryptionConfigDir)
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

// What every kubelet reserves, in millicores and MiB (KubeletConfiguration above).
const (
	SystemReservedCPU       = 100
	SystemReservedMemoryMiB = 256
	KubeReservedCPU         = 100
	KubeReservedMemoryMiB   = 256
	EvictionHardMemoryMiB   = 100
)

// Allocatable returns what the kubelet offers to pods on an instance type: capacity minus the
// reservations and the hard eviction threshold.
func Allocatable(it config.InstanceType) (milliCPU, memoryMiB int) {
	return it.VCPU*1000 - SystemReservedCPU - KubeReservedCPU,
		it.MemoryMiB - SystemReservedMemoryMiB - KubeReservedMemoryMiB - EvictionHardMemoryMiB
}
