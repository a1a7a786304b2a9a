package main

// Who may do what: for every ServiceAccount of the rendered platform (the program's manifests and
// the charts' objects, which chartfit writes to chart-rbac.yaml and apply() applies here), the
// real API server answers SubjectAccessReviews for a fixed set of dangerous questions, and the
// answers must be exactly rbac-table.txt's. A ServiceAccount that gains one of these rights, one
// that loses it, and a table entry naming a ServiceAccount the platform does not have all fail.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
)

// chartRBACFile is what chartfit writes beside the render (tools/charts/cmd/chartfit/rbacout.go):
// every ServiceAccount, Role, ClusterRole and binding of the charts, namespaces filled as Helm would.
const chartRBACFile = "chart-rbac.yaml"

// chartRBACSourceLine starts chartfit's header line naming the SHA-256 of the helm-releases.yaml
// it rendered: a file older than the render is refused, not questioned.
const chartRBACSourceLine = "# helm-releases.yaml sha256: "

// rbacTableFile is the table's name in this folder, for messages.
const rbacTableFile = "tools/kube/cmd/verify-local/rbac-table.txt"

//go:embed rbac-table.txt
var rbacTableText string

// rbacAnswersFile is where the answers are written in the table's format, in the render's folder:
// after a change, the new table once every new line's reason is written.
const rbacAnswersFile = "rbac-answers.txt"

// rbacTableHeader opens the table and every answers file written in its format.
const rbacTableHeader = `# Who may do what: the ServiceAccounts of the rendered platform (the program's manifests, the
# charts' objects from chartfit's chart-rbac.yaml, every binding's ServiceAccount subjects and the
# default ServiceAccount of every namespace) that the real API server allows each question, by
# SubjectAccessReview (verify-local, rbac.go). Every ServiceAccount not listed for a question must be
# refused; every one listed must be allowed and exist. Cluster administrators (system:masters, the
# deployer's user) are people, not ServiceAccounts, and are not listed.
#
# One line per allowed answer: <question> <namespace>/<name> <why: the chart default or the
# program's RBAC that grants it>. verify-local writes the answers of a run in this format to
# out/<stack>/rbac-answers.txt, keeping the reasons of lines already here.
`

// rbacQuestion is one question asked of every ServiceAccount: allowed when the API server allows
// any of its requests.
type rbacQuestion struct {
	// id names the question in the table.
	id string
	// text says what it asks, for people.
	text string
	// asks are the requests; a namespace "" asks for every namespace at once.
	asks []authorizationv1.ResourceAttributes
}

// reads are get, list and watch of a resource in a namespace ("" for all).
func reads(namespace, resource string) []authorizationv1.ResourceAttributes {
	var out []authorizationv1.ResourceAttributes
	for _, verb := range []string{"get", "list", "watch"} {
		out = append(out, authorizationv1.ResourceAttributes{Namespace: namespace, Verb: verb, Resource: resource})
	}
	return out
}

// podMakers are create of pods and of every built-in workload that makes pods, in a namespace:
// whoever may create a Deployment there runs any pod there.
func podMakers(namespace string) []authorizationv1.ResourceAttributes {
	out := []authorizationv1.ResourceAttributes{{Namespace: namespace, Verb: "create", Resource: "pods"}}
	for _, r := range []struct{ group, resource string }{
		{"apps", "deployments"}, {"apps", "daemonsets"}, {"apps", "statefulsets"}, {"apps", "replicasets"},
		{"", "replicationcontrollers"}, {"batch", "jobs"}, {"batch", "cronjobs"},
	} {
		out = append(out, authorizationv1.ResourceAttributes{Namespace: namespace, Verb: "create", Group: r.group, Resource: r.resource})
	}
	return out
}

// rbacQuestions are the rights that turn one compromised pod into the cluster: reading every
// credential, running a pod beside the control plane's, and the RBAC, impersonation and token
// rights that grant any other right.
var rbacQuestions = []rbacQuestion{
	{"secrets-all-namespaces", "read Secrets cluster-wide (get, list or watch secrets in every namespace)", reads("", "secrets")},
	{"secrets-kube-system", "read Secrets in kube-system (get, list or watch)", reads("kube-system", "secrets")},
	{"pods-kube-system", "create pods in kube-system, directly or through a workload that makes them", podMakers("kube-system")},
	{"escalate", "escalate ClusterRoles (grant rights it does not hold)", []authorizationv1.ResourceAttributes{{Verb: "escalate", Group: "rbac.authorization.k8s.io", Resource: "clusterroles"}}},
	{"bind", "bind ClusterRoles (bind rights it does not hold)", []authorizationv1.ResourceAttributes{{Verb: "bind", Group: "rbac.authorization.k8s.io", Resource: "clusterroles"}}},
	{"impersonate", "impersonate users, groups or ServiceAccounts", []authorizationv1.ResourceAttributes{
		{Verb: "impersonate", Resource: "users"}, {Verb: "impersonate", Resource: "groups"}, {Verb: "impersonate", Resource: "serviceaccounts"}}},
	{"tokens", "mint tokens for any ServiceAccount (create serviceaccounts/token, or Secrets, which the token controller fills for a service-account-token Secret, in every namespace)", []authorizationv1.ResourceAttributes{
		{Verb: "create", Resource: "serviceaccounts", Subresource: "token"}, {Verb: "create", Resource: "secrets"}}},
	{"write-rbac", "create ClusterRoleBindings", []authorizationv1.ResourceAttributes{{Verb: "create", Group: "rbac.authorization.k8s.io", Resource: "clusterrolebindings"}}},
	{"exec", "exec into pods in every namespace (create pods/exec)", []authorizationv1.ResourceAttributes{{Verb: "create", Resource: "pods", Subresource: "exec"}}},
	{"delete-namespaces", "delete namespaces", []authorizationv1.ResourceAttributes{{Verb: "delete", Resource: "namespaces"}}},
}

func questionByID(id string) (rbacQuestion, bool) {
	i := slices.IndexFunc(rbacQuestions, func(q rbacQuestion) bool { return q.id == id })
	if i < 0 {
		return rbacQuestion{}, false
	}
	return rbacQuestions[i], true
}

// rbacTable is the table: question id -> ServiceAccount ("namespace/name") -> why it may.
type rbacTable map[string]map[string]string

// parseRBACTable reads the table: comments (#) and blank lines aside, each line is a question's
// id, a ServiceAccount as namespace/name, and the reason it may, which is required.
func parseRBACTable(text string) (rbacTable, error) {
	t := rbacTable{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 3 {
			return nil, fmt.Errorf("line %d: want <question> <namespace>/<name> <reason>, got %q", i+1, line)
		}
		id, account := fields[0], fields[1]
		if _, ok := questionByID(id); !ok {
			return nil, fmt.Errorf("line %d: no question %q (the questions: %s)", i+1, id, strings.Join(questionIDs(), ", "))
		}
		if ns, name, ok := strings.Cut(account, "/"); !ok || ns == "" || name == "" || strings.Contains(name, "/") {
			return nil, fmt.Errorf("line %d: %q is not a ServiceAccount as <namespace>/<name>", i+1, account)
		}
		if t[id] == nil {
			t[id] = map[string]string{}
		}
		if _, dup := t[id][account]; dup {
			return nil, fmt.Errorf("line %d: %s %s is listed twice", i+1, id, account)
		}
		t[id][account] = strings.Join(fields[2:], " ")
	}
	return t, nil
}

func questionIDs() []string {
	var out []string
	for _, q := range rbacQuestions {
		out = append(out, q.id)
	}
	return out
}

// rbacAnswers are the API server's answers: ServiceAccount -> question id -> allowed.
type rbacAnswers map[string]map[string]bool

// allowedBy lists, for a question, the ServiceAccounts the answers allow, sorted.
func (a rbacAnswers) allowedBy(id string) []string {
	var out []string
	for _, account := range slices.Sorted(maps.Keys(a)) {
		if a[account][id] {
			out = append(out, account)
		}
	}
	return out
}

// rbacAccount is a ServiceAccount of the rendered platform: where it was found, and whether the
// API server has it.
type rbacAccount struct {
	origins []string
	exists  bool
}

// compareRBAC lists every difference between the answers and the table: an answer the table does
// not give (allowed but absent, or listed but refused), and a table entry for a ServiceAccount the
// platform does not have. Sorted, one line each.
func compareRBAC(table rbacTable, answers rbacAnswers, accounts map[string]rbacAccount) []string {
	var out []string
	for _, q := range rbacQuestions {
		for _, account := range slices.Sorted(maps.Keys(answers)) {
			got := answers[account][q.id]
			_, want := table[q.id][account]
			if got == want {
				continue
			}
			if got {
				out = append(out, fmt.Sprintf("%s: %s: the API server allows it (got yes), the table does not list it (want no)", account, q.text))
			} else {
				out = append(out, fmt.Sprintf("%s: %s: the API server refuses it (got no), the table lists it (want yes: %s)", account, q.text, table[q.id][account]))
			}
		}
		for _, account := range slices.Sorted(maps.Keys(table[q.id])) {
			a, known := accounts[account]
			switch {
			case !known:
				out = append(out, fmt.Sprintf("%s: %s: listed in the table, but the rendered platform has no such ServiceAccount (no object, no binding names it)", account, q.text))
			case !a.exists:
				out = append(out, fmt.Sprintf("%s: %s: listed in the table, but the ServiceAccount does not exist (only %s)", account, q.text, strings.Join(a.origins, "; ")))
			}
		}
	}
	return out
}

// formatRBACTable writes answers in the table's format, keeping the table's reason for every
// entry it already has and asking for one for every new entry: after a change, it is the new
// table once each new line's reason is written.
func formatRBACTable(answers rbacAnswers, table rbacTable) string {
	width := 0
	for _, q := range rbacQuestions {
		for _, account := range answers.allowedBy(q.id) {
			width = max(width, len(account))
		}
	}
	var b strings.Builder
	b.WriteString(rbacTableHeader)
	for _, q := range rbacQuestions {
		fmt.Fprintf(&b, "\n# %s\n", q.text)
		allowed := answers.allowedBy(q.id)
		if len(allowed) == 0 {
			b.WriteString("#   (no ServiceAccount)\n")
		}
		for _, account := range allowed {
			reason, ok := table[q.id][account]
			if !ok {
				reason = "TODO: why (the chart default or the program's RBAC that grants it)"
			}
			fmt.Fprintf(&b, "%-*s %-*s %s\n", len("secrets-all-namespaces"), q.id, width, account, reason)
		}
	}
	return b.String()
}

// sourced is one object of the platform with where it came from (a manifest's file name, or a
// chart release).
type sourced struct {
	from string
	obj  *unstructured.Unstructured
}

// rbacAccounts finds every ServiceAccount of the platform: each ServiceAccount object, each
// ServiceAccount subject of a binding (a RoleBinding's without a namespace is in the binding's),
// and the default ServiceAccount of every namespace the objects create or use, which pods without
// one run as. Keyed "namespace/name", with where each was found.
func rbacAccounts(objects []sourced) map[string]rbacAccount {
	out := map[string]rbacAccount{}
	add := func(key, origin string) {
		a := out[key]
		if !slices.Contains(a.origins, origin) {
			a.origins = append(a.origins, origin)
		}
		out[key] = a
	}
	for _, o := range objects {
		ns := o.obj.GetNamespace()
		switch o.obj.GetKind() {
		case "Namespace":
			add(o.obj.GetName()+"/default", "the default ServiceAccount of namespace "+o.obj.GetName())
		case "ServiceAccount":
			add(ns+"/"+o.obj.GetName(), o.from)
		case "RoleBinding", "ClusterRoleBinding":
			subjects, _, _ := unstructured.NestedSlice(o.obj.Object, "subjects")
			for _, s := range subjects {
				m, _ := s.(map[string]any)
				if m["kind"] != "ServiceAccount" {
					continue
				}
				name, _ := m["name"].(string)
				subjectNS, _ := m["namespace"].(string)
				if subjectNS == "" {
					subjectNS = ns
				}
				add(subjectNS+"/"+name, fmt.Sprintf("a subject of %s %s (%s)", o.obj.GetKind(), objectName(o.obj), o.from))
			}
		}
		if ns != "" {
			add(ns+"/default", "the default ServiceAccount of namespace "+ns)
		}
	}
	return out
}

func objectName(o *unstructured.Unstructured) string {
	if o.GetNamespace() != "" {
		return o.GetNamespace() + "/" + o.GetName()
	}
	return o.GetName()
}

// readChartRBAC reads chartfit's chart-rbac.yaml of a stack's render. A folder without
// helm-releases.yaml is no stack's render (testdata/broken): nil, no error. A render without the
// file, or with one written for another helm-releases.yaml, is an error: the charts' identities
// would go unasked.
func readChartRBAC(dir string) ([]sourced, error) {
	releases, err := os.ReadFile(filepath.Join(dir, "helm-releases.yaml"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, chartRBACFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s is missing: run chartfit -dir %s first (tools/charts; it renders the charts and writes their ServiceAccounts and RBAC, which the SubjectAccessReviews need)", path, dir)
	}
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(releases)
	if want := chartRBACSourceLine + hex.EncodeToString(sum[:]) + "\n"; !bytes.Contains(b, []byte(want)) {
		return nil, fmt.Errorf("%s was not written from this render's helm-releases.yaml (its header lacks %q): run chartfit -dir %s again", path, strings.TrimSpace(want), dir)
	}
	return parseChartRBAC(b)
}

// parseChartRBAC splits chart-rbac.yaml into objects; each document's first comment names its
// release ("# release <name>: ..."), kept as where it came from.
func parseChartRBAC(b []byte) ([]sourced, error) {
	out := []sourced{} // not nil: a render whose charts have no RBAC is still asked
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s, document %d: %w", chartRBACFile, i+1, err)
		}
		var m map[string]any
		if err := utilyaml.Unmarshal(doc, &m); err != nil {
			return nil, fmt.Errorf("%s, document %d: %w", chartRBACFile, i+1, err)
		}
		if len(m) == 0 {
			continue
		}
		from := chartRBACFile
		for _, line := range strings.Split(string(doc), "\n") {
			if rest, ok := strings.CutPrefix(line, "# release "); ok {
				name, _, _ := strings.Cut(rest, ":")
				from = "chart release " + name
				break
			}
		}
		out = append(out, sourced{from, &unstructured.Unstructured{Object: m}})
	}
}

// ask asks one question for one subject: allowed when any of its requests is. It counts the
// reviews it made.
func ask(ctx context.Context, client kubernetes.Interface, q rbacQuestion, user string, groups []string, reviews *int) (bool, error) {
	for _, attrs := range q.asks {
		*reviews++
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: groups, ResourceAttributes: &attrs,
		}}
		got, err := client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
		if err != nil {
			return false, fmt.Errorf("SubjectAccessReview %s for %s: %w", q.id, user, err)
		}
		if got.Status.EvaluationError != "" {
			return false, fmt.Errorf("SubjectAccessReview %s for %s: evaluation error: %s", q.id, user, got.Status.EvaluationError)
		}
		if got.Status.Allowed {
			return true, nil
		}
	}
	return false, nil
}

// serviceAccountIdentity is the user and groups the API server gives a ServiceAccount's token.
func serviceAccountIdentity(account string) (user string, groups []string) {
	ns, name, _ := strings.Cut(account, "/")
	return "system:serviceaccount:" + ns + ":" + name, []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}
}

// checkRBAC asks every question of every ServiceAccount of the platform and compares the answers
// with the table. Two controls first: a member of system:masters must be allowed everything and a
// ServiceAccount no object names nothing, or the check could not tell.
func (v *verifier) checkRBAC(ctx context.Context, objects []sourced) {
	if v.rbacSkipped != "" {
		fmt.Printf("RBAC questions: not asked (%s)\n", v.rbacSkipped)
		return
	}
	table, err := parseRBACTable(rbacTableText)
	if err != nil {
		v.fail("RBAC: %s: %v", rbacTableFile, err)
		return
	}
	client := v.cp.client
	accounts := rbacAccounts(objects)
	existing, err := client.CoreV1().ServiceAccounts("").List(ctx, metav1.ListOptions{})
	if err != nil {
		v.fail("RBAC: list ServiceAccounts: %v", err)
		return
	}
	for _, sa := range existing.Items {
		key := sa.Namespace + "/" + sa.Name
		if a, ok := accounts[key]; ok {
			a.exists = true
			accounts[key] = a
		}
	}
	reviews := 0
	for _, control := range []struct {
		what   string
		user   string
		groups []string
		want   bool
	}{
		{"a member of system:masters", "verify-local-control", []string{"system:masters", "system:authenticated"}, true},
		{"a ServiceAccount no object names", "system:serviceaccount:default:verify-local-nobody", []string{"system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"}, false},
	} {
		for _, q := range rbacQuestions {
			got, err := ask(ctx, client, q, control.user, control.groups, &reviews)
			if err != nil {
				v.fail("RBAC control: %v", err)
				return
			}
			if got != control.want {
				v.fail("RBAC control: %s: %s: got %v, want %v: the questions cannot tell who may", control.what, q.text, got, control.want)
				return
			}
		}
	}
	answers := rbacAnswers{}
	for _, account := range slices.Sorted(maps.Keys(accounts)) {
		user, groups := serviceAccountIdentity(account)
		answers[account] = map[string]bool{}
		for _, q := range rbacQuestions {
			got, err := ask(ctx, client, q, user, groups, &reviews)
			if err != nil {
				v.fail("RBAC: %v", err)
				return
			}
			answers[account][q.id] = got
		}
	}
	var missing []string
	for _, account := range slices.Sorted(maps.Keys(accounts)) {
		if !accounts[account].exists {
			missing = append(missing, account)
		}
	}
	fmt.Printf("RBAC questions: %d questions of each of %d ServiceAccounts (the manifests' and chart-rbac.yaml's, their bindings' subjects, every namespace's default), by %d SubjectAccessReviews; controls: system:masters may do everything, an unnamed ServiceAccount nothing; named by a binding but not created (asked anyway): %s\n",
		len(rbacQuestions), len(accounts), reviews, orNone(missing))
	fmt.Println("  who may (besides cluster administrators):")
	for _, q := range rbacQuestions {
		fmt.Printf("    %-24s %s\n", q.id, orNone(answers.allowedBy(q.id)))
	}
	text := formatRBACTable(answers, table)
	if err := os.WriteFile(filepath.Join(v.dir, rbacAnswersFile), []byte(text), 0o644); err != nil {
		v.fail("RBAC: write the answers: %v", err)
	}
	diffs := compareRBAC(table, answers, accounts)
	if len(diffs) == 0 {
		fmt.Printf("  OK: every answer is %s's\n", rbacTableFile)
		return
	}
	for _, d := range diffs {
		fmt.Printf("  FAIL %s\n", d)
		v.fail("RBAC: %s (%s)", d, rbacTableFile)
	}
	fmt.Printf("  the answers in %s's format (check each line's reason before replacing the table's entries; also in %s):\n", rbacTableFile, filepath.Join(v.dir, rbacAnswersFile))
	for _, line := range strings.Split(strings.TrimPrefix(strings.TrimPrefix(text, rbacTableHeader), "\n"), "\n") {
		fmt.Printf("    %s\n", line)
	}
	for _, account := range slices.Sorted(maps.Keys(accounts)) {
		if slices.ContainsFunc(diffs, func(d string) bool { return strings.HasPrefix(d, account+":") }) {
			fmt.Printf("  %s: %s\n", account, strings.Join(accounts[account].origins, "; "))
		}
	}
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}
