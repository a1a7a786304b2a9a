package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
)

// etcdDrill is the etcd restore drill. It takes a snapshot of the verified control plane's etcd
// with the rendered etcd-snapshot CronJob's own script (its save step, read from the rendered
// ConfigMap) and the etcdctl/etcdutl of etcdBin, restores it with `etcdutl snapshot restore`
// into a fresh data directory, starts etcd and a kube-apiserver on it, and reads back every
// object that was applied. Every one must be there. Then, as a control, it restores a snapshot
// of an empty etcd the same way: that check must find the objects missing, or it proves nothing.
func (v *verifier) etcdDrill(ctx context.Context, etcdBin string) {
	fmt.Println("etcd restore drill:")
	script, err := snapshotScript(v.dir)
	if err != nil {
		v.drillFail("%v", err)
		return
	}
	drill := filepath.Join(v.cp.work, "etcd-drill")
	if err := os.MkdirAll(drill, 0o700); err != nil {
		v.drillFail("%v", err)
		return
	}
	scriptPath := filepath.Join(drill, "etcd-snapshot.sh")
	if err := os.WriteFile(scriptPath, []byte(script), 0o600); err != nil {
		v.drillFail("%v", err)
		return
	}

	start := time.Now()
	snap, err := runSnapshotSave(ctx, scriptPath, etcdBin, v.cp.etcdURL, filepath.Join(drill, "snapshot"))
	if err != nil {
		v.drillFail("the schedule's snapshot step failed: %v", err)
		return
	}
	info, _ := os.Stat(snap)
	fmt.Printf("  snapshot by the CronJob's script: %d bytes in %s\n", info.Size(), time.Since(start).Round(time.Millisecond))

	start = time.Now()
	missing, err := v.restoreAndRead(ctx, etcdBin, snap, filepath.Join(drill, "restored"))
	if err != nil {
		v.drillFail("%v", err)
		return
	}
	if len(missing) > 0 {
		v.drillFail("%d of %d applied objects are missing after the restore: %s", len(missing), len(v.applied), strings.Join(missing, ", "))
	} else {
		fmt.Printf("  restored and served by kube-apiserver: all %d applied objects are back (%s)\n", len(v.applied), time.Since(start).Round(time.Millisecond))
	}

	// The control: the same steps on a snapshot of an empty etcd must miss the objects.
	empty := &controlPlane{work: filepath.Join(drill, "empty"), bin: v.cp.bin, pki: v.cp.pki, etcdPath: filepath.Join(etcdBin, "etcd"), etcdName: "empty"}
	if err := os.MkdirAll(empty.work, 0o700); err != nil {
		v.drillFail("%v", err)
		return
	}
	if err := empty.startEtcd(); err != nil {
		v.drillFail("empty etcd: %v", err)
		return
	}
	emptySnap, err := runSnapshotSave(ctx, scriptPath, etcdBin, empty.etcdURL, filepath.Join(drill, "empty-snapshot"))
	empty.stop()
	if err != nil {
		v.drillFail("snapshot of an empty etcd: %v", err)
		return
	}
	missing, err = v.restoreAndRead(ctx, etcdBin, emptySnap, filepath.Join(drill, "restored-empty"))
	if err != nil {
		v.drillFail("restore of an empty snapshot: %v", err)
		return
	}
	if len(missing) == 0 {
		v.drillFail("the check found every object after restoring an EMPTY etcd: it cannot tell a good restore from a bad one")
		return
	}
	fmt.Printf("  control: restoring a snapshot of an empty etcd leaves %d of %d objects missing, and the drill says so\n", len(missing), len(v.applied))
}

// snapshotScript returns the etcd-snapshot script from the rendered kube-system ConfigMap.
func snapshotScript(dir string) (string, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "manifests", "configmap-*-kube-system-etcd-snapshot.yaml"))
	if len(files) != 1 {
		return "", fmt.Errorf("%d rendered etcd-snapshot ConfigMaps in %s, want 1", len(files), dir)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := readYAML(files[0], &cm); err != nil {
		return "", err
	}
	s, ok := cm.Data["etcd-snapshot.sh"]
	if !ok {
		return "", fmt.Errorf("%s has no etcd-snapshot.sh", files[0])
	}
	return s, nil
}

// runSnapshotSave runs the script's save step against an etcd, with the drill's etcdctl and
// etcdutl first on the PATH, and returns the snapshot it wrote.
func runSnapshotSave(ctx context.Context, script, etcdBin, endpoint, dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "/bin/sh", script, "save")
	cmd.Env = []string{"PATH=" + etcdBin + ":" + os.Getenv("PATH"), "HOME=" + dir, "SNAPSHOT_DIR=" + dir, "ETCD_ENDPOINT=" + endpoint}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%v:\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "save.log"), out, 0o600); err != nil {
		return "", err
	}
	return filepath.Join(dir, "etcd-snapshot.db"), nil
}

// restoreAndRead restores a snapshot with etcdutl into work/etcd, runs etcd and kube-apiserver
// on it, and returns the applied objects the API server does not have.
func (v *verifier) restoreAndRead(ctx context.Context, etcdBin, snap, work string) ([]string, error) {
	peer, err := freePort()
	if err != nil {
		return nil, err
	}
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
	restore := exec.CommandContext(ctx, filepath.Join(etcdBin, "etcdutl"), "snapshot", "restore", snap,
		"--data-dir="+filepath.Join(work, "etcd"), "--name=restored",
		"--initial-cluster=restored="+peerURL, "--initial-advertise-peer-urls="+peerURL)
	restore.Env = []string{"PATH=" + os.Getenv("PATH")}
	if out, err := restore.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("etcdutl snapshot restore: %v:\n%s", err, out)
	}
	r := &controlPlane{work: work, bin: v.cp.bin, pki: v.cp.pki, encryptionConfig: v.cp.encryptionConfig,
		etcdPath: filepath.Join(etcdBin, "etcd"), etcdName: "restored", etcdPeerPort: peer}
	defer r.stop()
	if err := r.startAPI(ctx); err != nil {
		return nil, fmt.Errorf("kube-apiserver on the restored etcd: %w", err)
	}
	dyn, err := dynamic.NewForConfig(r.config)
	if err != nil {
		return nil, err
	}
	var missing []string
	for _, o := range v.applied {
		ri := dyn.Resource(o.resource).Namespace(o.namespace)
		if _, err := ri.Get(ctx, o.name, metav1.GetOptions{}); err != nil {
			if !apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("read %s %s/%s back: %w", o.resource.Resource, o.namespace, o.name, err)
			}
			missing = append(missing, fmt.Sprintf("%s %s/%s (%s)", o.resource.Resource, o.namespace, o.name, o.file))
		}
	}
	return missing, nil
}

// drillFail records a failure of the drill and prints it (the report is already written).
func (v *verifier) drillFail(format string, args ...any) {
	msg := "etcd restore drill: " + fmt.Sprintf(format, args...)
	fmt.Fprintln(os.Stderr, "FAIL", msg)
	v.failures = append(v.failures, msg)
}
