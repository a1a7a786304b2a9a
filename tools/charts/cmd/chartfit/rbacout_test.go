package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// chart-rbac.yaml holds every ServiceAccount and RBAC object of the charts and nothing else, each
// namespaced one in its release's namespace when it names none (KEDA's ServiceAccount and its
// RoleBinding in keda), an install hook's too but not a test hook's, in a fixed order; the header
// names the source's SHA-256.
func TestChartRBACHasEveryRBACObjectWithItsNamespace(t *testing.T) {
	hook, err := parseManifests(`apiVersion: v1
kind: ServiceAccount
metadata:
  name: argocd-redis-secret-init
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: not-rbac
`, []string{"pre-install", "pre-upgrade"})
	if err != nil {
		t.Fatal(err)
	}
	test, err := parseManifests(`apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: argocd-test
roleRef:
  kind: ClusterRole
  name: cluster-admin
subjects:
  - kind: ServiceAccount
    name: argocd-test
    namespace: argocd
`, []string{"test"})
	if err != nil {
		t.Fatal(err)
	}
	rendered := rbacReleases(t, nil)
	rendered[0].Objects = append(append(rendered[0].Objects, hook...), test...)

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "helm-releases.yaml"), []byte("name: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	counts, testOnly, err := writeChartRBAC(dir, rendered)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"argo-cd: ClusterRoleBinding argocd-test"}; !slices.Equal(testOnly, want) {
		t.Errorf("left out as test hooks: %q, want %q (only helm test creates them)", testOnly, want)
	}
	if got, want := countList(counts), "5 ServiceAccount, 4 ClusterRole, 1 Role, 4 ClusterRoleBinding, 3 RoleBinding"; got != want {
		t.Errorf("counts: %s, want %s", got, want)
	}
	b, err := os.ReadFile(filepath.Join(dir, chartRBACFile))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	sum := sha256.Sum256([]byte("name: x\n"))
	if want := chartRBACSourceLine + hex.EncodeToString(sum[:]) + "\n"; !strings.Contains(text, want) {
		t.Errorf("no line %q in:\n%s", want, text)
	}
	var order []string
	for i, doc := range strings.Split(text, "\n---\n")[1:] {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		kind, md := str(m, "kind"), dig(m, "metadata")
		if !slices.Contains(rbacKinds, kind) {
			t.Errorf("document %d is a %s: only ServiceAccounts and RBAC belong in %s", i, kind, chartRBACFile)
		}
		if namespacedRBAC[kind] && str(md, "namespace") == "" {
			t.Errorf("%s %s has no namespace", kind, str(md, "name"))
		}
		if !namespacedRBAC[kind] && str(md, "namespace") != "" {
			t.Errorf("cluster-scoped %s %s was given namespace %s", kind, str(md, "name"), str(md, "namespace"))
		}
		order = append(order, strings.SplitN(doc, "\n", 2)[0])
	}
	for _, want := range []string{
		"# release argo-cd: ServiceAccount argocd/argocd-redis-secret-init [hook pre-install,pre-upgrade]",
		"# release keda: ServiceAccount keda/keda-operator",
		"# release keda: RoleBinding keda/keda-operator",
		"# release kube-prometheus-stack: Role monitoring/kube-prometheus-stack-grafana",
	} {
		if !slices.Contains(order, want) {
			t.Errorf("no document %q among:\n%s", want, strings.Join(order, "\n"))
		}
	}
	sorted := slices.IsSortedFunc(order, func(a, b string) int {
		ra, rb := strings.Fields(a)[2], strings.Fields(b)[2]
		if ra != rb {
			return strings.Compare(ra, rb)
		}
		return slices.Index(rbacKinds, strings.Fields(a)[3]) - slices.Index(rbacKinds, strings.Fields(b)[3])
	})
	if !sorted {
		t.Errorf("documents are not ordered by release, then kind:\n%s", strings.Join(order, "\n"))
	}
	// The same input writes the same bytes.
	if _, _, err := writeChartRBAC(dir, rendered); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, chartRBACFile)); string(again) != text {
		t.Error("a second write of the same releases differs")
	}
}
