package main

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Container is one container of a rendered pod and its requests.
type Container struct {
	Name string
	// Init is a run-to-completion init container (a sidecar init container, restartPolicy
	// Always, runs beside the containers and counts as one of them).
	Init             bool
	MilliCPU, MemMiB int
	HasCPU, HasMem   bool
	// DiskMiB is its ephemeral storage request, 0 for none (the table says which have one).
	DiskMiB int
}

// Pod is one pod template a release makes, directly (a workload's template) or through the
// Prometheus operator (a Prometheus or Alertmanager resource).
type Pod struct {
	Release string
	// Name is the workload that owns the pods: the Deployment, StatefulSet, DaemonSet, Job or
	// CronJob, or the StatefulSet the operator creates for a Prometheus or Alertmanager.
	Name string
	// Kind is the rendered object's kind.
	Kind string
	// Hook lists the Helm hook events the pod's Job runs on; empty for a long-running pod.
	Hook         []string
	DaemonSet    bool
	Replicas     int
	NodeSelector map[string]string
	Tolerations  []any
	Containers   []Container
}

// TestOnly reports a `helm test` hook, which an install never runs.
func (p Pod) TestOnly() bool { return slices.Contains(p.Hook, "test") }

// Requests applies the scheduler's rule: the larger of the containers' sum and the largest
// init container.
func (p Pod) Requests() Requests {
	var sum, initMax Requests
	for _, c := range p.Containers {
		if c.Init {
			initMax.MilliCPU, initMax.MemoryMiB, initMax.DiskMiB = max(initMax.MilliCPU, c.MilliCPU), max(initMax.MemoryMiB, c.MemMiB), max(initMax.DiskMiB, c.DiskMiB)
			continue
		}
		sum.MilliCPU += c.MilliCPU
		sum.MemoryMiB += c.MemMiB
		sum.DiskMiB += c.DiskMiB
	}
	return Requests{max(sum.MilliCPU, initMax.MilliCPU), max(sum.MemoryMiB, initMax.MemoryMiB), max(sum.DiskMiB, initMax.DiskMiB)}
}

// reloaderFlags are the Prometheus operator's flags that set the requests of the config-reloader
// and init-config-reloader containers it adds to every Prometheus and Alertmanager pod
// (prometheus-operator cmd/operator; "0" means no request). reloaderDefaults are the flags'
// defaults in v0.86 (the version kube-prometheus-stack 79.7.1 runs), used when an arg is absent.
var (
	reloaderFlags    = [2]string{"config-reloader-cpu-request", "config-reloader-memory-request"}
	reloaderDefaults = [2]string{"10m", "50Mi"}
)

// operatorReloader finds the Prometheus operator among the rendered objects (the container
// given --prometheus-config-reloader) and returns the config reloader's requests from its args.
func operatorReloader(all []Object) (cpu, mem string, found bool) {
	for _, o := range all {
		if o.Map["kind"] != "Deployment" {
			continue
		}
		for _, c := range list(dig(o.Map, "spec", "template", "spec"), "containers") {
			args := strs(c["args"])
			if !slices.ContainsFunc(args, func(a string) bool { return flagName(a) == "prometheus-config-reloader" }) {
				continue
			}
			cpu, mem = reloaderDefaults[0], reloaderDefaults[1]
			if v, ok := flagValue(args, reloaderFlags[0]); ok {
				cpu = v
			}
			if v, ok := flagValue(args, reloaderFlags[1]); ok {
				mem = v
			}
			return cpu, mem, true
		}
	}
	return "", "", false
}

func flagName(arg string) string {
	if !strings.HasPrefix(arg, "-") {
		return ""
	}
	name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
	return name
}

// flagValue reads a Go flag from args, in its -name=value, --name=value or --name value form;
// the last one wins, as with the flag package.
func flagValue(args []string, name string) (string, bool) {
	var val string
	var found bool
	for i, a := range args {
		if flagName(a) != name {
			continue
		}
		if _, v, ok := strings.Cut(a, "="); ok {
			val, found = v, true
		} else if i+1 < len(args) {
			val, found = args[i+1], true
		}
	}
	return val, found
}

// podsOf lists the pods a release's rendered objects make. all holds every release's objects,
// to find the Prometheus operator whose flags shape the operator-made pods.
func podsOf(r *Rendered, all []Object) ([]Pod, error) {
	var out []Pod
	for _, o := range r.Objects {
		m := o.Map
		kind, _ := m["kind"].(string)
		name := str(dig(m, "metadata"), "name")
		spec := dig(m, "spec")
		pod := Pod{Release: r.Release.Name, Name: name, Kind: kind, Hook: o.Hook, Replicas: 1}
		var podSpec map[string]any
		switch kind {
		case "Deployment", "StatefulSet", "ReplicaSet":
			podSpec = dig(spec, "template", "spec")
			pod.Replicas = intOr(spec["replicas"], 1)
		case "DaemonSet":
			podSpec = dig(spec, "template", "spec")
			pod.DaemonSet, pod.Replicas = true, 0
		case "Job":
			podSpec = dig(spec, "template", "spec")
			pod.Replicas = intOr(spec["parallelism"], 1)
		case "CronJob":
			podSpec = dig(spec, "jobTemplate", "spec", "template", "spec")
		case "Pod":
			podSpec = spec
		case "Prometheus", "Alertmanager":
			p, err := operatorPod(pod, m, all)
			if err != nil {
				return nil, fmt.Errorf("release %s: %w", r.Release.Name, err)
			}
			out = append(out, p)
			continue
		case "PrometheusAgent", "ThanosRuler":
			return nil, fmt.Errorf("release %s renders a %s %s, whose pods this check cannot yet compute", r.Release.Name, kind, name)
		default:
			continue
		}
		pod.NodeSelector = strMap(podSpec["nodeSelector"])
		pod.Tolerations, _ = podSpec["tolerations"].([]any)
		for _, c := range list(podSpec, "containers") {
			pod.Containers = append(pod.Containers, container(c, false))
		}
		for _, c := range list(podSpec, "initContainers") {
			pod.Containers = append(pod.Containers, container(c, str(c, "restartPolicy") != "Always"))
		}
		out = append(out, pod)
	}
	return out, nil
}

// operatorPod is the pod the Prometheus operator creates for a Prometheus or Alertmanager
// resource: the main container with spec.resources, the config-reloader beside it and the
// init-config-reloader before it with the operator's reloader requests, and spec.containers /
// spec.initContainers merged by name (the operator's strategic merge) or added.
func operatorPod(pod Pod, cr map[string]any, all []Object) (Pod, error) {
	spec := dig(cr, "spec")
	main := strings.ToLower(pod.Kind)
	pod.Name = main + "-" + pod.Name // the StatefulSet the operator creates
	pod.Replicas = intOr(spec["replicas"], 1)
	if pod.Kind == "Prometheus" {
		pod.Replicas *= intOr(spec["shards"], 1)
	}
	pod.NodeSelector = strMap(spec["nodeSelector"])
	pod.Tolerations, _ = spec["tolerations"].([]any)
	cpu, mem, ok := operatorReloader(all)
	if !ok {
		return pod, fmt.Errorf("%s %s: no Prometheus operator Deployment (--prometheus-config-reloader) is rendered, so its config reloader's requests are unknown", pod.Kind, str(dig(cr, "metadata"), "name"))
	}
	reloader := map[string]any{"resources": map[string]any{"requests": map[string]any{}}}
	req := dig(reloader, "resources", "requests")
	if cpu != "0" {
		req["cpu"] = cpu
	}
	if mem != "0" {
		req["memory"] = mem
	}
	containers := []map[string]any{{"name": main, "resources": spec["resources"]}, withName(reloader, "config-reloader")}
	inits := []map[string]any{withName(reloader, "init-config-reloader")}
	merge := func(base []map[string]any, extra []map[string]any) []map[string]any {
		for _, c := range extra {
			i := slices.IndexFunc(base, func(b map[string]any) bool { return b["name"] == c["name"] })
			if i < 0 {
				base = append(base, c)
				continue
			}
			if r, ok := c["resources"].(map[string]any); ok && len(r) > 0 {
				base[i] = withName(map[string]any{"resources": r}, str(c, "name"))
			}
		}
		return base
	}
	containers = merge(containers, list(spec, "containers"))
	inits = merge(inits, list(spec, "initContainers"))
	for _, c := range containers {
		pod.Containers = append(pod.Containers, container(c, false))
	}
	for _, c := range inits {
		pod.Containers = append(pod.Containers, container(c, true))
	}
	return pod, nil
}

func withName(m map[string]any, name string) map[string]any {
	out := map[string]any{"name": name}
	for k, v := range m {
		if k != "name" {
			out[k] = v
		}
	}
	return out
}

// container reads a container's requests. A missing request stays missing (Has* false): the
// check refuses it rather than guess.
func container(c map[string]any, init bool) Container {
	out := Container{Name: str(c, "name"), Init: init}
	req := dig(c, "resources", "requests")
	if q, ok := quantity(req["cpu"]); ok {
		out.MilliCPU, out.HasCPU = int(q.MilliValue()), true
	}
	const mib = 1 << 20
	if q, ok := quantity(req["memory"]); ok {
		out.MemMiB, out.HasMem = int((q.Value()+mib-1)/mib), true
	}
	if q, ok := quantity(req["ephemeral-storage"]); ok {
		out.DiskMiB = int((q.Value() + mib - 1) / mib)
	}
	return out
}

func quantity(v any) (resource.Quantity, bool) {
	if v == nil {
		return resource.Quantity{}, false
	}
	q, err := resource.ParseQuantity(fmt.Sprint(v))
	if err != nil || q.IsZero() {
		return resource.Quantity{}, false
	}
	return q, true
}

func dig(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		next, _ := m[p].(map[string]any)
		m = next
	}
	if m == nil {
		return map[string]any{}
	}
	return m
}

func str(m map[string]any, key string) string {
	if v, ok := m[key].(string); ok {
		return v
	}
	return ""
}

func list(m map[string]any, key string) []map[string]any {
	raw, _ := m[key].([]any)
	var out []map[string]any
	for _, v := range raw {
		if vm, ok := v.(map[string]any); ok {
			out = append(out, vm)
		}
	}
	return out
}

func strs(v any) []string {
	raw, _ := v.([]any)
	out := make([]string, 0, len(raw))
	for _, a := range raw {
		out = append(out, fmt.Sprint(a))
	}
	return out
}

func strMap(v any) map[string]string {
	raw, _ := v.(map[string]any)
	out := map[string]string{}
	for k, val := range raw {
		out[k] = fmt.Sprint(val)
	}
	return out
}

func intOr(v any, def int) int {
	switch n := v.(type) {
	case float64:
		return int(n)
	case int64:
		return int(n)
	case int:
		return n
	}
	return def
}
