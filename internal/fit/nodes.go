package fit

import (
	"fmt"

	"github.com/waste-coach/infra/cluster"
	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/internal/mocks"
)

// NodeObjects renders, for each node of the stack, a Node object shaped like the one the kubelet
// and the cloud-controller-manager would register: its name, the labels the workloads select,
// the zone and instance-type labels, the control plane's taint, and a status whose allocatable
// is the kubelet's minus what the cluster's own pods and the charts' pods (which the offline
// proof cannot install) take on that node, and the disk kept for the node's scheduled Jobs (no
// CronJob fires during the proof). Only the typed long-running objects then compete for the rest.
func NodeObjects(cfg *config.Config, resources []*mocks.Resource) []map[string]any {
	type instance struct{ name, zone string }
	instances := map[config.Role]instance{}
	for _, r := range resources {
		if r.Type != "aws:ec2/instance:Instance" {
			continue
		}
		role := config.Role(r.Inputs["tags"].ObjectValue()["Role"].StringValue())
		instances[role] = instance{r.Outputs["privateDns"].StringValue(), r.Outputs["availabilityZone"].StringValue()}
	}
	jobs := ScheduledJobs(resources)
	var out []map[string]any
	for _, n := range cfg.Nodes {
		reserved := append(SystemPods(n.Role), ChartDemands(n.Role)...)
		if d, ok := jobs[n.Role]; ok {
			reserved = append(reserved, d)
		}
		inst := instances[n.Role]
		out = append(out, NodeObject(NodeSpec{Role: n.Role, InstanceType: n.InstanceType, RootVolumeGiB: n.RootVolumeGiB,
			Name: inst.name, Zone: inst.zone, Region: cfg.Region}, reserved))
	}
	return out
}

// NodeSpec is one instance as the kubelet and the cloud-controller-manager describe it.
type NodeSpec struct {
	Role         config.Role
	InstanceType string
	// RootVolumeGiB is the size of its root volume, where the pods' ephemeral storage lives.
	RootVolumeGiB int
	// Name is the node name (the instance's private DNS name); Zone and Region its placement.
	Name, Zone, Region string
}

// NodeObject is the Node the kubelet and the CCM would register for an instance: its name, the
// labels the workloads select, zone and instance-type labels, the control plane's taint, and an
// allocatable that is the kubelet's minus the reserved pods, which the check at hand does not run.
func NodeObject(n NodeSpec, reserved []Demand) map[string]any {
	it := config.InstanceTypes[n.InstanceType]
	cpu, mem := cluster.Allocatable(it)
	disk := cluster.AllocatableDiskMiB(n.RootVolumeGiB)
	for _, d := range reserved {
		cpu, mem, disk = cpu-d.MilliCPU, mem-d.MemMiB, disk-d.DiskMiB
	}
	labels := map[string]any{
		"kubernetes.io/hostname":           n.Name,
		"kubernetes.io/os":                 "linux",
		"kubernetes.io/arch":               "amd64",
		"node.kubernetes.io/instance-type": n.InstanceType,
		"topology.kubernetes.io/zone":      n.Zone,
		"topology.kubernetes.io/region":    n.Region,
		cluster.RoleLabel(n.Role):          "",
	}
	if w := n.Role.Workload(); w != "" {
		labels[config.WorkloadLabel] = w
	}
	spec := map[string]any{"providerID": fmt.Sprintf("aws:///%s/i-offline-%s", n.Zone, n.Role)}
	if n.Role.ControlPlane() {
		spec["taints"] = []any{map[string]any{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}}
	}
	return map[string]any{
		"apiVersion": "v1",
		"kind":       "Node",
		"metadata":   map[string]any{"name": n.Name, "labels": labels},
		"spec":       spec,
		"status": map[string]any{
			"capacity": map[string]any{"cpu": fmt.Sprint(it.VCPU), "memory": fmt.Sprintf("%dMi", it.MemoryMiB), "pods": fmt.Sprint(it.MaxPods),
				"ephemeral-storage": fmt.Sprintf("%dMi", cluster.DiskCapacityMiB(n.RootVolumeGiB))},
			"allocatable": map[string]any{"cpu": fmt.Sprintf("%dm", cpu), "memory": fmt.Sprintf("%dMi", mem), "pods": fmt.Sprint(it.MaxPods),
				"ephemeral-storage": fmt.Sprintf("%dMi", disk)},
		},
	}
}
