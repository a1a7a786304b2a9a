package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The program's ScaledObjects and TriggerAuthentication, and the gitops key's AppProject and
// Application, are checked against their charts' own CRDs, not listed as "not verified" (the
// program renders the CRDs of charts' crds/ folders itself).
func TestPinnedCRDsIncludeTheKEDAAndArgoCDKinds(t *testing.T) {
	dir := defaultChartsDir()
	if d := os.Getenv("VERIFY_LOCAL_CHARTS"); d != "" {
		dir = d
	}
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("no chart folder at %s (set VERIFY_LOCAL_CHARTS)", dir)
	}
	crds, err := pinnedCRDs(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range crds {
		names = append(names, c.GetName())
	}
	for _, want := range []string{"scaledobjects.keda.sh", "triggerauthentications.keda.sh", "appprojects.argoproj.io", "applications.argoproj.io"} {
		if !slices.Contains(names, want) {
			t.Errorf("pinned CRDs %v lack %s", names, want)
		}
	}
}

// The archives named here are the ones versions/versions.go pins: a chart bump there must move
// verify-local to the new chart's CRDs.
func TestTemplatedCRDsAreThePinnedCharts(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "versions", "versions.go"))
	if err != nil {
		t.Skipf("versions/versions.go not found beside tools/kube: %v", err)
	}
	for _, c := range templatedCRDs {
		base := strings.TrimSuffix(c.archive, ".tgz")
		i := strings.LastIndex(base, "-") // chart names have dashes (argo-cd), versions do not
		name, version := base[:i], base[i+1:]
		if want := `Name: "` + name + `", Version: "` + version + `"`; !strings.Contains(string(b), want) {
			t.Errorf("verify-local reads CRDs from %s, but versions/versions.go does not pin %s", c.archive, want)
		}
	}
}

// KEDA's CRDs are templates: the read must turn them into plain CRDs, and refuse a template
// expression it does not know instead of applying half-rendered text.
func TestUntemplateDropsControlLinesAndRefusesUnknownExpressions(t *testing.T) {
	in := "{{- if .Values.crds.install }}\nkind: CustomResourceDefinition\nmetadata:\n  labels:\n    app.kubernetes.io/name: {{ .Values.operator.name }}\n    {{- include \"keda.crd-labels\" . | indent 4 }}\n{{- end -}}\n"
	out, err := untemplate("crd.yaml", []byte(in), kedaTemplateValues)
	if err != nil {
		t.Fatal(err)
	}
	if want := "kind: CustomResourceDefinition\nmetadata:\n  labels:\n    app.kubernetes.io/name: keda-operator\n"; string(out) != want {
		t.Errorf("untemplate = %q, want %q", out, want)
	}
	if _, err := untemplate("crd.yaml", []byte("  name: {{ .Values.other }}\n"), kedaTemplateValues); err == nil {
		t.Error("an unknown expression inside a line was accepted")
	}
}
