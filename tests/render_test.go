package tests

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/internal/render"
)

func TestRenderWritesScriptsConfigsAndManifests(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		dir := t.TempDir()
		if err := render.Write(r, dir, io.Discard); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{
			"inventory.txt",
			"kubeadm/sesacthon-kubeadm-init.yaml",
			"scripts/user-data-sesacthon-nodes-master.sh",
			"scripts/user-data-sesacthon-nodes-storage.sh",
			"scripts/sesacthon-join-worker-2.create.sh",
			"scripts/sesacthon-calico.create.sh",
			"manifests/daemonset-sesacthon-ccm.yaml",
		} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("render did not write %s", f)
			}
		}
		kubeadm, _ := os.ReadFile(filepath.Join(dir, "kubeadm/sesacthon-kubeadm-init.yaml"))
		if !strings.HasPrefix(string(kubeadm), "apiVersion: kubeadm.k8s.io/") || strings.Contains(string(kubeadm), "KUBEADM") {
			t.Errorf("kubeadm config not extracted cleanly:\n%s", kubeadm)
		}
		// Nothing secret reaches the files: no private key's PEM appears (the Prometheus
		// operator's CRDs describe "a PRIVATE KEY block" in prose), except the cluster identity
		// for verify-local's etcd drill, which holds only the key the mocks fabricated.
		fabricated, err := mocks.FabricatedKey()
		if err != nil {
			t.Fatal(err)
		}
		identity := 0
		_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			b, _ := os.ReadFile(path)
			if !strings.Contains(string(b), "PRIVATE KEY-----") {
				return nil
			}
			rel, _ := filepath.Rel(dir, path)
			switch {
			case strings.HasPrefix(rel, render.IdentityDir+"/") && string(b) == fabricated:
				identity++
			default:
				t.Errorf("%s contains a private key", rel)
			}
			return nil
		})
		if identity != 4 {
			t.Errorf("%d of the identity's 4 private keys (3 CAs, the service-account key) in %s", identity, render.IdentityDir)
		}
	})
}
