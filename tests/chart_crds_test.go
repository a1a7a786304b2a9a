package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/versions"
	"github.com/waste-coach/infra/workloads"
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
			// A stack deployed before the program owned them has them from Helm: a plain create
			// would fail with "already exists" (and a preview would not show it).
			if p := providerOf(r, c); p == nil || !prop(p, "upsertExistingObjects").IsBool() || !prop(p, "upsertExistingObjects").BoolValue() {
				t.Errorf("CRD %s: its provider does not adopt an existing object (upsertExistingObjects)", c.Name)
			}
			// Deleting a CRD deletes every object of its kind: production's are protected.
			if c.Protect != r.Config.Production {
				t.Errorf("CRD %s: protect = %v on a stack with production = %v", c.Name, c.Protect, r.Config.Production)
			}
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

// providerOf returns the explicit provider resource a resource was registered with, or nil.
func providerOf(r *offline.Result, res *mocks.Resource) *mocks.Resource {
	urn := res.ProviderURN()
	for _, p := range r.Resources {
		if urn != "" && p.URN == urn {
			return p
		}
	}
	return nil
}

// TestCustomResourceGuardOrdersTheDestroy: Argo CD's Applications and TargetGroupBindings carry
// their controllers' finalizers. The guard's delete step releases them while Argo CD and the load
// balancer controller still run: it depends on both releases, so a destroy runs it before
// uninstalling them and before deleting their CRDs. It has no triggers, the one input that makes
// pulumi-command 1.1.3 replace a command (provider/pkg/provider/common/inputs.go): a replacement
// would run the delete step on a cluster that is not being destroyed.
func TestCustomResourceGuardOrdersTheDestroy(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		guard := must(t, r, "command:remote:Command", "sesacthon-custom-resources-released")
		for _, rel := range r.OfType("kubernetes:helm.sh/v3:Release") {
			if name := str(rel, "name"); (name == "argo-cd" || name == "aws-load-balancer-controller") && !r.DependsOn(guard, rel) {
				t.Errorf("%s does not depend on the %s release: a destroy could uninstall the controller first", guard.Name, name)
			}
		}
		for _, kind := range []string{"applications.argoproj.io", "applicationsets.argoproj.io", "targetgroupbindings.elbv2.k8s.aws"} {
			if !strings.Contains(str(guard, "delete"), kind) {
				t.Errorf("%s: the delete step does not release %s", guard.Name, kind)
			}
		}
		if _, ok := guard.Inputs["triggers"]; ok {
			t.Errorf("%s has triggers: changing one replaces the command and runs its delete step outside a destroy", guard.Name)
		}
	})
}

// TestCustomResourceGuardScript runs the guard's delete step against a stand-in kubectl. Of Argo
// CD's kinds it deletes only what the program made (app.kubernetes.io/managed-by=pulumi), never
// with --all: an Application made otherwise can carry Argo CD's resources-finalizer, and deleting
// it makes Argo CD delete everything it manages. When one exists the step refuses, naming it,
// before it deletes anything. Every TargetGroupBinding is deleted. It skips a kind that is not
// served, fails naming what a controller does not release, and does nothing on a node without a
// cluster.
func TestCustomResourceGuardScript(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found")
	}
	script := strings.ReplaceAll(workloads.CustomResourcesReleasedScript(), "/etc/kubernetes/admin.conf", "${STATE}/admin.conf")
	const ours = "app.kubernetes.io/managed-by=pulumi"
	type del struct{ kind, selection string }
	everything := []del{{"applications.argoproj.io", "-l " + ours}, {"applicationsets.argoproj.io", "-l " + ours}, {"targetgroupbindings.elbv2.k8s.aws", "--all"}}
	cases := []struct {
		name        string
		adminConf   bool
		unserved    string // a CRD `kubectl get crd` does not find
		foreign     string // a kind with an object the program did not make
		stuck       string // a kind whose delete times out
		wantExit    int
		wantDeletes []del
		wantOut     []string
	}{
		{name: "deletes the program's Argo CD objects and every binding", adminConf: true,
			wantDeletes: everything, wantOut: []string{"left"}},
		{name: "skips a kind that is not served", adminConf: true, unserved: "applicationsets.argoproj.io",
			wantDeletes: []del{everything[0], everything[2]},
			wantOut:     []string{"applicationsets.argoproj.io: not served"}},
		{name: "refuses before deleting anything when an Application was made otherwise", adminConf: true, foreign: "applications.argoproj.io",
			wantExit: 1, wantOut: []string{"refusing", "applications.argoproj.io: argocd/guestbook", `"finalizers":null`}},
		{name: "refuses for an ApplicationSet made otherwise", adminConf: true, foreign: "applicationsets.argoproj.io",
			wantExit: 1, wantOut: []string{"applicationsets.argoproj.io: argocd/guestbook"}},
		{name: "fails naming what the controller did not release", adminConf: true, stuck: "targetgroupbindings.elbv2.k8s.aws",
			wantExit: 1, wantDeletes: everything,
			wantOut: []string{"objects still there", "argocd/guestbook [resources-finalizer.argocd.argoproj.io]"}},
		{name: "a node without a cluster has nothing to delete", wantOut: []string{"no cluster on this node"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			state := t.TempDir()
			if tc.adminConf {
				writeFile(t, filepath.Join(state, "admin.conf"), "")
			}
			// The stand-in records each delete with its flags; `get crd` fails for UNSERVED; a
			// get of objects not labelled as the program's lists one for FOREIGN; `delete` fails
			// for STUCK, and a get after it lists one object with a finalizer.
			out, exit := runWithKubectl(t, script, state, `#!/bin/bash
shift 2 # --kubeconfig <file>
case "$1 $2" in
  "get crd") [ "$3" != "${UNSERVED}" ] ;;
  "delete "*) echo "$*" >> "${STATE}/deletes"; [ "$2" != "${STUCK}" ] ;;
  "get "*)
    if [[ " $* " == *"managed-by!=pulumi "* ]]; then
      [ "$2" != "${FOREIGN}" ] || printf 'argocd/guestbook '
    else
      echo "argocd/guestbook [resources-finalizer.argocd.argoproj.io]"
    fi ;;
esac
`, "UNSERVED="+tc.unserved, "FOREIGN="+tc.foreign, "STUCK="+tc.stuck)
			if exit != tc.wantExit {
				t.Fatalf("exit %d, want %d; output:\n%s", exit, tc.wantExit, out)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			raw, _ := os.ReadFile(filepath.Join(state, "deletes"))
			var deleted []del
			for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
				if line == "" {
					continue
				}
				args := strings.Fields(line) // delete KIND SELECTION... --all-namespaces --wait --timeout=...
				d := del{kind: args[1]}
				for i := 2; i < len(args) && !strings.HasPrefix(args[i], "--all-namespaces"); i++ {
					d.selection = strings.TrimSpace(d.selection + " " + args[i])
				}
				deleted = append(deleted, d)
				for _, flag := range []string{"--all-namespaces", "--wait"} {
					if !slices.Contains(args, flag) {
						t.Errorf("kubectl %s: no %s", line, flag)
					}
				}
			}
			if !slices.Equal(deleted, tc.wantDeletes) {
				t.Errorf("deleted %v, want %v", deleted, tc.wantDeletes)
			}
		})
	}
}
