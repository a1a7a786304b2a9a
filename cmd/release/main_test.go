package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/waste-coach/infra/internal/release"
)

// A stack that pulls private images keeps its registry login as a `secure:` value, which the
// release cannot decrypt: the release must still pass the config check (the deploy checks the
// decrypted login).
func TestAReleaseAcceptsAStackWithASecretRegistryLogin(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"Pulumi.yaml", "Pulumi.dev.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "Pulumi.dev.yaml" {
			b = []byte(strings.Replace(string(b), "config:\n", "config:\n  waste-coach-infra:imagePullSecret:\n    secure: AAABAJ0ZXN0\n", 1))
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "Pulumi.dev.yaml")
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	image := "ghcr.io/waste-coach/auth@sha256:" + strings.Repeat("ab", 32)
	after, _, err := release.SetImage(before, "auth", image)
	if err != nil {
		t.Fatal(err)
	}
	if err := write(dir, "dev", path, before, after); err != nil {
		t.Fatalf("the release of a stack with a secret imagePullSecret was refused: %v", err)
	}
	got, _ := os.ReadFile(path)
	if !strings.Contains(string(got), image) {
		t.Error("the stack file does not hold the released image")
	}
}
