// Package config owns the stack configuration of waste-coach-infra: one typed struct, loaded and
// validated in one place, so that bad input is refused with a message naming the key, the bad
// value and what is allowed before any resource is declared.
//
// Parse reads the keys concern by concern, each concern in a file of its own with the types it
// fills and the checks it makes: stack.go (production, cluster name, region, Kubernetes version,
// chart source), network.go, nodes.go (with roles.go and instancetypes.go), access.go (SSH key,
// Argo CD sign-in), uploads.go, images.go, costsavings.go (spot capacity, office hours),
// backups.go, podidentity.go, alerting.go, autoscaling.go, logs.go and gitops.go; parser.go is how a key is read and a bad
// value reported.
package config

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Project is the Pulumi project name, the namespace of every key this package reads.
const Project = "waste-coach-infra"

// Config is the validated configuration of one stack.
type Config struct {
	// Stack is the Pulumi stack name (prod, dev, ...).
	Stack string
	// Production marks a stack whose admin access must be narrow and whose data is protected.
	Production bool
	// ClusterName names the Kubernetes cluster and prefixes AWS resource names and tags.
	ClusterName string
	// Region is the AWS region, read from the AWS provider's own key aws:region.
	Region string
	// VPCCIDR is the VPC's address range.
	VPCCIDR netip.Prefix
	// SubnetCIDRs are the three public subnets, one per availability zone, in order.
	SubnetCIDRs []netip.Prefix
	// AvailabilityZones pins the zone of each subnet, in the order of SubnetCIDRs. Empty means
	// the first three available zones of the region, looked up on every run (dev only: a zone
	// that becomes impaired would then move subnets and the nodes in them).
	AvailabilityZones []string
	// DataZone is the zone of the storage node and of its EBS volumes, which cannot leave it.
	// Required on production; empty on a stack that does not pin it.
	DataZone string
	// AdminCIDRs may reach SSH and the Kubernetes API.
	AdminCIDRs []netip.Prefix
	// Kubernetes is the Kubernetes version installed on every node.
	Kubernetes KubeVersion
	// Nodes holds one node per role, in the order of Roles.
	Nodes []Node
	// Domain is the apex of the existing Route53 public hosted zone.
	Domain string
	// SSHPublicKey is an operator-supplied public key; empty means the program generates a key.
	SSHPublicKey string
	// NodeImage is the image every node boots from: an AMI id (ami-...) or the exact name of a
	// Canonical image. Empty (dev stacks only) means each node keeps the image it runs, and a
	// node the stack does not run yet boots the newest Ubuntu 24.04 image.
	NodeImage string
	// SSHPrivateKey is the operator's private key matching SSHPublicKey (a secret), nil otherwise.
	SSHPrivateKey pulumi.StringOutput
	// AppOrigins are the browser origins allowed to PUT to pre-signed upload URLs (S3 CORS).
	AppOrigins []string
	// Uploads configures the uploads bucket.
	Uploads Uploads
	// Images are the application container images.
	Images Images
	// APIReplicas is the replica count of each FastAPI service: its autoscaler's minimum.
	APIReplicas APIReplicas
	// CeleryReplicas is the replica count of each Celery worker pool (beat is always one): its
	// autoscaler's minimum.
	CeleryReplicas CeleryReplicas
	// ImagePullSecret is the login to a private registry of the application images; nil when
	// imagePullSecret is not set (public images).
	ImagePullSecret *PullSecret
	// ArgoCDSSO is the identity provider operators sign in to Argo CD with; nil keeps Argo CD's
	// built-in admin account.
	ArgoCDSSO *ArgoCDSSO
	// ChartSource is where the Helm charts come from (chartSource): empty means each chart's
	// public repository; an http(s) URL is a Helm repository that mirrors every pinned chart;
	// anything else is a folder holding each pinned chart's archive (versions.Chart.Archive),
	// for accounts that cannot reach the public repositories and for the offline engine run.
	ChartSource ChartSource

	// Capacity is the purchase option of every node but the master that does not set its own
	// (capacity, default on-demand). Spot nodes are requested persistently and stop when
	// interrupted.
	Capacity Capacity
	// ReplaceMaster is the instance id of the master an operator lets this up replace to change
	// its capacity or spot instance type (replaceMaster; "" for none): that replacement is the
	// procedure "Replacing the master", never a side effect of a merge.
	ReplaceMaster string
	// OfficeHours stops the stack's instances outside a weekly window (officeHours); nil runs
	// them around the clock.
	OfficeHours *OfficeHours
	// Backups configures the backups bucket and how long every backup is kept.
	Backups Backups
	// PodIdentity is the public bucket of the pods' service-account issuer (podidentity.go).
	PodIdentity PodIdentity
	// PermissionsBoundary is the managed policy every IAM role and user of the stack is created
	// under; empty for none (podidentity.go).
	PermissionsBoundary string
	// Alerting is where alerts go and the stack's alert thresholds (alerting.go).
	Alerting Alerting

	// Autoscaling bounds the API's and the Celery pools' replicas (autoscaling.go).
	Autoscaling Autoscaling
	// Logs is the stack's CloudWatch Logs group and its retention (logs.go).
	Logs Logs
	// GitOps is what Argo CD syncs from Git (gitops.go); nil declares no Application.
	GitOps *GitOps
}

// Source returns the raw value of a fully qualified config key ("project:key"), as the Pulumi
// CLI passes it to the program: plain text for strings, JSON for numbers, booleans and objects.
type Source func(key string) (string, bool)

// Load reads and validates the stack's configuration from the Pulumi context: Parse, then the
// keys that must be Pulumi secrets, which only the context can tell from plain text. It stops
// at the first secret key refused.
func Load(ctx *pulumi.Context) (*Config, error) {
	cfg, err := Parse(ctx.Stack(), ctx.GetConfig)
	if err != nil {
		return nil, err
	}
	for _, load := range []func(*pulumi.Context, *Config) error{
		loadSSHPrivateKey,         // access.go: sshPrivateKey, with sshPublicKey
		loadArgoCDSSOClientSecret, // access.go: argocdSsoClientSecret, with argocdSso
		loadAlertReceiverSecret,   // alerting.go: alertReceiverSecret, with alertReceiver
		checkImagePullSecret,      // images.go: imagePullSecret, read by Parse
	} {
		if err := load(ctx, cfg); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// Parse validates raw configuration for a stack. It returns every problem found, joined.
//
// The steps run in this order, which is the order of the problems in the error, and a step may
// read what an earlier one set: the zones check the region and the subnets, the default bucket
// and log group names derive from the cluster id, backupsBucket must differ from uploadsBucket,
// imagePullSecret must serve one of the images, capacity fills in the nodes, and autoscaling
// bounds the replica counts.
func Parse(stack string, get Source) (*Config, error) {
	p := &parser{get: get}
	c := &Config{Stack: stack}

	p.stack(c)               // stack.go: production, clusterName, aws:region
	p.vpc(c)                 // network.go: vpcCidr, subnetCidrs
	p.zones(c)               // network.go: availabilityZones, dataZone
	p.adminCIDRs(c)          // network.go: adminCidrs
	p.kubernetes(c)          // stack.go: kubernetesVersion
	p.nodes(c)               // nodes.go: nodes
	p.storageZone(c)         // nodes.go: the storage node's subnet against dataZone
	p.dns(c)                 // network.go: domain, appOrigins
	p.ssh(c)                 // access.go: sshPublicKey, sshPrivateKey
	p.nodeImage(c)           // nodes.go: nodeImage
	p.uploads(c)             // uploads.go: uploadsBucket, uploadsLifecycle
	p.images(c)              // images.go: images
	p.replicas(c)            // autoscaling.go: apiReplicas, celeryReplicas
	p.pullSecret(c)          // images.go: imagePullSecret
	p.argoCDSSO(c)           // access.go: argocdSso
	p.chartSource(c)         // stack.go: chartSource
	p.capacity(c)            // costsavings.go: capacity, spotInterruptionBehavior, replaceMaster
	p.officeHours(c)         // costsavings.go: officeHours
	p.backups(c)             // backups.go: backupsBucket, backupRetentionDays
	p.podIdentity(c)         // podidentity.go: podIdentityBucket
	p.permissionsBoundary(c) // podidentity.go: permissionsBoundary
	p.alerting(c)            // alerting.go: alertQueueDepth, alertReceiver
	p.autoscaling(c)         // autoscaling.go: celeryScaleToZero, apiMaxReplicas, celeryMaxReplicas, celeryQueueLength
	p.logs(c)                // logs.go: logRetentionDays, albAccessLogs, albLogsBucket
	p.gitops(c)              // gitops.go: gitops
	p.programImages(c)       // images.go: production

	if len(p.errs) > 0 {
		return nil, fmt.Errorf("invalid configuration for stack %q:\n%w", stack, errors.Join(p.errs...))
	}
	return c, nil
}
