package fit

import (
	"strings"
	"testing"

	"github.com/waste-coach/infra/config"
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
	cpu, mem := PodRequests(pod)
	if cpu != 500 || mem != 96 {
		t.Errorf("requests = %dm/%dMi, want max(500, 150)=500m and max(16, 96)=96Mi", cpu, mem)
	}
}

func TestOverflowNamesTheExcess(t *testing.T) {
	n := Node{Role: config.RoleWorker1, InstanceType: "t3.medium", AllocCPU: 1800, AllocMemMiB: 3484,
		Demands: []Demand{{Name: "a", MilliCPU: 1500, MemMiB: 1000}, {Name: "b", MilliCPU: 400, MemMiB: 100}}}
	if o := n.Overflow(); !strings.Contains(o, "CPU requests 1900m exceed allocatable 1800m by 100m") || strings.Contains(o, "memory") {
		t.Errorf("overflow = %q", o)
	}
	if !strings.Contains(Table([]Node{n}), "DOES NOT FIT") {
		t.Error("the table does not flag the node")
	}
}
