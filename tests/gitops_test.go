package tests

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/internal/manifest"
	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/versions"
	"github.com/waste-coach/infra/workloads"
)

const (
	gitopsKey   = "waste-coach-infra:gitops"
	gitopsValue = `{"repoURL":"https://github.com/example/waste-coach-deploy.git","path":"envs/prod","targetRevision":"main","namespaces":["app-jobs","reports"]}`
	appProject  = "kubernetes:argoproj.io/v1alpha1:AppProject"
	application = "kubernetes:argoproj.io/v1alpha1:Application"
)

func gitopsRun(t *testing.T) *offline.Result {
	t.Helper()
	r, err := offline.RunConfig("prod", prodWith(t, map[string]string{gitopsKey: gitopsValue}))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func appProjectNamed(t *testing.T, r *offline.Result, name string) *mocks.Resource {
	t.Helper()
	for _, p := range r.OfType(appProject) {
		if str(p, "metadata", "name") == name {
			return p
		}
	}
	t.Fatalf("stack %s declares no AppProject %s", r.Stack, name)
	return nil
}

func only(t *testing.T, r *offline.Result, typ string) *mocks.Resource {
	t.Helper()
	all := r.OfType(typ)
	if len(all) != 1 {
		t.Fatalf("stack %s declares %d %s, want 1", r.Stack, len(all), typ)
	}
	return all[0]
}

// TestWithoutGitOpsArgoCDSyncsNothing: the stack files set no gitops key, so Argo CD is the UI
// only, and no deployed stack gets a resource it did not have.
func TestWithoutGitOpsArgoCDSyncsNothing(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		if r.Config.GitOps != nil {
			t.Fatalf("Pulumi.%s.yaml sets gitops; this test expects the stack files without it", r.Stack)
		}
		if n := len(r.OfType(application)); n != 0 {
			t.Errorf("%d %s declared without the gitops key", n, application)
		}
		for _, p := range r.OfType(appProject) {
			if name := str(p, "metadata", "name"); name != "default" {
				t.Errorf("AppProject %s declared without the gitops key (only the locked default is)", name)
			}
		}
		for _, res := range r.OfType("waste-coach-infra:workloads:GitOps") {
			t.Errorf("GitOps component %s declared without the gitops key", res.Name)
		}
	})
}

// TestAppProjectConfinesTheApplicationTeam: one repository, the gitops namespaces of this cluster,
// no cluster-scoped kind, and only the namespaced kinds that cannot touch what the program owns.
func TestAppProjectConfinesTheApplicationTeam(t *testing.T) {
	r := gitopsRun(t)
	p := appProjectNamed(t, r, workloads.GitOpsProject)
	if str(p, "metadata", "name") != workloads.GitOpsProject || str(p, "metadata", "namespace") != workloads.NamespaceArgoCD {
		t.Errorf("AppProject %s/%s", str(p, "metadata", "namespace"), str(p, "metadata", "name"))
	}
	if v := prop(p, "spec", "sourceRepos"); !v.IsArray() || len(v.ArrayValue()) != 1 || str(p, "spec", "sourceRepos", 0) != "https://github.com/example/waste-coach-deploy.git" {
		t.Errorf("sourceRepos %v, want only the gitops repository", v)
	}
	if v := prop(p, "spec", "clusterResourceWhitelist"); !v.IsArray() || len(v.ArrayValue()) != 0 {
		t.Errorf("clusterResourceWhitelist %v, want an empty list: Argo CD may create no cluster-scoped object (a ClusterRoleBinding, a CRD, a Namespace)", v)
	}
	var dests []string
	for i := range prop(p, "spec", "destinations").ArrayValue() {
		if s := str(p, "spec", "destinations", i, "server"); s != workloads.InClusterServer {
			t.Errorf("destination %d server %q, want this cluster only", i, s)
		}
		dests = append(dests, str(p, "spec", "destinations", i, "namespace"))
	}
	if strings.Join(dests, ",") != "app-jobs,reports" {
		t.Errorf("destinations %v, want the gitops namespaces only", dests)
	}
	var kinds []string
	for i := range prop(p, "spec", "namespaceResourceWhitelist").ArrayValue() {
		kinds = append(kinds, str(p, "spec", "namespaceResourceWhitelist", i, "group")+"/"+str(p, "spec", "namespaceResourceWhitelist", i, "kind"))
	}
	if len(kinds) == 0 {
		t.Fatal("namespaceResourceWhitelist is empty: Argo CD would allow every namespaced kind")
	}
	for _, forbidden := range []string{"/Secret", "networking.k8s.io/NetworkPolicy", "rbac.authorization.k8s.io/Role", "rbac.authorization.k8s.io/RoleBinding", "/PersistentVolumeClaim", "/ResourceQuota", "/LimitRange", "networking.k8s.io/Ingress", "*/*"} {
		if slices.Contains(kinds, forbidden) {
			t.Errorf("the AppProject allows %s", forbidden)
		}
	}
	// The program's own objects in a gitops namespace are of kinds the AppProject refuses.
	for _, res := range r.Resources {
		ns := str(res, "metadata", "namespace")
		if !slices.Contains(dests, ns) {
			continue
		}
		kind := strings.TrimPrefix(res.Type, "kubernetes:")
		group, k := "", kind[strings.LastIndex(kind, ":")+1:]
		if gv := strings.Split(kind, ":")[0]; strings.Contains(gv, "/") && !strings.HasPrefix(gv, "core/") {
			group = strings.Split(gv, "/")[0]
		}
		if slices.Contains(kinds, group+"/"+k) {
			t.Errorf("the program declares %s %s/%s, a kind Argo CD may sync: the two would fight over it", k, ns, str(res, "metadata", "name"))
		}
	}
}

// TestApplicationSyncsAutomaticallyWithPruneAndSelfHeal, from the gitops repository, inside the
// project, polled as the design record says.
func TestApplicationSyncsAutomaticallyWithPruneAndSelfHeal(t *testing.T) {
	r := gitopsRun(t)
	a := only(t, r, application)
	for path, want := range map[string]string{
		"metadata.name":                      workloads.GitOpsApplication,
		"metadata.namespace":                 workloads.NamespaceArgoCD,
		"spec.project":                       workloads.GitOpsProject,
		"spec.source.repoURL":                "https://github.com/example/waste-coach-deploy.git",
		"spec.source.path":                   "envs/prod",
		"spec.source.targetRevision":         "main",
		"spec.destination.server":            workloads.InClusterServer,
		"spec.destination.namespace":         "app-jobs",
		"spec.syncPolicy.automated.prune":    "true",
		"spec.syncPolicy.automated.selfHeal": "true",
	} {
		var keys []any
		for _, k := range strings.Split(path, ".") {
			keys = append(keys, k)
		}
		if got := str(a, keys...); got != want {
			t.Errorf("Application %s = %q, want %q", path, got, want)
		}
	}
	if !r.DependsOn(a, argoRelease(t, r)) {
		t.Error("the Application does not wait for Argo CD's release (its CRDs)")
	}
	if got := str(argoRelease(t, r), "values", "configs", "cm", "timeout.reconciliation"); got != "120s" {
		t.Errorf("argo-cd timeout.reconciliation %q, want 120s: with Argo CD's 60 s jitter it polls Git every 3 minutes at most (design record)", got)
	}
	for _, ns := range []string{"app-jobs", "reports"} {
		n := must(t, r, "kubernetes:core/v1:Namespace", r.Config.ClusterName+"-gitops-ns-"+ns)
		if got := str(n, "metadata", "labels", "pod-security.kubernetes.io/enforce"); got != "restricted" {
			t.Errorf("namespace %s enforces %q, want restricted", ns, got)
		}
		var deny bool
		for _, np := range r.OfType("kubernetes:networking.k8s.io/v1:NetworkPolicy") {
			if str(np, "metadata", "namespace") == ns && str(np, "metadata", "name") == "default-deny" {
				deny = true
			}
		}
		if !deny {
			t.Errorf("gitops namespace %s has no default-deny NetworkPolicy", ns)
		}
	}
}

// TestGitOpsRefusesANamespaceOfTheProgram before any resource is declared.
func TestGitOpsRefusesANamespaceOfTheProgram(t *testing.T) {
	v := strings.Replace(gitopsValue, `"reports"`, `"monitoring"`, 1)
	r, err := offline.RunConfig("prod", prodWith(t, map[string]string{gitopsKey: v}))
	if err == nil || !strings.Contains(err.Error(), gitopsKey+".namespaces[1]") || !strings.Contains(err.Error(), `"monitoring"`) {
		t.Fatalf("a gitops namespace of the program must be refused by key and value, got %v", err)
	}
	if len(r.Resources) != 0 {
		t.Errorf("%d resources declared before the refusal", len(r.Resources))
	}
}

// TestPlatformNamespacesListEveryNamespaceOfTheProgram: the gitops check refuses the namespaces
// in config.PlatformNamespaces; a namespace the program starts to use must be added there, or a
// gitops key could hand it to Argo CD.
func TestPlatformNamespacesListEveryNamespaceOfTheProgram(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		for _, res := range r.Resources {
			if !strings.HasPrefix(res.Type, "kubernetes:") {
				continue
			}
			ns := str(res, "metadata", "namespace")
			if res.Type == "kubernetes:core/v1:Namespace" {
				ns = str(res, "metadata", "name")
			}
			if res.Type == "kubernetes:helm.sh/v3:Release" {
				ns = str(res, "namespace")
			}
			if ns != "" && !slices.Contains(config.PlatformNamespaces, ns) {
				t.Errorf("%s %s is in namespace %s, missing from config.PlatformNamespaces", res.Type, res.Name, ns)
			}
		}
	})
}

// TestArgoObjectsMatchThePinnedCRDs walks the AppProject's and the Application's specs against the
// schemas of the pinned Argo CD chart's CRDs: a misspelt field would be dropped by the API server
// (pruned by the structural schema) and the setting silently lost.
func TestArgoObjectsMatchThePinnedCRDs(t *testing.T) {
	schemas := argoCRDSchemas(t)
	r := gitopsRun(t)
	for _, o := range []struct {
		kind string
		obj  *mocks.Resource
	}{
		{"AppProject", appProjectNamed(t, r, workloads.GitOpsProject)},
		{"AppProject", appProjectNamed(t, r, "default")},
		{"Application", only(t, r, application)},
	} {
		kind := o.kind
		schema, ok := schemas[kind]
		if !ok {
			t.Fatalf("no %s CRD in %s", kind, versions.ArgoCD.Archive())
		}
		spec := o.obj.Inputs.Mappable()["spec"]
		for _, p := range unknownFields(spec, schema["properties"].(map[string]any)["spec"].(map[string]any), "spec") {
			t.Errorf("%s: %s is not in the CRD's schema", kind, p)
		}
		if req, _ := schema["properties"].(map[string]any)["spec"].(map[string]any)["required"].([]any); len(req) > 0 {
			for _, f := range req {
				if _, ok := spec.(map[string]any)[f.(string)]; !ok {
					t.Errorf("%s: required spec.%s missing", kind, f)
				}
			}
		}
	}
}

// unknownFields returns the paths of v that schema does not declare.
func unknownFields(v any, schema map[string]any, path string) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		props, _ := schema["properties"].(map[string]any)
		if props == nil {
			return nil // free-form (additionalProperties or preserve-unknown-fields)
		}
		for k, val := range x {
			sub, ok := props[k].(map[string]any)
			if !ok {
				out = append(out, path+"."+k)
				continue
			}
			out = append(out, unknownFields(val, sub, path+"."+k)...)
		}
	case []any:
		items, _ := schema["items"].(map[string]any)
		for _, val := range x {
			if items != nil {
				out = append(out, unknownFields(val, items, path+"[]")...)
			}
		}
	}
	return out
}

// argoCRDSchemas reads the openAPIV3Schema of each CRD the pinned Argo CD chart ships as a
// template (templates/crds), by kind. Template lines there are control lines only.
func argoCRDSchemas(t *testing.T) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	files := chartFiles(t, versions.ArgoCD, func(name string) bool { return strings.HasPrefix(name, "argo-cd/templates/crds/") })
	for _, name := range slices.Sorted(maps.Keys(files)) {
		b := files[name]
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if !strings.HasPrefix(strings.TrimSpace(l), "{{") {
				lines = append(lines, l)
			}
		}
		var crd struct {
			Spec struct {
				Names struct {
					Kind string `yaml:"kind"`
				} `yaml:"names"`
				Versions []struct {
					Name   string `yaml:"name"`
					Schema struct {
						OpenAPIV3Schema map[string]any `yaml:"openAPIV3Schema"`
					} `yaml:"schema"`
				} `yaml:"versions"`
			} `yaml:"spec"`
		}
		if err := yaml.Unmarshal([]byte(strings.Join(lines, "\n")), &crd); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, v := range crd.Spec.Versions {
			if v.Name == "v1alpha1" {
				out[crd.Spec.Names.Kind] = v.Schema.OpenAPIV3Schema
			}
		}
	}
	return out
}

// TestArgoCDCannotActOutsideItsNamespaces: Argo CD's chart gives its controller every verb on
// every kind and its server get, patch and delete on every kind (one is served through the
// ALB). Here the controller may only read, cluster-wide, the kinds it caches (no Secret, no RBAC,
// no CRD), the server only list Events and read and update Applications; their writes are
// Roles in the gitops namespaces, for GitOpsKinds only; Argo CD caches no other kind; and the
// `default` project, which Argo CD makes open to everything, is locked, taken over from the
// server that created it.
func TestArgoCDCannotActOutsideItsNamespaces(t *testing.T) {
	check := func(t *testing.T, r *offline.Result) {
		rel := must(t, r, "kubernetes:helm.sh/v3:Release", "sesacthon-argocd-argo-cd")
		values := manifest.PlainMap(rel.Inputs)["values"]
		for _, part := range []string{"controller", "server"} {
			if at(values, part, "clusterRoleRules", "enabled") != true {
				t.Errorf("%s keeps the chart's cluster-wide rules (every kind)", part)
			}
			for _, rule := range asList(at(values, part, "clusterRoleRules", "rules")) {
				for _, res := range asList(at(rule, "resources")) {
					if res == "*" || res == "secrets" || strings.Contains(fmt.Sprint(at(rule, "apiGroups")), "rbac") || fmt.Sprint(at(rule, "apiGroups")) == "[*]" {
						t.Errorf("%s may %v %v in %v cluster-wide", part, at(rule, "verbs"), res, at(rule, "apiGroups"))
					}
				}
				for _, v := range asList(at(rule, "verbs")) {
					allowed := []any{"get", "list", "watch"}
					if part == "server" {
						allowed = append(allowed, "update", "create")
					}
					if !slices.Contains(allowed, v) || (v == "create" && fmt.Sprint(at(rule, "resources")) != "[events]") || (v == "update" && fmt.Sprint(at(rule, "apiGroups")) != "[argoproj.io]") {
						t.Errorf("%s may %v %v cluster-wide", part, v, at(rule, "resources"))
					}
				}
			}
		}
		if inc, _ := at(values, "configs", "cm", "resource.inclusions").(string); !strings.Contains(inc, "Deployment") || strings.Contains(inc, "Secret") {
			t.Errorf("Argo CD's cache includes %q", inc)
		}
		def := appProjectNamed(t, r, "default")
		spec := manifest.PlainMap(def.Inputs)["spec"]
		if len(asList(at(spec, "sourceRepos"))) != 0 || len(asList(at(spec, "destinations"))) != 0 || fmt.Sprint(at(spec, "namespaceResourceBlacklist")) != "[map[group:* kind:*]]" {
			t.Errorf("the default project is not locked: %v", spec)
		}
		if at(manifest.PlainMap(def.Inputs)["metadata"], "annotations", "pulumi.com/patchForce") != "true" {
			t.Error("the default project, which Argo CD's server creates first, is not taken over (patchForce)")
		}
		// Argo CD's server creates it before the release is ready: only the provider that
		// upserts existing objects can declare it (the tier's stops at "already exists").
		if !strings.Contains(def.Provider, "$pulumi:providers:kubernetes::sesacthon-crds::") {
			t.Errorf("the default project is declared with provider %s, not the upserting one (sesacthon-crds)", def.Provider)
		}
	}
	forEachStack(t, check)
	r := gitopsRun(t)
	check(t, r)
	roles := objects(r, "Role")
	for _, ns := range r.Config.GitOps.Namespaces {
		for _, account := range []string{workloads.ArgoCDControllerAccount, workloads.ArgoCDServerAccount} {
			role := roles[ns+"/"+account]
			if role == nil {
				t.Errorf("no Role %s in gitops namespace %s", account, ns)
				continue
			}
			for _, rule := range asList(at(role, "rules")) {
				if res := fmt.Sprint(at(rule, "resources")); strings.Contains(res, "secrets") || strings.Contains(res, "*") || strings.Contains(res, "roles") {
					t.Errorf("%s's Role in %s reaches %s", account, ns, res)
				}
			}
			binding := objects(r, "RoleBinding")[ns+"/"+account]
			if at(binding, "subjects", 0, "name") != account || at(binding, "subjects", 0, "namespace") != workloads.NamespaceArgoCD || at(binding, "roleRef", "name") != account {
				t.Errorf("%s's RoleBinding in %s: %v", account, ns, binding)
			}
		}
	}
}
