// Command chartfit proves the per-node fit's table of chart pods against the charts themselves.
// It renders every Helm release a stack declares (out/<stack>/helm-releases.yaml, written by
// cmd/render) from its pinned archive in the chart cache, with the Helm SDK, as `helm install
// --dry-run` client-only would; lists every pod the rendered objects make (workload templates,
// Helm hook Jobs, and the Prometheus and Alertmanager pods the Prometheus operator creates from
// its custom resources); and fails when a container has no CPU or memory request, or when the
// pods differ from workloads.ChartPods() (out/<stack>/chart-pods.json), which the fit counts.
// It also checks the charts' pod identities against the roles' trust policies
// (out/<stack>/issuer/trust, identity.go), and which chart ServiceAccounts a ClusterRoleBinding
// lets read every Secret against an allowed table, with Grafana and KEDA's operator bound in
// their namespaces only (rbac.go). It writes the charts' ServiceAccounts and RBAC objects to
// out/<stack>/chart-rbac.yaml, which verify-local applies and questions (rbacout.go). It fails
// when a pod of kube-system off the host's network (the charts', the program's or kubeadm's) has
// no NetworkPolicy of its own, or when a port that a Service, APIService, webhook or
// ServiceMonitor sends traffic to is not admitted from its sender (netpol.go). And it fails on
// an image the charts run without the digest the program pins for it, or by tag alone without a
// reason in versions/images.go (images.go).
//
//	go run ./cmd/render -stack prod -out out/prod
//	(cd tools/charts && go run ./cmd/chartfit -dir ../../out/prod -charts ../../../shared/charts)
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"helm.sh/helm/v3/pkg/chartutil"
)

func main() {
	dir := flag.String("dir", "", "a render's output folder, holding helm-releases.yaml and chart-pods.json (go run ./cmd/render -stack prod -out out/prod)")
	charts := flag.String("charts", defaultChartsDir(), "folder of the pinned chart archives (../shared/charts beside the repository)")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "chartfit: -dir is required")
		os.Exit(2)
	}
	start := time.Now()
	var report strings.Builder
	findings, err := run(*dir, *charts, &report)
	fmt.Print(report.String())
	if err != nil {
		fmt.Fprintln(os.Stderr, "chartfit:", err)
		os.Exit(1)
	}
	if len(findings) > 0 {
		fmt.Fprintf(os.Stderr, "chartfit: %d problem(s) in %s (%s):\n", len(findings), *dir, time.Since(start).Round(time.Millisecond))
		for _, f := range findings {
			fmt.Fprintln(os.Stderr, "  "+f.String())
		}
		os.Exit(1)
	}
	fmt.Printf("chartfit: every chart pod has requests and matches workloads.ChartPods(), only the allowed ServiceAccounts read Secrets cluster-wide, every kube-system pod's policies admit who reaches it, and every image runs by its pinned digest or a stated reason (%s)\n", time.Since(start).Round(time.Millisecond))
}

// run renders a stack's releases and checks their pods; it returns the findings, or an error
// when the check itself could not be made.
func run(dir, charts string, w *strings.Builder) ([]Finding, error) {
	releases, err := readReleases(dir)
	if err != nil {
		return nil, err
	}
	table, err := readTable(dir)
	if err != nil {
		return nil, err
	}
	pods, rendered, err := renderPods(releases, table, dir, charts, w)
	if err != nil {
		return nil, err
	}
	printPods(w, pods, table)
	counts, testOnly, err := writeChartRBAC(dir, rendered)
	if err != nil {
		return nil, fmt.Errorf("write the charts' RBAC for verify-local: %w", err)
	}
	fmt.Fprintf(w, "wrote %s: %s, for verify-local's SubjectAccessReviews; left out, as Helm test hooks only helm test creates: %s\n\n",
		filepath.Join(dir, chartRBACFile), countList(counts), orNone(testOnly))
	identities, err := identityCheck(dir, rendered, w)
	if err != nil {
		return nil, err
	}
	secrets := checkSecretReaders(rendered, clusterSecretReaders, w)
	netpol, err := networkPolicyCheck(dir, rendered, w)
	if err != nil {
		return nil, err
	}
	images := chartImages(rendered)
	printImages(w, images, table)
	return slices.Concat(checkRequests(pods), compare(pods, table), identities, secrets, netpol, checkImageDigests(images, table)), nil
}

// renderPods renders every release twice: the first pass finds the CRDs the releases install, the
// second renders with their API versions present, as they are in the cluster once every release
// is installed (charts gate objects, and the EBS driver a container, on .Capabilities). It
// returns the pods and the rendered releases.
func renderPods(releases []Release, table *Table, dir, charts string, w *strings.Builder) ([]Pod, []*Rendered, error) {
	kube, err := kubeVersion(table.KubernetesVersion)
	if err != nil {
		return nil, nil, err
	}
	crds, err := programCRDs(dir)
	if err != nil {
		return nil, nil, err
	}
	archives := make([]string, len(releases))
	for i, r := range releases {
		if archives[i], err = archiveOf(r, table); err != nil {
			return nil, nil, err
		}
	}
	renderAll := func(apis chartutil.VersionSet) ([]*Rendered, error) {
		var out []*Rendered
		for i, r := range releases {
			rendered, err := renderRelease(charts, archives[i], r, kube, apis)
			if err != nil {
				return nil, err
			}
			out = append(out, rendered)
		}
		return out, nil
	}
	first, err := renderAll(apiVersionsOf(crds))
	if err != nil {
		return nil, nil, err
	}
	for _, r := range first {
		crds = append(crds, r.CRDs...)
	}
	apis := apiVersionsOf(crds)
	start := time.Now()
	rendered, err := renderAll(apis)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(w, "rendered %d releases with the Helm SDK (client-only dry-run install, Kubernetes %s, %d API versions from %d CRDs added to Helm's built-in set) in %s:\n",
		len(rendered), kube.Version, len(apis), len(crds), time.Since(start).Round(time.Millisecond))
	var all []Object
	for _, r := range rendered {
		all = append(all, r.Objects...)
	}
	var pods []Pod
	for _, r := range rendered {
		ps, err := podsOf(r, all)
		if err != nil {
			return nil, nil, err
		}
		fmt.Fprintf(w, "  %-30s %-14s %-42s %3d objects, %2d pod templates\n", r.Release.Name, r.Release.Namespace, r.Archive, len(r.Objects), len(ps))
		pods = append(pods, ps...)
	}
	return pods, rendered, nil
}

func printPods(w *strings.Builder, pods []Pod, table *Table) {
	fmt.Fprintf(w, "\npods the charts make (requests per pod, as the scheduler counts them):\n")
	fmt.Fprintf(w, "  %-28s %-48s %-12s %-10s %3s %12s  %s\n", "RELEASE", "POD", "KIND", "WHERE", "N", "REQUESTS", "CONTAINERS")
	for _, p := range pods {
		role, _ := placement(p, table.Roles)
		where, n := role, fmt.Sprint(p.Replicas)
		if p.DaemonSet {
			where, n = "every node", "-"
		}
		note := ""
		switch {
		case p.TestOnly():
			note = "  [helm test hook: an install never runs it; not checked]"
		case runsNowhere(p):
			note = fmt.Sprintf("  [nodeSelector %v: no node here, no pod; not checked]", p.NodeSelector)
		case len(p.Hook) > 0:
			note = "  [hook " + hookText(p.Hook) + "]"
		}
		fmt.Fprintf(w, "  %-28s %-48s %-12s %-10s %3s %12s  %s%s\n", p.Release, p.Name, p.Kind, where, n, p.Requests(), containerList(p.Containers), note)
	}
	fmt.Fprintln(w)
}

// defaultChartsDir is ../shared/charts beside the repository holding this module.
func defaultChartsDir() string {
	wd, err := os.Getwd()
	if err != nil {
		return filepath.Join("..", "shared", "charts")
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "tools", "charts", "go.mod")); err == nil {
			return filepath.Join(filepath.Dir(d), "shared", "charts")
		}
		if filepath.Dir(d) == d {
			return filepath.Join("..", "shared", "charts")
		}
	}
}
