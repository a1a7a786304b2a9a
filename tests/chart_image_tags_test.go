package tests

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/versions"
)

// TestPinnedChartTagsAreTheChartsOwn: for the charts whose templates print repository:tag, the
// program sets the tag, with the digest after it (workloads/chartimages.go). That tag must be
// the one the pinned chart runs by default (its values.yaml, or its appVersion where the value
// is empty): after a chart bump that moves the default, a stale tag here would keep the old
// image running while chartfit, which compares digest with tag, stays green.
func TestPinnedChartTagsAreTheChartsOwn(t *testing.T) {
	for _, tc := range []struct {
		chart versions.Chart
		path  []string // the tag value in the chart's values
		empty string   // the default when the value is empty, with %s for appVersion
	}{
		{versions.ArgoCD, []string{"redis", "image", "tag"}, ""},
		{versions.MetricsServer, []string{"image", "tag"}, "v%s"},
		{versions.KEDA, []string{"image", "keda", "tag"}, "%s"},
		{versions.KEDA, []string{"image", "metricsApiServer", "tag"}, "%s"},
		{versions.KEDA, []string{"image", "webhooks", "tag"}, "%s"},
	} {
		values, appVersion := chartDefaults(t, tc.chart)
		want := dig(values, tc.path...)
		if want == "" {
			want = strings.ReplaceAll(tc.empty, "%s", appVersion)
		}
		rel := must(t, run(t, "prod"), "kubernetes:helm.sh/v3:Release", releaseName(tc.chart))
		got := str(rel, append([]any{"values"}, anys(tc.path)...)...)
		tag, digest, _ := strings.Cut(got, "@")
		if tag != want || !strings.HasPrefix(digest, "sha256:") {
			t.Errorf("%s %s: the program sets %q, want the chart's default tag %q with its pinned digest", tc.chart.Archive(), strings.Join(tc.path, "."), got, want)
		}
	}
}

// releaseName is the logical name of a chart's release in the prod render.
func releaseName(c versions.Chart) string {
	ns := map[string]string{"argo-cd": "argocd", "metrics-server": "kube-system", "keda": "keda"}[c.Name]
	return "sesacthon-" + ns + "-" + c.Name
}

func anys(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func dig(m map[string]any, path ...string) string {
	var v any = m
	for _, k := range path {
		mm, _ := v.(map[string]any)
		v = mm[k]
	}
	s, _ := v.(string)
	return s
}

// chartDefaults reads a chart's values.yaml and appVersion from the offline cache's archive.
func chartDefaults(t *testing.T, c versions.Chart) (map[string]any, string) {
	t.Helper()
	files := chartFiles(t, c, func(name string) bool { return name == c.Name+"/values.yaml" || name == c.Name+"/Chart.yaml" })
	var values map[string]any
	var meta struct {
		AppVersion string `yaml:"appVersion"`
	}
	if err := yaml.Unmarshal(files[c.Name+"/values.yaml"], &values); err != nil {
		t.Fatalf("%s values.yaml: %v", c.Archive(), err)
	}
	if err := yaml.Unmarshal(files[c.Name+"/Chart.yaml"], &meta); err != nil {
		t.Fatalf("%s Chart.yaml: %v", c.Archive(), err)
	}
	if values == nil || meta.AppVersion == "" {
		t.Fatalf("%s: no values.yaml or appVersion", c.Archive())
	}
	return values, meta.AppVersion
}

// chartFiles returns the files of a pinned chart's archive in the offline cache whose names keep
// accepts, by name.
func chartFiles(t *testing.T, c versions.Chart, keep func(name string) bool) map[string][]byte {
	t.Helper()
	dir, err := offline.ChartsDir()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, c.Archive()))
	if err != nil {
		t.Fatal(err)
	}
	gz, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if !keep(h.Name) {
			continue
		}
		if out[h.Name], err = io.ReadAll(tr); err != nil {
			t.Fatal(err)
		}
	}
}
