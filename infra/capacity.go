package infra

import (
	"fmt"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
)

// How a node is bought, and what the provider does when that changes.
//
// The provider never applies a change of capacity to a running instance:
// instance_market_options is Optional, Computed and ForceNew, so removing it (spot to
// on-demand) gives no diff at all (terraform-provider-aws#38141, pulumi-terraform-bridge#2152),
// and a spot instance cannot change its type (the update stops it, fails, and leaves it
// stopped). So every instance carries CapacityTrigger as its ReplacementTrigger: when the value
// changes, the engine replaces that node, visibly in the preview, instead of doing nothing or
// breaking it. The engine treats a trigger absent from the state (a stack deployed before it) as
// unchanged, so the first `up` of this release only records it.
//
// CheckCapacityChanges keeps those replacements to one node per `up`, comparing what each node
// runs on now (LiveNodes) with the configuration.

// CapacityTrigger is a node's instance's replacement trigger: its capacity, and on spot its
// instance type too. An on-demand node's type changes in place (docs/operations.md, "Changing a
// node's instance type") and must not replace it.
func CapacityTrigger(node config.Node) string {
	if node.Capacity == config.Spot {
		return string(config.Spot) + " " + node.InstanceType
	}
	return string(node.Capacity)
}

// creditSpecification sets a burstable node's credit mode (config Node.CPUCredits), nil for a
// type without credits. A change applies in place (ModifyInstanceCreditSpecification), running
// or stopped.
func creditSpecification(node config.Node) ec2.InstanceCreditSpecificationPtrInput {
	if node.CPUCredits == "" {
		return nil
	}
	return &ec2.InstanceCreditSpecificationArgs{CpuCredits: pulumi.String(node.CPUCredits)}
}

// nodeMove is a configured node whose instance this `up` replaces to change how it is bought.
type nodeMove struct {
	node config.Node
	live LiveNode
	// what changes, for messages: "spot → on-demand", "instance type t3.medium → t3.large on spot".
	what string
	// key and keep are the configuration key and the value that keeps the node as it runs.
	key, keep string
}

// capacityMoves compares each configured node with the instances of its role that run now: a
// node moves when none of them is bought as configured (so a stray beside the managed instance,
// left by an interrupted up, moves nothing when either one matches).
func capacityMoves(cfg *config.Config, live []LiveNode) []nodeMove {
	var moves []nodeMove
	for _, n := range cfg.Nodes {
		var first *nodeMove
		matched := false
		for _, l := range live {
			if l.Role != n.Role {
				continue
			}
			now := config.OnDemand
			if l.Spot {
				now = config.Spot
			}
			var m *nodeMove
			switch {
			case now != n.Capacity:
				m = &nodeMove{node: n, live: l, what: fmt.Sprintf("%s → %s", now, n.Capacity),
					key: n.ConfigPath("capacity"), keep: string(now)}
			case now == config.Spot && l.InstanceType != "" && l.InstanceType != n.InstanceType:
				m = &nodeMove{node: n, live: l, what: fmt.Sprintf("instance type %s → %s on spot, which EC2 cannot change in place", l.InstanceType, n.InstanceType),
					key: n.ConfigPath("instanceType"), keep: l.InstanceType}
			}
			if m == nil {
				matched = true
			} else if first == nil {
				first = m
			}
		}
		if first != nil && !matched {
			moves = append(moves, *first)
		}
	}
	return moves
}

// InstanceURN is the URN of a node's instance, for `pulumi up --replace`: a child of the Nodes
// component, itself a child of the AWS tier's component (New, named after the cluster).
func InstanceURN(cfg *config.Config, role config.Role) string {
	return fmt.Sprintf("urn:pulumi:%s::%s::waste-coach-infra:infra:Infra$waste-coach-infra:infra:Nodes$aws:ec2/instance:Instance::%s-nodes-%s",
		cfg.Stack, config.Project, cfg.ClusterName, role)
}

// CheckCapacityChanges refuses, before anything is declared, an `up` that would replace more than
// one node to change its capacity or, on spot, its instance type: each replacement stops that
// role's pods (every role's pods are pinned to its node) until the new node has joined, and two
// at once would take two roles down together (a stack-wide capacity change moves all three
// non-master nodes). The refusal names every node that would move and the commands that keep all
// but one as they run. The master moves only by the procedure "Replacing the master" (a fresh
// etcd snapshot first: the new master restores the newest one), acknowledged by naming its
// instance in replaceMaster; otherwise its move is refused with those steps. One node moving is
// allowed, with a warning that says the preview must show its replacement (a stack whose state
// holds no trigger yet shows none: then `--replace`).
func CheckCapacityChanges(ctx *pulumi.Context, cfg *config.Config, live []LiveNode) error {
	moves := capacityMoves(cfg, live)
	for _, m := range moves {
		if m.node.Role.ControlPlane() && cfg.ReplaceMaster != m.live.ID {
			unprotect := ""
			if cfg.Production {
				unprotect = fmt.Sprintf(" `pulumi state unprotect '%s'`,", InstanceURN(cfg, m.node.Role))
			}
			return fmt.Errorf("the master of stack %s (%s) would move: %s. That replaces the control plane, and the new master "+
				"restores the newest etcd snapshot: follow \"Replacing the master\" (docs/operations.md). Take a snapshot "+
				"(`kubectl -n kube-system create job --from=cronjob/etcd-snapshot etcd-snapshot-now`) and wait for it to "+
				"succeed, then%s `pulumi config set %s:replaceMaster %s` and `pulumi up`; afterwards `pulumi config rm "+
				"%s:replaceMaster`. Or keep the master as it runs: `pulumi config set --path '%s' %s`",
				cfg.Stack, m.live.ID, m.what, unprotect, config.Project, m.live.ID, config.Project, m.key, m.keep)
		}
	}
	switch len(moves) {
	case 0:
		return nil
	case 1:
		m := moves[0]
		return ctx.Log.Warn(fmt.Sprintf("the %s node of stack %s (%s) moves: %s. This up replaces it: its pods stop until the new "+
			"instance has joined, and its old spot request, if any, is cancelled with the old instance (docs/operations.md, "+
			"\"Moving a node between spot and on-demand\"). If the preview shows no replacement of %s (a stack whose state "+
			"predates the capacity trigger), run `pulumi up --replace '%s'`",
			m.node.Role, cfg.Stack, m.live.ID, m.what, m.node.Role, InstanceURN(cfg, m.node.Role)), nil)
	}
	var nodes, keep []string
	for _, m := range moves {
		nodes = append(nodes, fmt.Sprintf("%s (%s: %s)", m.node.Role, m.live.ID, m.what))
		keep = append(keep, fmt.Sprintf("`pulumi config set --path '%s' %s`", m.key, m.keep))
	}
	return fmt.Errorf("stack %s would replace %d nodes at once to change how they are bought: %s. Each replacement "+
		"stops that node's pods until its successor has joined, so move one node per `pulumi up`: keep all but one as they "+
		"run (%s, leaving out the node to move first), run `pulumi up`, then let the next one go "+
		"(docs/operations.md, \"Moving a node between spot and on-demand\")",
		cfg.Stack, len(moves), strings.Join(nodes, "; "), strings.Join(keep, ", "))
}
