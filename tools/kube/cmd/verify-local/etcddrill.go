package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
)

// etcdDrill is the etcd restore drill. It takes a snapshot of the verified control plane's etcd
// with the rendered etcd-snapshot CronJob's own script (its save step, read from the rendered
// ConfigMap with the s3.sh it sources) and the etcdctl/etcdutl of etcdBin, uploads it with the
// CronJob's upload step (the shared S3 code) to a stand-in bucket on 127.0.0.1, restores the
// uploaded object with `etcdutl snapshot restore` into a fresh data directory, starts etcd and a
// kube-apiserver on it, as a new master would, and reads back every object that was applied.
// Every one must be there. A ServiceAccount token issued before the snapshot must still be
// accepted after it: with the program's identity (the render's kubeadm/identity), that is what
// a replaced master keeps for every pod and controller. Then, as controls, it restores a snapshot
// of an empty etcd the same way, which must leave the objects missing, and the good snapshot with
// another service-account key, which must refuse the token: otherwise the checks prove nothing.
func (v *verifier) etcdDrill(ctx context.Context, etcdBin string) {
	fmt.Println("etcd restore drill:")
	if !v.cp.pki.program {
		v.drillFail("%s has no %s: the drill restores as a new master does, with the cluster identity the program hands kubeadm-init (render it with cmd/render)", v.dir, identityDir)
		return
	}
	token, err := v.drillToken(ctx)
	if err != nil {
		v.drillFail("a ServiceAccount token before the snapshot: %v", err)
		return
	}
	files, err := snapshotScripts(v.dir)
	if err != nil {
		v.drillFail("%v", err)
		return
	}
	prefix, err := snapshotPrefix(v.dir)
	if err != nil {
		v.drillFail("%v", err)
		return
	}
	// The ConfigMap's files, as its volume mounts them: the script and the s3.sh it sources.
	scripts := filepath.Join(v.cp.work, "etcd-drill", "scripts")
	if err := os.MkdirAll(scripts, 0o700); err != nil {
		v.drillFail("%v", err)
		return
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(scripts, name), []byte(content), 0o600); err != nil {
			v.drillFail("%v", err)
			return
		}
	}
	drill := filepath.Dir(scripts)
	scriptPath := filepath.Join(scripts, "etcd-snapshot.sh")

	start := time.Now()
	snap, err := runSnapshotSave(ctx, scriptPath, etcdBin, v.cp.etcdURL, filepath.Join(drill, "snapshot"))
	if err != nil {
		v.drillFail("the schedule's snapshot step failed: %v", err)
		return
	}
	info, _ := os.Stat(snap)
	fmt.Printf("  snapshot by the CronJob's script: %d bytes in %s\n", info.Size(), time.Since(start).Round(time.Millisecond))

	start = time.Now()
	object, uploaded, err := runSnapshotUpload(ctx, scriptPath, filepath.Dir(snap), prefix, filepath.Join(drill, "bucket"))
	if err != nil {
		v.drillFail("the schedule's upload step failed: %v", err)
		return
	}
	fmt.Printf("  uploaded by the CronJob's upload step (s3.sh: SigV4, body sha256) to a stand-in bucket: %s (%s)\n", object, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	missing, user, err := v.restoreAndRead(ctx, etcdBin, uploaded, filepath.Join(drill, "restored"), v.cp.pki, token)
	if err != nil {
		v.drillFail("%v", err)
		return
	}
	if len(missing) > 0 {
		v.drillFail("%d of %d applied objects are missing after the restore: %s", len(missing), len(v.applied), strings.Join(missing, ", "))
	} else {
		fmt.Printf("  restored and served by kube-apiserver: all %d applied objects are back (%s)\n", len(v.applied), time.Since(start).Round(time.Millisecond))
	}
	if user != drillTokenUser {
		v.drillFail("the token issued before the snapshot is not accepted after the restore with the program's service-account key (TokenReview user %q, want %q)", user, drillTokenUser)
	} else {
		fmt.Printf("  a ServiceAccount token issued before the snapshot is accepted after it, with the program's cluster CA and service-account key (%s)\n", user)
	}

	// The control of the token check: the same snapshot with another service-account key.
	other := *v.cp.pki
	if other.saKey, other.saPub, err = other.newServiceAccountKey("other-sa"); err != nil {
		v.drillFail("%v", err)
		return
	}
	if _, user, err = v.restoreAndRead(ctx, etcdBin, uploaded, filepath.Join(drill, "restored-other-key"), &other, token); err != nil {
		v.drillFail("restore with another service-account key: %v", err)
		return
	}
	if user != "" {
		v.drillFail("a restore with ANOTHER service-account key accepted the token as %q: the check cannot tell a kept identity from a new one", user)
		return
	}
	fmt.Println("  control: with another service-account key (a master that made its own) the same token is refused, and the drill says so")

	// The control: the same steps on a snapshot of an empty etcd must miss the objects.
	empty := &controlPlane{work: filepath.Join(drill, "empty"), bin: v.cp.bin, apiServerPath: v.cp.apiServerPath, pki: v.cp.pki, etcdPath: filepath.Join(etcdBin, "etcd"), etcdName: "empty"}
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
	missing, _, err = v.restoreAndRead(ctx, etcdBin, emptySnap, filepath.Join(drill, "restored-empty"), v.cp.pki, "")
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

// snapshotScripts returns the files of the rendered kube-system etcd-snapshot ConfigMap, by name.
func snapshotScripts(dir string) (map[string]string, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "manifests", "configmap-*-kube-system-etcd-snapshot.yaml"))
	if len(files) != 1 {
		return nil, fmt.Errorf("%d rendered etcd-snapshot ConfigMaps in %s, want 1", len(files), dir)
	}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := readYAML(files[0], &cm); err != nil {
		return nil, err
	}
	if _, ok := cm.Data["etcd-snapshot.sh"]; !ok {
		return nil, fmt.Errorf("%s has no etcd-snapshot.sh", files[0])
	}
	return cm.Data, nil
}

// snapshotPrefix returns the BACKUP_PREFIX of the rendered etcd-snapshot CronJob's upload step.
func snapshotPrefix(dir string) (string, error) {
	files, _ := filepath.Glob(filepath.Join(dir, "manifests", "cronjob-*-kube-system-etcd-snapshot.yaml"))
	if len(files) != 1 {
		return "", fmt.Errorf("%d rendered etcd-snapshot CronJobs in %s, want 1", len(files), dir)
	}
	var cj struct {
		Spec struct {
			JobTemplate struct {
				Spec struct {
					Template struct {
						Spec struct {
							Containers []struct {
								Name string `json:"name"`
								Env  []struct {
									Name  string `json:"name"`
									Value string `json:"value"`
								} `json:"env"`
							} `json:"containers"`
						} `json:"spec"`
					} `json:"template"`
				} `json:"spec"`
			} `json:"jobTemplate"`
		} `json:"spec"`
	}
	if err := readYAML(files[0], &cj); err != nil {
		return "", err
	}
	for _, c := range cj.Spec.JobTemplate.Spec.Template.Spec.Containers {
		for _, e := range c.Env {
			if c.Name == "upload" && e.Name == "BACKUP_PREFIX" && e.Value != "" {
				return e.Value, nil
			}
		}
	}
	return "", fmt.Errorf("%s: no upload container with BACKUP_PREFIX", files[0])
}

// The stand-in bucket's name, region and key: what the drill's upload is signed for.
const (
	drillBucket, drillRegion       = "etcd-drill-backups", "ap-northeast-2"
	drillAccessKey, drillSecretKey = "etcd-drill-key", "etcd-drill-secret"
)

// runSnapshotUpload runs the script's upload step for the snapshot in snapDir against a stand-in
// bucket on 127.0.0.1 that, as S3 does, refuses a body whose sha256 is not its
// x-amz-content-sha256 header and a request not signed (SigV4) for the drill's key and S3 in the
// bucket's region. The one object must land under PREFIX/YYYY/MM/DD/etcd-<UTC time>.db; it is
// written into out. Returns the object's path in the bucket and the file: what the drill restores.
func runSnapshotUpload(ctx context.Context, script, snapDir, prefix, out string) (object, file string, err error) {
	var mu sync.Mutex
	objects := map[string][]byte{}
	var refused []string
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		sum := sha256.Sum256(body)
		auth := r.Header.Get("Authorization")
		why := ""
		switch {
		case err != nil:
			why = err.Error()
		case r.Method != http.MethodPut:
			why = r.Method + " is not an upload"
		case r.Header.Get("X-Amz-Content-Sha256") != hex.EncodeToString(sum[:]):
			why = "x-amz-content-sha256 " + r.Header.Get("X-Amz-Content-Sha256") + " is not the body's sha256"
		case !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential="+drillAccessKey+"/") ||
			!strings.Contains(auth, "/"+drillRegion+"/s3/aws4_request, ") ||
			!strings.Contains(auth, "x-amz-content-sha256"):
			why = "not signed (SigV4) for the drill's key, S3 in " + drillRegion + " and the body hash: " + auth
		}
		mu.Lock()
		defer mu.Unlock()
		if why != "" {
			refused = append(refused, r.Method+" "+r.URL.Path+": "+why)
			w.WriteHeader(http.StatusForbidden)
			return
		}
		objects[r.URL.Path] = body
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer func() { _ = srv.Close() }()

	cmd := exec.CommandContext(ctx, "/bin/sh", script, "upload")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + snapDir, "SNAPSHOT_DIR=" + snapDir,
		"BACKUP_BUCKET=" + drillBucket, "BACKUP_PREFIX=" + prefix, "AWS_REGION=" + drillRegion,
		"S3_ENDPOINT=http://" + ln.Addr().String(),
		"AWS_ACCESS_KEY_ID=" + drillAccessKey, "AWS_SECRET_ACCESS_KEY=" + drillSecretKey}
	log, err := cmd.CombinedOutput()
	mu.Lock()
	defer mu.Unlock()
	if err != nil {
		return "", "", fmt.Errorf("%v:\n%s%s", err, log, strings.Join(refused, "\n"))
	}
	// The snapshot alone: the cluster's mark, which a new master reads, is kubeadm-init's.
	if len(objects) != 1 {
		return "", "", fmt.Errorf("%d objects in the bucket after the upload step, want 1, the snapshot:\n%s", len(objects), log)
	}
	key := regexp.MustCompile(`^/` + regexp.QuoteMeta(drillBucket+"/"+prefix) + `/[0-9]{4}/[0-9]{2}/[0-9]{2}/etcd-[0-9]{8}T[0-9]{6}Z\.db$`)
	for path, body := range objects {
		if !key.MatchString(path) {
			return "", "", fmt.Errorf("the snapshot was uploaded to %s, want %s", path, key)
		}
		if err := os.MkdirAll(out, 0o700); err != nil {
			return "", "", err
		}
		file := filepath.Join(out, filepath.Base(path))
		return path, file, os.WriteFile(file, body, 0o600)
	}
	return "", "", fmt.Errorf("no object in the bucket")
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

// The ServiceAccount the drill issues a token for before the snapshot, and the user a TokenReview
// of that token names.
const (
	drillSANamespace = "kube-system"
	drillSAName      = "verify-local-drill"
	drillTokenUser   = "system:serviceaccount:" + drillSANamespace + ":" + drillSAName
)

// drillToken creates the drill's ServiceAccount and a token for it (an hour, the default
// audience) through the TokenRequest API, which also issues pods' projected tokens (this one is
// bound to no pod).
func (v *verifier) drillToken(ctx context.Context) (string, error) {
	accounts := v.cp.client.CoreV1().ServiceAccounts(drillSANamespace)
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: drillSAName, Namespace: drillSANamespace}}
	if _, err := accounts.Create(ctx, sa, metav1.CreateOptions{}); err != nil {
		return "", err
	}
	hour := int64(3600)
	tr, err := accounts.CreateToken(ctx, drillSAName,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &hour}}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return tr.Status.Token, nil
}

// restoreAndRead restores a snapshot with etcdutl into work/etcd, runs etcd and kube-apiserver
// on it with the keys of keys, and returns the applied objects the API server does not have and,
// when token is not "", the user a TokenReview of it names ("" when it is refused).
func (v *verifier) restoreAndRead(ctx context.Context, etcdBin, snap, work string, keys *pki, token string) (missing []string, user string, err error) {
	peer, err := freePort()
	if err != nil {
		return nil, "", err
	}
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peer)
	// With the revision bump and compaction mark the runbook (docs/operations.md) uses: watchers
	// and informers that saw revisions after the snapshot are made to list again instead of
	// missing the objects that went back in time.
	restore := exec.CommandContext(ctx, filepath.Join(etcdBin, "etcdutl"), "snapshot", "restore", snap,
		"--data-dir="+filepath.Join(work, "etcd"), "--name=restored",
		"--initial-cluster=restored="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--bump-revision=1000000000", "--mark-compacted")
	restore.Env = []string{"PATH=" + os.Getenv("PATH")}
	if out, err := restore.CombinedOutput(); err != nil {
		return nil, "", fmt.Errorf("etcdutl snapshot restore: %v:\n%s", err, out)
	}
	r := &controlPlane{work: work, bin: v.cp.bin, apiServerPath: v.cp.apiServerPath, pki: keys, encryptionConfig: v.cp.encryptionConfig,
		serviceAccountArgs: v.cp.serviceAccountArgs, etcdPath: filepath.Join(etcdBin, "etcd"), etcdName: "restored", etcdPeerPort: peer}
	defer r.stop()
	if err := r.startAPI(ctx); err != nil {
		return nil, "", fmt.Errorf("kube-apiserver on the restored etcd: %w", err)
	}
	dyn, err := dynamic.NewForConfig(r.config)
	if err != nil {
		return nil, "", err
	}
	for _, o := range v.applied {
		ri := dyn.Resource(o.resource).Namespace(o.namespace)
		if _, err := ri.Get(ctx, o.name, metav1.GetOptions{}); err != nil {
			if !apierrors.IsNotFound(err) {
				return nil, "", fmt.Errorf("read %s %s/%s back: %w", o.resource.Resource, o.namespace, o.name, err)
			}
			missing = append(missing, fmt.Sprintf("%s %s/%s (%s)", o.resource.Resource, o.namespace, o.name, o.file))
		}
	}
	if token != "" {
		review, err := r.client.AuthenticationV1().TokenReviews().Create(ctx,
			&authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}, metav1.CreateOptions{})
		if err != nil {
			return nil, "", fmt.Errorf("TokenReview on the restored API server: %w", err)
		}
		if review.Status.Authenticated {
			user = review.Status.User.Username
		}
	}
	return missing, user, nil
}

// drillFail records a failure of the drill and prints it (the report is already written).
func (v *verifier) drillFail(format string, args ...any) {
	msg := "etcd restore drill: " + fmt.Sprintf(format, args...)
	fmt.Fprintln(os.Stderr, "FAIL", msg)
	v.failures = append(v.failures, msg)
}
