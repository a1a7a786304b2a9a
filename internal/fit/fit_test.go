package fit

import (
	"strings"
	"testing"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/workloads"
)

func TestQuantities(t *testing.T) {
	for q, want := range map[string]int{"250m": 250, "1": 1000, "0.5": 500, "": 0} {
		if got := ParseCPU(q); got != want {
			t.Errorf("ParseCPU(%q) = %d, want %d", q, got, want)
		}
	}
	for q, want := range map[string]int{"512Mi": 512, "1Gi": 1024, "2048Ki": 2, "x": 0} {
		if got := ParseMemMiB(q); got != want {
			t.Errorf("ParseMemMiB(%q) = %d, want %d", q, got, want)
		}
	}
}

func TestInitContainersCountAsTheSchedulerCountsThem(t *testing.T) {
	c := func(cpu, mem string) any {
		return map[string]any{"resources": map[string]any{"requests": map[string]any{"cpu": cpu, "memory": mem}}}
	}
	pod := map[string]any{
		"containers":     []any{c("100m", "64Mi"), c("50m", "32Mi")},
		"initContainers": []any{c("500m", "16Mi")},
	}
	cpu, mem, _ := PodRequests(pod)
	if cpu != 500 || mem != 96 {
		t.Errorf("requests = %dm/%dMi, want max(500, 150)=500m and max(16, 96)=96Mi", cpu, mem)
	}
	// Disk counts the same way: a backup Job's init container writes the backup.
	disk := func(q string) any {
		return map[string]any{"resources": map[string]any{"requests": map[string]any{"ephemeral-storage": q}}}
	}
	job := map[string]any{"containers": []any{disk("256Mi")}, "initContainers": []any{disk("2Gi")}}
	if _, _, d := PodRequests(job); d != 2048 {
		t.Errorf("disk request = %dMi, want the init container's 2048Mi", d)
	}
	job["containers"] = []any{disk("2Gi"), disk("1Gi")}
	if _, _, d := PodRequests(job); d != 3072 {
		t.Errorf("disk request = %dMi, want the containers' 3072Mi", d)
	}
}

func TestOverflowNamesTheExcess(t *testing.T) {
	n := Node{Role: config.RoleWorker1, InstanceType: "t3.medium", AllocCPU: 1800, AllocMemMiB: 3484,
		Demands: []Demand{{Name: "a", MilliCPU: 1500, MemMiB: 1000}, {Name: "b", MilliCPU: 400, MemMiB: 100}}}
	if o := n.Overflow(); !strings.Contains(o, "CPU requests 1900m exceed allocatable 1800m by 100m") || strings.Contains(o, "memory") {
		t.Errorf("overflow = %q", o)
	}
	// Disk: the node's allocatable ephemeral storage, the root volume named.
	n.Demands[0].MilliCPU, n.Demands[0].DiskMiB = 100, 9000
	n.RootVolumeGiB, n.AllocDiskMiB = 20, 8000
	if o := n.Overflow(); o != "ephemeral storage requests 9000Mi exceed allocatable 8000Mi of the 20 GiB root volume by 1000Mi" {
		t.Errorf("disk overflow = %q", o)
	}
	if err := Refuse([]Node{n}); err == nil || !strings.Contains(err.Error(), "nodes[].rootVolumeGiB, now 20") {
		t.Errorf("refusal = %v, want it to name the root volume key", err)
	}
	if !strings.Contains(Table([]Node{n}), "DOES NOT FIT") {
		t.Error("the table does not flag the node")
	}
}

// Hook Jobs complete within seconds: a node keeps room for one of them (the largest), not for
// every hook at once, and never for the hooks pinned to other nodes. Long-running chart pods
// count in full, with an init container counted as the scheduler counts it.
func TestChartDemandsKeepRoomForOneHookJob(t *testing.T) {
	hooks := map[config.Role][]workloads.ChartPod{}
	for _, p := range workloads.ChartPods() {
		if p.Hook {
			hooks[p.Role] = append(hooks[p.Role], p)
		}
	}
	if len(hooks[config.RoleMaster]) < 2 {
		t.Fatalf("the table lists %d hook Jobs on the master; this test needs the Prometheus operator's two", len(hooks[config.RoleMaster]))
	}
	for _, role := range config.Roles {
		var wantCPU, wantMem, got int
		for _, p := range hooks[role] {
			cpu, mem, _ := p.Requests()
			wantCPU, wantMem = max(wantCPU, cpu), max(wantMem, mem)
		}
		for _, d := range ChartDemands(role) {
			if strings.HasPrefix(d.Name, "one hook Job") {
				got++
				if d.MilliCPU != wantCPU || d.MemMiB != wantMem {
					t.Errorf("%s: hook room %dm/%dMi, want the largest hook's %dm/%dMi", role, d.MilliCPU, d.MemMiB, wantCPU, wantMem)
				}
			}
			for _, h := range hooks[role] {
				if strings.HasPrefix(d.Name, h.Name+" ") {
					t.Errorf("%s: hook %s counted as a long-running pod (%s)", role, h.Name, d.Name)
				}
			}
		}
		if want := min(len(hooks[role]), 1); got != want {
			t.Errorf("%s: %d hook demands, want %d", role, got, want)
		}
	}
	repo := workloads.ChartPod{Containers: []workloads.Resources{{CPU: 50, MemoryMiB: 128}}, InitContainers: []workloads.Resources{{CPU: 200, MemoryMiB: 64}}}
	if cpu, mem, _ := repo.Requests(); cpu != 200 || mem != 128 {
		t.Errorf("a pod of 50m/128Mi with a 200m/64Mi init container requests %dm/%dMi, want 200m/128Mi", cpu, mem)
	}
}
