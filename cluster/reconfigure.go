package cluster

import (
	"github.com/pulumi/pulumi-command/sdk/go/command/remote"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
)

// The control plane's configuration follows the program's on a running master. kubeadm-init
// configures a new master; ReconfigureScript brings a running one to the same configuration:
// the API server's files, the ClusterConfiguration kept in kube-system/kubeadm-config (which
// `kubeadm upgrade` renders the static pods from), and the static pods themselves.

// installAdmissionConfig writes the API server's files named after their content, the
// AdmissionConfiguration and the audit policy, each under its path, whole (a new file moved in
// place). Older ones stay: the API server runs on one until its manifest names the new path, and
// a manifest backup kubeadm kept may name one.
func installAdmissionConfig() string {
	return render("admission-config", struct{ Dir, Path, Config, Marker, What string }{AdmissionConfigDir, AdmissionConfigPath(), AdmissionConfig(),
		"ADMISSION", "AdmissionConfiguration (Pod Security's defaults)"}) +
		render("admission-config", struct{ Dir, Path, Config, Marker, What string }{AuditPolicyDir, AuditPolicyPath(), AuditPolicy(),
			"AUDIT", "audit policy"})
}

// ReconfigureScript brings a running control plane to kubeadmConfig (the configuration kubeadm
// init would be given now): the AdmissionConfiguration installed, kubeadm-config's
// ClusterConfiguration set to it at the version the control plane runs, and `kubeadm upgrade node
// phase control-plane`, which renders each static pod from it and restarts only those whose
// manifest changed, waiting for each and rolling it back if it does not come up. Under the
// control plane's lock; a master already configured so is left as it is. When kubeadm rolls a
// component back, the configuration stored before is stored again and the step fails.
func ReconfigureScript(kubeadmConfig string) string {
	return render("reconfigure", struct {
		KubeadmConfig, InstallAdmission, AdmissionPath, EncryptionConfigPath string
		Lock, RenewService                                                   string
	}{kubeadmConfig, installAdmissionConfig(), AdmissionConfigPath(), EncryptionConfigPath, controlPlaneLock, CertRenewalService})
}

// reconfigureControlPlane declares the master's reconfiguration, after its upgrade step (the
// version is the one the control plane runs by then). Untied like the upgrade steps: a new
// master was initialised with the same configuration, and the step finds nothing to do there.
func (b *builder) reconfigureControlPlane(kubeadmConfig pulumi.StringOutput, upgradeMaster *remote.Command) (*remote.Command, error) {
	return b.command(config.RoleMaster, "reconfigure-master", commandSpec{
		create:    kubeadmConfig.ApplyT(ReconfigureScript).(pulumi.StringOutput),
		dependsOn: []pulumi.Resource{upgradeMaster},
		untied:    true,
	})
}
