// Package platform is the whole waste-coach program: configuration, then the AWS tier, the
// cluster tier and the workloads tier, then the stack outputs. main.go, the tests and the render
// command all run this one function, so what is tested is what `pulumi up` deploys.
package platform

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/charts"
	"github.com/waste-coach/infra/cluster"
	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/cost"
	"github.com/waste-coach/infra/infra"
	"github.com/waste-coach/infra/workloads"
)

// Program declares the platform for the current stack.
func Program(ctx *pulumi.Context) error { return ProgramWith(Options{})(ctx) }

// Options are what a run outside `pulumi up` may supply instead of the stack's own sources.
type Options struct {
	// Charts opens the pinned chart archives whose CRDs the program declares; nil reads them
	// from the stack's chart source. Runs under mocks, which must not reach a network, give
	// the local folder of the same pinned archives.
	Charts charts.Archives
}

// ProgramWith is Program with the given options.
func ProgramWith(o Options) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error { return program(ctx, o) }
}

func program(ctx *pulumi.Context, o Options) error {
	cfg, err := config.Load(ctx)
	if err != nil {
		return err
	}
	// A version the running cluster cannot be upgraded to in one step is refused before anything
	// else, in a preview too.
	if err := cluster.CheckVersionStep(ctx, cfg); err != nil {
		return err
	}

	aws, err := infra.New(ctx, cfg.ClusterName, &infra.Args{Config: cfg, UserData: cluster.UserData(cfg)})
	if err != nil {
		return fmt.Errorf("aws tier: %w", err)
	}

	k8s, err := cluster.New(ctx, cfg.ClusterName, &cluster.Args{Config: cfg, Nodes: aws.Nodes, EndpointName: aws.DNS.EndpointName, PodIdentity: aws.PodIdentity})
	if err != nil {
		return fmt.Errorf("cluster tier: %w", err)
	}

	if _, err := workloads.New(ctx, cfg.ClusterName, &workloads.Args{
		Config:             cfg,
		VPCID:              aws.Network.VPC.ID().ToStringOutput(),
		TargetGroupARNs:    aws.LoadBalancer.TargetGroupARNs(),
		ControlPlane:       cluster.Connection(aws.Nodes, config.RoleMaster),
		LogsReader:         &workloads.LogsReader{AccessKeyID: aws.Logs.ReaderAccessKeyID, SecretAccessKey: aws.Logs.ReaderSecretAccessKey},
		Charts:             o.Charts,
		CRDProvider:        k8s.CRDProvider,
		EtcdSnapshotPrefix: k8s.EtcdSnapshotPrefix,
		PodRoleARNs:        k8s.PodRoleARNs,
	}, pulumi.Providers(k8s.Provider)); err != nil {
		return fmt.Errorf("workloads tier: %w", err)
	}

	return export(ctx, cfg, aws, k8s)
}

// export publishes the small set of outputs operators use (README, "Deploy a stack for real").
func export(ctx *pulumi.Context, cfg *config.Config, aws *infra.Infra, k8s *cluster.Cluster) error {
	nodes := pulumi.Map{}
	for _, n := range cfg.Nodes {
		inst := aws.Nodes.Instances[n.Role]
		nodes[string(n.Role)] = pulumi.Map{
			"instanceId": inst.ID(),
			"publicIp":   aws.Nodes.PublicIP(n.Role),
			"privateIp":  inst.PrivateIp,
			"nodeName":   k8s.NodeNames[n.Role],
		}
	}
	ctx.Export("vpcId", aws.Network.VPC.ID())
	ctx.Export("subnetIds", aws.Network.SubnetIDs())
	ctx.Export("nodes", nodes)
	ctx.Export("controlPlaneEndpoint", pulumi.Sprintf("https://%s:6443", aws.DNS.EndpointName))
	ctx.Export("controlPlaneIp", aws.Nodes.EndpointIP)
	ctx.Export("certificateArn", aws.DNS.CertificateARN)
	ctx.Export("uploadsBucket", aws.Uploads.Bucket.Bucket)
	ctx.Export("backupsBucket", aws.Backups.Bucket.Bucket)
	ctx.Export("logGroup", aws.Logs.Group.Name)
	ctx.Export("sshUser", pulumi.String(aws.Nodes.SSHUser))
	ctx.Export("sshPrivateKey", pulumi.ToSecret(aws.Nodes.SSHPrivateKey))
	ctx.Export("kubeconfig", pulumi.ToSecret(k8s.Kubeconfig))
	ctx.Export("albHostname", aws.LoadBalancer.ALB.DnsName)
	ctx.Export("url", pulumi.String("https://"+cfg.Domain))
	ctx.Export(cluster.VersionOutput, k8s.Version)

	// The estimate needs a price table for the region; other regions simply get none.
	if prices, ok := cost.Prices[cfg.Region]; ok {
		estimate, err := cost.Compute(cost.FootprintOf(cfg, workloads.PersistentVolumeGiB()), cost.DefaultAssumptions, prices)
		if err != nil {
			return fmt.Errorf("cost estimate: %w", err)
		}
		ctx.Export("monthlyCostUSD", pulumi.Float64(estimate.Total))
	}
	return nil
}
