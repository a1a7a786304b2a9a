package main

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// restoredVolume is a PersistentVolume the render wrote under restore/ for one of its claims:
// the program's rendering of the documented volume restore (an EBS volume created from a
// snapshot, pre-bound to the claim). verify-local creates it in place of its own volume for that
// claim and checks that the API server accepted it and the claim bound to it.
type restoredVolume struct {
	namespace, claim, volume string
}

// restoredVolumeFor reads restore/persistentvolume-<namespace>-<claim>.yaml, if the render wrote
// one, and checks it names the claim it is for.
func (v *verifier) restoredVolumeFor(c corev1.PersistentVolumeClaim) (*corev1.PersistentVolume, error) {
	path := filepath.Join(v.dir, "restore", fmt.Sprintf("persistentvolume-%s-%s.yaml", c.Namespace, c.Name))
	if !fileExists(path) {
		return nil, nil
	}
	var pv corev1.PersistentVolume
	if err := readYAML(path, &pv); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if ref := pv.Spec.ClaimRef; ref == nil || ref.Namespace != c.Namespace || ref.Name != c.Name {
		return nil, fmt.Errorf("%s: not pre-bound to the claim %s/%s (claimRef %v)", path, c.Namespace, c.Name, pv.Spec.ClaimRef)
	}
	return &pv, nil
}

// checkRestoredVolumes checks that every restored volume is Bound and its claim Bound to it.
func (v *verifier) checkRestoredVolumes(ctx context.Context) {
	for _, r := range v.restored {
		var pvc *corev1.PersistentVolumeClaim
		var pv *corev1.PersistentVolume
		var err error
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Second) {
			pvc, err = v.cp.client.CoreV1().PersistentVolumeClaims(r.namespace).Get(ctx, r.claim, metav1.GetOptions{})
			if err == nil {
				pv, err = v.cp.client.CoreV1().PersistentVolumes().Get(ctx, r.volume, metav1.GetOptions{})
			}
			if err == nil && pvc.Status.Phase == corev1.ClaimBound && pvc.Spec.VolumeName == r.volume && pv.Status.Phase == corev1.VolumeBound {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				switch {
				case err != nil:
					v.fail("restored volume %s for claim %s/%s: %v", r.volume, r.namespace, r.claim, err)
				default:
					v.fail("restored volume %s (%s) did not bind claim %s/%s: claim %s to %q", r.volume, pv.Status.Phase, r.namespace, r.claim, pvc.Status.Phase, pvc.Spec.VolumeName)
				}
				return
			}
		}
		handle := ""
		if pv.Spec.CSI != nil {
			handle = pv.Spec.CSI.Driver + " " + pv.Spec.CSI.VolumeHandle
		}
		fmt.Printf("restored volume: %s (%s) accepted and bound to claim %s/%s\n", r.volume, handle, r.namespace, r.claim)
	}
}
