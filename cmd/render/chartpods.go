package main

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/versions"
	"github.com/waste-coach/infra/workloads"
)

// chartPodsFile is out/<stack>/chart-pods.json: the chart pods the per-node fit counts
// (workloads.ChartPods), with what tools/charts needs to render the charts as the cluster will
// and compare: the stack's Kubernetes version, each pinned chart's archive and the node selector
// of each role, and the image digests the program pins with the images it lets run by tag
// (versions/images.go), against which it checks every image the charts render. The tool reads
// this file rather than importing the program.
type chartPodsFile struct {
	Stack             string                       `json:"stack"`
	KubernetesVersion string                       `json:"kubernetesVersion"`
	Charts            map[string]string            `json:"charts"`
	Roles             map[string]map[string]string `json:"roles"`
	Pods              []chartPod                   `json:"pods"`
	ImageDigests      map[string]string            `json:"imageDigests"`
	TagOnly           map[string]string            `json:"tagOnly"`
}

type chartPod struct {
	Release        string     `json:"release"`
	Name           string     `json:"name"`
	Role           string     `json:"role"`
	DaemonSet      bool       `json:"daemonSet"`
	Hook           bool       `json:"hook"`
	Replicas       int        `json:"replicas"`
	Containers     []requests `json:"containers"`
	InitContainers []requests `json:"initContainers"`
}

type requests struct {
	MilliCPU  int `json:"milliCPU"`
	MemoryMiB int `json:"memoryMiB"`
	DiskMiB   int `json:"diskMiB"`
}

func requestsOf(rs []workloads.Resources) []requests {
	out := make([]requests, 0, len(rs))
	for _, r := range rs {
		out = append(out, requests{r.CPU, r.MemoryMiB, r.DiskMiB})
	}
	return out
}

// writeChartPods writes chart-pods.json into a render's folder.
func writeChartPods(out, stack string, cfg *config.Config) error {
	f := chartPodsFile{Stack: stack, KubernetesVersion: cfg.Kubernetes.String(), Charts: map[string]string{}, Roles: map[string]map[string]string{},
		ImageDigests: versions.Digests(), TagOnly: versions.TagOnlyImages()}
	for _, c := range versions.Charts() {
		f.Charts[c.Name] = c.Archive()
	}
	for _, r := range config.Roles {
		f.Roles[string(r)] = workloads.NodeSelector(r)
	}
	for _, p := range workloads.ChartPods() {
		f.Pods = append(f.Pods, chartPod{Release: p.Release, Name: p.Name, Role: string(p.Role), DaemonSet: p.DaemonSet, Hook: p.Hook,
			Replicas: p.Replicas, Containers: requestsOf(p.Containers), InitContainers: requestsOf(p.InitContainers)})
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "chart-pods.json"), append(b, '\n'), 0o644)
}
