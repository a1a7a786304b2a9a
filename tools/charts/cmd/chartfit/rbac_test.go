package main

import (
	"strings"
	"testing"
)

// The charts' RBAC as the program's values make it, in miniature: Argo CD's controller and
// server read every kind cluster-wide; Grafana has a Role in its namespace; KEDA's operator
// ClusterRole is bound by RoleBindings in app and keda; metrics-server's auth delegation binds
// a built-in role; a ClusterRole names the one Secret it reads.
const (
	argoRBAC = `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: argocd-application-controller
rules:
  - apiGroups: ["*"]
    resources: ["*"]
    verbs: ["*"]
  - nonResourceURLs: ["*"]
    verbs: ["*"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: argocd-application-controller
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: argocd-application-controller
subjects:
  - kind: ServiceAccount
    name: argocd-application-controller
    namespace: argocd
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: argocd-server
rules:
  - apiGroups: ["*"]
    resources: ["*"]
    verbs: [delete, get, patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: argocd-server
roleRef:
  kind: ClusterRole
  name: argocd-server
subjects:
  - kind: ServiceAccount
    name: argocd-server
    namespace: argocd
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: argocd-application-controller
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: argocd-server
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: argocd-notifications
rules:
  - apiGroups: [""]
    resources: [secrets]
    resourceNames: [argocd-notifications-secret]
    verbs: [get, list, watch]
  - apiGroups: [apps]
    resources: [secrets]
    verbs: [list]
  - apiGroups: [""]
    resources: [secrets]
    verbs: [create, update, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: argocd-notifications
roleRef:
  kind: ClusterRole
  name: argocd-notifications
subjects:
  - kind: ServiceAccount
    name: argocd-notifications
    namespace: argocd
`
	grafanaRBAC = `apiVersion: v1
kind: ServiceAccount
metadata:
  name: kube-prometheus-stack-grafana
  namespace: monitoring
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: kube-prometheus-stack-grafana
  namespace: monitoring
rules:
  - apiGroups: [""]
    resources: [configmaps, secrets]
    verbs: [get, watch, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: kube-prometheus-stack-grafana
  namespace: monitoring
  labels:
    app.kubernetes.io/name: grafana
roleRef:
  kind: Role
  name: kube-prometheus-stack-grafana
subjects:
  - kind: ServiceAccount
    name: kube-prometheus-stack-grafana
    namespace: monitoring
`
	kedaRBAC = `apiVersion: v1
kind: ServiceAccount
metadata:
  name: keda-operator
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: keda-operator
rules:
  - apiGroups: [""]
    resources: [secrets]
    verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: keda-operator
  namespace: app
roleRef:
  kind: ClusterRole
  name: keda-operator
subjects:
  - kind: ServiceAccount
    name: keda-operator
    namespace: keda
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: keda-operator
  namespace: keda
roleRef:
  kind: ClusterRole
  name: keda-operator
subjects:
  - kind: ServiceAccount
    name: keda-operator
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: keda-operator-system-auth-delegator
roleRef:
  kind: ClusterRole
  name: system:auth-delegator
subjects:
  - kind: ServiceAccount
    name: keda-operator-metrics-apiserver
    namespace: keda
`
)

// testAllowed is the allowed table of the synthetic charts: Argo CD's two ServiceAccounts.
var testAllowed = map[string]Allowed{
	"argocd/argocd-application-controller": {"argo-cd", "test"},
	"argocd/argocd-server":                 {"argo-cd", "test"},
}

// rbacReleases parses the synthetic charts, each as its release's output; extra is added to the
// release it names (argo-cd, kube-prometheus-stack or keda).
func rbacReleases(t *testing.T, extra map[string]string) []*Rendered {
	t.Helper()
	var out []*Rendered
	for _, r := range []struct{ name, ns, archive, manifest string }{
		{"argo-cd", "argocd", "argo-cd-9.3.1.tgz", argoRBAC},
		{"kube-prometheus-stack", "monitoring", "kube-prometheus-stack-79.7.1.tgz", grafanaRBAC},
		{"keda", "keda", "keda-2.20.2.tgz", kedaRBAC},
	} {
		manifest := r.manifest
		if e := extra[r.name]; e != "" {
			manifest += "---\n" + e
		}
		objs, err := parseManifests(manifest, nil)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &Rendered{Release: Release{Name: r.name, Namespace: r.ns}, Archive: r.archive, Objects: objs})
	}
	return out
}

// The program's RBAC passes with Argo CD's two readers, printing a line for each and for every
// assertion; each way of widening it fails, naming the ServiceAccount and the binding.
func TestCheckSecretReadersOnSyntheticRBAC(t *testing.T) {
	for _, c := range []struct {
		name    string
		extra   map[string]string  // objects added to a release
		replace [2]string          // one replacement in the KEDA chart's output
		allowed map[string]Allowed // testAllowed when nil
		want    []string           // each in one finding; none means the check passes
		report  []string           // each in the report
		absent  []string           // in no finding
	}{
		{name: "the program's values", report: []string{
			"ok   argocd/argocd-application-controller", "release argo-cd; allowed: test; via ClusterRoleBinding argocd-application-controller -> ClusterRole argocd-application-controller (*: apiGroups [*] resources [*] verbs [*])",
			"ok   argocd/argocd-server", "(get: apiGroups [*] resources [*] verbs [delete,get,patch])",
			"ok   aggregated ClusterRoles: none rendered",
			"ok   Grafana (served to the internet; rbac.namespaced): monitoring/kube-prometheus-stack-grafana cannot read Secrets cluster-wide",
			"ok   KEDA's operator (watchNamespace app): keda/keda-operator cannot read Secrets cluster-wide",
			"ok   Grafana: no ClusterRoleBinding (monitoring/kube-prometheus-stack-grafana bound by RoleBinding monitoring/kube-prometheus-stack-grafana -> Role kube-prometheus-stack-grafana)",
			"ok   KEDA: ClusterRole keda-operator bound by RoleBindings in [app, keda] (want [app, keda]), by ClusterRoleBindings [] (want none)",
		}},
		{name: "Grafana's chart ClusterRole (rbac.namespaced false)", extra: map[string]string{"kube-prometheus-stack": `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: kube-prometheus-stack-grafana-clusterrole
rules:
  - apiGroups: [""]
    resources: [configmaps, secrets]
    verbs: [get, watch, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: kube-prometheus-stack-grafana-clusterrolebinding
roleRef:
  kind: ClusterRole
  name: kube-prometheus-stack-grafana-clusterrole
subjects:
  - kind: ServiceAccount
    name: kube-prometheus-stack-grafana
    namespace: monitoring
`}, want: []string{
			"release kube-prometheus-stack: monitoring/kube-prometheus-stack-grafana may read every Secret of the cluster (get,list,watch) through ClusterRoleBinding kube-prometheus-stack-grafana-clusterrolebinding -> ClusterRole kube-prometheus-stack-grafana-clusterrole",
			"Grafana (served to the internet; rbac.namespaced): monitoring/kube-prometheus-stack-grafana may read every Secret of the cluster through ClusterRoleBinding kube-prometheus-stack-grafana-clusterrolebinding",
			"Grafana has a ClusterRoleBinding, ClusterRoleBinding kube-prometheus-stack-grafana-clusterrolebinding -> ClusterRole kube-prometheus-stack-grafana-clusterrole",
		}, report: []string{"FAIL monitoring/kube-prometheus-stack-grafana", "NOT in the allowed table", "FAIL Grafana: ClusterRoleBinding(s)"}},
		{name: "a Grafana ClusterRoleBinding without Secrets still fails", extra: map[string]string{"kube-prometheus-stack": `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: grafana-view
  labels:
    app.kubernetes.io/name: grafana
roleRef:
  kind: ClusterRole
  name: view
subjects:
  - kind: ServiceAccount
    name: other
    namespace: monitoring
`}, want: []string{"Grafana has a ClusterRoleBinding, ClusterRoleBinding grafana-view -> ClusterRole view (subjects monitoring/other)"}},
		{name: "KEDA without watchNamespace", replace: [2]string{"kind: RoleBinding\nmetadata:\n  name: keda-operator\n  namespace: app", "kind: ClusterRoleBinding\nmetadata:\n  name: keda-operator"}, want: []string{
			"release keda: keda/keda-operator may read every Secret of the cluster (list,watch) through ClusterRoleBinding keda-operator -> ClusterRole keda-operator (apiGroups [\"\"] resources [secrets] verbs [list,watch])",
			"KEDA's operator (watchNamespace app): keda/keda-operator may read every Secret of the cluster through ClusterRoleBinding keda-operator",
			"KEDA's operator ClusterRole keda-operator: bound cluster-wide by ClusterRoleBinding keda-operator -> ClusterRole keda-operator (subjects keda/keda-operator)",
			"KEDA's operator ClusterRole keda-operator: no RoleBinding in app",
		}, report: []string{"FAIL KEDA: ClusterRole keda-operator bound by RoleBindings in [keda] (want [app, keda]), by ClusterRoleBindings [keda-operator] (want none)"}},
		{name: "KEDA bound in another namespace", replace: [2]string{"namespace: app", "namespace: data"}, want: []string{
			"KEDA's operator ClusterRole keda-operator: bound in namespace data by RoleBinding data/keda-operator -> ClusterRole keda-operator: only app, keda are allowed",
			"no RoleBinding in app",
		}},
		{name: "a KEDA RoleBinding of another subject", replace: [2]string{"    name: keda-operator\n    namespace: keda", "    name: default\n    namespace: app"}, want: []string{
			"RoleBinding app/keda-operator -> ClusterRole keda-operator does not bind keda/keda-operator (subjects app/default)",
		}},
		{name: "KEDA's operator renamed", replace: [2]string{"kind: ServiceAccount\nmetadata:\n  name: keda-operator", "kind: ServiceAccount\nmetadata:\n  name: keda"}, want: []string{
			"KEDA's operator (watchNamespace app): the keda chart renders no ServiceAccount keda/keda-operator",
		}},
		{name: "an allowed reader that no longer reads", allowed: map[string]Allowed{"argocd/argocd-application-controller": {"argo-cd", "test"}, "argocd/argocd-server": {"argo-cd", "test"}, "monitoring/gone": {"kube-prometheus-stack", "old"}, "logging/fluent-bit": {"fluent-bit", "not rendered here"}},
			want:   []string{"monitoring/gone is an allowed cluster-wide Secret reader (clusterSecretReaders: old), but the render gives it no such read"},
			absent: []string{"logging/fluent-bit"}}, // its chart is not rendered: not held to this render
		{name: "a reader the table lacks", allowed: map[string]Allowed{"argocd/argocd-application-controller": {"argo-cd", "test"}},
			want: []string{"release argo-cd: argocd/argocd-server may read every Secret of the cluster (get) through ClusterRoleBinding argocd-server -> ClusterRole argocd-server"}},
		{name: "a group, a built-in role and an unknown role", extra: map[string]string{"argo-cd": `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: everyone-edits
roleRef:
  kind: ClusterRole
  name: edit
subjects:
  - kind: Group
    name: system:serviceaccounts
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: mystery
roleRef:
  kind: ClusterRole
  name: system:mystery
subjects:
  - kind: ServiceAccount
    name: argocd-server
    namespace: argocd
`}, want: []string{
			"Group system:serviceaccounts may read every Secret of the cluster (*) through ClusterRoleBinding everyone-edits -> ClusterRole edit (the built-in ClusterRole edit)",
			"ClusterRoleBinding mystery -> ClusterRole system:mystery: the ClusterRole system:mystery is neither rendered by the charts nor a built-in role the check knows",
		}},
		{name: "an aggregated ClusterRole", extra: map[string]string{"argo-cd": `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: aggregate
aggregationRule:
  clusterRoleSelectors:
    - matchLabels:
        example.com/aggregate: "true"
rules: []
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: part
  labels:
    example.com/aggregate: "true"
rules:
  - apiGroups: [""]
    resources: [secrets]
    verbs: [watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: aggregate
roleRef:
  kind: ClusterRole
  name: aggregate
subjects:
  - kind: ServiceAccount
    name: argocd-repo-server
`}, want: []string{"argocd/argocd-repo-server may read every Secret of the cluster (watch) through ClusterRoleBinding aggregate -> ClusterRole aggregate (apiGroups [\"\"] resources [secrets] verbs [watch] (aggregated from part))"},
			report: []string{"note ClusterRole aggregate (release argo-cd) is aggregated (aggregationRule) from part"}},
		{name: "a Secret read added to the built-in view", extra: map[string]string{"keda": `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: keda-view
  labels:
    rbac.authorization.k8s.io/aggregate-to-view: "true"
rules:
  - apiGroups: [""]
    resources: ["*"]
    verbs: [list]
`}, want: []string{"ClusterRole keda-view adds a read of Secrets (apiGroups [\"\"] resources [*] verbs [list]) to the built-in view ClusterRole"}},
		{name: "a RoleBinding of a reading ClusterRole reads one namespace only", extra: map[string]string{"kube-prometheus-stack": `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: grafana-secrets
roleRef:
  kind: ClusterRole
  name: cluster-admin
subjects:
  - kind: ServiceAccount
    name: kube-prometheus-stack-grafana
`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rendered := rbacReleases(t, c.extra)
			if c.replace[0] != "" {
				manifest := strings.Replace(kedaRBAC, c.replace[0], c.replace[1], 1)
				if manifest == kedaRBAC {
					t.Fatalf("KEDA's synthetic output has no %q", c.replace[0])
				}
				objs, err := parseManifests(manifest, nil)
				if err != nil {
					t.Fatal(err)
				}
				rendered[2].Objects = objs
			}
			allowed := c.allowed
			if allowed == nil {
				allowed = testAllowed
			}
			var report strings.Builder
			findings := checkSecretReaders(rendered, allowed, &report)
			got := findingText(findings)
			if len(c.want) == 0 && len(findings) > 0 {
				t.Errorf("want no finding, got:\n%s", got)
			}
			for _, want := range c.want {
				if !strings.Contains(got, want) {
					t.Errorf("no finding contains %q; got:\n%s", want, got)
				}
			}
			for _, no := range c.absent {
				if strings.Contains(got, no) {
					t.Errorf("a finding names %q; got:\n%s", no, got)
				}
			}
			for _, line := range c.report {
				if !strings.Contains(report.String(), line) {
					t.Errorf("the report lacks %q:\n%s", line, report.String())
				}
			}
		})
	}
}

// The allowed table never lets Grafana, KEDA's operator or Argo CD read every Secret.
func TestTheAllowedReadersExcludeGrafanaAndKEDA(t *testing.T) {
	for _, m := range mustNotReadSecrets {
		if _, ok := clusterSecretReaders[m.Subject]; ok {
			t.Errorf("clusterSecretReaders allows %s (%s)", m.Subject, m.What)
		}
	}
	// Argo CD's controller and server read only the kinds they cache (workloads/argocd_rbac.go):
	// the render must show no cluster-wide Secret read for them, which the table then refuses.
	for _, sa := range []string{"argocd/argocd-application-controller", "argocd/argocd-server"} {
		if _, ok := clusterSecretReaders[sa]; ok {
			t.Errorf("clusterSecretReaders allows Argo CD's %s (issue 27 item 2)", sa)
		}
	}
}

func TestSelectorsOfAggregation(t *testing.T) {
	labels := map[string]string{"a": "1", "b": "2"}
	for _, c := range []struct {
		sel  map[string]any
		want bool
	}{
		{map[string]any{}, false},
		{map[string]any{"matchLabels": map[string]any{"a": "1"}}, true},
		{map[string]any{"matchLabels": map[string]any{"a": "2"}}, false},
		{map[string]any{"matchExpressions": []any{map[string]any{"key": "b", "operator": "In", "values": []any{"2", "3"}}}}, true},
		{map[string]any{"matchExpressions": []any{map[string]any{"key": "b", "operator": "NotIn", "values": []any{"2"}}}}, false},
		{map[string]any{"matchExpressions": []any{map[string]any{"key": "c", "operator": "DoesNotExist"}}}, true},
		{map[string]any{"matchExpressions": []any{map[string]any{"key": "c", "operator": "Exists"}}}, false},
	} {
		if got := selects(c.sel, labels); got != c.want {
			t.Errorf("selects(%v) = %v, want %v", c.sel, got, c.want)
		}
	}
}
