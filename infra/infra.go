// Package infra owns everything AWS: the network, security groups, IAM, the EC2 nodes, DNS and
// TLS, the application load balancer, the uploads bucket and the backups bucket. Each concern is a component of its own; Infra composes them in
// the order the dependencies require.
package infra

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
)

// Args are the inputs of the AWS tier.
type Args struct {
	// Config is the validated stack configuration.
	Config *config.Config
	// UserData is the preparation script of each node role, rendered by the cluster tier. The
	// nodes store it in SSM; a fixed bootstrap user data runs it at first boot, so package
	// installs start while the rest of AWS is still being provisioned (bootstrap.go).
	UserData map[config.Role]string
}

// Infra is the whole AWS tier.
type Infra struct {
	pulumi.ResourceState

	Network        *Network
	SecurityGroups *SecurityGroups
	IAM            *IAM
	// PodIdentity is the pods' issuer and their AWS roles.
	PodIdentity  *PodIdentity
	Nodes        *Nodes
	DNS          *DNS
	LoadBalancer *LoadBalancer
	Uploads      *Uploads
	// OfficeHours stops and starts the instances on the stack's schedule; nil without one.
	OfficeHours *OfficeHours
	Backups     *Backups
	Snapshots   *Snapshots
	// Logs is the stack's log group and Grafana's reader of it.
	Logs *Logs
}

// New declares the AWS tier.
func New(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*Infra, error) {
	// The zones are checked before anything is declared: a pinned zone the region does not offer
	// is a configuration error.
	zones, err := AvailabilityZones(ctx, args.Config)
	if err != nil {
		return nil, err
	}
	// An update of a stack whose nodes are stopped is refused here, before anything changes.
	if err := CheckNodesRunning(ctx, args.Config); err != nil {
		return nil, err
	}
	// So is a setting the existing network or root volumes cannot take (a zone, a range, a
	// smaller root volume). The instances read here also give the images the nodes keep.
	live, err := LiveNodes(ctx, args.Config)
	if err != nil {
		return nil, err
	}
	if err := CheckCreateTimeSettings(ctx, args.Config, zones, live); err != nil {
		return nil, err
	}
	// And more than one node replaced at once to change how it is bought.
	if err := CheckCapacityChanges(ctx, args.Config, live); err != nil {
		return nil, err
	}
	t := &Infra{}
	if err := ctx.RegisterComponentResource("waste-coach-infra:infra:Infra", name, t, opts...); err != nil {
		return nil, err
	}
	cfg := args.Config
	parent := pulumi.Parent(t)

	if t.Network, err = NewNetwork(ctx, name+"-network", &NetworkArgs{Config: cfg, Zones: zones}, parent); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	if t.SecurityGroups, err = NewSecurityGroups(ctx, name+"-sg", &SecurityGroupsArgs{Config: cfg, VPCID: t.Network.VPC.ID()}, parent); err != nil {
		return nil, fmt.Errorf("security groups: %w", err)
	}
	if t.Uploads, err = NewUploads(ctx, name+"-uploads", &UploadsArgs{Config: cfg}, parent); err != nil {
		return nil, fmt.Errorf("uploads bucket: %w", err)
	}
	if t.Backups, err = NewBackups(ctx, name+"-backups", &BackupsArgs{Config: cfg}, parent); err != nil {
		return nil, fmt.Errorf("backups bucket: %w", err)
	}
	if t.Logs, err = NewLogs(ctx, name+"-logs", &LogsArgs{Config: cfg}, parent); err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	if t.IAM, err = NewIAM(ctx, name+"-iam", &IAMArgs{Config: cfg, BackupsBucketARN: t.Backups.Bucket.Arn}, parent); err != nil {
		return nil, fmt.Errorf("iam: %w", err)
	}
	if t.PodIdentity, err = NewPodIdentity(ctx, name+"-pod-identity", &PodIdentityArgs{Config: cfg,
		UploadsBucketARN: t.Uploads.Bucket.Arn, BackupsBucketARN: t.Backups.Bucket.Arn, LogGroupARN: t.Logs.Group.Arn}, parent); err != nil {
		return nil, fmt.Errorf("pod identities: %w", err)
	}
	// The master marks the cluster as having run; the backup jobs write their own prefixes.
	writers := []pulumi.StringOutput{t.IAM.Roles[config.RoleMaster].Arn}
	for _, key := range []string{PodRoleEtcdBackup, PodRolePostgresWAL, PodRolePostgresBackup} {
		writers = append(writers, t.PodIdentity.Roles[key].Arn)
	}
	if err := t.Backups.RestrictWriters(ctx, writers...); err != nil {
		return nil, fmt.Errorf("backups bucket: %w", err)
	}
	if t.Snapshots, err = NewSnapshots(ctx, name+"-snapshots", &SnapshotsArgs{Config: cfg}, parent); err != nil {
		return nil, fmt.Errorf("volume snapshots: %w", err)
	}
	var deleteAfter []pulumi.Resource
	for _, rta := range t.Network.RouteTableAssociations {
		deleteAfter = append(deleteAfter, rta)
	}
	deleteAfter = append(deleteAfter, t.SecurityGroups.Rules...)
	deleteAfter = append(deleteAfter, t.IAM.Policies...)
	deleteAfter = append(deleteAfter, t.PodIdentity.Policies...)
	deleteAfter = append(deleteAfter, t.Snapshots.RolePolicies...)
	if t.Nodes, err = NewNodes(ctx, name+"-nodes", &NodesArgs{
		Config:         cfg,
		Subnets:        t.Network.Subnets,
		SecurityGroups: t.SecurityGroups,
		Profiles:       t.IAM.Profiles,
		UserData:       args.UserData,
		DeleteAfter:    deleteAfter,
		Live:           live,
	}, parent); err != nil {
		return nil, fmt.Errorf("nodes: %w", err)
	}
	if cfg.OfficeHours != nil {
		if t.OfficeHours, err = NewOfficeHours(ctx, name+"-office-hours", &OfficeHoursArgs{Config: cfg, Instances: t.Nodes.Instances}, parent); err != nil {
			return nil, fmt.Errorf("office hours: %w", err)
		}
	}
	if t.DNS, err = NewDNS(ctx, name+"-dns", &DNSArgs{Config: cfg, EndpointIP: t.Nodes.EndpointIP}, parent); err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}
	// The ALB needs only the network, its group and the certificate: it is created beside the
	// nodes, and the alias records with it, instead of after the cluster.
	if t.LoadBalancer, err = NewLoadBalancer(ctx, name+"-alb", &LoadBalancerArgs{
		Config:          cfg,
		VPCID:           t.Network.VPC.ID(),
		SubnetIDs:       t.Network.SubnetIDs(),
		SecurityGroupID: t.SecurityGroups.ALB.ID(),
		CertificateARN:  t.DNS.CertificateARN,
		AccountARN:      t.IAM.Roles[config.RoleMaster].Arn,
	}, parent); err != nil {
		return nil, fmt.Errorf("load balancer: %w", err)
	}
	if err := t.DNS.AliasToALB(ctx, name+"-dns", cfg, t.LoadBalancer.ALB); err != nil {
		return nil, fmt.Errorf("dns: %w", err)
	}

	if err := ctx.RegisterResourceOutputs(t, pulumi.Map{
		"vpcId":          t.Network.VPC.ID(),
		"certificateArn": t.DNS.CertificateARN,
		"albHostname":    t.LoadBalancer.ALB.DnsName,
		"uploadsBucket":  t.Uploads.Bucket.Bucket,
		"backupsBucket":  t.Backups.Bucket.Bucket,
		"logGroup":       t.Logs.Group.Name,
	}); err != nil {
		return nil, err
	}
	return t, nil
}

// tags returns the tags every resource of the platform carries, plus a Name and any extras.
func tags(cfg *config.Config, name string, extra map[string]string) pulumi.StringMap {
	t := pulumi.StringMap{
		"Name":        pulumi.String(name),
		"Project":     pulumi.String(config.Project),
		"Environment": pulumi.String(cfg.Environment()),
		"Cluster":     pulumi.String(cfg.ClusterName),
		"ManagedBy":   pulumi.String("pulumi"),
	}
	for k, v := range extra {
		t[k] = pulumi.String(v)
	}
	return t
}

// ClusterTag is the tag key the cloud-controller-manager and the load balancer controller use to
// find the cluster's subnets, instances and security group. It carries the stack's cluster id, so
// the controllers of two stacks in one account never take each other's resources.
func ClusterTag(cfg *config.Config) string { return "kubernetes.io/cluster/" + cfg.ClusterID() }
