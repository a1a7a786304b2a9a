package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// qText is a question's text, as the differences name it.
func qText(id string) string {
	q, ok := questionByID(id)
	if !ok {
		panic("no question " + id)
	}
	return q.text
}

// answersOf are the answers a table describes: every listed entry allowed, every other
// ServiceAccount of accounts refused everything.
func answersOf(table rbacTable, accounts map[string]rbacAccount) rbacAnswers {
	a := rbacAnswers{}
	for account := range accounts {
		a[account] = map[string]bool{}
	}
	for id, allowed := range table {
		for account := range allowed {
			if a[account] == nil {
				a[account] = map[string]bool{}
			}
			a[account][id] = true
		}
	}
	return a
}

// The table in the repository parses, and is exactly what formatRBACTable writes for its own
// answers: an answers file written after a change differs from it only where the answers do.
func TestRBACTableIsInItsOwnFormat(t *testing.T) {
	table, err := parseRBACTable(rbacTableText)
	if err != nil {
		t.Fatalf("%s: %v", rbacTableFile, err)
	}
	if got := formatRBACTable(answersOf(table, nil), table); got != rbacTableText {
		t.Errorf("%s is not in the format verify-local writes its answers in; want:\n%s", rbacTableFile, got)
	}
}

// A table that differs from the API server's answers fails, one line per difference naming the
// ServiceAccount, the question, the answer and the table's; so does a table entry for a
// ServiceAccount the platform lacks or the API server does not have.
func TestCompareRBACListsEveryDifference(t *testing.T) {
	table := rbacTable{
		"secrets-all-namespaces": {"monitoring/operator": "reads the monitors' Secrets"},
		"tokens":                 {"kube-system/ccm": "mints tokens"},
	}
	accounts := map[string]rbacAccount{
		"monitoring/operator": {origins: []string{"chart release kube-prometheus-stack"}, exists: true},
		"kube-system/ccm":     {origins: []string{"serviceaccount-ccm.yaml"}, exists: true},
		"argocd/server":       {origins: []string{"chart release argo-cd"}, exists: true},
	}
	for _, c := range []struct {
		name     string
		table    rbacTable
		answers  func(rbacAnswers)
		accounts func(map[string]rbacAccount)
		want     []string // each a substring of one difference, in order
	}{
		{name: "the answers are the table's"},
		{
			name:    "a ServiceAccount gains a right",
			answers: func(a rbacAnswers) { a["argocd/server"]["exec"] = true },
			want:    []string{"argocd/server: " + qText("exec") + ": the API server allows it (got yes), the table does not list it (want no)"},
		},
		{
			name:    "a ServiceAccount loses a right",
			answers: func(a rbacAnswers) { a["kube-system/ccm"]["tokens"] = false },
			want:    []string{"kube-system/ccm: " + qText("tokens") + ": the API server refuses it (got no), the table lists it (want yes: mints tokens)"},
		},
		{
			name:  "the table names a ServiceAccount no object or binding has",
			table: rbacTable{"escalate": {"keda/gone": "was here once"}},
			want:  []string{"keda/gone: escalate ClusterRoles (grant rights it does not hold): listed in the table, but the rendered platform has no such ServiceAccount"},
		},
		{
			name: "the table names a ServiceAccount a binding names but nothing creates",
			accounts: func(m map[string]rbacAccount) {
				m["kube-system/ccm"] = rbacAccount{origins: []string{"a subject of ClusterRoleBinding ccm"}}
			},
			want: []string{"kube-system/ccm: " + qText("tokens") + ": listed in the table, but the ServiceAccount does not exist (only a subject of ClusterRoleBinding ccm)"},
		},
		{
			name: "several differences, every one listed",
			answers: func(a rbacAnswers) {
				a["argocd/server"]["secrets-all-namespaces"] = true
				a["monitoring/operator"]["secrets-all-namespaces"] = false
				a["argocd/server"]["delete-namespaces"] = true
			},
			want: []string{
				"argocd/server: " + qText("secrets-all-namespaces") + ": the API server allows it",
				"monitoring/operator: " + qText("secrets-all-namespaces") + ": the API server refuses it",
				"argocd/server: " + qText("delete-namespaces") + ": the API server allows it",
			},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			tb := rbacTable{}
			for id, m := range table {
				tb[id] = map[string]string{}
				for k, v := range m {
					tb[id][k] = v
				}
			}
			for id, m := range c.table {
				if tb[id] == nil {
					tb[id] = map[string]string{}
				}
				for k, v := range m {
					tb[id][k] = v
				}
			}
			acc := map[string]rbacAccount{}
			for k, v := range accounts {
				acc[k] = v
			}
			answers := answersOf(table, accounts) // the answers of the table before the case's change
			if c.answers != nil {
				c.answers(answers)
			}
			if c.accounts != nil {
				c.accounts(acc)
			}
			got := compareRBAC(tb, answers, acc)
			if len(got) != len(c.want) {
				t.Fatalf("%d difference(s), want %d:\n%s", len(got), len(c.want), strings.Join(got, "\n"))
			}
			for i, w := range c.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("difference %d:\n  %s\nwant it to contain:\n  %s", i, got[i], w)
				}
			}
		})
	}
}

// The answers file keeps the table's reasons and asks for one for every new entry, so a changed
// table is reviewed line by line rather than copied.
func TestFormatRBACTableKeepsReasonsAndAsksForNewOnes(t *testing.T) {
	table := rbacTable{"tokens": {"kube-system/ccm": "mints tokens"}}
	answers := rbacAnswers{
		"kube-system/ccm":     {"tokens": true},
		"monitoring/operator": {"secrets-all-namespaces": true},
		"app/default":         {},
	}
	text := formatRBACTable(answers, table)
	for _, want := range []string{
		"tokens                 kube-system/ccm     mints tokens\n",
		"secrets-all-namespaces monitoring/operator TODO: why",
		"# escalate ClusterRoles (grant rights it does not hold)\n#   (no ServiceAccount)\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("answers file lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "app/default") {
		t.Errorf("a ServiceAccount allowed nothing is listed:\n%s", text)
	}
	if _, err := parseRBACTable(text); err != nil {
		t.Errorf("the answers file does not parse as a table: %v", err)
	}
}

func TestParseRBACTableRefusesWhatItCannotHold(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"tokens kube-system/ccm", "want <question> <namespace>/<name> <reason>"},
		{"mint kube-system/ccm why", `no question "mint"`},
		{"tokens ccm why", `"ccm" is not a ServiceAccount`},
		{"tokens kube-system/ccm/x why", "is not a ServiceAccount"},
		{"tokens kube-system/ccm why\ntokens kube-system/ccm again", "line 2: tokens kube-system/ccm is listed twice"},
	} {
		if _, err := parseRBACTable(c.text); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseRBACTable(%q) = %v, want an error containing %q", c.text, err, c.want)
		}
	}
}

func obj(kind, ns, name string, extra map[string]any) sourced {
	m := map[string]any{"kind": kind, "metadata": map[string]any{"name": name}}
	if ns != "" {
		m["metadata"].(map[string]any)["namespace"] = ns
	}
	for k, v := range extra {
		m[k] = v
	}
	return sourced{"test " + kind, &unstructured.Unstructured{Object: m}}
}

// Every ServiceAccount object, every ServiceAccount a binding names (a RoleBinding's subject
// without a namespace is in the binding's), and the default ServiceAccount of every namespace.
func TestRBACAccountsFindsEveryServiceAccount(t *testing.T) {
	accounts := rbacAccounts([]sourced{
		obj("Namespace", "", "app", nil),
		obj("ServiceAccount", "app", "uploads", nil),
		obj("RoleBinding", "keda", "reader", map[string]any{"subjects": []any{
			map[string]any{"kind": "ServiceAccount", "name": "keda-operator"},
			map[string]any{"kind": "User", "name": "someone"},
		}}),
		obj("ClusterRoleBinding", "", "ccm", map[string]any{"subjects": []any{
			map[string]any{"kind": "ServiceAccount", "name": "cloud-controller-manager", "namespace": "kube-system"},
		}}),
	})
	var keys []string
	for k := range accounts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"app/default", "app/uploads", "keda/default", "keda/keda-operator", "kube-system/cloud-controller-manager"}
	if !slices.Equal(keys, want) {
		t.Errorf("accounts %v, want %v", keys, want)
	}
	if o := accounts["keda/keda-operator"].origins; len(o) != 1 || !strings.Contains(o[0], "RoleBinding keda/reader") {
		t.Errorf("keda/keda-operator found by %q, want the RoleBinding keda/reader", o)
	}
}

// chart-rbac.yaml is required of a stack's render and must be chartfit's output for this
// render's helm-releases.yaml; a folder without helm-releases.yaml (testdata/broken) asks nothing.
func TestReadChartRBAC(t *testing.T) {
	dir := t.TempDir()
	if objs, err := readChartRBAC(dir); objs != nil || err != nil {
		t.Fatalf("no helm-releases.yaml: got %v, %v; want nothing to ask and no error", objs, err)
	}
	releases := []byte("name: keda\n")
	if err := os.WriteFile(filepath.Join(dir, "helm-releases.yaml"), releases, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readChartRBAC(dir); err == nil || !strings.Contains(err.Error(), "run chartfit -dir") {
		t.Errorf("no chart-rbac.yaml: got %v, want an error saying chartfit must run first", err)
	}
	sum := sha256.Sum256(releases)
	body := `---
# release keda: ServiceAccount keda/keda-operator
apiVersion: v1
kind: ServiceAccount
metadata:
  name: keda-operator
  namespace: keda
---
# release keda: ClusterRole keda-operator
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: keda-operator
`
	write := func(sha string) {
		if err := os.WriteFile(filepath.Join(dir, chartRBACFile), []byte("# header\n"+chartRBACSourceLine+sha+"\n"+body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(strings.Repeat("0", 64))
	if _, err := readChartRBAC(dir); err == nil || !strings.Contains(err.Error(), "run chartfit -dir "+dir+" again") {
		t.Errorf("chart-rbac.yaml of another render: got %v, want an error saying chartfit must run again", err)
	}
	write(hex.EncodeToString(sum[:]))
	objs, err := readChartRBAC(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || objs[0].obj.GetKind() != "ServiceAccount" || objs[0].obj.GetNamespace() != "keda" || objs[1].from != "chart release keda" {
		t.Errorf("objects %+v, want keda's ServiceAccount and ClusterRole from chart release keda", objs)
	}
}
