package tests

import (
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/internal/render"
)

// formerParents are the parents the workloads tier's resources had in the state of a stack
// deployed before the tier was split into a component per concern: the Workloads component
// itself, and the two components it already had, Alerting and Backups, which kept their names
// and parent. Literal on purpose: these are type chains in deployed states, not something the
// current code may derive differently.
var formerParents = []string{
	"waste-coach-infra:workloads:Workloads",
	"waste-coach-infra:workloads:Workloads$waste-coach-infra:workloads:Alerting",
	"waste-coach-infra:workloads:Workloads$waste-coach-infra:workloads:Backups",
}

// TestWorkloadsKeepTheirIdentityAcrossTheSplit: every resource of the workloads tier keeps the
// URN it had when the tier was one component, either as its own URN or as an alias (its new
// parent's component was added; pulumi.Aliases names the former parent). Without it the first
// up after the split would delete each moved resource and create it again: a StatefulSet's
// pods restart, a replaced claim or CRD takes its data with it (and a protected one stops the
// update). Only the components the split added are new; nothing else is.
func TestWorkloadsKeepTheirIdentityAcrossTheSplit(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		byURN := render.Index(r.Resources)
		prefix := r.Config.ClusterName + "-"
		claimed := map[string]string{}
		for _, res := range r.Resources {
			if render.Tier(byURN, res) != "workloads" {
				continue
			}
			parent := byURN[res.Parent]
			if !res.Custom {
				// A component: the tier's own, a former one in its place, or one the split
				// added directly under the tier's component.
				if slices.Contains(formerParents, string(resource.URN(res.URN).QualifiedType())) ||
					(parent != nil && parent.Type == "waste-coach-infra:workloads:Workloads") {
					continue
				}
				t.Errorf("component %s (%s) is neither one of the tier's former components nor directly under the Workloads component", res.Name, res.URN)
				continue
			}
			var former []string
			for _, id := range append([]string{res.URN}, res.Aliases...) {
				u := resource.URN(id)
				if string(u.Type()) == res.Type && u.Name() == res.Name && slices.Contains(formerParents, parentChain(id)) {
					former = append(former, id)
				}
			}
			if len(former) == 0 {
				t.Errorf("%s %s (%s) has aliases %q, none of them under a former parent (%s): a deployed stack would replace it", res.Type, res.Name, res.URN, res.Aliases, strings.Join(formerParents, ", "))
				continue
			}
			if !strings.HasPrefix(res.Name, prefix) {
				t.Errorf("%s %s: its name no longer derives from the tier's name %q, as the deployed one did", res.Type, res.Name, r.Config.ClusterName)
			}
			for _, id := range former {
				if other, ok := claimed[id]; ok {
					t.Errorf("%s and %s both claim the former identity %s", other, res.URN, id)
				}
				claimed[id] = res.URN
				if other, ok := byURN[id]; ok && id != res.URN {
					t.Errorf("%s aliases %s, which %s %s still declares: the engine refuses an alias that names a live resource", res.URN, id, other.Type, other.Name)
				}
			}
		}
		if len(claimed) == 0 {
			t.Fatalf("stack %s declares no resource in the workloads tier", r.Stack)
		}
	})
}

// parentChain is the type chain of a URN's parent ("" for a child of the stack).
func parentChain(urn string) string {
	u := resource.URN(urn)
	qt, typ := string(u.QualifiedType()), string(u.Type())
	if qt == typ {
		return ""
	}
	return strings.TrimSuffix(qt, "$"+typ)
}
