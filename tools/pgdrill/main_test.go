package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestLocalS3RefusesWhatS3Refuses: the drill's stand-in for the bucket takes an upload signed by
// curl --aws-sigv4 (as the backup script signs) with the right key and body hash, and refuses a
// wrong secret, a wrong region and a body that does not match its hash: the drill's uploads
// prove the script's signing, not just that bytes arrived. As the backups bucket, it refuses a
// backup's upload without If-None-Match and one over a key that exists (412), and lets the
// cluster's mark be put again.
func TestLocalS3RefusesWhatS3Refuses(t *testing.T) {
	endpoint, backend, err := startS3()
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "segment")
	if err := os.WriteFile(file, []byte("wal bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := sha256Hex([]byte("wal bytes"))
	put := func(secret, reg, hash, key, ifNoneMatch string) string {
		args := []string{"-sS", "-o", "/dev/null", "-w", "%{http_code}", "--aws-sigv4", "aws:amz:" + reg + ":s3",
			"-u", accessKey + ":" + secret, "-H", "x-amz-content-sha256: " + hash, "-T", file, endpoint + "/" + bucket + "/" + key}
		if ifNoneMatch != "" {
			args = append(args, "-H", "If-None-Match: "+ifNoneMatch)
		}
		out, _ := exec.Command("curl", args...).Output()
		return strings.TrimSpace(string(out))
	}
	for _, c := range []struct {
		name, secret, region, hash, key, ifNoneMatch, want string
	}{
		{"signed right", secretKey, region, good, "postgres/wal/signed-right", "*", "200"},
		{"wrong secret", "not-the-secret", region, good, "postgres/wal/wrong-secret", "*", "403"},
		{"wrong region", secretKey, "us-east-1", good, "postgres/wal/wrong-region", "*", "403"},
		{"body not its hash", secretKey, region, sha256Hex([]byte("other")), "postgres/wal/body-not-its-hash", "*", "403"},
		{"without If-None-Match", secretKey, region, good, "postgres/wal/unconditional", "", "403"},
		{"over a backup there", secretKey, region, good, "postgres/wal/signed-right", "*", "412"},
		{"the cluster's mark", secretKey, region, good, "clusters/0123456789abcdef", "", "200"},
		{"the cluster's mark, put again", secretKey, region, good, "clusters/0123456789abcdef", "", "200"},
	} {
		if got := put(c.secret, c.region, c.hash, c.key, c.ifNoneMatch); got != c.want {
			t.Errorf("%s: HTTP %s, want %s", c.name, got, c.want)
		}
	}
	if _, err := backend.HeadObject(bucket, "postgres/wal/signed-right"); err != nil {
		t.Errorf("the accepted upload is not stored: %v", err)
	}
}

// TestS3ShListsAndDownloadsAsTheMasterDoes: s3-read.sh's keys and download (on s3.sh), which a new master runs
// to find and fetch its cluster's newest etcd snapshot (kubeadm-init), against the local S3,
// which checks each request's SigV4 signature over its query string as S3 does. keys lists one
// folder only (the slashes of the prefix are encoded), in ascending order; a wrong secret fails
// both, rather than reading as "no snapshot".
func TestS3ShListsAndDownloadsAsTheMasterDoes(t *testing.T) {
	endpoint, backend, err := startS3()
	if err != nil {
		t.Fatal(err)
	}
	day := "etcd/0123456789abcdef/2026/12/06/"
	for _, key := range []string{day + "etcd-20261206T100400Z.db", day + "etcd-20261206T004900Z.db", "etcd/0123456789abcdef/2026/12/05/etcd-20261205T234900Z.db", "etcd/fedcba9876543210/2026/12/06/etcd-20261206T110400Z.db"} {
		if _, err := backend.PutObject(bucket, key, map[string]string{}, strings.NewReader("snapshot "+key), int64(len("snapshot "+key)), nil); err != nil {
			t.Fatal(err)
		}
	}
	s3sh, err := filepath.Abs(filepath.Join("..", "..", "internal", "s3sh", "s3.sh"))
	if err != nil {
		t.Fatal(err)
	}
	s3read := filepath.Join(filepath.Dir(s3sh), "s3-read.sh")
	out := filepath.Join(t.TempDir(), "snapshot.db")
	run := func(secret, script string, args ...string) (string, error) {
		cmd := exec.Command("sh", append([]string{"-c", ". " + s3sh + "; . " + s3read + "; credentials; " + script, "sh"}, args...)...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "S3_ENDPOINT=" + endpoint, "BACKUP_BUCKET=" + bucket, "AWS_REGION=" + region,
			"AWS_ACCESS_KEY_ID=" + accessKey, "AWS_SECRET_ACCESS_KEY=" + secret}
		b, err := cmd.CombinedOutput()
		return string(b), err
	}
	got, err := run(secretKey, `keys "$1"`, day)
	if err != nil {
		t.Fatalf("keys %s: %v\n%s", day, err, got)
	}
	if want := day + "etcd-20261206T004900Z.db\n" + day + "etcd-20261206T100400Z.db\n"; got != want {
		t.Errorf("keys %s printed\n%s\nwant that day's two snapshots of this cluster, oldest first:\n%s", day, got, want)
	}
	if got, err := run(secretKey, `download "$1" "$2"`, day+"etcd-20261206T100400Z.db", out); err != nil {
		t.Fatalf("download: %v\n%s", err, got)
	}
	if b, _ := os.ReadFile(out); string(b) != "snapshot "+day+"etcd-20261206T100400Z.db" {
		t.Errorf("the downloaded file reads %q", b)
	}
	if got, err := run("not-the-secret", `keys "$1"`, day); err == nil {
		t.Errorf("keys with a wrong secret succeeded (printed %q): a refused listing must fail, not read as an empty folder", got)
	}
	if got, err := run(secretKey, `download "$1" "$2"`, day+"etcd-missing.db", out+".missing"); err == nil {
		t.Errorf("download of a missing key succeeded: %q", got)
	}
}
