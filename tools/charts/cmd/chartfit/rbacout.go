package main

// The charts' ServiceAccounts and RBAC objects, written for verify-local: it applies them to its
// real API server beside the program's own objects and asks SubjectAccessReviews of every
// ServiceAccount (tools/kube/cmd/verify-local/rbac.go). The charts themselves are not installed
// there, so without this file their identities, the widest of the platform, would go unasked.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// chartRBACFile is the file under out/<stack>/ that verify-local reads.
const chartRBACFile = "chart-rbac.yaml"

// chartRBACSourceLine starts the header line naming the SHA-256 of the helm-releases.yaml the
// objects were rendered from: verify-local refuses the file when the render has changed since.
const chartRBACSourceLine = "# helm-releases.yaml sha256: "

// rbacKinds are the kinds written, in the order they are written within a release.
var rbacKinds = []string{"ServiceAccount", "ClusterRole", "Role", "ClusterRoleBinding", "RoleBinding"}

// namespacedRBAC are the kinds Helm applies in the release's namespace when they name none.
var namespacedRBAC = map[string]bool{"ServiceAccount": true, "Role": true, "RoleBinding": true}

// chartRBAC is one object of a release's ServiceAccounts and RBAC: its release, its hook events
// (none for an object of the release's manifest) and the object with its namespace filled in.
type chartRBAC struct {
	release string
	hook    []string
	object  map[string]any
}

// collectChartRBAC picks the ServiceAccounts, Roles, ClusterRoles and bindings of every rendered
// release, install and upgrade hooks included (they exist while the hook runs), in a fixed order:
// releases by name, then kind (rbacKinds), namespace and name. Helm test hooks are left out, and
// returned apart: only `helm test` creates them, which nothing here runs (Pod.TestOnly).
func collectChartRBAC(rendered []*Rendered) (out, testOnly []chartRBAC) {
	for _, r := range rendered {
		for _, o := range r.Objects {
			kind := str(o.Map, "kind")
			if !slices.Contains(rbacKinds, kind) {
				continue
			}
			if slices.Contains(o.Hook, "test") {
				testOnly = append(testOnly, chartRBAC{release: r.Release.Name, hook: o.Hook, object: o.Map})
				continue
			}
			obj := maps.Clone(o.Map)
			md := maps.Clone(dig(o.Map, "metadata"))
			if namespacedRBAC[kind] && str(md, "namespace") == "" {
				md["namespace"] = r.Release.Namespace
			}
			obj["metadata"] = md
			out = append(out, chartRBAC{release: r.Release.Name, hook: o.Hook, object: obj})
		}
	}
	key := func(c chartRBAC) string {
		md := dig(c.object, "metadata")
		return fmt.Sprintf("%s\x00%02d\x00%s\x00%s", c.release, slices.Index(rbacKinds, str(c.object, "kind")), str(md, "namespace"), str(md, "name"))
	}
	sort.SliceStable(out, func(i, j int) bool { return key(out[i]) < key(out[j]) })
	sort.SliceStable(testOnly, func(i, j int) bool { return key(testOnly[i]) < key(testOnly[j]) })
	return out, testOnly
}

// renderChartRBAC is the file's text: a header naming the source's SHA-256, then one YAML
// document per object, each after a comment naming its release (and hook events).
func renderChartRBAC(objects []chartRBAC, releasesSHA string) (string, error) {
	var b strings.Builder
	b.WriteString("# The ServiceAccounts and RBAC objects of every chart release, rendered by chartfit from the\n")
	b.WriteString("# pinned charts with the program's values; namespaced objects without a namespace are in their\n")
	b.WriteString("# release's, as Helm applies them; Helm test hooks' are left out (only helm test creates them).\n")
	b.WriteString("# verify-local applies them and asks SubjectAccessReviews of every ServiceAccount.\n")
	b.WriteString(chartRBACSourceLine + releasesSHA + "\n")
	for _, c := range objects {
		md := dig(c.object, "metadata")
		name := str(md, "name")
		if ns := str(md, "namespace"); ns != "" {
			name = ns + "/" + name
		}
		hook := ""
		if len(c.hook) > 0 {
			hook = " [hook " + hookText(c.hook) + "]"
		}
		y, err := yaml.Marshal(c.object)
		if err != nil {
			return "", fmt.Errorf("release %s: %s %s: %w", c.release, str(c.object, "kind"), name, err)
		}
		fmt.Fprintf(&b, "---\n# release %s: %s %s%s\n%s", c.release, str(c.object, "kind"), name, hook, y)
	}
	return b.String(), nil
}

// writeChartRBAC writes out/<stack>/chart-rbac.yaml; it returns the number of objects of each
// kind and names the Helm test hooks' objects left out ("release: Kind name").
func writeChartRBAC(dir string, rendered []*Rendered) (counts map[string]int, testOnly []string, err error) {
	releases, err := os.ReadFile(filepath.Join(dir, "helm-releases.yaml"))
	if err != nil {
		return nil, nil, err
	}
	sum := sha256.Sum256(releases)
	objects, tests := collectChartRBAC(rendered)
	text, err := renderChartRBAC(objects, hex.EncodeToString(sum[:]))
	if err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, chartRBACFile), []byte(text), 0o644); err != nil {
		return nil, nil, err
	}
	counts = map[string]int{}
	for _, o := range objects {
		counts[str(o.object, "kind")]++
	}
	for _, t := range tests {
		testOnly = append(testOnly, fmt.Sprintf("%s: %s %s", t.release, str(t.object, "kind"), str(dig(t.object, "metadata"), "name")))
	}
	return counts, testOnly, nil
}

// countList is "3 ServiceAccount, 2 ClusterRole, ..." in rbacKinds' order.
func countList(counts map[string]int) string {
	var parts []string
	for _, k := range rbacKinds {
		parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
	}
	return strings.Join(parts, ", ")
}
