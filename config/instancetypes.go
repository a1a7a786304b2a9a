// The EC2 instance types a node may use, with what the fit and cost checks need to know of each.

package config

import (
	"slices"
	"strings"
)

// InstanceType is what the program knows about an EC2 instance type: enough to check that the
// pods pinned to a node fit it, and to price it.
type InstanceType struct {
	// VCPU is the number of vCPUs.
	VCPU int
	// MemoryMiB is the instance memory in MiB.
	MemoryMiB int
	// MaxPods is the kubelet's pod limit we configure for this size (Calico VXLAN is not limited
	// by ENI IPs, so this is the kubelet default of 110 unless the size is tiny).
	MaxPods int
	// BaselinePercent is a burstable (T-family) type's baseline use of each vCPU, which its CPU
	// credits pay for (EC2 User Guide, "Key concepts for burstable performance instances"); 0
	// for a type that is not burstable and has no credits.
	BaselinePercent int
}

// Burstable reports whether the type earns and spends CPU credits, and so has a credit mode.
func (t InstanceType) Burstable() bool { return t.BaselinePercent > 0 }

// InstanceTypes lists the instance types a stack may use. A type outside this table is refused:
// the fit and cost checks would have nothing to reason with.
var InstanceTypes = map[string]InstanceType{
	"t3.small":   {VCPU: 2, MemoryMiB: 2048, MaxPods: 110, BaselinePercent: 20},
	"t3.medium":  {VCPU: 2, MemoryMiB: 4096, MaxPods: 110, BaselinePercent: 20},
	"t3.large":   {VCPU: 2, MemoryMiB: 8192, MaxPods: 110, BaselinePercent: 30},
	"t3.xlarge":  {VCPU: 4, MemoryMiB: 16384, MaxPods: 110, BaselinePercent: 40},
	"m6i.large":  {VCPU: 2, MemoryMiB: 8192, MaxPods: 110},
	"m6i.xlarge": {VCPU: 4, MemoryMiB: 16384, MaxPods: 110},
}

// instanceTypeNames lists the names of InstanceTypes, sorted, for messages.
func instanceTypeNames() string {
	names := make([]string, 0, len(InstanceTypes))
	for name := range InstanceTypes {
		names = append(names, name)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
