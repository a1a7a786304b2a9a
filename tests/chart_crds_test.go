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
// CD's kinds it deletes only the program's objects, by name, never with --all: an Application made
// otherwise can carry Argo CD's resources-finalizer, and deleting it makes Argo CD delete
// everything it manages. When such an object has a finalizer the step refuses, naming it, before
// it deletes anything; one without finalizers is left alone. Every TargetGroupBinding is deleted.
// It skips a kind that is not served, fails naming what a controller does not release, and does
// nothing on a node without a cluster.
func TestCustomResourceGuardScript(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found")
	}
	const (
		app      = "applications.argoproj.io"
		appSet   = "applicationsets.argoproj.io"
		bindings = "targetgroupbindings.elbv2.k8s.aws"
		cascade  = `["resources-finalizer.argocd.argoproj.io"]`
	)
	render := func(ours []string) string {
		return strings.ReplaceAll(workloads.CustomResourcesReleasedScript(ours), "/etc/kubernetes/admin.conf", "${STATE}/admin.conf")
	}
	withGitOps, withoutGitOps := render([]string{app + "/argocd/app-team"}), render(nil)
	oursDeleted := "delete " + app + " app-team -n argocd"
	allBindings := "delete " + bindings + " --all"
	cases := []struct {
		name        string
		noGitOps    bool // the stack declares no Argo CD object
		adminConf   bool
		unserved    string   // a CRD `kubectl get crd` does not find
		objects     []string // what `kubectl get <kind>` lists: kind, namespace/name, finalizers
		stuck       string   // a kind whose delete times out
		wantExit    int
		wantDeletes []string // kubectl delete, kind and name or --all, namespace
		wantOut     []string
	}{
		{name: "deletes the program's Application by name and every binding", adminConf: true,
			objects:     []string{app + " argocd/app-team"},
			wantDeletes: []string{oursDeleted, allBindings}, wantOut: []string{"left"}},
		{name: "leaves an Application without finalizers that the program did not make", adminConf: true,
			objects:     []string{app + " argocd/app-team", app + " team-b/reports"},
			wantDeletes: []string{oursDeleted, allBindings}, wantOut: []string{app + " team-b/reports: not made by this program and without finalizers"}},
		{name: "refuses before deleting anything when an Application made otherwise has Argo CD's finalizer", adminConf: true,
			objects:  []string{app + " argocd/app-team", app + " argocd/guestbook " + cascade},
			wantExit: 1, wantOut: []string{"refusing", app + " argocd/guestbook " + cascade, `"finalizers":null`}},
		{name: "refuses for an ApplicationSet made otherwise, saying to orphan its Applications first", adminConf: true,
			objects:  []string{appSet + " argocd/teams " + `["some-finalizer"]`},
			wantExit: 1, wantOut: []string{appSet + " argocd/teams", "--cascade=orphan"}},
		{name: "a stack without gitops deletes no Argo CD object", noGitOps: true, adminConf: true,
			objects:     []string{app + " team-b/reports"},
			wantDeletes: []string{allBindings}},
		{name: "skips a kind that is not served", adminConf: true, unserved: appSet,
			wantDeletes: []string{oursDeleted, allBindings},
			wantOut:     []string{appSet + ": not served"}},
		{name: "fails naming what the controller did not release", adminConf: true, stuck: bindings,
			objects:  []string{bindings + " app/api " + `["elbv2.k8s.aws/resources"]`},
			wantExit: 1, wantDeletes: []string{oursDeleted, allBindings},
			wantOut: []string{"objects still there", "app/api [\"elbv2.k8s.aws/resources\"]"}},
		{name: "a node without a cluster has nothing to delete", wantOut: []string{"no cluster on this node"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			state := t.TempDir()
			if tc.adminConf {
				writeFile(t, filepath.Join(state, "admin.conf"), "")
			}
			writeFile(t, filepath.Join(state, "objects"), strings.Join(tc.objects, "\n")+"\n")
			// The stand-in records each delete as "delete KIND NAME|--all -n NAMESPACE"; `get
			// crd` fails for UNSERVED; `get KIND` lists that kind's objects from the objects file;
			// `delete` fails for STUCK.
			script := withGitOps
			if tc.noGitOps {
				script = withoutGitOps
			}
			out, exit := runWithKubectl(t, script, state, `#!/bin/bash
shift 2 # --kubeconfig <file>
ns=""
if [ "$1" = -n ]; then ns=$2; shift 2; fi
case "$1 $2" in
  "get crd") [ "$3" != "${UNSERVED}" ] ;;
  "delete "*)
    line="delete $2 $3"
    [ -z "${ns}" ] || line="${line} -n ${ns}"
    echo "${line}" >> "${STATE}/deletes"
    [ "$2" != "${STUCK}" ] ;;
  "get "*) awk -v k="$2" '$1 == k { sub(/^[^ ]+ /, ""); print }' "${STATE}/objects" ;;
esac
`, "UNSERVED="+tc.unserved, "STUCK="+tc.stuck)
			if exit != tc.wantExit {
				t.Fatalf("exit %d, want %d; output:\n%s", exit, tc.wantExit, out)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			raw, _ := os.ReadFile(filepath.Join(state, "deletes"))
			var deleted []string
			if s := strings.TrimSpace(string(raw)); s != "" {
				deleted = strings.Split(s, "\n")
			}
			if !slices.Equal(deleted, tc.wantDeletes) {
				t.Errorf("deleted %q, want %q", deleted, tc.wantDeletes)
			}
		})
	}
}

// TestCustomResourceGuardKnowsTheProgramsApplication: on a stack with the gitops key, the guard's
// delete step names exactly the Application the program declares, so a destroy deletes it and
// treats every other as someone else's; a stack without the key names none.
func TestCustomResourceGuardKnowsTheProgramsApplication(t *testing.T) {
	r := gitopsRun(t)
	guard := must(t, r, "command:remote:Command", "sesacthon-custom-resources-released")
	a := only(t, r, application)
	own := "applications.argoproj.io/" + str(a, "metadata", "namespace") + "/" + str(a, "metadata", "name")
	if got := workloads.OwnArgoObjects(r.Config.GitOps); !slices.Equal(got, []string{own}) {
		t.Errorf("OwnArgoObjects = %q, want the declared Application %q", got, own)
	}
	if !strings.Contains(str(guard, "delete"), "ours=("+own+" )") {
		t.Errorf("%s: the delete step does not name the declared Application %s as the program's", guard.Name, own)
	}
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		guard := must(t, r, "command:remote:Command", "sesacthon-custom-resources-released")
		if !strings.Contains(str(guard, "delete"), "ours=()") {
			t.Errorf("%s: a stack without the gitops key names Argo CD objects as its own", guard.Name)
		}
	})
}
