package infra

import (
	"encoding/json"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/waste-coach/infra/config"
)

func TestPoliciesAreValidJSONWithoutWildcardActions(t *testing.T) {
	docs := map[string]PolicyDocument{
		"ccm-control-plane": CCMControlPlanePolicy(), "ccm-node": CCMNodePolicy(), "ebs-csi": EBSCSIPolicy("ap-northeast-2", "kubernetes.io/cluster/prod-c"),
		"load-balancer-controller": LoadBalancerControllerPolicy("ap-northeast-2", "kubernetes.io/cluster/prod-c"), "uploads": UploadsPolicy("arn:aws:s3:::b"),
		"tls-only": TLSOnlyPolicy("arn:aws:s3:::b"),
	}
	for name, d := range docs {
		var back map[string]any
		if err := json.Unmarshal([]byte(d.JSON()), &back); err != nil {
			t.Errorf("%s is not valid JSON: %v", name, err)
		}
		for _, s := range d.Statement {
			for _, a := range s.Action {
				if s.Effect == "Allow" && (a == "*" || strings.HasSuffix(a, ":*")) {
					t.Errorf("%s allows the wildcard action %s", name, a)
				}
			}
		}
	}
}

// TestNodeRolesHoldOnlyWhatTheNodeUses: a node role is what anything on the host can use (the
// pods on the host's network among them), so it holds only the node's own needs: describe
// itself, read its preparation parameter, Session Manager, and on the master the etcd restore.
// Every controller, backup, log and upload permission is a pod role's.
func TestNodeRolesHoldOnlyWhatTheNodeUses(t *testing.T) {
	cfg := &config.Config{Stack: "prod", ClusterName: "c", Region: "ap-northeast-2"}
	for _, role := range config.Roles {
		got := slices.Sorted(maps.Keys(RolePolicies(cfg, role, "arn:aws:s3:::backups")))
		want := []string{"bootstrap", "node", "session-manager"}
		if role.ControlPlane() {
			want = []string{"bootstrap", "etcd-restore", "node", "session-manager"}
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s node role has policies %v, want %v", role, got, want)
		}
	}
}

func TestSecurityGroupRulesOpenNothingToTheWorld(t *testing.T) {
	cfg := &config.Config{
		VPCCIDR:    netip.MustParsePrefix("10.0.0.0/16"),
		AdminCIDRs: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")},
	}
	for _, r := range append(NodeRules(cfg), ControlPlaneRules(cfg)...) {
		for _, c := range r.CIDRs {
			if c == "0.0.0.0/0" {
				t.Errorf("rule %s is open to the world", r.Name)
			}
		}
	}
}

// TestLoadBalancerControllerOnlyBindsTargets: the program declares the ALB, its listeners, rules,
// target groups and security groups, so the controller's role must not be able to create or
// change any of them; it registers nodes and reads what its webhooks and reconciler read.
func TestLoadBalancerControllerOnlyBindsTargets(t *testing.T) {
	var got []string
	for _, s := range LoadBalancerControllerPolicy("ap-northeast-2", "kubernetes.io/cluster/prod-c").Statement {
		if s.Effect == "Allow" {
			got = append(got, s.Action...)
		}
	}
	slices.Sort(got)
	want := []string{"ec2:DescribeSecurityGroups", "elasticloadbalancing:DeregisterTargets", "elasticloadbalancing:DescribeTargetGroups",
		"elasticloadbalancing:DescribeTargetHealth", "elasticloadbalancing:RegisterTargets"}
	if !slices.Equal(got, want) {
		t.Errorf("load balancer controller may %v, want only %v", got, want)
	}
}
