package tests

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/waste-coach/infra/internal/offline"
)

// ingressRuleType is the type token of one security-group ingress rule.
const ingressRuleType = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"

// TestRangeRulesAreKeyedByTheirRange: each ingress rule from a CIDR is named after its range,
// not its position in the list. With positions, inserting an admin range at the front renamed
// every later rule: the engine rewrote each rule's cidrIpv4 in turn, which meets
// InvalidPermission.Duplicate when one rule takes the range another still holds. Each rule also
// keeps, as an alias, the position-based URN a stack deployed before knows it by, so that stack's
// first up renames the rule in place (no create, no delete: SSH and port 6443 stay open).
func TestRangeRulesAreKeyedByTheirRange(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		cluster := r.Config.ClusterName
		admin := make([]string, len(r.Config.AdminCIDRs))
		for i, p := range r.Config.AdminCIDRs {
			admin[i] = p.String()
		}
		live := map[string]bool{}
		for _, res := range r.Resources {
			live[res.URN] = true
		}
		for _, c := range []struct {
			set, rule string
			ranges    []string
		}{
			{cluster + "-sg-nodes", "ssh", admin},
			{cluster + "-sg-control-plane", "apiserver-admin", admin},
			{cluster + "-sg-control-plane", "apiserver-vpc", []string{r.Config.VPCCIDR.String()}},
			{cluster + "-sg-alb", "http", []string{"0.0.0.0/0"}},
			{cluster + "-sg-alb", "https", []string{"0.0.0.0/0"}},
		} {
			for i, cidr := range c.ranges {
				// Literal on purpose: these are the names in the state of deployed stacks.
				name := c.set + "-" + c.rule + "-" + strings.ReplaceAll(cidr, "/", "-")
				old := "urn:pulumi:" + r.Stack + "::waste-coach-infra::waste-coach-infra:infra:Infra$waste-coach-infra:infra:SecurityGroups$" +
					ingressRuleType + "::" + c.set + "-" + c.rule + "-" + strconv.Itoa(i)
				res := must(t, r, ingressRuleType, name)
				if got := str(res, "cidrIpv4"); got != cidr {
					t.Errorf("security-group rule %s cidrIpv4 = %s, want %s (the range its name says)", name, got, cidr)
				}
				if !slices.Contains(res.Aliases, old) {
					t.Errorf("security-group rule %s (%s) has aliases %q: without %s a stack deployed before would create a duplicate rule for %s and delete the old one", name, res.URN, res.Aliases, old, cidr)
				}
				if live[old] {
					t.Errorf("the old identity %s is still declared: the engine refuses an alias that names a live resource", old)
				}
			}
		}
		// No rule is named by a position any more.
		for _, res := range r.OfType(ingressRuleType) {
			if cidr := str(res, "cidrIpv4"); cidr != "" && !strings.HasSuffix(res.Name, "-"+strings.ReplaceAll(cidr, "/", "-")) {
				t.Errorf("security-group rule %s for %s is not named by its range", res.Name, cidr)
			}
		}
	})
}
