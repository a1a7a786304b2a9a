package infra

import (
	"strings"
	"testing"

	"github.com/waste-coach/infra/config"
)

// TestCapacityMovesCompareEachNodeWithWhatRuns: a node moves when no live instance of its role is
// bought as configured: the capacity both ways, and on spot the instance type (on demand a type
// changes in place and moves nothing). A stray beside the managed instance (an up interrupted
// between launching a replacement and deleting the old node) moves nothing when either matches,
// so the refusal never asks to set back a node that already runs as configured.
func TestCapacityMovesCompareEachNodeWithWhatRuns(t *testing.T) {
	node := func(role config.Role, capacity config.Capacity, typ string) config.Node {
		return config.Node{Role: role, Capacity: capacity, InstanceType: typ}
	}
	for _, tc := range []struct {
		name string
		node config.Node
		live []LiveNode
		want string // "" for no move
	}{
		{"on demand as configured", node(config.RoleWorker1, config.OnDemand, "t3.medium"),
			[]LiveNode{{ID: "i-01", Role: config.RoleWorker1, InstanceType: "t3.medium"}}, ""},
		{"on-demand type change in place", node(config.RoleWorker1, config.OnDemand, "t3.large"),
			[]LiveNode{{ID: "i-01", Role: config.RoleWorker1, InstanceType: "t3.medium"}}, ""},
		{"on demand to spot", node(config.RoleWorker1, config.Spot, "t3.medium"),
			[]LiveNode{{ID: "i-01", Role: config.RoleWorker1, InstanceType: "t3.medium"}}, "on-demand → spot"},
		{"spot to on demand", node(config.RoleStorage, config.OnDemand, "t3.medium"),
			[]LiveNode{{ID: "i-01", Role: config.RoleStorage, InstanceType: "t3.medium", Spot: true}}, "spot → on-demand"},
		{"spot type", node(config.RoleWorker2, config.Spot, "t3.large"),
			[]LiveNode{{ID: "i-01", Role: config.RoleWorker2, InstanceType: "t3.medium", Spot: true}}, "instance type t3.medium → t3.large on spot"},
		{"a stray spot instance beside the on-demand replacement", node(config.RoleWorker2, config.OnDemand, "t3.medium"),
			[]LiveNode{{ID: "i-01old", Role: config.RoleWorker2, InstanceType: "t3.medium", Spot: true}, {ID: "i-02new", Role: config.RoleWorker2, InstanceType: "t3.medium"}}, ""},
		{"another role's instance", node(config.RoleWorker2, config.OnDemand, "t3.medium"),
			[]LiveNode{{ID: "i-01", Role: config.RoleWorker1, InstanceType: "t3.medium", Spot: true}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			moves := capacityMoves(&config.Config{Nodes: []config.Node{tc.node}}, tc.live)
			switch {
			case tc.want == "" && len(moves) > 0:
				t.Errorf("moves %q; want none", moves[0].what)
			case tc.want != "" && (len(moves) != 1 || !strings.HasPrefix(moves[0].what, tc.want)):
				t.Errorf("moves %v; want one: %q", moves, tc.want)
			}
		})
	}
}
