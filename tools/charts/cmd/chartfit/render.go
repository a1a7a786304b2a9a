package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/releaseutil"
	"sigs.k8s.io/yaml"
)

// Object is one rendered Kubernetes object; Hook lists its Helm hook events, empty for an
// object of the release's manifest.
type Object struct {
	Map  map[string]any
	Hook []string
}

// Rendered is one release rendered as `helm install --dry-run` would, client-only.
type Rendered struct {
	Release Release
	Archive string
	Objects []Object
	// CRDs are the CustomResourceDefinitions the release installs: its charts' crds/ folders
	// (unless skipCrds) and any rendered from templates.
	CRDs []map[string]any
}

// archiveOf names the pinned archive of a release's chart, refusing a release whose chart or
// version is not the program's pin.
func archiveOf(r Release, t *Table) (string, error) {
	if strings.HasSuffix(r.Chart, ".tgz") { // chartSource is a folder: the file name pins the version
		return filepath.Base(r.Chart), nil
	}
	archive, ok := t.Charts[r.Chart]
	if !ok {
		return "", fmt.Errorf("release %s: chart %q is not among the program's pinned charts (versions.Charts)", r.Name, r.Chart)
	}
	if want := r.Chart + "-" + r.Version + ".tgz"; want != archive {
		return "", fmt.Errorf("release %s: asks for %s %s, but the pinned archive is %s", r.Name, r.Chart, r.Version, archive)
	}
	return archive, nil
}

// kubeVersion turns "1.35.4" into Helm's capabilities version.
func kubeVersion(v string) (chartutil.KubeVersion, error) {
	parts := strings.Split(strings.TrimPrefix(v, "v"), ".")
	if len(parts) < 2 {
		return chartutil.KubeVersion{}, fmt.Errorf("kubernetes version %q is not MAJOR.MINOR[.PATCH]", v)
	}
	return chartutil.KubeVersion{Version: "v" + strings.Join(parts, "."), Major: parts[0], Minor: parts[1]}, nil
}

// renderRelease renders a release's pinned archive with the Helm SDK, as `helm install
// --dry-run` client-only would: the program's release name, namespace and values, the stack's
// Kubernetes version and the given API versions on top of Helm's built-in set. Nothing touches a
// network: the chart is a local archive and the client is Helm's printing fake.
func renderRelease(charts, archive string, r Release, kube chartutil.KubeVersion, apis chartutil.VersionSet) (*Rendered, error) {
	path := filepath.Join(charts, archive)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("release %s: the pinned chart %s is not in the chart cache %s, so it cannot be checked offline", r.Name, archive, charts)
	}
	// Load afresh for every render: the install prunes disabled subcharts from the chart it is given.
	ch, err := loader.Load(path)
	if err != nil {
		return nil, fmt.Errorf("release %s: load %s: %w", r.Name, path, err)
	}
	install := action.NewInstall(&action.Configuration{Log: func(string, ...any) {}})
	install.DryRun, install.DryRunOption, install.ClientOnly = true, "client", true
	install.ReleaseName, install.Namespace = r.Name, r.Namespace
	install.KubeVersion, install.APIVersions = &kube, apis
	install.SkipCRDs = r.SkipCRDs
	values := r.Values
	if values == nil {
		values = map[string]any{}
	}
	rel, err := install.RunWithContext(context.Background(), ch, values)
	if err != nil {
		return nil, fmt.Errorf("release %s: render %s: %w", r.Name, archive, err)
	}
	out := &Rendered{Release: r, Archive: archive}
	objs, err := parseManifests(rel.Manifest, nil)
	if err != nil {
		return nil, fmt.Errorf("release %s: %w", r.Name, err)
	}
	out.Objects = objs
	for _, h := range rel.Hooks {
		events := make([]string, 0, len(h.Events))
		for _, e := range h.Events {
			events = append(events, string(e))
		}
		objs, err := parseManifests(h.Manifest, events)
		if err != nil {
			return nil, fmt.Errorf("release %s, hook %s: %w", r.Name, h.Path, err)
		}
		out.Objects = append(out.Objects, objs...)
	}
	if out.CRDs, err = crdsOf(rel, out.Objects, r.SkipCRDs); err != nil {
		return nil, fmt.Errorf("release %s: %w", r.Name, err)
	}
	return out, nil
}

// crdsOf collects the CRDs a release installs: those under crds/ of the chart and of its enabled
// subcharts (the install has pruned the disabled ones), unless skipped, and rendered ones.
func crdsOf(rel *release.Release, objects []Object, skip bool) ([]map[string]any, error) {
	var out []map[string]any
	if !skip && rel.Chart != nil {
		for _, crd := range rel.Chart.CRDObjects() {
			objs, err := parseManifests(string(crd.File.Data), nil)
			if err != nil {
				return nil, fmt.Errorf("crd %s: %w", crd.Filename, err)
			}
			for _, o := range objs {
				out = append(out, o.Map)
			}
		}
	}
	for _, o := range objects {
		if o.Map["kind"] == "CustomResourceDefinition" {
			out = append(out, o.Map)
		}
	}
	return out, nil
}

// parseManifests splits a rendered YAML stream into objects, skipping empty documents.
func parseManifests(manifest string, hook []string) ([]Object, error) {
	docs := releaseutil.SplitManifests(manifest)
	keys := make([]string, 0, len(docs))
	for k := range docs {
		keys = append(keys, k)
	}
	sort.Sort(releaseutil.BySplitManifestsOrder(keys))
	var out []Object
	for _, k := range keys {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(docs[k]), &m); err != nil {
			return nil, fmt.Errorf("parse rendered object: %w", err)
		}
		if len(m) == 0 {
			continue
		}
		out = append(out, Object{Map: m, Hook: hook})
	}
	return out, nil
}

// apiVersionsOf lists the group/version and group/version/kind of every CRD, as a cluster's
// discovery would after the CRDs are installed.
func apiVersionsOf(crds []map[string]any) chartutil.VersionSet {
	var out chartutil.VersionSet
	for _, crd := range crds {
		group := str(dig(crd, "spec"), "group")
		kind := str(dig(crd, "spec", "names"), "kind")
		versions, _ := dig(crd, "spec")["versions"].([]any)
		if v := str(dig(crd, "spec"), "version"); v != "" { // apiextensions v1beta1
			versions = append(versions, map[string]any{"name": v, "served": true})
		}
		for _, v := range versions {
			vm, _ := v.(map[string]any)
			if served, ok := vm["served"].(bool); ok && !served {
				continue
			}
			gv := group + "/" + str(vm, "name")
			if !slices.Contains(out, gv) {
				out = append(out, gv)
			}
			out = append(out, gv+"/"+kind)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// programCRDs reads the CRDs the program itself declares (out/<stack>/manifests).
func programCRDs(dir string) ([]map[string]any, error) {
	files, err := filepath.Glob(filepath.Join(dir, "manifests", "*.yaml"))
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if !strings.Contains(string(b), "CustomResourceDefinition") {
			continue
		}
		objs, err := parseManifests(string(b), nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, o := range objs {
			if o.Map["kind"] == "CustomResourceDefinition" {
				out = append(out, o.Map)
			}
		}
	}
	return out, nil
}
