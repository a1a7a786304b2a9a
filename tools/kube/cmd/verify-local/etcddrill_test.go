package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// mountEtcdScripts writes the repository's etcd-snapshot.sh and s3.sh into a directory, as the
// ConfigMap's volume mounts them, with edit applied to s3.sh, and a snapshot beside them.
func mountEtcdScripts(t *testing.T, edit func(string) string) (script, snapDir string) {
	t.Helper()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl: the upload step runs curl")
	}
	dir := t.TempDir()
	repo := filepath.Join("..", "..", "..", "..")
	for name, path := range map[string]string{
		"etcd-snapshot.sh": filepath.Join(repo, "workloads", "scripts", "etcd-snapshot.sh"),
		"s3.sh":            filepath.Join(repo, "internal", "s3sh", "s3.sh"),
	} {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		content := string(b)
		if name == "s3.sh" {
			content = edit(content)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	snapDir = t.TempDir()
	if err := os.WriteFile(filepath.Join(snapDir, "etcd-snapshot.db"), []byte("snapshot bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "etcd-snapshot.sh"), snapDir
}

// TestSnapshotUploadLandsInTheStandInBucket: the drill's upload runs the CronJob's upload step
// (through s3.sh) and restores what reached the bucket, under the dated key.
func TestSnapshotUploadLandsInTheStandInBucket(t *testing.T) {
	script, snapDir := mountEtcdScripts(t, func(s string) string { return s })
	object, file, err := runSnapshotUpload(context.Background(), script, snapDir, "etcd", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(object, "/"+drillBucket+"/etcd/") {
		t.Errorf("object %s, want under /%s/etcd/", object, drillBucket)
	}
	if b, err := os.ReadFile(file); err != nil || string(b) != "snapshot bytes" {
		t.Errorf("the uploaded object reads %q (%v), want the snapshot", b, err)
	}
}

// TestSnapshotUploadStandInRefusesWhatS3Refuses: the control. An upload whose body hash header
// is not the body's, as S3 would, fails the step: the drill's bucket is not a sink that accepts
// anything.
func TestSnapshotUploadStandInRefusesWhatS3Refuses(t *testing.T) {
	script, snapDir := mountEtcdScripts(t, func(s string) string {
		return strings.Replace(s, `"x-amz-content-sha256: ${sum}"`, `"x-amz-content-sha256: x${sum#?}"`, 1)
	})
	_, _, err := runSnapshotUpload(context.Background(), script, snapDir, "etcd", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "is not the body's sha256") {
		t.Errorf("an upload with a wrong x-amz-content-sha256 gave %v, want it refused", err)
	}
}
