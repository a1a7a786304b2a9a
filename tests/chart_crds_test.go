package tests

import (
	"strings"
	"testing"

	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/versions"
)

const crdType = "kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition"

// TestChartCRDsAreOwnedByTheProgram: the CRDs that charts ship in crds/ folders (the Prometheus
// operator's, the load balancer controller's) are resources of the program, which Helm would
// otherwise install once and leave behind on destroy. Each such release installs with skipCrds
// and waits for every CRD of its chart, so a destroy uninstalls the release (and the custom
// resources it made) before it deletes the CRDs. Every custom resource the program declares is
// of a kind whose CRD the program owns or a chart's templates install (KEDA, Argo CD).
func TestChartCRDsAreOwnedByTheProgram(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		crds := map[string]*mocks.Resource{} // by CRD name
		for _, c := range r.OfType(crdType) {
			crds[str(c, "metadata", "name")] = c
			if str(c, "metadata", "annotations", "pulumi.com/patchForce") != "true" {
				t.Errorf("CRD %s: no pulumi.com/patchForce: a stack whose CRDs Helm installed would fail on a field-manager conflict", c.Name)
			}
		}
		releases := map[string]*mocks.Resource{}
		for _, rel := range r.OfType("kubernetes:helm.sh/v3:Release") {
			releases[str(rel, "name")] = rel
		}
		for _, chart := range versions.Charts() {
			rel := releases[chart.Name]
			if rel == nil {
				t.Fatalf("no release of %s", chart.Name)
			}
			if skip := prop(rel, "skipCrds"); (skip.IsBool() && skip.BoolValue()) != chart.CRDFolders {
				t.Errorf("release %s: skipCrds = %v, want %v (true exactly when the program owns the chart's crds/ folders)", chart.Name, skip, chart.CRDFolders)
			}
			if !chart.CRDFolders {
				continue
			}
			own := 0
			for name, crd := range crds {
				if str(crd, "metadata", "labels", "waste-coach.io/chart") != chart.Name {
					continue
				}
				own++
				if !r.DependsOn(rel, crd) {
					t.Errorf("release %s does not wait for its CRD %s: a destroy could delete the CRD first", chart.Name, name)
				}
			}
			if own == 0 {
				t.Errorf("release %s: the program declares none of its chart's CRDs", chart.Name)
			}
		}
		for _, name := range []string{"prometheusrules.monitoring.coreos.com", "servicemonitors.monitoring.coreos.com", "podmonitors.monitoring.coreos.com", "targetgroupbindings.elbv2.k8s.aws", "prometheuses.monitoring.coreos.com"} {
			if crds[name] == nil {
				t.Errorf("the program does not declare the CRD %s", name)
			}
		}
		// Every custom resource the program declares waits for its kind's CRD, directly or
		// through the release that installs it.
		for _, res := range r.Resources {
			group, _, ok := strings.Cut(strings.TrimPrefix(res.Type, "kubernetes:"), "/")
			if !ok || !strings.Contains(group, ".") || strings.HasSuffix(group, ".k8s.io") || !res.Custom {
				continue
			}
			kind := res.Type[strings.LastIndex(res.Type, ":")+1:]
			var crd *mocks.Resource
			for name, c := range crds {
				if strings.HasSuffix(name, "."+group) && str(c, "spec", "names", "kind") == kind {
					crd = c
				}
			}
			if crd != nil && !r.DependsOn(res, crd) {
				t.Errorf("%s (%s) does not wait for the CRD of its kind", res.Name, res.Type)
			}
		}
		if got := str(releases["argo-cd"], "values", "crds", "keep"); got != "false" {
			t.Errorf("argo-cd values crds.keep = %q, want false: the chart marks its CRD templates for Helm to keep on uninstall", got)
		}
	})
}
