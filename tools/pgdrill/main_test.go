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
// prove the script's signing, not just that bytes arrived.
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
	put := func(secret, reg, hash, key string) string {
		out, _ := exec.Command("curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--aws-sigv4", "aws:amz:"+reg+":s3",
			"-u", accessKey+":"+secret, "-H", "x-amz-content-sha256: "+hash, "-T", file, endpoint+"/"+bucket+"/"+key).Output()
		return strings.TrimSpace(string(out))
	}
	for _, c := range []struct {
		name, secret, region, hash, want string
	}{
		{"signed right", secretKey, region, good, "200"},
		{"wrong secret", "not-the-secret", region, good, "403"},
		{"wrong region", secretKey, "us-east-1", good, "403"},
		{"body not its hash", secretKey, region, sha256Hex([]byte("other")), "403"},
	} {
		if got := put(c.secret, c.region, c.hash, "postgres/wal/"+strings.ReplaceAll(c.name, " ", "-")); got != c.want {
			t.Errorf("%s: HTTP %s, want %s", c.name, got, c.want)
		}
	}
	if _, err := backend.HeadObject(bucket, "postgres/wal/signed-right"); err != nil {
		t.Errorf("the accepted upload is not stored: %v", err)
	}
}
