package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// templatedCRDs are the pinned charts that ship CRDs as templates under templates/crds (so that
// a value can turn them off), not under crds/, and the CRDs of each that the rendered objects
// need. They are read with the chart's default values substituted (kedaTemplateValues). A chart
// bump changes the archive's name here and in versions/versions.go; the test of this file fails
// while they differ.
var templatedCRDs = []struct {
	archive, dir string
	names        []string
}{
	// The program's ScaledObjects and TriggerAuthentication.
	{"keda-2.20.2.tgz", "keda/templates/crds", []string{"scaledobjects.keda.sh", "triggerauthentications.keda.sh"}},
	// The AppProject and Application of the gitops key (workloads/gitops.go).
	{"argo-cd-9.3.1.tgz", "argo-cd/templates/crds", []string{"appprojects.argoproj.io", "applications.argoproj.io"}},
}

// kedaTemplateValues are the only template expressions of the templated CRD files that produce
// text, with what the chart's default values make of them; every other template line is a
// control line ({{- if }}, {{- end }}, an include of labels, a toYaml of an empty value) and is
// dropped. Any other expression left in a file fails the read, so a chart bump that templates
// more of a CRD is noticed.
var kedaTemplateValues = map[string]string{"{{ .Values.operator.name }}": "keda-operator"}

// pinnedCRDs returns the CRDs of the pinned charts that the rendered objects need and that the
// program does not render itself: KEDA's and Argo CD's, which their charts install from
// templates. The CRDs that charts ship in crds/ folders (the load balancer controller's, the
// Prometheus operator's) are resources of the program (workloads/crds.go) and come with the
// rendered manifests.
func pinnedCRDs(charts string) ([]*unstructured.Unstructured, error) {
	var crds []*unstructured.Unstructured
	for _, t := range templatedCRDs {
		all, err := chartCRDsUnder(filepath.Join(charts, t.archive), t.dir)
		if err != nil {
			return nil, fmt.Errorf("CRDs of %s: %w", t.archive, err)
		}
		found := 0
		for _, c := range all {
			if slices.Contains(t.names, c.GetName()) {
				crds = append(crds, c)
				found++
			}
		}
		if found != len(t.names) {
			return nil, fmt.Errorf("%s: want the CRDs %v under %s, found %d of them", t.archive, t.names, t.dir, found)
		}
	}
	return crds, nil
}

// untemplate turns a CRD file that a chart ships as a template into the CRD itself: lines that
// are only template actions go, known value expressions are replaced, and anything else left is
// an error rather than a guess.
func untemplate(name string, b []byte, values map[string]string) ([]byte, error) {
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "{{") && strings.HasSuffix(t, "}}") && strings.Count(t, "{{") == 1 {
			continue
		}
		for expr, v := range values {
			line = strings.ReplaceAll(line, expr, v)
		}
		if strings.Contains(line, "{{") {
			return nil, fmt.Errorf("%s: template expression verify-local does not know: %s", name, t)
		}
		out = append(out, line)
	}
	return []byte(strings.Join(out, "\n")), nil
}

// chartCRDsUnder reads every CustomResourceDefinition in folder dir of a packaged chart.
func chartCRDsUnder(archive, dir string) ([]*unstructured.Unstructured, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", archive, err)
	}
	tr := tar.NewReader(gz)
	var out []*unstructured.Unstructured
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", archive, err)
		}
		inDir := path.Dir(path.Clean(h.Name)) == dir
		if h.Typeflag != tar.TypeReg || !inDir || !strings.HasSuffix(h.Name, ".yaml") {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", archive, h.Name, err)
		}
		if bytes.Contains(b, []byte("{{")) {
			if b, err = untemplate(h.Name, b, kedaTemplateValues); err != nil {
				return nil, fmt.Errorf("%s: %w", archive, err)
			}
		}
		for _, doc := range bytes.Split(b, []byte("\n---")) {
			var m map[string]any
			if err := yaml.Unmarshal(doc, &m); err != nil {
				return nil, fmt.Errorf("%s: %s: %w", archive, h.Name, err)
			}
			if m["kind"] == "CustomResourceDefinition" {
				out = append(out, &unstructured.Unstructured{Object: m})
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no CustomResourceDefinition under crds/", archive)
	}
	return out, nil
}

// defaultChartsDir is ../shared/charts beside the repository root (the folder that holds
// tools/kube), wherever verify-local is started from inside the repository.
func defaultChartsDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return filepath.Join("..", "shared", "charts")
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		if _, err := os.Stat(filepath.Join(dir, "tools", "kube", "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(dir), "shared", "charts")
		}
		if filepath.Dir(dir) == dir {
			return filepath.Join("..", "shared", "charts")
		}
	}
}
