package tests

import (
	"slices"
	"strings"
	"testing"

	"github.com/waste-coach/infra/internal/offline"
)

// TestADataVolumeGrowsWithoutReplacingItsStatefulSet: a StatefulSet's claim templates are
// immutable, and the Kubernetes provider replaces a StatefulSet whose templates change (all three
// brokers down at once). So every StatefulSet ignores its templates, and each replica's claim is a
// resource of its own, whose size is the one that changes: the claim grows in place.
func TestADataVolumeGrowsWithoutReplacingItsStatefulSet(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		sets := r.OfType("kubernetes:apps/v1:StatefulSet")
		if len(sets) == 0 {
			t.Fatal("no StatefulSet")
		}
		for _, sts := range sets {
			if !slices.Contains(sts.IgnoreChanges, "spec.volumeClaimTemplates") {
				t.Errorf("StatefulSet %s does not ignore spec.volumeClaimTemplates (ignoreChanges %v): a bigger volume would replace it", sts.Name, sts.IgnoreChanges)
			}
			name := str(sts, "metadata", "name")
			claims := 0
			for _, pvc := range r.OfType("kubernetes:core/v1:PersistentVolumeClaim") {
				if strings.HasPrefix(str(pvc, "metadata", "name"), "data-"+name+"-") && str(pvc, "metadata", "namespace") == str(sts, "metadata", "namespace") {
					claims++
					if str(pvc, "spec", "resources", "requests", "storage") == "" {
						t.Errorf("claim %s has no size", pvc.Name)
					}
				}
			}
			if replicas := int(prop(sts, "spec", "replicas").NumberValue()); claims != replicas {
				t.Errorf("StatefulSet %s: %d claims declared as resources, want one per replica (%d), whose size a resize changes", name, claims, replicas)
			}
		}
	})
}
