package main

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
)

// controlPlaneTaint is the taint kubeadm puts on the master.
const controlPlaneTaint = "node-role.kubernetes.io/control-plane"

// everyNodeLabels are labels every node carries (the kubelet sets them; this platform's nodes
// are all linux/amd64), so a selector on them pins a pod to no role.
var everyNodeLabels = map[string]string{"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}

// runsNowhere reports a pod whose node selector asks for a value of a label every node carries
// with another value (the EBS driver's Windows DaemonSet): it makes no pod here.
func runsNowhere(p Pod) bool {
	for k, v := range p.NodeSelector {
		if common, ok := everyNodeLabels[k]; ok && common != v {
			return true
		}
	}
	return false
}

// placement says where a rendered pod runs in the table's terms: a role, "every node" for a
// DaemonSet that reaches the master too, or why it matches neither.
func placement(p Pod, roles map[string]map[string]string) (role string, problem string) {
	sel := map[string]string{}
	for k, v := range p.NodeSelector {
		if common, ok := everyNodeLabels[k]; !ok || common != v {
			sel[k] = v
		}
	}
	if p.DaemonSet && len(sel) == 0 {
		if !tolerates(p.Tolerations) {
			return "", "a DaemonSet that does not tolerate the control plane's taint runs on every node but the master"
		}
		return "", ""
	}
	for _, name := range slices.Sorted(maps.Keys(roles)) {
		if maps.Equal(sel, roles[name]) {
			if _, cp := roles[name][controlPlaneTaint]; cp && !tolerates(p.Tolerations) {
				return name, "pinned to the master but does not tolerate its taint " + controlPlaneTaint + ":NoSchedule: it would stay Pending"
			}
			return name, ""
		}
	}
	if len(sel) == 0 {
		return "", "not pinned to a node role (no nodeSelector): the fit cannot place it"
	}
	return "", fmt.Sprintf("nodeSelector %v matches no node role", sel)
}

// tolerates reports whether tolerations let a pod onto the master.
func tolerates(tolerations []any) bool {
	for _, t := range tolerations {
		tm, _ := t.(map[string]any)
		key, op, effect := str(tm, "key"), str(tm, "operator"), str(tm, "effect")
		if effect != "" && effect != "NoSchedule" {
			continue
		}
		if (key == "" && op == "Exists") || (key == controlPlaneTaint && (op == "Exists" || op == "")) {
			return true
		}
	}
	return false
}

// Finding is one reason the check fails.
type Finding struct {
	Release, Pod, Container, Problem string
}

func (f Finding) String() string {
	var where []string
	for _, p := range [][2]string{{"release", f.Release}, {"pod", f.Pod}, {"container", f.Container}} {
		if p[1] != "" {
			where = append(where, p[0]+" "+p[1])
		}
	}
	if len(where) == 0 {
		return f.Problem
	}
	return strings.Join(where, ", ") + ": " + f.Problem
}

// checkRequests refuses every container without a CPU or memory request.
func checkRequests(pods []Pod) []Finding {
	var out []Finding
	for _, p := range pods {
		if p.TestOnly() || runsNowhere(p) {
			continue
		}
		for _, c := range p.Containers {
			kind := "container"
			if c.Init {
				kind = "init container"
			}
			var missing []string
			if !c.HasCPU {
				missing = append(missing, "CPU")
			}
			if !c.HasMem {
				missing = append(missing, "memory")
			}
			if len(missing) > 0 {
				out = append(out, Finding{p.Release, p.Name, c.Name, fmt.Sprintf("%s has no %s request: set it through the chart's values", kind, strings.Join(missing, " or "))})
			}
		}
	}
	return out
}

// compare matches the rendered pods with the program's table, by release and workload name.
func compare(pods []Pod, t *Table) []Finding {
	var out []Finding
	type key struct{ release, name string }
	table := map[key]TablePod{}
	for _, tp := range t.Pods {
		table[key{tp.Release, tp.Name}] = tp
	}
	seen := map[key]bool{}
	for _, p := range pods {
		if p.TestOnly() || runsNowhere(p) {
			continue
		}
		k := key{p.Release, p.Name}
		role, problem := placement(p, t.Roles)
		if problem != "" {
			out = append(out, Finding{p.Release, p.Name, "", problem})
		}
		tp, ok := table[k]
		if !ok {
			out = append(out, Finding{p.Release, p.Name, "", fmt.Sprintf("the chart renders this pod (%s), which workloads.ChartPods() does not list", describe(p, role))})
			continue
		}
		seen[k] = true
		differ := func(what string, rendered, listed any) {
			out = append(out, Finding{p.Release, p.Name, "", fmt.Sprintf("%s: the chart renders %v, workloads.ChartPods() says %v", what, rendered, listed)})
		}
		if hook := len(p.Hook) > 0; hook != tp.Hook {
			differ("Helm hook", hookText(p.Hook), tp.Hook)
		}
		if p.DaemonSet != tp.DaemonSet {
			differ("DaemonSet", p.DaemonSet, tp.DaemonSet)
		}
		if !p.DaemonSet && p.Replicas != tp.Replicas {
			differ("replicas", p.Replicas, tp.Replicas)
		}
		if problem == "" && !p.DaemonSet && role != tp.Role {
			differ("node role", role, tp.Role)
		}
		out = append(out, compareContainers(p, tp)...)
	}
	for _, tp := range t.Pods {
		if !seen[key{tp.Release, tp.Name}] {
			out = append(out, Finding{tp.Release, tp.Name, "", "workloads.ChartPods() lists this pod, but the chart does not render it"})
		}
	}
	return out
}

// compareContainers compares a pod's containers with the table's, as multisets of requests (the
// table does not name containers), and names the rendered containers that have no counterpart.
func compareContainers(p Pod, tp TablePod) []Finding {
	var out []Finding
	for _, init := range []bool{false, true} {
		what, listed := "containers", tp.Containers
		if init {
			what, listed = "init containers", tp.InitContainers
		}
		var rendered []Container
		for _, c := range p.Containers {
			if c.Init == init {
				rendered = append(rendered, c)
			}
		}
		if len(rendered) != len(listed) {
			out = append(out, Finding{p.Release, p.Name, "", fmt.Sprintf("%d %s rendered (%s), workloads.ChartPods() lists %d (%s)", len(rendered), what, containerList(rendered), len(listed), requestList(listed))})
			continue
		}
		left := slices.Clone(listed)
		var unmatched []Container
		for _, c := range rendered {
			i := slices.Index(left, Requests{c.MilliCPU, c.MemMiB, c.DiskMiB})
			if i < 0 {
				unmatched = append(unmatched, c)
				continue
			}
			left = slices.Delete(left, i, i+1)
		}
		for _, c := range unmatched {
			out = append(out, Finding{p.Release, p.Name, c.Name, fmt.Sprintf("requests %s, which no entry of workloads.ChartPods() for this pod has (unmatched there: %s)", Requests{c.MilliCPU, c.MemMiB, c.DiskMiB}, requestList(left))})
		}
	}
	return out
}

func describe(p Pod, role string) string {
	where := role
	switch {
	case p.DaemonSet:
		where = "every node"
	case where == "":
		where = "no role"
	}
	n := fmt.Sprintf("%d replicas", p.Replicas)
	if p.DaemonSet {
		n = "DaemonSet"
	}
	s := fmt.Sprintf("%s, %s on %s, containers %s, requests %s", p.Kind, n, where, containerList(p.Containers), p.Requests())
	if len(p.Hook) > 0 {
		s += ", hook " + hookText(p.Hook)
	}
	return s
}

func hookText(events []string) string {
	if len(events) == 0 {
		return "none"
	}
	return strings.Join(events, ",")
}

func containerList(cs []Container) string {
	parts := make([]string, 0, len(cs))
	for _, c := range cs {
		r := "no request"
		if c.HasCPU || c.HasMem {
			r = Requests{c.MilliCPU, c.MemMiB, c.DiskMiB}.String()
		}
		prefix := ""
		if c.Init {
			prefix = "init "
		}
		parts = append(parts, prefix+c.Name+" "+r)
	}
	return strings.Join(parts, ", ")
}

func requestList(rs []Requests) string {
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		parts = append(parts, r.String())
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
