package infra

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
)

// NetworkArgs are the inputs of the network.
type NetworkArgs struct {
	// Config is the validated stack configuration (VPC and subnet CIDRs).
	Config *config.Config
	// Zones are the availability zones of the subnets, in order (see AvailabilityZones).
	Zones []string
}

// AvailabilityZones returns the zone of each subnet: the pinned availabilityZones, each checked
// against the region's available zones that need no opt-in, or, where none are pinned, the first
// of those. Called before any resource is declared, so a pinned zone the region does not offer
// is refused up front, by key.
func AvailabilityZones(ctx *pulumi.Context, cfg *config.Config) ([]string, error) {
	azs, err := aws.GetAvailabilityZones(ctx, &aws.GetAvailabilityZonesArgs{
		State:   pulumi.StringRef("available"),
		Filters: []aws.GetAvailabilityZonesFilter{{Name: "opt-in-status", Values: []string{"opt-in-not-required"}}},
	})
	if err != nil {
		return nil, fmt.Errorf("look up availability zones: %w", err)
	}
	if len(cfg.AvailabilityZones) == 0 {
		if len(azs.Names) < len(cfg.SubnetCIDRs) {
			return nil, fmt.Errorf("region %s has %d usable availability zones %v; the platform needs %d", cfg.Region, len(azs.Names), azs.Names, len(cfg.SubnetCIDRs))
		}
		return azs.Names[:len(cfg.SubnetCIDRs)], nil
	}
	var errs []error
	for i, z := range cfg.AvailabilityZones {
		if !slices.Contains(azs.Names, z) {
			errs = append(errs, &config.Error{
				Key:     fmt.Sprintf("%s:availabilityZones[%d]", config.Project, i),
				Value:   strconv.Quote(z),
				Allowed: fmt.Sprintf("an available zone of %s that needs no opt-in: %s", cfg.Region, strings.Join(azs.Names, ", ")),
			})
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid configuration for stack %q:\n%w", cfg.Stack, errors.Join(errs...))
	}
	return cfg.AvailabilityZones, nil
}

// Network is the VPC with its three public subnets, one per availability zone. There is no NAT
// gateway: every node has a public address (a cost decision of the design record).
type Network struct {
	pulumi.ResourceState

	VPC *ec2.Vpc
	// Subnets are the public subnets in the order of the config's subnetCidrs.
	Subnets []*ec2.Subnet
	// Zones are the availability zones of Subnets, in the same order.
	Zones []string
	// RouteTableAssociations give each subnet its internet route. Whatever needs the internet or
	// the deploying machine's SSH at delete time depends on them (see NodesArgs.DeleteAfter).
	RouteTableAssociations []*ec2.RouteTableAssociation
}

// NewNetwork declares the VPC, the subnets in three distinct zones, the internet gateway and
// the one public route table.
func NewNetwork(ctx *pulumi.Context, name string, args *NetworkArgs, opts ...pulumi.ResourceOption) (*Network, error) {
	n := &Network{}
	if err := ctx.RegisterComponentResource("waste-coach-infra:infra:Network", name, n, opts...); err != nil {
		return nil, err
	}
	cfg := args.Config
	parent := pulumi.Parent(n)

	if len(args.Zones) != len(cfg.SubnetCIDRs) {
		return nil, fmt.Errorf("%d zones %v for %d subnets", len(args.Zones), args.Zones, len(cfg.SubnetCIDRs))
	}
	n.Zones = args.Zones

	var err error
	n.VPC, err = ec2.NewVpc(ctx, name+"-vpc", &ec2.VpcArgs{
		CidrBlock:          pulumi.String(cfg.VPCCIDR.String()),
		EnableDnsHostnames: pulumi.Bool(true),
		EnableDnsSupport:   pulumi.Bool(true),
		Tags:               tags(cfg, cfg.ClusterName+"-vpc", nil),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("create vpc: %w", err)
	}

	igw, err := ec2.NewInternetGateway(ctx, name+"-igw", &ec2.InternetGatewayArgs{
		VpcId: n.VPC.ID(),
		Tags:  tags(cfg, cfg.ClusterName+"-igw", nil),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("create internet gateway: %w", err)
	}

	rt, err := ec2.NewRouteTable(ctx, name+"-public", &ec2.RouteTableArgs{
		VpcId:  n.VPC.ID(),
		Routes: ec2.RouteTableRouteArray{&ec2.RouteTableRouteArgs{CidrBlock: pulumi.String("0.0.0.0/0"), GatewayId: igw.ID()}},
		Tags:   tags(cfg, cfg.ClusterName+"-public", nil),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("create route table: %w", err)
	}

	for i, cidr := range cfg.SubnetCIDRs {
		subnetName := fmt.Sprintf("%s-public-%d", name, i+1)
		sn, err := ec2.NewSubnet(ctx, subnetName, &ec2.SubnetArgs{
			VpcId:               n.VPC.ID(),
			CidrBlock:           pulumi.String(cidr.String()),
			AvailabilityZone:    pulumi.String(n.Zones[i]),
			MapPublicIpOnLaunch: pulumi.Bool(true),
			Tags: tags(cfg, fmt.Sprintf("%s-public-%s", cfg.ClusterName, n.Zones[i]), map[string]string{
				// The load balancer controller places internet-facing ALBs in subnets with this tag.
				"kubernetes.io/role/elb": "1",
				ClusterTag(cfg):          "owned",
				// The subnet's place in subnetCidrs (its resource name's), which the check of
				// settings fixed at creation compares position by position (createtime.go).
				SubnetIndexTag: strconv.Itoa(i),
			}),
		}, parent)
		if err != nil {
			return nil, fmt.Errorf("create subnet %d: %w", i+1, err)
		}
		rta, err := ec2.NewRouteTableAssociation(ctx, subnetName, &ec2.RouteTableAssociationArgs{
			SubnetId:     sn.ID(),
			RouteTableId: rt.ID(),
		}, parent)
		if err != nil {
			return nil, fmt.Errorf("associate subnet %d: %w", i+1, err)
		}
		n.Subnets = append(n.Subnets, sn)
		n.RouteTableAssociations = append(n.RouteTableAssociations, rta)
	}

	if err := ctx.RegisterResourceOutputs(n, pulumi.Map{"vpcId": n.VPC.ID(), "subnetIds": n.SubnetIDs()}); err != nil {
		return nil, err
	}
	return n, nil
}

// SubnetIDs returns the subnet ids in config order.
func (n *Network) SubnetIDs() pulumi.StringArrayOutput {
	ids := pulumi.StringArray{}
	for _, s := range n.Subnets {
		ids = append(ids, s.ID())
	}
	return ids.ToStringArrayOutput()
}
