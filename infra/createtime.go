package infra

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
)

// CheckCreateTimeSettings refuses, before anything is declared, settings that the resources the
// stack already has cannot take:
//
//   - vpcCidr, subnetCidrs and availabilityZones are fixed when the VPC and subnets are created.
//     A change replaces them and the nodes in them under the running cluster, and can stop
//     part-way (a subnet moved to another zone is created before the old one is deleted, and
//     its range conflicts; target groups are re-created under their fixed names). They are
//     compared with the stack's subnets (found by the cluster tag) and their VPC.
//   - nodes[<role>].rootVolumeGiB can grow in place but never shrink (EBS volumes cannot): it is
//     compared with the live size of that role's root volume (live, from LiveNodes).
//
// A stack that has no subnets and no instances yet (its first `up`) passes. Every refusal names
// the key, the configured value and the existing one; a preview is refused too, since the update
// could not be applied.
func CheckCreateTimeSettings(ctx *pulumi.Context, cfg *config.Config, zones []string, live []LiveNode) error {
	errs, err := networkChanges(ctx, cfg, zones)
	if err != nil {
		return err
	}
	errs = append(errs, rootVolumeDecreases(cfg, live)...)
	if len(errs) > 0 {
		return fmt.Errorf("configuration of stack %q does not fit the resources it already has:\n%w", cfg.Stack, errors.Join(errs...))
	}
	return nil
}

// SubnetIndexTag holds a subnet's position in subnetCidrs, the i of its resource name: the
// subnets are declared by position, so a reordered list replaces them even when every range
// and zone is still there.
const SubnetIndexTag = "waste-coach/subnet-index"

// existingSubnet is a subnet of the stack as EC2 reports it; index is its SubnetIndexTag, -1 for
// a subnet made before the tag (its first `up` with this check tags it).
type existingSubnet struct {
	id, vpc, cidr, zone string
	index               int
}

// networkChanges compares vpcCidr, subnetCidrs and availabilityZones (zones, as resolved by
// AvailabilityZones) with the stack's existing subnets and their VPC: one subnet list, and only
// if it finds any, one lookup per subnet and one per VPC.
func networkChanges(ctx *pulumi.Context, cfg *config.Config, zones []string) ([]error, error) {
	res, err := ec2.GetSubnets(ctx, &ec2.GetSubnetsArgs{
		Filters: []ec2.GetSubnetsFilter{{Name: "tag:" + ClusterTag(cfg), Values: []string{"owned"}}},
	})
	if err != nil {
		return nil, fmt.Errorf("look up the subnets of %s: %w", cfg.ClusterID(), err)
	}
	var existing []existingSubnet
	for _, id := range slices.Sorted(slices.Values(res.Ids)) {
		sn, err := ec2.LookupSubnet(ctx, &ec2.LookupSubnetArgs{Id: pulumi.StringRef(id)})
		if err != nil {
			return nil, fmt.Errorf("look up subnet %s of %s: %w", id, cfg.ClusterID(), err)
		}
		index := -1
		if v, err := strconv.Atoi(sn.Tags[SubnetIndexTag]); err == nil {
			index = v
		}
		existing = append(existing, existingSubnet{id: id, vpc: sn.VpcId, cidr: sn.CidrBlock, zone: sn.AvailabilityZone, index: index})
	}
	if len(existing) == 0 {
		return nil, nil
	}
	var errs []error
	vpcs := map[string]bool{}
	for _, sn := range existing {
		vpcs[sn.vpc] = true
	}
	for _, id := range slices.Sorted(maps.Keys(vpcs)) {
		vpc, err := ec2.LookupVpc(ctx, &ec2.LookupVpcArgs{Id: pulumi.StringRef(id)})
		if err != nil {
			return nil, fmt.Errorf("look up VPC %s of %s: %w", id, cfg.ClusterID(), err)
		}
		if vpc.CidrBlock != cfg.VPCCIDR.String() {
			errs = append(errs, createdWith(config.Project+":vpcCidr", cfg.VPCCIDR.String(),
				fmt.Sprintf("the stack's VPC %s was created with %s", id, vpc.CidrBlock), vpc.CidrBlock))
		}
	}
	return append(errs, subnetChanges(cfg, zones, existing)...), nil
}

// subnetChanges pairs each configured subnet (subnetCidrs[i] in zones[i]) with an existing one:
// the one tagged with its position i (SubnetIndexTag: the subnets are declared by position, so
// a reordered list is a change of each moved subnet's range and zone); for a subnet made before
// that tag, the one with its range (then a different zone is a zone change), else an unpaired
// one in its zone (a range change), else the first unpaired one left (both changed). A
// configured subnet with nothing left to pair with is one the stack never created (an
// interrupted first `up`), and passes.
func subnetChanges(cfg *config.Config, zones []string, existing []existingSubnet) []error {
	taken := make([]bool, len(existing))
	pair := func(match func(existingSubnet) bool) *existingSubnet {
		for j := range existing {
			if !taken[j] && match(existing[j]) {
				taken[j] = true
				return &existing[j]
			}
		}
		return nil
	}
	// By range first, for every subnet, so that a later subnet's range is never taken as an
	// earlier one's zone match.
	pairs := make([]*existingSubnet, len(cfg.SubnetCIDRs))
	for i := range cfg.SubnetCIDRs {
		pairs[i] = pair(func(sn existingSubnet) bool { return sn.index == i })
	}
	for i, cidr := range cfg.SubnetCIDRs {
		if pairs[i] == nil {
			pairs[i] = pair(func(sn existingSubnet) bool { return sn.index < 0 && sn.cidr == cidr.String() })
		}
	}
	for i := range pairs {
		if pairs[i] == nil {
			pairs[i] = pair(func(sn existingSubnet) bool { return sn.index < 0 && sn.zone == zones[i] })
		}
	}
	for i := range pairs {
		if pairs[i] == nil {
			pairs[i] = pair(func(sn existingSubnet) bool { return sn.index < 0 })
		}
	}

	var errs []error
	zonesMoved := false
	createdZones := slices.Clone(zones)
	for i, sn := range pairs {
		if sn == nil {
			continue
		}
		if cidr := cfg.SubnetCIDRs[i].String(); sn.cidr != cidr {
			errs = append(errs, createdWith(fmt.Sprintf("%s:subnetCidrs[%d]", config.Project, i), cidr,
				fmt.Sprintf("the stack's subnet %s (in %s) was created with %s", sn.id, sn.zone, sn.cidr), sn.cidr))
		}
		if sn.zone == zones[i] {
			continue
		}
		createdZones[i], zonesMoved = sn.zone, true
		if len(cfg.AvailabilityZones) > 0 {
			errs = append(errs, createdWith(fmt.Sprintf("%s:availabilityZones[%d]", config.Project, i), strconv.Quote(zones[i]),
				fmt.Sprintf("the stack's subnet %s (%s) was created in %s", sn.id, sn.cidr, sn.zone), strconv.Quote(sn.zone)))
		}
	}
	if zonesMoved && len(cfg.AvailabilityZones) == 0 {
		// Unset, the zones are the region's first available ones, and those moved: one refusal
		// for the key, with the value that keeps the subnets where they are.
		errs = append(errs, &config.Error{
			Key:   config.Project + ":availabilityZones",
			Value: fmt.Sprintf("unset (the region's first available zones are now %s)", strings.Join(zones, ", ")),
			Allowed: fmt.Sprintf("the zones the stack's subnets were created in, pinned in the order of subnetCidrs: [%s]. "+
				"A subnet's zone is fixed when it is created, and `pulumi up` would replace the subnets and the nodes in them "+
				"under the running cluster", strings.Join(createdZones, ", ")),
		})
	}
	return errs
}

// createdWith refuses a value that differs from the one an existing resource was created with.
func createdWith(key, value, existing, keep string) error {
	return &config.Error{Key: key, Value: value, Allowed: fmt.Sprintf("%s. A VPC's range and a subnet's range and zone are "+
		"fixed when it is created: `pulumi up` would replace the network and the nodes in it under the running cluster, and "+
		"can stop part-way (a subnet moved to another zone conflicts with its own old range; target groups are re-created under their fixed "+
		"names). Keep %s, or make the change in a new stack (or destroy this one and create it again: docs/operations.md, "+
		"\"Destroy\")", existing, keep)}
}

// rootVolumeDecreases refuses a rootVolumeGiB smaller than the live size of that role's root
// volume: EBS volumes grow but never shrink, so the provider's ModifyVolume would fail in the
// middle of the update. With two live instances of one role (a stray), the larger is compared.
// `pulumi up --replace` cannot get past this check (the old instance is live while the program
// runs), so the way to a smaller disk it gives is a node that is gone: terminated, then launched
// again by `pulumi up --refresh` (the path of a lost node, TerminatedNodeMessage).
func rootVolumeDecreases(cfg *config.Config, live []LiveNode) []error {
	var errs []error
	for _, n := range cfg.Nodes {
		var largest LiveNode
		for _, inst := range live {
			if inst.Role == n.Role && inst.RootGiB > largest.RootGiB {
				largest = inst
			}
		}
		if n.RootVolumeGiB >= largest.RootGiB {
			continue
		}
		errs = append(errs, &config.Error{
			Key:   fmt.Sprintf("%s:nodes[%s].rootVolumeGiB", config.Project, n.Role),
			Value: strconv.Itoa(n.RootVolumeGiB),
			Allowed: fmt.Sprintf("at least %d GiB, the size of the root volume of the %s node (instance %s) now: an EBS volume can "+
				"grow but never shrink. Keep %d (a larger size grows the volume in place). A smaller disk needs a new node, and "+
				"`pulumi up --replace` stops here too while the old one runs: move its data off and drain it, terminate %s "+
				"(a spot node: cancel its spot request first), then run `pulumi up --refresh`, which launches it at the new size "+
				"(docs/operations.md, \"Replacing a node\")",
				largest.RootGiB, n.Role, largest.ID, largest.RootGiB, largest.ID),
		})
	}
	return errs
}
