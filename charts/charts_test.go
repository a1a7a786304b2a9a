package charts_test

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waste-coach/infra/charts"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/versions"
)

func pinned(t *testing.T) charts.Folder {
	t.Helper()
	dir, err := offline.ChartsDir()
	if err != nil {
		t.Fatal(err)
	}
	return charts.Folder(dir)
}

// TestCRDFoldersAreMarked: versions marks exactly the pinned charts whose archives ship CRDs in
// crds/ folders. An unmarked chart with such a folder would leave its CRDs behind on destroy
// (Helm never deletes them); a marked chart without one fails the program.
func TestCRDFoldersAreMarked(t *testing.T) {
	folder := pinned(t)
	for _, c := range versions.Charts() {
		b, err := folder.Archive(c)
		if err != nil {
			t.Fatal(err)
		}
		crds, err := charts.CRDs(b)
		if err != nil {
			t.Fatalf("%s: %v", c.Archive(), err)
		}
		if got := len(crds) > 0; got != c.CRDFolders {
			t.Errorf("%s ships %d CRDs in crds/ folders, but versions marks CRDFolders=%v", c.Archive(), len(crds), c.CRDFolders)
		}
	}
}

// TestCRDsOfTheMonitoringChartIncludeItsSubchart: kube-prometheus-stack keeps the operator's
// CRDs in its crds subchart (charts/crds/crds/); those are the kinds the program declares objects
// of (ServiceMonitor, PodMonitor, PrometheusRule), so they must be read.
func TestCRDsOfTheMonitoringChartIncludeItsSubchart(t *testing.T) {
	b, err := pinned(t).Archive(versions.KubePrometheusStack)
	if err != nil {
		t.Fatal(err)
	}
	crds, err := charts.CRDs(b)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, c := range crds {
		names[c["metadata"].(map[string]any)["name"].(string)] = true
	}
	for _, want := range []string{"servicemonitors.monitoring.coreos.com", "podmonitors.monitoring.coreos.com", "prometheusrules.monitoring.coreos.com", "prometheuses.monitoring.coreos.com", "alertmanagers.monitoring.coreos.com"} {
		if !names[want] {
			t.Errorf("CRDs of %s lack %s (read: %v)", versions.KubePrometheusStack.Archive(), want, names)
		}
	}
}

// TestRepositoriesFollowTheHelmIndex: a repository (or mirror) is read as Helm reads it: the
// index names the archive by a URL relative to the repository and its digest, which a download
// must match; and both must be the pin in versions. Served on 127.0.0.1 only.
func TestRepositoriesFollowTheHelmIndex(t *testing.T) {
	chart := versions.LoadBalancerController
	archive, err := pinned(t).Archive(chart)
	if err != nil {
		t.Fatal(err)
	}
	body, digest := archive, fmt.Sprintf("%x", sha256.Sum256(archive))
	chart.SHA256 = digest // as if the repository published the cache's build
	indexDigest := digest
	var outage atomic.Int32 // requests still to meet an outage of the host
	outage.Store(2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if outage.Add(-1) >= 0 {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		switch r.URL.Path {
		case "/helm/index.yaml":
			_, _ = fmt.Fprintf(w, "apiVersion: v1\nentries:\n  %s:\n  - version: 0.0.1\n    urls: [old.tgz]\n  - version: %s\n    digest: %s\n    urls: [pkgs/%s]\n", chart.Name, chart.Version, indexDigest, chart.Archive())
		case "/helm/pkgs/" + chart.Archive():
			_, _ = w.Write(body)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	repo := charts.Repositories{Mirror: srv.URL + "/helm/", Client: srv.Client(), RetryPause: time.Millisecond}

	got, err := repo.Archive(chart)
	if err != nil || string(got) != string(archive) {
		t.Fatalf("archive from the mirror, after two 503s: %d bytes, %v; want the pinned archive", len(got), err)
	}

	body = append([]byte{}, archive[:len(archive)-1]...) // a truncated or altered download
	if _, err := repo.Archive(chart); err == nil || !strings.Contains(err.Error(), "pins "+digest) {
		t.Errorf("an archive that does not match the pin was accepted: %v", err)
	}

	// A repository that republished the version (or a mirror holding another build of it),
	// with an index that agrees with its new archive: refused, the pin is the program's.
	body, indexDigest = []byte("republished"), fmt.Sprintf("%x", sha256.Sum256([]byte("republished")))
	if _, err := repo.Archive(chart); err == nil || !strings.Contains(err.Error(), "gives the digest \""+indexDigest+"\"") || !strings.Contains(err.Error(), "pins \""+digest+"\"") {
		t.Errorf("a republished archive whose index agrees with it: %v, want a refusal naming both digests", err)
	}
	body, indexDigest = archive, digest

	other := chart
	other.Version = "9.9.9"
	if _, err := repo.Archive(other); err == nil || !strings.Contains(err.Error(), "no such version") {
		t.Errorf("a version the index does not list: %v, want an error saying so", err)
	}

	noDigest := chart
	noDigest.Version = "0.0.1" // listed without a digest
	if _, err := repo.Archive(noDigest); err == nil || !strings.Contains(err.Error(), `gives the digest ""`) {
		t.Errorf("an index entry without a digest: %v, want a refusal", err)
	}

	outage.Store(10) // longer than the retries
	if _, err := repo.Archive(chart); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("a host that stays down: %v, want the last 503", err)
	}
}

// TestWithoutDescriptionsKeepsFieldsNamedDescription: the documentation goes, the schema stays
// whole, including a field that is itself called "description" (the Prometheus operator's
// CRDs have some), and the decoded CRD shared by later runs is left as it was.
func TestWithoutDescriptionsKeepsFieldsNamedDescription(t *testing.T) {
	spec := map[string]any{"versions": []any{map[string]any{"name": "v1", "schema": map[string]any{"openAPIV3Schema": map[string]any{
		"type": "object", "description": "doc",
		"properties": map[string]any{
			"description": map[string]any{"type": "string", "description": "a field named description"},
			"list":        map[string]any{"type": "array", "items": map[string]any{"type": "object", "description": "doc", "properties": map[string]any{"x": map[string]any{"type": "integer", "description": "doc"}}}},
			"either":      map[string]any{"anyOf": []any{map[string]any{"type": "integer", "description": "doc"}}, "x-kubernetes-int-or-string": true},
		},
	}}}}}
	got := charts.WithoutDescriptions(spec)
	want := `{"versions":[{"name":"v1","schema":{"openAPIV3Schema":{"properties":{"description":{"type":"string"},"either":{"anyOf":[{"type":"integer"}],"x-kubernetes-int-or-string":true},"list":{"items":{"properties":{"x":{"type":"integer"}},"type":"object"},"type":"array"}},"type":"object"}}}]}`
	if b, _ := json.Marshal(got); string(b) != want {
		t.Errorf("stripped spec\n%s\nwant\n%s", b, want)
	}
	if b, _ := json.Marshal(spec); !strings.Contains(string(b), `"description":"doc"`) {
		t.Error("WithoutDescriptions modified the spec it was given")
	}
}

// TestRepositoriesStayOnHTTPS: an https repository whose index sends the download to plain
// http, or whose server redirects there, is refused: anyone on the path could swap the archive
// (and Helm, which fetches it again, checks no digest).
func TestRepositoriesStayOnHTTPS(t *testing.T) {
	chart := versions.Charts()[0]
	archive := []byte("archive")
	digest := fmt.Sprintf("%x", sha256.Sum256(archive))
	chart.SHA256 = digest
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(archive) }))
	defer plain.Close()
	var archiveURL string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/index.yaml":
			_, _ = fmt.Fprintf(w, "apiVersion: v1\nentries:\n  %s:\n  - version: %s\n    digest: %s\n    urls: [%s]\n", chart.Name, chart.Version, digest, archiveURL)
		case "/redirect.tgz":
			http.Redirect(w, r, plain.URL+"/x.tgz", http.StatusFound)
		}
	}))
	defer srv.Close()
	repo := charts.Repositories{Mirror: srv.URL, Client: srv.Client(), RetryPause: time.Millisecond}
	for _, tc := range []struct{ name, url, want string }{
		{"an absolute http URL in the index", plain.URL + "/x.tgz", "not over https"},
		{"a redirect to http", srv.URL + "/redirect.tgz", "not https"},
	} {
		archiveURL = tc.url
		if _, err := repo.Archive(chart); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a refusal saying %q", tc.name, err, tc.want)
		}
	}
}

// TestEveryChartIsPinnedByItsArchive: each pinned chart names the sha256 of its published
// archive and of the offline cache's build, and the cache's archives are the ones pinned (an
// engine run installs them).
func TestEveryChartIsPinnedByItsArchive(t *testing.T) {
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	for _, c := range versions.Charts() {
		if !hex64.MatchString(c.SHA256) || !hex64.MatchString(c.CheckCacheSHA256) {
			t.Errorf("%s: SHA256 %q, CheckCacheSHA256 %q: want both pinned (64 hex digits)", c.Archive(), c.SHA256, c.CheckCacheSHA256)
		}
		if _, err := pinned(t).Archive(c); err != nil {
			t.Errorf("the offline cache's %s: %v", c.Archive(), err)
		}
	}
}

// TestAFolderArchiveThatIsNotThePinIsRefused: a chartSource folder is checked like a
// repository: an archive with other bytes (a local edit, a different build) is not installed,
// and the message names the chart and both sums.
func TestAFolderArchiveThatIsNotThePinIsRefused(t *testing.T) {
	dir := t.TempDir()
	chart := versions.MetricsServer
	if err := os.WriteFile(filepath.Join(dir, chart.Archive()), []byte("edited"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := charts.Folder(dir).Archive(chart)
	if err == nil || !strings.Contains(err.Error(), chart.Archive()) || !strings.Contains(err.Error(), fmt.Sprintf("%x", sha256.Sum256([]byte("edited")))) || !strings.Contains(err.Error(), chart.SHA256) {
		t.Errorf("a folder archive that is not the pin: %v, want a refusal naming %s and both sums", err, chart.Archive())
	}
	// The cache's build is accepted from a folder only, never from a repository.
	if err := charts.Verify(chart, mustRead(t, chart), false); err == nil {
		t.Error("the offline cache's build was accepted as if a repository served it")
	}
}

func mustRead(t *testing.T, c versions.Chart) []byte {
	t.Helper()
	b, err := os.ReadFile(pinned(t).Path(c))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
