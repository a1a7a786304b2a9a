package workloads

import (
	"bytes"
	_ "embed"
	"fmt"
	"text/template"

	"github.com/pulumi/pulumi-command/sdk/go/command/remote"
	helmv3 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/helm/v3"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	storagev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/storage/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/infra"
	"github.com/waste-coach/infra/versions"
)

// EBSDriver is the CSI driver that provisions every persistent volume of the platform.
const EBSDriver = "ebs.csi.aws.com"

// Storage classes: gp3 (the default) deletes a volume with its claim, so a destroy leaves no
// orphaned EBS volume; a production stack's data claims use gp3-retain, whose volumes outlive
// their claims, so neither a destroy nor a replaced claim can delete the data.
const (
	StorageClassName       = "gp3"
	RetainStorageClassName = "gp3-retain"
)

// dataStorageClass is the class of the data services' claims (PostgreSQL, Redis, RabbitMQ).
func dataStorageClass(cfg *config.Config) string {
	if cfg.Production {
		return RetainStorageClassName
	}
	return StorageClassName
}

// Storage is the EBS CSI driver, the storage classes, and the volume guard that stands between
// them and every claim.
type Storage struct {
	pulumi.ResourceState

	// EBSCSI provisions and attaches every persistent volume.
	EBSCSI *helmv3.Release
	// StorageClass is the default gp3 class; RetainStorageClass the production data class, nil
	// on other stacks.
	StorageClass, RetainStorageClass *storagev1.StorageClass
	// VolumeGuard waits, on destroy, until the driver has deleted the volumes of the claims.
	VolumeGuard *remote.Command
	// ClaimDependencies are what every claim and its StatefulSet wait for: the driver, the
	// classes and the volume guard, so that a destroy deletes the claims before them.
	ClaimDependencies []pulumi.Resource
}

// storageArgs are the inputs of the storage the stateful workloads need.
type storageArgs struct {
	// tierArgs name the resources; the cluster's ID tags the volumes for the snapshot policy.
	tierArgs
	// Charts install the EBS CSI driver's chart.
	Charts chartArgs
	// ControlPlane is the SSH connection (a secret) the volume guard's delete step runs over.
	ControlPlane remote.ConnectionInput
}

// newStorage declares the EBS CSI driver, the classes and the volume guard, before anything
// stateful.
func newStorage(ctx *pulumi.Context, name string, args *storageArgs, opts ...pulumi.ResourceOption) (*Storage, error) {
	c := &Storage{}
	return c, component(ctx, args.tierArgs, "Storage", name, c, opts, func(s *scope) error {
		cfg := args.Config
		ebsValues := placement(config.RoleMaster)
		ebsValues["replicaCount"] = pulumi.Int(1) // one control-plane node: a second replica could not be placed
		ebsValues["region"] = pulumi.String(cfg.Region)
		ebsValues["k8sTagClusterId"] = pulumi.String(cfg.ClusterID())
		ebsValues["resources"] = ebsController.values()
		// Its own role (infra.PodRoleEBSCSI), in the driver container only (the sidecars call
		// no AWS API); the chart's region is its AWS_REGION, so the rest of the environment.
		ebsIdentity := s.awsIdentity(infra.PodRoleEBSCSI)
		ebsEnv := pulumi.Array{}
		for _, e := range ebsIdentity.chartEnv() {
			if e.(pulumi.Map)["name"] != pulumi.String("AWS_REGION") {
				ebsEnv = append(ebsEnv, e)
			}
		}
		ebsValues["env"] = ebsEnv
		ebsValues["volumes"] = pulumi.Array{ebsIdentity.chartVolume()}
		ebsValues["volumeMounts"] = pulumi.Array{ebsIdentity.chartMount()}
		var err error
		c.EBSCSI, err = s.release(args.Charts, "aws-ebs-csi-driver", NamespaceSystem, versions.EBSCSIDriver, pulumi.Map{
			"controller": ebsValues,
			// No `helm test` hook: its ServiceAccount may create pods in kube-system, bind roles
			// and exec into pods, for anyone who runs helm test on the release.
			"helmTester": pulumi.Map{"enabled": pulumi.Bool(false)},
			// No Windows nodes. The node plugin calls no AWS API; it reads its instance, type and
			// zone from its Node (set by the CCM) instead of the metadata service, which no pod
			// reaches.
			"node": pulumi.Map{"tolerateAllTaints": pulumi.Bool(true), "resources": small.values(), "enableWindows": pulumi.Bool(false),
				"metadataSources": pulumi.String("kubernetes")},
			"sidecars": pulumi.Map{
				"provisioner":         pulumi.Map{"resources": sidecar.values()},
				"attacher":            pulumi.Map{"resources": sidecar.values()},
				"snapshotter":         pulumi.Map{"resources": sidecar.values()},
				"resizer":             pulumi.Map{"resources": sidecar.values()},
				"livenessProbe":       pulumi.Map{"resources": sidecar.values()},
				"nodeDriverRegistrar": pulumi.Map{"resources": sidecar.values()},
			},
		})
		if err != nil {
			return err
		}
		if c.StorageClass, err = s.storageClass(StorageClassName, "Delete", true, c.EBSCSI); err != nil {
			return err
		}
		classes := []pulumi.Resource{c.StorageClass}
		if cfg.Production {
			if c.RetainStorageClass, err = s.storageClass(RetainStorageClassName, "Retain", false, c.EBSCSI); err != nil {
				return err
			}
			classes = append(classes, c.RetainStorageClass)
		}
		if c.VolumeGuard, err = s.volumeGuard(args.ControlPlane, c.EBSCSI, classes...); err != nil {
			return err
		}
		c.ClaimDependencies = []pulumi.Resource{c.EBSCSI, c.StorageClass, c.VolumeGuard}
		if c.RetainStorageClass != nil {
			c.ClaimDependencies = append(c.ClaimDependencies, c.RetainStorageClass)
		}
		return nil
	})
}

// storageClass declares an encrypted gp3 class bound where the pod lands and expandable in place.
func (s *scope) storageClass(name, reclaim string, isDefault bool, driver pulumi.Resource) (*storagev1.StorageClass, error) {
	annotations := pulumi.StringMap{}
	if isDefault {
		annotations["storageclass.kubernetes.io/is-default-class"] = pulumi.String("true")
	}
	sc, err := storagev1.NewStorageClass(s.ctx, s.resourceName("cluster", name), &storagev1.StorageClassArgs{
		Metadata:    &metav1.ObjectMetaArgs{Name: pulumi.String(name), Annotations: annotations},
		Provisioner: pulumi.String(EBSDriver),
		Parameters: pulumi.StringMap{"type": pulumi.String("gp3"), "encrypted": pulumi.String("true"), "fsType": pulumi.String("ext4"),
			// Every volume of the class carries the tag the stack's daily snapshot policy targets.
			"tagSpecification_1": pulumi.String(config.SnapshotTagKey + "=" + s.cfg.ClusterID())},
		VolumeBindingMode:    pulumi.String("WaitForFirstConsumer"),
		AllowVolumeExpansion: pulumi.Bool(true),
		ReclaimPolicy:        pulumi.String(reclaim),
	}, append(s.parented(), pulumi.DependsOn([]pulumi.Resource{driver}))...)
	if err != nil {
		return nil, fmt.Errorf("storage class %s: %w", name, err)
	}
	return sc, nil
}

// volumeWaitSeconds bounds how long a destroy waits for the driver to delete the volumes: an EBS
// volume detaches and deletes in well under a minute; ten leave room for a slow detach.
const (
	volumeWaitSeconds = 600
	volumePollSeconds = 10
)

//go:embed scripts/volumes-released.sh.tmpl
var volumesReleasedTemplate string

var volumesReleased = template.Must(template.New("volumes-released").Option("missingkey=error").Parse(volumesReleasedTemplate))

// VolumesReleasedScript renders the delete step of the volume guard: wait until no volume of the
// driver with reclaim policy Delete remains, or fail naming them.
func VolumesReleasedScript() string {
	return renderScript(volumesReleased, struct {
		Driver                      string
		TimeoutSeconds, PollSeconds int
	}{EBSDriver, volumeWaitSeconds, volumePollSeconds})
}

// renderScript renders an embedded script template with typed data, which cannot fail.
func renderScript(t *template.Template, data any) string {
	var out bytes.Buffer
	if err := t.Execute(&out, data); err != nil {
		panic(fmt.Sprintf("render %s: %v", t.Name(), err))
	}
	return out.String()
}

// destroyStep declares a command on the control plane that does nothing on create and runs
// script on destroy, at the place its dependencies give it in the destroy order.
func (s *scope) destroyStep(name, purpose, script string, controlPlane remote.ConnectionInput, deps ...pulumi.Resource) (*remote.Command, error) {
	cmd, err := remote.NewCommand(s.ctx, s.name+"-"+name, &remote.CommandArgs{
		Connection: controlPlane,
		Create:     pulumi.String("echo 'the delete step of this command " + purpose + "'"),
		Delete:     pulumi.String(script),
		// The scripts print object names only.
		AddPreviousOutputInEnv: pulumi.Bool(false),
	}, append(s.parented(), pulumi.DependsOn(deps))...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return cmd, nil
}

// volumeGuard declares the command that stands between every claim and the EBS CSI driver in the
// dependency graph. It does nothing on create. On destroy the engine deletes it after every claim
// (and the monitoring release, whose Prometheus claim the operator made) and before the driver,
// the storage classes and the nodes' policies, and its delete step waits there until the driver
// has deleted the volumes: deleting a claim only starts the deletion of its volume.
func (s *scope) volumeGuard(controlPlane remote.ConnectionInput, driver pulumi.Resource, classes ...pulumi.Resource) (*remote.Command, error) {
	return s.destroyStep("volumes-released", "waits for the EBS volumes of deleted claims", VolumesReleasedScript(),
		controlPlane, append([]pulumi.Resource{driver}, classes...)...)
}

// The custom resources whose controllers (Argo CD, the load balancer controller) put finalizers
// on them. Of Argo CD's kinds the guard deletes only the objects the program made, by name:
// deleting an Application made from Git or by hand can make Argo CD delete everything it manages.
// The program declares TargetGroupBindings itself; any other binding only feeds a target group
// the destroy deletes too.
var (
	argoKinds    = []string{"applications.argoproj.io", "applicationsets.argoproj.io"}
	bindingKinds = []string{"targetgroupbindings.elbv2.k8s.aws"}
)

// customResourcesWaitSeconds bounds the wait for the controllers to release their objects.
const customResourcesWaitSeconds = 300

//go:embed scripts/custom-resources-released.sh.tmpl
var customResourcesReleasedTemplate string

var customResourcesReleased = template.Must(template.New("custom-resources-released").Option("missingkey=error").Parse(customResourcesReleasedTemplate))

// CustomResourcesReleasedScript renders the delete step of the custom resource guard. ours are
// the Argo CD objects the program declares, as <kind>/<namespace>/<name> (OwnArgoObjects).
func CustomResourcesReleasedScript(ours []string) string {
	return renderScript(customResourcesReleased, struct {
		ArgoKinds, BindingKinds, Ours []string
		TimeoutSeconds                int
	}{argoKinds, bindingKinds, ours, customResourcesWaitSeconds})
}

// OwnArgoObjects are the Argo CD objects with finalizers that a stack with this gitops key
// declares (newGitOps), as <kind>/<namespace>/<name>: its Application. The AppProject is not a
// kind the guard releases.
func OwnArgoObjects(g *config.GitOps) []string {
	if g == nil {
		return nil
	}
	return []string{argoKinds[0] + "/" + NamespaceArgoCD + "/" + GitOpsApplication}
}

// customResourceGuard declares the command whose delete step empties the finalized kinds while
// their controllers run. It depends on their releases, so a destroy deletes it first; the
// releases and then the kinds' CRDs follow.
func (s *scope) customResourceGuard(ours []string, controlPlane remote.ConnectionInput, controllers ...pulumi.Resource) (*remote.Command, error) {
	return s.destroyStep("custom-resources-released", "deletes the finalized custom resources while their controllers run",
		CustomResourcesReleasedScript(ours), controlPlane, controllers...)
}
