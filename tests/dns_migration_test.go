package tests

import (
	"slices"
	"testing"

	"github.com/waste-coach/infra/internal/offline"
)

// TestAliasRecordsKeepTheirIdentityFromTheWorkloadsTier: before the program declared the ALB,
// the workloads tier declared the alias records, as "<clusterName>-dns-<label>" children of its
// component (waste-coach-infra:workloads:Workloads "<clusterName>"). The records now belong to the
// DNS component under other names. Without an alias to the old URN the first up of a stack
// deployed then would create each new record before deleting the old one, and Route53 refuses a
// second record set for the same name ("Tried to create resource record set ... but it already
// exists"). With it the engine updates each record in place: only its alias target changes.
func TestAliasRecordsKeepTheirIdentityFromTheWorkloadsTier(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		cluster, domain := r.Config.ClusterName, r.Config.Domain
		live := map[string]bool{}
		claimed := map[string]string{}
		for _, res := range r.Resources {
			live[res.URN] = true
			for _, a := range res.Aliases {
				if other, ok := claimed[a]; ok {
					t.Errorf("%s and %s both claim the old identity %s", other, res.URN, a)
				}
				claimed[a] = res.URN
			}
		}
		for label, fqdn := range map[string]string{
			"apex": domain, "www": "www." + domain, "api": "api." + domain,
			"argocd": "argocd." + domain, "grafana": "grafana." + domain,
		} {
			rec := must(t, r, "aws:route53/record:Record", cluster+"-dns-alias-"+label)
			if got := str(rec, "name"); got != fqdn {
				t.Errorf("record %s is for %q, want %q", rec.Name, got, fqdn)
			}
			// Literal on purpose: this is the URN in the state of a stack deployed before, not
			// something the current code may derive differently.
			old := "urn:pulumi:" + r.Stack + "::waste-coach-infra::waste-coach-infra:workloads:Workloads$aws:route53/record:Record::" + cluster + "-dns-" + label
			if !slices.Contains(rec.Aliases, old) {
				t.Errorf("record %s (%s) has aliases %q: without %s the first up of a stack deployed before the program owned the ALB creates a second record set for %s, which Route53 refuses", rec.Name, rec.URN, rec.Aliases, old, fqdn)
			}
			if live[old] {
				t.Errorf("the old identity %s is still declared by the program: the engine refuses an alias that names a live resource", old)
			}
		}
	})
}
