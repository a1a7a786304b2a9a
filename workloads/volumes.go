package workloads

import (
	"bytes"
	_ "embed"
	"fmt"
	"text/template"

	"github.com/pulumi/pulumi-command/sdk/go/command/remote"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
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

// DataStorageClass is the class of the data services' claims (PostgreSQL, Redis, RabbitMQ).
func (b *builder) DataStorageClass() string {
	if b.cfg.Production {
		return RetainStorageClassName
	}
	return StorageClassName
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
func (b *builder) destroyStep(name, purpose, script string, controlPlane remote.ConnectionInput, deps ...pulumi.Resource) (*remote.Command, error) {
	cmd, err := remote.NewCommand(b.ctx, b.name+"-"+name, &remote.CommandArgs{
		Connection: controlPlane,
		Create:     pulumi.String("echo 'the delete step of this command " + purpose + "'"),
		Delete:     pulumi.String(script),
		// The scripts print object names only.
		AddPreviousOutputInEnv: pulumi.Bool(false),
	}, pulumi.Parent(b.parent), pulumi.DependsOn(deps))
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
func (b *builder) volumeGuard(controlPlane remote.ConnectionInput, driver pulumi.Resource, classes ...pulumi.Resource) (*remote.Command, error) {
	return b.destroyStep("volumes-released", "waits for the EBS volumes of deleted claims", VolumesReleasedScript(),
		controlPlane, append([]pulumi.Resource{driver}, classes...)...)
}

// finalizedKinds are the custom resources whose controllers (Argo CD, the load balancer
// controller) put finalizers on them. The program declares TargetGroupBindings itself; Argo CD's
// Applications come from Git.
var finalizedKinds = []string{"applications.argoproj.io", "applicationsets.argoproj.io", "targetgroupbindings.elbv2.k8s.aws"}

// customResourcesWaitSeconds bounds the wait for the controllers to release their objects.
const customResourcesWaitSeconds = 300

//go:embed scripts/custom-resources-released.sh.tmpl
var customResourcesReleasedTemplate string

var customResourcesReleased = template.Must(template.New("custom-resources-released").Option("missingkey=error").Parse(customResourcesReleasedTemplate))

// CustomResourcesReleasedScript renders the delete step of the custom resource guard.
func CustomResourcesReleasedScript() string {
	return renderScript(customResourcesReleased, struct {
		Kinds          []string
		TimeoutSeconds int
	}{finalizedKinds, customResourcesWaitSeconds})
}

// customResourceGuard declares the command whose delete step empties the finalized kinds while
// their controllers run. It depends on their releases, so a destroy deletes it first; the
// releases and then the kinds' CRDs follow.
func (b *builder) customResourceGuard(controlPlane remote.ConnectionInput, controllers ...pulumi.Resource) (*remote.Command, error) {
	return b.destroyStep("custom-resources-released", "deletes the finalized custom resources while their controllers run",
		CustomResourcesReleasedScript(), controlPlane, controllers...)
}
