// Package fit checks that the pods pinned to each node fit it: the requests of every pod the
// program declares (typed objects and chart pods) plus the cluster's own pods, against what the
// kubelet offers on the node's instance type and root volume (CPU, memory and disk). The first
// implementation had PostgreSQL and Prometheus stuck Pending on 2-vCPU nodes; this is the check
// that would have caught it.
package fit

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/waste-coach/infra/cluster"
	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/internal/manifest"
	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/workloads"
)

// Demand is what one pod (times its replicas) asks of a node.
type Demand struct {
	Name             string
	MilliCPU, MemMiB int
	// DiskMiB is the pod's ephemeral storage request (its containers' logs, writable layers and
	// emptyDirs).
	DiskMiB int
	// Key is the config key whose maximum sets the replicas counted, for an autoscaled
	// workload (counted at its maximum); "" otherwise.
	Key string
}

// Node is one node's budget and what is placed on it.
type Node struct {
	Role         config.Role
	InstanceType string
	// RootVolumeGiB is the node's root volume, which holds the pods' ephemeral storage.
	RootVolumeGiB int
	// AllocCPU, AllocMemMiB and AllocDiskMiB are what the kubelet offers pods.
	AllocCPU, AllocMemMiB, AllocDiskMiB int
	Demands                             []Demand
}

// Requested sums the demands.
func (n Node) Requested() (milliCPU, memMiB, diskMiB int) {
	for _, d := range n.Demands {
		milliCPU += d.MilliCPU
		memMiB += d.MemMiB
		diskMiB += d.DiskMiB
	}
	return
}

// Overflow describes what does not fit, or "" when everything does.
func (n Node) Overflow() string {
	cpu, mem, disk := n.Requested()
	var out []string
	if cpu > n.AllocCPU {
		out = append(out, fmt.Sprintf("CPU requests %dm exceed allocatable %dm by %dm", cpu, n.AllocCPU, cpu-n.AllocCPU))
	}
	if mem > n.AllocMemMiB {
		out = append(out, fmt.Sprintf("memory requests %dMi exceed allocatable %dMi by %dMi", mem, n.AllocMemMiB, mem-n.AllocMemMiB))
	}
	if disk > n.AllocDiskMiB {
		out = append(out, fmt.Sprintf("ephemeral storage requests %dMi exceed allocatable %dMi of the %d GiB root volume by %dMi",
			disk, n.AllocDiskMiB, n.RootVolumeGiB, disk-n.AllocDiskMiB))
	}
	return strings.Join(out, "; ")
}

// SystemPods are the pods the cluster runs that this program does not declare as objects, with
// the requests their installers set: kubeadm's static pods and CoreDNS (counted on the master,
// where their tolerations allow and where it is tightest), and Calico's node agent (counted with
// the 250m its manifest install requests; the operator sets none, so this is conservative).
func SystemPods(role config.Role) []Demand {
	d := []Demand{{Name: "calico-node", MilliCPU: 250}}
	if role.ControlPlane() {
		d = append(d,
			Demand{Name: "kube-apiserver", MilliCPU: 250},
			Demand{Name: "kube-controller-manager", MilliCPU: 200},
			Demand{Name: "kube-scheduler", MilliCPU: 100},
			Demand{Name: "etcd", MilliCPU: 100, MemMiB: 100},
			Demand{Name: "coredns x2", MilliCPU: 200, MemMiB: 140},
		)
	}
	return d
}

// ChartDemands are what the Helm charts' pods (workloads.ChartPods, which tools/charts proves
// against the rendered charts) take on a node of the role: every long-running pod pinned there
// or run on every node, times its replicas, and room for one hook Job pinned there (the largest
// CPU and memory of them). A hook's pod completes within seconds and then holds nothing, but it
// must be schedulable while its release installs or upgrades, or the release times out and
// rolls back; a release runs its hooks one at a time.
func ChartDemands(role config.Role) []Demand {
	var out []Demand
	var hooks []string
	hook := Demand{}
	for _, p := range workloads.ChartPods() {
		cpu, mem, disk := p.Requests()
		switch {
		case p.DaemonSet:
			out = append(out, Demand{Name: p.Name, MilliCPU: cpu, MemMiB: mem, DiskMiB: disk})
		case p.Role != role:
		case p.Hook:
			hooks = append(hooks, p.Name)
			hook.MilliCPU, hook.MemMiB, hook.DiskMiB = max(hook.MilliCPU, cpu*p.Replicas), max(hook.MemMiB, mem*p.Replicas), max(hook.DiskMiB, disk*p.Replicas)
		default:
			out = append(out, Demand{Name: fmt.Sprintf("%s x%d", p.Name, p.Replicas), MilliCPU: cpu * p.Replicas, MemMiB: mem * p.Replicas, DiskMiB: disk * p.Replicas})
		}
	}
	if len(hooks) > 0 {
		hook.Name = fmt.Sprintf("one hook Job at a time (%s)", strings.Join(hooks, ", "))
		out = append(out, hook)
	}
	return out
}

// Check places every pod of a run on the stack's nodes.
func Check(cfg *config.Config, resources []*mocks.Resource) []Node {
	nodes := make([]Node, 0, len(cfg.Nodes))
	index := map[config.Role]int{}
	for i, n := range cfg.Nodes {
		cpu, mem := cluster.Allocatable(config.InstanceTypes[n.InstanceType])
		nodes = append(nodes, Node{Role: n.Role, InstanceType: n.InstanceType, RootVolumeGiB: n.RootVolumeGiB,
			AllocCPU: cpu, AllocMemMiB: mem, AllocDiskMiB: cluster.AllocatableDiskMiB(n.RootVolumeGiB), Demands: SystemPods(n.Role)})
		index[n.Role] = i
	}
	place := func(role config.Role, d Demand) {
		if i, ok := index[role]; ok {
			nodes[i].Demands = append(nodes[i].Demands, d)
		}
	}
	everywhere := func(d Demand) {
		for i := range nodes {
			nodes[i].Demands = append(nodes[i].Demands, d)
		}
	}

	for i := range nodes {
		nodes[i].Demands = append(nodes[i].Demands, ChartDemands(nodes[i].Role)...)
	}
	maxima := Maxima(resources)
	for _, r := range resources {
		obj, ok := manifest.KubernetesObject(r)
		if !ok {
			continue
		}
		kind := obj["kind"]
		if kind != "Deployment" && kind != "StatefulSet" && kind != "DaemonSet" {
			continue
		}
		spec, _ := obj["spec"].(map[string]any)
		podSpec := dig(spec, "template", "spec")
		cpu, mem, disk := PodRequests(podSpec)
		name := fmt.Sprint(dig(obj, "metadata")["name"])
		if kind == "DaemonSet" {
			if role, ok := roleOf(podSpec); ok {
				place(role, Demand{Name: name, MilliCPU: cpu, MemMiB: mem, DiskMiB: disk})
			} else {
				everywhere(Demand{Name: name, MilliCPU: cpu, MemMiB: mem, DiskMiB: disk})
			}
			continue
		}
		replicas := 1
		if n, ok := spec["replicas"].(float64); ok {
			replicas = int(n)
		}
		role, ok := roleOf(podSpec)
		if !ok {
			continue // unpinned pods are checked by the scheduler proof, not here
		}
		d := Demand{Name: fmt.Sprintf("%s x%d", name, replicas)}
		// An autoscaled Deployment must fit at its maximum: that is what a burst asks for.
		if m, ok := maxima[fmt.Sprint(dig(obj, "metadata")["namespace"])+"/"+name]; ok && kind == "Deployment" {
			replicas = m
			d.Name = fmt.Sprintf("%s x%d (max)", name, m)
			d.Key, _ = config.AutoscalingKey(name)
		}
		d.MilliCPU, d.MemMiB, d.DiskMiB = cpu*replicas, mem*replicas, disk*replicas
		place(role, d)
	}
	for role, d := range ScheduledJobs(resources) {
		place(role, d)
	}
	return nodes
}

// ScheduledJobs are the room each node keeps for the CronJobs pinned to it (the backups), for
// all of them at once: two may overlap (the base backup may outlast the half hour before the
// dump). A backup is written to its pod's scratch before the upload, so its disk request is what
// matters most; a Job that finds no room waits Pending, and the backup is late.
func ScheduledJobs(resources []*mocks.Resource) map[config.Role]Demand {
	out := map[config.Role]Demand{}
	for _, r := range resources {
		obj, ok := manifest.KubernetesObject(r)
		if !ok || obj["kind"] != "CronJob" {
			continue
		}
		podSpec := dig(obj, "spec", "jobTemplate", "spec", "template", "spec")
		role, ok := roleOf(podSpec)
		if !ok {
			continue
		}
		cpu, mem, disk := PodRequests(podSpec)
		d := out[role]
		name := fmt.Sprint(dig(obj, "metadata")["name"])
		if d.Name == "" {
			d.Name = "scheduled Jobs: " + name
		} else {
			d.Name += ", " + name
		}
		d.MilliCPU, d.MemMiB, d.DiskMiB = d.MilliCPU+cpu, d.MemMiB+mem, d.DiskMiB+disk
		out[role] = d
	}
	return out
}

// Maxima returns the maximum replicas of every autoscaled workload, by namespace/name of the
// scaled Deployment: a HorizontalPodAutoscaler's maxReplicas, a KEDA ScaledObject's
// maxReplicaCount.
func Maxima(resources []*mocks.Resource) map[string]int {
	out := map[string]int{}
	for _, r := range resources {
		obj, ok := manifest.KubernetesObject(r)
		if !ok {
			continue
		}
		spec, _ := obj["spec"].(map[string]any)
		var key string
		switch obj["kind"] {
		case "HorizontalPodAutoscaler":
			key = "maxReplicas"
		case "ScaledObject":
			key = "maxReplicaCount"
		default:
			continue
		}
		target := fmt.Sprint(dig(spec, "scaleTargetRef")["name"])
		if n, ok := spec[key].(float64); ok {
			out[fmt.Sprint(dig(obj, "metadata")["namespace"])+"/"+target] = int(n)
		}
	}
	return out
}

// Refuse returns an error naming every node whose pods do not fit and the config keys whose
// maximums are counted on it (the values to lower, or the node to enlarge), or nil.
func Refuse(nodes []Node) error {
	var msgs []string
	for _, n := range nodes {
		o := n.Overflow()
		if o == "" {
			continue
		}
		var keys []string
		for _, d := range n.Demands {
			if d.Key != "" {
				keys = append(keys, d.Key)
			}
		}
		msg := fmt.Sprintf("node %s (%s): %s", n.Role, n.InstanceType, o)
		if len(keys) > 0 {
			msg += fmt.Sprintf(" at the autoscaling maximums; lower %s or give %s a larger instance type (nodes[].instanceType)", strings.Join(keys, ", "), n.Role)
		}
		if _, _, disk := n.Requested(); disk > n.AllocDiskMiB {
			msg += fmt.Sprintf("; for the disk, give %s a larger root volume (nodes[].rootVolumeGiB, now %d)", n.Role, n.RootVolumeGiB)
		}
		msgs = append(msgs, msg)
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("the pods do not fit their nodes:\n  %s", strings.Join(msgs, "\n  "))
}

// roleOf maps a pod's node selector to the node role it pins the pod to.
func roleOf(podSpec map[string]any) (config.Role, bool) {
	sel := dig(podSpec, "nodeSelector")
	if _, ok := sel["node-role.kubernetes.io/control-plane"]; ok {
		return config.RoleMaster, true
	}
	for _, r := range config.Roles {
		if w, ok := sel[config.WorkloadLabel]; ok && w == r.Workload() && r.Workload() != "" {
			return r, true
		}
	}
	return "", false
}

// PodRequests returns a pod's effective requests: the larger of the sum of its containers and
// its largest init container, as the scheduler counts them.
func PodRequests(podSpec map[string]any) (milliCPU, memMiB, diskMiB int) {
	type requests struct{ cpu, mem, disk int }
	sum := func(key string) (total, largest requests) {
		list, _ := podSpec[key].([]any)
		for _, c := range list {
			req := dig(c.(map[string]any), "resources", "requests")
			r := requests{ParseCPU(fmt.Sprint(req["cpu"])), ParseMemMiB(fmt.Sprint(req["memory"])), ParseMemMiB(fmt.Sprint(req["ephemeral-storage"]))}
			total = requests{total.cpu + r.cpu, total.mem + r.mem, total.disk + r.disk}
			largest = requests{max(largest.cpu, r.cpu), max(largest.mem, r.mem), max(largest.disk, r.disk)}
		}
		return total, largest
	}
	containers, _ := sum("containers")
	_, inits := sum("initContainers")
	return max(containers.cpu, inits.cpu), max(containers.mem, inits.mem), max(containers.disk, inits.disk)
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

// ParseCPU reads a CPU quantity ("250m", "1", "0.5") in millicores; anything else is 0.
func ParseCPU(q string) int {
	if v, ok := strings.CutSuffix(q, "m"); ok {
		n, _ := strconv.Atoi(v)
		return n
	}
	f, err := strconv.ParseFloat(q, 64)
	if err != nil {
		return 0
	}
	return int(f * 1000)
}

// ParseMemMiB reads a memory or disk quantity ("512Mi", "1Gi") in MiB; anything else is 0.
func ParseMemMiB(q string) int {
	for suffix, mult := range map[string]float64{"Ki": 1.0 / 1024, "Mi": 1, "Gi": 1024} {
		if v, ok := strings.CutSuffix(q, suffix); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int(f * mult)
		}
	}
	return 0
}

// Table renders the per-node fit as text.
func Table(nodes []Node) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-9s %-10s %18s %20s %22s  %s\n", "NODE", "TYPE", "CPU req/alloc", "memory req/alloc", "disk req/alloc (root)", "")
	for _, n := range nodes {
		cpu, mem, disk := n.Requested()
		status := "fits"
		if o := n.Overflow(); o != "" {
			status = "DOES NOT FIT: " + o
		}
		fmt.Fprintf(&b, "%-9s %-10s %8dm/%6dm %9dMi/%6dMi %6dMi/%6dMi (%3dG)  %s\n", n.Role, n.InstanceType, cpu, n.AllocCPU, mem, n.AllocMemMiB,
			disk, n.AllocDiskMiB, n.RootVolumeGiB, status)
	}
	return b.String()
}
