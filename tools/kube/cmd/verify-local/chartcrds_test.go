package main

import (
	"os"
	"slices"
	"testing"
)

// The program's ScaledObjects and TriggerAuthentication are checked against KEDA's own CRDs, not
// listed as "not verified" (the program renders the CRDs of charts' crds/ folders itself).
func TestPinnedCRDsIncludeTheKEDAKinds(t *testing.T) {
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
	for _, want := range kedaCRDs {
		if !slices.Contains(names, want) {
			t.Errorf("pinned CRDs %v lack %s", names, want)
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
