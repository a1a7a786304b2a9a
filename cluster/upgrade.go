package cluster

import (
	"github.com/pulumi/pulumi-command/sdk/go/command/remote"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/versions"
)

// Kubernetes upgrades as code: kubernetesVersion is the version the running cluster runs. A
// change of it is carried out by UpgradeScript, on the control plane first, then node by node.
const (
	// KubeletSkew is how many minors older than the API server a kubelet may be (the version skew
	// policy since 1.28).
	KubeletSkew = 3
	// UpgradePodsReadySeconds is how long the pods that were Ready on a node before its kubelet
	// restarted have to be Ready again: the health gate before the next node. The RabbitMQ
	// brokers, the slowest to come back should the new kubelet restart them, stop within 120 s
	// and boot and rejoin within about 3 minutes.
	UpgradePodsReadySeconds = 600
	// packageRevision is the Debian revision of every pkgs.k8s.io package ("1.35.4-1.1").
	packageRevision = "1.1"
)

// UpgradeScript brings role's node to cfg's Kubernetes version in place: on the control plane,
// the version guard and `kubeadm upgrade apply`; on the others `kubeadm upgrade node`; on every
// node the kubelet, without a drain (scripts/upgrade.sh.tmpl says why). It changes nothing on a
// node that runs the version already.
func UpgradeScript(cfg *config.Config, role config.Role, nodeName string) string {
	kubeconfig := "/etc/kubernetes/kubelet.conf"
	if role.ControlPlane() {
		kubeconfig = "/etc/kubernetes/admin.conf"
	}
	return render("upgrade", struct {
		Role                               config.Role
		ControlPlane                       bool
		NodeName, Kubeconfig               string
		Target, TargetMinor                string
		AptKeyFingerprint, PackageRevision string
		KubeletSkew, HealthTries           int
		PodsReadySeconds, PodsReadyTries   int
	}{role, role.ControlPlane(), nodeName, kubeconfig, cfg.Kubernetes.String(), cfg.Kubernetes.MinorString(),
		versions.KubernetesAptKeyFingerprint, packageRevision, KubeletSkew, KubeletHealthSeconds / 5,
		UpgradePodsReadySeconds, UpgradePodsReadySeconds / 5})
}

// upgradeControlPlane declares the control plane's upgrade step. Everything that must not run
// ahead of the control plane's version waits for it: the cloud-controller-manager (its minor is
// the configured one), every join (a new node's kubelet, installed at the configured version,
// must not be newer than the API server), and the other nodes' steps.
//
// No step is tied to its instance (a new node is prepared at the configured version) nor has a
// trigger: the script names the version and the apt key's fingerprint, so a change of either is
// an update of each step, which runs it again, in place (the preview shows updates, no
// replacement). A replaced node's new address is an update too, which finds nothing to do; so
// does a new cluster.
func (b *builder) upgradeControlPlane(cfg *config.Config, initCmd *remote.Command) (*remote.Command, error) {
	master := config.RoleMaster
	return b.command(master, "upgrade-"+string(master), commandSpec{
		create: b.nodes.Instances[master].PrivateDns.ApplyT(func(name string) string {
			return UpgradeScript(cfg, master, name)
		}).(pulumi.StringOutput),
		dependsOn: []pulumi.Resource{initCmd},
		untied:    true,
	})
}

// upgradeNodes declares the other nodes' upgrade steps, one after another in config order, the
// first after every node is Ready (after), each after the one before it has passed its health
// gate. It returns the last, which the kubelet rollout waits for.
func (b *builder) upgradeNodes(cfg *config.Config, after pulumi.Resource) (pulumi.Resource, error) {
	prev := after
	for _, n := range cfg.Nodes {
		if n.Role.ControlPlane() {
			continue
		}
		role := n.Role
		step, err := b.command(role, "upgrade-"+string(role), commandSpec{
			create: b.nodes.Instances[role].PrivateDns.ApplyT(func(name string) string {
				return UpgradeScript(cfg, role, name)
			}).(pulumi.StringOutput),
			dependsOn: []pulumi.Resource{prev},
			untied:    true,
		})
		if err != nil {
			return nil, err
		}
		prev = step
	}
	return prev, nil
}
