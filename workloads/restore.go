package workloads

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/waste-coach/infra/config"
)

// Claim is a PersistentVolumeClaim the program declares for a data service.
type Claim struct {
	Namespace, Name string
	SizeGiB         int
	StorageClass    string
}

// DataClaims are the claims of the data services' StatefulSets (PostgreSQL, Redis, each
// RabbitMQ broker): the volumes a restore from an EBS snapshot puts back.
func DataClaims(cfg *config.Config) []Claim {
	class := dataStorageClass(cfg)
	claim := func(sts string, i, gib int) Claim {
		return Claim{Namespace: NamespaceData, Name: fmt.Sprintf("%s-%s-%d", VolumeName, sts, i), SizeGiB: gib, StorageClass: class}
	}
	out := []Claim{claim("postgres", 0, postgresStorageGiB), claim("redis", 0, redisStorageGiB)}
	for i := range RabbitReplicas {
		out = append(out, claim("rabbitmq", i, rabbitStorageGiB))
	}
	return out
}

// EBSCSIDriver is the CSI driver that provisions and attaches the platform's volumes.
const EBSCSIDriver = "ebs.csi.aws.com"

// ZoneLabel is the node label (set by the cloud controller manager) a volume's zone is matched on.
const ZoneLabel = "topology.kubernetes.io/zone"

var volumeIDRE = regexp.MustCompile(`^vol-[0-9a-f]{8}([0-9a-f]{9})?$`)

// RestoredVolume renders the PersistentVolume that puts an EBS volume created from a snapshot
// under a data service's claim: the volume ID as the CSI driver's volume handle, the claim's
// size and class, pre-bound to the claim (claimRef) so that no other claim takes it and the
// claim, once recreated, binds to it alone, and the volume's zone as node affinity, so the pod is
// scheduled where the volume can attach. Retain: deleting the claim again never deletes the
// restored data. It refuses a claim the program does not declare, a malformed volume ID and a
// zone outside the stack's region.
func RestoredVolume(cfg *config.Config, namespace, claim, volumeID, zone string) (map[string]any, error) {
	claims := DataClaims(cfg)
	i := slices.IndexFunc(claims, func(c Claim) bool { return c.Namespace == namespace && c.Name == claim })
	if i < 0 {
		names := make([]string, len(claims))
		for j, c := range claims {
			names[j] = c.Namespace + "/" + c.Name
		}
		return nil, fmt.Errorf("claim %s/%s is not a data claim of this program; one of: %s", namespace, claim, strings.Join(names, ", "))
	}
	if !volumeIDRE.MatchString(volumeID) {
		return nil, fmt.Errorf("volume ID %q: want an EBS volume ID, vol- and 8 or 17 hexadecimal digits", volumeID)
	}
	if !strings.HasPrefix(zone, cfg.Region) || len(zone) != len(cfg.Region)+1 {
		return nil, fmt.Errorf("zone %q: want an availability zone of %s, such as %sa (the storage node's zone)", zone, cfg.Region, cfg.Region)
	}
	c := claims[i]
	return map[string]any{
		"apiVersion": "v1",
		"kind":       "PersistentVolume",
		"metadata": map[string]any{
			"name": RestoredVolumeName(c.Namespace, c.Name),
			"labels": map[string]any{
				"app.kubernetes.io/part-of":    "waste-coach",
				"app.kubernetes.io/managed-by": "restore",
			},
			"annotations": map[string]any{"waste-coach/restored-volume": volumeID},
		},
		"spec": map[string]any{
			"capacity":                      map[string]any{"storage": fmt.Sprintf("%dGi", c.SizeGiB)},
			"accessModes":                   []any{"ReadWriteOnce"},
			"volumeMode":                    "Filesystem",
			"persistentVolumeReclaimPolicy": "Retain",
			"storageClassName":              c.StorageClass,
			"claimRef": map[string]any{
				"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": c.Namespace, "name": c.Name,
			},
			"csi": map[string]any{"driver": EBSCSIDriver, "volumeHandle": volumeID, "fsType": "ext4"},
			"nodeAffinity": map[string]any{"required": map[string]any{"nodeSelectorTerms": []any{
				map[string]any{"matchExpressions": []any{
					map[string]any{"key": ZoneLabel, "operator": "In", "values": []any{zone}},
				}},
			}}},
		},
	}, nil
}

// RestoredVolumeName is the name of the PersistentVolume RestoredVolume renders for a claim.
func RestoredVolumeName(namespace, claim string) string {
	return "restored-" + namespace + "-" + claim
}
