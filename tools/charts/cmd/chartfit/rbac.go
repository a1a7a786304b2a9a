package main

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// Who may read Secrets in every namespace: a ClusterRoleBinding of the charts (Helm hooks
// included: they exist while the hook runs) that binds a subject to a ClusterRole with a rule
// whose apiGroups include "" or "*", resources "secrets" or "*", verbs get, list, watch or "*",
// and no resourceNames (a rule naming Secrets reads those only). A RoleBinding, even of such a
// ClusterRole, reads one namespace's and is not counted. Only the charts' objects are evaluated:
// the program's own (out/<stack>/manifests) bind no chart ServiceAccount.

// clusterSecretReaders is every ServiceAccount, "namespace/name", the charts may let read every
// Secret of the cluster, and why. The check fails when the render gives another one the right,
// and when one of these no longer has it (the table would hide a regression if it kept a name).
// Grafana's (monitoring/kube-prometheus-stack-grafana) and KEDA's operator (keda/keda-operator)
// must never be here: see mustNotReadSecrets.
var clusterSecretReaders = map[string]Allowed{
	// The known remaining Argo CD defaults (issue 27, item 2): the controller syncs and diffs
	// every kind in every namespace (its ClusterRole is */* with every verb), and the server
	// shows, patches and deletes any live object from the UI (*/* get, patch, delete).
	// A system need: the Prometheus operator writes the Secrets it generates for Prometheus and
	// Alertmanager (configuration, TLS assets, web config) and reads the Secrets the
	// ServiceMonitors, PodMonitors, Probes and AlertmanagerConfigs of every namespace it watches
	// reference (basic auth, bearer tokens, TLS keys).
	"monitoring/kube-prometheus-stack-operator": {"kube-prometheus-stack", "the Prometheus operator: writes its workloads' config Secrets, reads those the monitors of any namespace reference"},
}

// Allowed is why a ServiceAccount may read every Secret, and the chart that renders it: the
// entry is held to the render only when the stack renders that chart.
type Allowed struct {
	Chart, Reason string
}

// mustNotReadSecrets are ServiceAccounts the program took the cluster-wide read from, with the
// chart whose render must have them.
var mustNotReadSecrets = []struct{ Subject, Chart, What string }{
	{grafanaSA, "kube-prometheus-stack", "Grafana (served to the internet; rbac.namespaced)"},
	{kedaSA, "keda", "KEDA's operator (watchNamespace app)"},
}

const (
	grafanaSA = "monitoring/kube-prometheus-stack-grafana"
	kedaSA    = "keda/keda-operator"
	// kedaRole is KEDA's operator ClusterRole, which the chart binds per watched namespace.
	kedaRole = "keda-operator"
)

// kedaNamespaces are where KEDA's operator ClusterRole may be bound: the watched namespace
// (workloads: watchNamespace) and the chart's own, which the chart always adds.
var kedaNamespaces = []string{"app", "keda"}

// builtinClusterRoles are the API server's ClusterRoles a chart may bind without rendering them,
// and whether they read every Secret.
var builtinClusterRoles = map[string]bool{
	"cluster-admin":         true,
	"admin":                 true,
	"edit":                  true,
	"view":                  false,
	"system:auth-delegator": false,
}

// RBACRule is one rule of a Role or ClusterRole.
type RBACRule struct {
	APIGroups, Resources, Verbs, ResourceNames, NonResourceURLs []string
}

func (r RBACRule) String() string {
	s := fmt.Sprintf("apiGroups [%s] resources [%s] verbs [%s]", quoteAll(r.APIGroups), strings.Join(r.Resources, ","), strings.Join(r.Verbs, ","))
	if len(r.ResourceNames) > 0 {
		s += " resourceNames [" + strings.Join(r.ResourceNames, ",") + "]"
	}
	return s
}

// quoteAll shows the core group "" as such.
func quoteAll(groups []string) string {
	out := make([]string, len(groups))
	for i, g := range groups {
		out[i] = g
		if g == "" {
			out[i] = `""`
		}
	}
	return strings.Join(out, ",")
}

// secretReadVerbs are the verbs of a rule that read every Secret: get, list, watch or "*".
func (r RBACRule) secretReadVerbs() []string {
	if len(r.ResourceNames) > 0 {
		return nil
	}
	if !slices.Contains(r.APIGroups, "") && !slices.Contains(r.APIGroups, "*") {
		return nil
	}
	if !slices.Contains(r.Resources, "secrets") && !slices.Contains(r.Resources, "*") {
		return nil
	}
	var out []string
	for _, v := range r.Verbs {
		if v == "get" || v == "list" || v == "watch" || v == "*" {
			out = append(out, v)
		}
	}
	return out
}

// ClusterRole is a rendered ClusterRole; Aggregation holds its aggregationRule's selectors
// (nil when it has none).
type ClusterRole struct {
	Name, Release string
	Labels        map[string]string
	Rules         []RBACRule
	Aggregation   []map[string]any
}

// Subject is one subject of a binding; Namespace is filled in for a ServiceAccount.
type Subject struct {
	Kind, Name, Namespace string
}

// Key is "namespace/name" for a ServiceAccount, "Kind name" otherwise.
func (s Subject) Key() string {
	if s.Kind == "ServiceAccount" {
		return s.Namespace + "/" + s.Name
	}
	return s.Kind + " " + s.Name
}

// Binding is a rendered RoleBinding or ClusterRoleBinding.
type Binding struct {
	Kind, Name, Namespace, Release string
	RoleKind, RoleName             string
	Subjects                       []Subject
	Hook                           bool
	Labels                         map[string]string
}

func (b Binding) String() string {
	name := b.Name
	if b.Kind == "RoleBinding" {
		name = b.Namespace + "/" + b.Name
	}
	return fmt.Sprintf("%s %s -> %s %s", b.Kind, name, b.RoleKind, b.RoleName)
}

// RBAC is what the charts render of RBAC: ClusterRoles by name, bindings, and the chart
// ServiceAccounts ("namespace/name") with the release rendering each.
type RBAC struct {
	ClusterRoles    map[string]ClusterRole
	Bindings        []Binding
	ServiceAccounts map[string]string
	Charts          map[string]bool // the charts rendered, by archive name without version
}

// collectRBAC gathers the RBAC objects of every release; a namespaced object without a
// namespace is in its release's, as Helm applies it.
func collectRBAC(rendered []*Rendered) RBAC {
	out := RBAC{ClusterRoles: map[string]ClusterRole{}, ServiceAccounts: map[string]string{}, Charts: map[string]bool{}}
	for _, r := range rendered {
		out.Charts[chartOf(r.Archive)] = true
		for _, o := range r.Objects {
			md := dig(o.Map, "metadata")
			ns := str(md, "namespace")
			if ns == "" {
				ns = r.Release.Namespace
			}
			switch str(o.Map, "kind") {
			case "ServiceAccount":
				out.ServiceAccounts[ns+"/"+str(md, "name")] = r.Release.Name
			case "ClusterRole":
				cr := ClusterRole{Name: str(md, "name"), Release: r.Release.Name, Labels: strMap(md["labels"]), Rules: rulesOf(o.Map)}
				if agg, ok := o.Map["aggregationRule"].(map[string]any); ok {
					cr.Aggregation = list(agg, "clusterRoleSelectors")
					if cr.Aggregation == nil {
						cr.Aggregation = []map[string]any{}
					}
				}
				out.ClusterRoles[cr.Name] = cr
			case "ClusterRoleBinding", "RoleBinding":
				b := Binding{Kind: str(o.Map, "kind"), Name: str(md, "name"), Release: r.Release.Name, Hook: len(o.Hook) > 0, Labels: strMap(md["labels"]),
					RoleKind: str(dig(o.Map, "roleRef"), "kind"), RoleName: str(dig(o.Map, "roleRef"), "name")}
				if b.Kind == "RoleBinding" {
					b.Namespace = ns
				}
				for _, s := range list(o.Map, "subjects") {
					sub := Subject{Kind: str(s, "kind"), Name: str(s, "name"), Namespace: str(s, "namespace")}
					if sub.Kind == "ServiceAccount" && sub.Namespace == "" {
						sub.Namespace = ns
					}
					b.Subjects = append(b.Subjects, sub)
				}
				out.Bindings = append(out.Bindings, b)
			}
		}
	}
	return out
}

// chartOf is a chart's name from its archive's, "keda-2.20.2.tgz" -> "keda".
func chartOf(archive string) string {
	name := strings.TrimSuffix(archive, ".tgz")
	if i := strings.LastIndex(name, "-"); i > 0 {
		return name[:i]
	}
	return name
}

func rulesOf(m map[string]any) []RBACRule {
	var out []RBACRule
	for _, r := range list(m, "rules") {
		out = append(out, RBACRule{APIGroups: strs(r["apiGroups"]), Resources: strs(r["resources"]), Verbs: strs(r["verbs"]),
			ResourceNames: strs(r["resourceNames"]), NonResourceURLs: strs(r["nonResourceURLs"])})
	}
	return out
}

// Grant is one way a subject reads every Secret: a ClusterRoleBinding, its ClusterRole, and the
// rules (or built-in role) that give the read.
type Grant struct {
	Binding Binding
	Verbs   []string
	Why     string
}

// secretReaders evaluates every ClusterRoleBinding: subject key -> its grants. Problems are the
// bindings it could not evaluate (a ClusterRole neither rendered nor built in); notes describe
// the aggregated ClusterRoles met.
func secretReaders(rbac RBAC) (readers map[string][]Grant, problems []Finding, notes []string) {
	readers = map[string][]Grant{}
	for _, b := range rbac.Bindings {
		if b.Kind != "ClusterRoleBinding" {
			continue
		}
		verbs, why, known := clusterRoleReads(rbac, b.RoleName)
		if !known {
			problems = append(problems, Finding{Release: b.Release, Problem: fmt.Sprintf("%s: the ClusterRole %s is neither rendered by the charts nor a built-in role the check knows, so who may read Secrets cannot be told", b, b.RoleName)})
			continue
		}
		if len(verbs) == 0 {
			continue
		}
		for _, s := range b.Subjects {
			readers[s.Key()] = append(readers[s.Key()], Grant{b, verbs, why})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(rbac.ClusterRoles)) {
		cr := rbac.ClusterRoles[name]
		if cr.Aggregation != nil {
			members := aggregatedFrom(rbac, cr)
			notes = append(notes, fmt.Sprintf("ClusterRole %s (release %s) is aggregated (aggregationRule) from %s: its rules are theirs, of the rendered ones (the cluster's own ClusterRoles with matching labels would add to them)", name, cr.Release, orNone(members)))
		}
		// A rendered ClusterRole can also add its rules to the API server's aggregated roles
		// (admin, edit, view): admin and edit read Secrets anyway, view must not.
		verbs, why, _ := clusterRoleReads(rbac, name)
		for _, label := range slices.Sorted(maps.Keys(cr.Labels)) {
			target, ok := strings.CutPrefix(label, "rbac.authorization.k8s.io/aggregate-to-")
			if !ok || cr.Labels[label] != "true" || len(verbs) == 0 {
				continue
			}
			notes = append(notes, fmt.Sprintf("ClusterRole %s (release %s) reads Secrets (%s) and aggregates into the built-in %s", name, cr.Release, why, target))
			if target == "view" {
				problems = append(problems, Finding{Release: cr.Release, Problem: fmt.Sprintf("ClusterRole %s adds a read of Secrets (%s) to the built-in view ClusterRole (label %s): whoever may view could read every Secret", name, why, label)})
			}
		}
	}
	return readers, problems, notes
}

// clusterRoleReads says whether a ClusterRole reads every Secret, with which verbs and rules;
// known is false for a role neither rendered nor built in.
func clusterRoleReads(rbac RBAC, name string) (verbs []string, why string, known bool) {
	cr, ok := rbac.ClusterRoles[name]
	if !ok {
		reads, builtin := builtinClusterRoles[name]
		if !builtin {
			return nil, "", false
		}
		if reads {
			return []string{"*"}, "the built-in ClusterRole " + name, true
		}
		return nil, "", true
	}
	rules, how := cr.Rules, ""
	if cr.Aggregation != nil {
		rules, how = nil, " (aggregated from "
		members := aggregatedFrom(rbac, cr)
		for _, m := range members {
			rules = append(rules, rbac.ClusterRoles[m].Rules...)
		}
		how += orNone(members) + ")"
	}
	var whys []string
	for _, r := range rules {
		if v := r.secretReadVerbs(); len(v) > 0 {
			verbs = append(verbs, v...)
			whys = append(whys, r.String())
		}
	}
	slices.Sort(verbs)
	return slices.Compact(verbs), strings.Join(whys, "; ") + how, true
}

// aggregatedFrom names the rendered ClusterRoles an aggregated ClusterRole's selectors match.
func aggregatedFrom(rbac RBAC, cr ClusterRole) []string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(rbac.ClusterRoles)) {
		other := rbac.ClusterRoles[name]
		if name == cr.Name || other.Aggregation != nil {
			continue
		}
		for _, sel := range cr.Aggregation {
			if selects(sel, other.Labels) {
				out = append(out, name)
				break
			}
		}
	}
	return out
}

// selects applies a label selector (matchLabels and matchExpressions) to labels; an empty
// selector selects nothing, as aggregation treats it.
func selects(sel map[string]any, labels map[string]string) bool {
	match, exprs := strMap(sel["matchLabels"]), list(sel, "matchExpressions")
	if len(match) == 0 && len(exprs) == 0 {
		return false
	}
	for k, v := range match {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	for _, e := range exprs {
		v, has := labels[str(e, "key")]
		in := slices.Contains(strs(e["values"]), v)
		switch str(e, "operator") {
		case "In":
			if !has || !in {
				return false
			}
		case "NotIn":
			if has && in {
				return false
			}
		case "Exists":
			if !has {
				return false
			}
		case "DoesNotExist":
			if has {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// checkSecretReaders prints one line per subject the charts let read every Secret and one per
// assertion, and fails on a reader the allowed table lacks, on an allowed entry that no longer
// reads, and on the Grafana and KEDA assertions.
func checkSecretReaders(rendered []*Rendered, allowed map[string]Allowed, w *strings.Builder) []Finding {
	rbac := collectRBAC(rendered)
	readers, out, notes := secretReaders(rbac)
	fmt.Fprintf(w, "Secrets readable in every namespace (a ClusterRoleBinding to a ClusterRole with get, list or watch on secrets; %d ClusterRoles, %d bindings, %d ServiceAccounts rendered):\n",
		len(rbac.ClusterRoles), len(rbac.Bindings), len(rbac.ServiceAccounts))
	for _, key := range slices.Sorted(maps.Keys(readers)) {
		grants := readers[key]
		var via []string
		for _, g := range grants {
			hook := ""
			if g.Binding.Hook {
				hook = " [hook]"
			}
			via = append(via, fmt.Sprintf("%s%s (%s: %s)", g.Binding, hook, strings.Join(g.Verbs, ","), g.Why))
		}
		owner := rbac.ServiceAccounts[key]
		if owner == "" {
			owner = "not a chart's ServiceAccount"
		} else {
			owner = "release " + owner
		}
		a, ok := allowed[key]
		status, reason := "ok  ", "allowed: "+a.Reason
		if !ok {
			status, reason = "FAIL", "NOT in the allowed table"
			for _, g := range grants {
				out = append(out, Finding{Release: g.Binding.Release, Problem: fmt.Sprintf("%s may read every Secret of the cluster (%s) through %s (%s), and is not among the allowed readers (tools/charts/cmd/chartfit/rbac.go clusterSecretReaders)",
					key, strings.Join(g.Verbs, ","), g.Binding, g.Why)})
			}
		}
		fmt.Fprintf(w, "  %s %-52s %s; %s; via %s\n", status, key, owner, reason, strings.Join(via, "; "))
	}
	for _, key := range slices.Sorted(maps.Keys(allowed)) {
		if _, reads := readers[key]; !reads && rbac.Charts[allowed[key].Chart] {
			fmt.Fprintf(w, "  FAIL %-52s is in the allowed table but no ClusterRoleBinding of the charts lets it read Secrets: remove it from the table\n", key)
			out = append(out, Finding{Problem: fmt.Sprintf("%s is an allowed cluster-wide Secret reader (clusterSecretReaders: %s), but the render gives it no such read: remove it from the table so it cannot hide a regression", key, allowed[key].Reason)})
		}
	}
	if !slices.ContainsFunc(slices.Collect(maps.Values(rbac.ClusterRoles)), func(cr ClusterRole) bool { return cr.Aggregation != nil }) {
		fmt.Fprintf(w, "  ok   aggregated ClusterRoles: none rendered (no aggregationRule)\n")
	}
	for _, n := range notes {
		fmt.Fprintf(w, "  note %s\n", n)
	}
	out = append(out, checkMustNot(rbac, readers, w)...)
	out = append(out, checkGrafanaBindings(rbac, w)...)
	out = append(out, checkKEDABindings(rbac, w)...)
	fmt.Fprintln(w)
	return out
}

// checkMustNot asserts Grafana's and KEDA's operator's ServiceAccounts are rendered and read no
// Secret cluster-wide.
func checkMustNot(rbac RBAC, readers map[string][]Grant, w *strings.Builder) []Finding {
	var out []Finding
	for _, m := range mustNotReadSecrets {
		if !rbac.Charts[m.Chart] {
			fmt.Fprintf(w, "  ok   %s: the stack renders no %s chart\n", m.What, m.Chart)
			continue
		}
		rel, rendered := rbac.ServiceAccounts[m.Subject]
		grants := readers[m.Subject]
		switch {
		case !rendered:
			fmt.Fprintf(w, "  FAIL %s: the %s chart renders no ServiceAccount %s\n", m.What, m.Chart, m.Subject)
			out = append(out, Finding{Problem: fmt.Sprintf("%s: the %s chart renders no ServiceAccount %s, so its Secret access cannot be checked (values renamed it?)", m.What, m.Chart, m.Subject)})
		case len(grants) > 0:
			var via []string
			for _, g := range grants {
				via = append(via, g.Binding.String())
				out = append(out, Finding{Release: rel, Problem: fmt.Sprintf("%s: %s may read every Secret of the cluster through %s (%s), and must not", m.What, m.Subject, g.Binding, g.Why)})
			}
			fmt.Fprintf(w, "  FAIL %s: %s reads every Secret through %s\n", m.What, m.Subject, strings.Join(via, ", "))
		default:
			fmt.Fprintf(w, "  ok   %s: %s cannot read Secrets cluster-wide\n", m.What, m.Subject)
		}
	}
	return out
}

// checkGrafanaBindings asserts the charts render no ClusterRoleBinding for Grafana: none naming
// its ServiceAccount, and none of the grafana chart (app.kubernetes.io/name: grafana).
func checkGrafanaBindings(rbac RBAC, w *strings.Builder) []Finding {
	if !rbac.Charts["kube-prometheus-stack"] {
		return nil
	}
	var out []Finding
	var crbs, others []string
	for _, b := range rbac.Bindings {
		names := slices.ContainsFunc(b.Subjects, func(s Subject) bool { return s.Key() == grafanaSA })
		if b.Kind == "ClusterRoleBinding" && (names || b.Labels["app.kubernetes.io/name"] == "grafana") {
			crbs = append(crbs, b.String())
			out = append(out, Finding{Release: b.Release, Problem: fmt.Sprintf("Grafana has a ClusterRoleBinding, %s (subjects %s): it must have none (values grafana.rbac.namespaced: true, no extraClusterRoleRules)", b, subjectList(b.Subjects))})
		} else if names {
			others = append(others, b.String())
		}
	}
	if len(crbs) > 0 {
		fmt.Fprintf(w, "  FAIL Grafana: ClusterRoleBinding(s) %s\n", strings.Join(crbs, ", "))
	} else {
		fmt.Fprintf(w, "  ok   Grafana: no ClusterRoleBinding (%s bound by %s)\n", grafanaSA, orNone(others))
	}
	return out
}

// checkKEDABindings asserts KEDA's operator ClusterRole is bound by no ClusterRoleBinding, and
// by RoleBindings to the operator's ServiceAccount in exactly kedaNamespaces.
func checkKEDABindings(rbac RBAC, w *strings.Builder) []Finding {
	if !rbac.Charts["keda"] {
		return nil
	}
	var out []Finding
	role, rendered := rbac.ClusterRoles[kedaRole]
	fail := func(p string) {
		out = append(out, Finding{Release: role.Release, Problem: "KEDA's operator ClusterRole " + kedaRole + ": " + p})
	}
	if !rendered {
		fail("not rendered, so its bindings cannot be checked (values renamed it?)")
	}
	var namespaces, crbs []string
	for _, b := range rbac.Bindings {
		if b.RoleKind != "ClusterRole" || b.RoleName != kedaRole {
			continue
		}
		if b.Kind == "ClusterRoleBinding" {
			crbs = append(crbs, b.Name)
			fail(fmt.Sprintf("bound cluster-wide by %s (subjects %s): it must be bound only by RoleBindings in %s (values watchNamespace)", b, subjectList(b.Subjects), strings.Join(kedaNamespaces, ", ")))
			continue
		}
		namespaces = append(namespaces, b.Namespace)
		if !slices.Contains(kedaNamespaces, b.Namespace) {
			fail(fmt.Sprintf("bound in namespace %s by %s: only %s are allowed", b.Namespace, b, strings.Join(kedaNamespaces, ", ")))
		}
		if !slices.ContainsFunc(b.Subjects, func(s Subject) bool { return s.Key() == kedaSA }) {
			fail(fmt.Sprintf("%s does not bind %s (subjects %s)", b, kedaSA, subjectList(b.Subjects)))
		}
	}
	sort.Strings(namespaces)
	for _, ns := range kedaNamespaces {
		if !slices.Contains(namespaces, ns) {
			fail(fmt.Sprintf("no RoleBinding in %s: the operator could not read what it scales there", ns))
		}
	}
	status := "ok  "
	if len(out) > 0 {
		status = "FAIL"
	}
	fmt.Fprintf(w, "  %s KEDA: ClusterRole %s bound by RoleBindings in [%s] (want [%s]), by ClusterRoleBindings [%s] (want none)\n",
		status, kedaRole, strings.Join(namespaces, ", "), strings.Join(kedaNamespaces, ", "), strings.Join(crbs, ", "))
	return out
}

func subjectList(subjects []Subject) string {
	keys := make([]string, 0, len(subjects))
	for _, s := range subjects {
		keys = append(keys, s.Key())
	}
	return orNone(keys)
}
