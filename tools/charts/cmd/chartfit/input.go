package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// Release is one Helm release as the program declares it (out/<stack>/helm-releases.yaml).
type Release struct {
	Name      string         `json:"name"`
	Namespace string         `json:"namespace"`
	Chart     string         `json:"chart"`
	Version   string         `json:"version"`
	SkipCRDs  bool           `json:"skipCrds"`
	Values    map[string]any `json:"values"`
}

// Requests are one container's requests as the table counts them; DiskMiB is its ephemeral
// storage, 0 for none.
type Requests struct {
	MilliCPU  int `json:"milliCPU"`
	MemoryMiB int `json:"memoryMiB"`
	DiskMiB   int `json:"diskMiB"`
}

func (r Requests) String() string {
	s := fmt.Sprintf("%dm/%dMi", r.MilliCPU, r.MemoryMiB)
	if r.DiskMiB > 0 {
		s += fmt.Sprintf("/disk %dMi", r.DiskMiB)
	}
	return s
}

// TablePod is one entry of workloads.ChartPods(), as cmd/render writes it to chart-pods.json.
type TablePod struct {
	Release        string     `json:"release"`
	Name           string     `json:"name"`
	Role           string     `json:"role"`
	DaemonSet      bool       `json:"daemonSet"`
	Hook           bool       `json:"hook"`
	Replicas       int        `json:"replicas"`
	Containers     []Requests `json:"containers"`
	InitContainers []Requests `json:"initContainers"`
}

// Table is out/<stack>/chart-pods.json: what the program believes its charts run, and the facts
// needed to render them as the cluster will (Kubernetes version, pinned archives, role labels).
type Table struct {
	Stack             string `json:"stack"`
	KubernetesVersion string `json:"kubernetesVersion"`
	// Charts maps a chart name to its pinned archive (versions.Chart.Archive).
	Charts map[string]string `json:"charts"`
	// Roles maps a node role to the node selector that pins a pod to it.
	Roles map[string]map[string]string `json:"roles"`
	Pods  []TablePod                   `json:"pods"`
	// ImageDigests are the digests the program pins, by repository:tag; TagOnly the images it
	// lets run by tag, with the reason of each (versions/images.go).
	ImageDigests map[string]string `json:"imageDigests"`
	TagOnly      map[string]string `json:"tagOnly"`
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

// readReleases reads every release of a render, sorted by name.
func readReleases(dir string) ([]Release, error) {
	path := filepath.Join(dir, "helm-releases.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the program's releases (run go run ./cmd/render first): %w", err)
	}
	var out []Release
	for i, doc := range docSeparator.Split(string(b), -1) {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		var r Release
		if err := yaml.Unmarshal([]byte(doc), &r); err != nil {
			return nil, fmt.Errorf("%s, document %d: %w", path, i+1, err)
		}
		if r.Name == "" || r.Namespace == "" || r.Chart == "" {
			return nil, fmt.Errorf("%s, document %d: a release needs name, namespace and chart", path, i+1)
		}
		out = append(out, r)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s declares no release", path)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// readTable reads out/<stack>/chart-pods.json.
func readTable(dir string) (*Table, error) {
	path := filepath.Join(dir, "chart-pods.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the program's chart pod table (run go run ./cmd/render first): %w", err)
	}
	var t Table
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if t.KubernetesVersion == "" || len(t.Charts) == 0 || len(t.Roles) == 0 || len(t.ImageDigests) == 0 {
		return nil, fmt.Errorf("%s: needs kubernetesVersion, charts, roles and imageDigests", path)
	}
	return &t, nil
}
