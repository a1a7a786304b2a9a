package cluster

import (
	"strings"
	"time"

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
	// upgradePending marks a node whose kubelet restarted and whose checks have not passed yet; it
	// holds the pods that were Ready before.
	upgradePending = "/var/lib/waste-coach/upgrade-pending"
	// aptKeyRenewDays: a node's cached pkgs.k8s.io key that expires sooner is fetched again.
	aptKeyRenewDays = 60
	// aptLockSeconds is how long an apt or dpkg command waits for another one to finish
	// (unattended-upgrades at a morning start).
	aptLockSeconds = 900
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
		Role                             config.Role
		ControlPlane                     bool
		NodeName, Kubeconfig             string
		Target, TargetMinor              string
		AptKeyFingerprint, Pending       string
		KubeletSkew, HealthTries         int
		PodsReadySeconds, PodsReadyTries int
		Containerd, Runc                 versions.Artifact
		KeyRenewDays, HealthSeconds      int
		AptLockSeconds, AptLockTries     int
		Period, Lock, RenewService       string
	}{role, role.ControlPlane(), nodeName, kubeconfig, cfg.Kubernetes.String(), cfg.Kubernetes.MinorString(),
		versions.KubernetesAptKeyFingerprint, upgradePending, KubeletSkew, KubeletHealthSeconds / 5,
		UpgradePodsReadySeconds, UpgradePodsReadySeconds / 5, versions.Containerd, versions.Runc,
		aptKeyRenewDays, KubeletHealthSeconds, aptLockSeconds, aptLockSeconds / 5,
		CredentialRenewalPeriod(time.Now()), controlPlaneLock, CertRenewalService})
}

// upgradeControlPlane declares the control plane's upgrade step. Everything that must not run
// ahead of the control plane's version waits for it: the cloud-controller-manager (its minor is
// the configured one), every join (a new node's kubelet, installed at the configured version,
// must not be newer than the API server), and the other nodes' steps.
//
// No step is tied to its instance (a new node is prepared at the configured version) nor has a
// trigger: the script names the version, the apt key's fingerprint, the runtime's pins and the
// calendar month (the monthly check of the node's cached key), so a change of any is an update
// of each step, which runs it again, in place (the preview shows updates, no replacement). A replaced node's new address is an update too, which finds nothing to do; so
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

// The control plane's certificates (one year, from kubeadm) are renewed on the master by a daily
// systemd timer, whatever `pulumi up` runs: RenewCertsScript is the program it runs,
// CertRenewalScript installs both.
const (
	// CertRenewBeforeDays: a certificate with fewer days left is renewed.
	CertRenewBeforeDays = 60
	// CertRenewalCalendar is when the timer fires: 03:00 in Seoul, the service's night (the stacks
	// run in ap-northeast-2), when a restart of the control plane disturbs the fewest.
	CertRenewalCalendar = "*-*-* 18:00:00 UTC"
	// CertRenewalProgram, CertRenewalService and CertRenewalTimer are what the master runs.
	CertRenewalProgram = "/usr/local/sbin/waste-coach-renew-certs"
	CertRenewalService = "waste-coach-renew-certs.service"
	CertRenewalTimer   = "waste-coach-renew-certs.timer"
	// certRestartSeconds bounds each static pod's stop, and then its start.
	certRestartSeconds = 120
	// certRestartsOwed marks certificates renewed on disk whose components have not all been
	// restarted on them yet.
	certRestartsOwed = "/var/lib/waste-coach/cert-restarts-owed"
	// controlPlaneLock keeps the renewal and `kubeadm upgrade apply` apart: both restart the
	// static pods by their manifests.
	controlPlaneLock = "/run/waste-coach/control-plane.lock"
)

// certComponents are the static pods restarted after a renewal, in order: etcd first (the API
// server reconnects to it), the scheduler last.
var certComponents = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}

// RenewCertsScript is the master's daily renewal: `kubeadm certs renew all` once a certificate
// has fewer than CertRenewBeforeDays left, then each static pod restarted in turn.
func RenewCertsScript() string {
	return render("renew-certs", struct {
		RenewDays, RenewSeconds, Seconds, Tries int
		Manifests, Held, Components             string
		Timer, Service, Owed, Lock              string
	}{CertRenewBeforeDays, CertRenewBeforeDays * 24 * 3600, certRestartSeconds, certRestartSeconds / 2,
		"/etc/kubernetes/manifests", "/etc/kubernetes/waste-coach/restarting", strings.Join(certComponents, " "),
		CertRenewalTimer, CertRenewalService, certRestartsOwed, controlPlaneLock})
}

// CertRenewalScript installs RenewCertsScript on the master with its systemd service and timer.
func CertRenewalScript() string {
	return render("cert-renewal", struct {
		Program, Service, Timer, Calendar, Renew string
		RenewDays                                int
	}{CertRenewalProgram, CertRenewalService, CertRenewalTimer, CertRenewalCalendar, RenewCertsScript(), CertRenewBeforeDays})
}

// certRenewal declares the renewal's installation on the master: tied to the instance (a new
// master gets it) and updated, so run again, whenever its script changes.
func (b *builder) certRenewal(initCmd *remote.Command) (*remote.Command, error) {
	return b.command(config.RoleMaster, "cert-renewal", commandSpec{
		create:    pulumi.String(CertRenewalScript()),
		dependsOn: []pulumi.Resource{initCmd},
	})
}
