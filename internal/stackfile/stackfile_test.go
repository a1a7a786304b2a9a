package stackfile

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestReadAppliesDefaultsEncodesValuesAndMarksSecureOnes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("Pulumi.yaml", `name: proj
runtime: go
config:
  size: {type: integer, default: 3}
  zones: {type: array, items: {type: string}, default: [a, b]}
  name: {type: string}
`)
	write("Pulumi.s.yaml", `config:
  aws:region: ap-northeast-2
  proj:name: x
  proj:zones: [c]
  proj:nodes: [{role: master}]
  proj:password:
    secure: AAABAJ0ZXN0
`)
	c, err := Read(dir, "s")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"aws:region":    "ap-northeast-2",
		"proj:name":     "x",
		"proj:size":     "3",
		"proj:zones":    `["c"]`,
		"proj:nodes":    `[{"role":"master"}]`,
		"proj:password": SecretPlaceholder + "proj:password",
	}
	for k, v := range want {
		if c.Values[k] != v {
			t.Errorf("%s = %q, want %q", k, c.Values[k], v)
		}
	}
	if !slices.Equal(c.Secrets, []string{"proj:password"}) {
		t.Errorf("secret keys %v, want [proj:password]", c.Secrets)
	}
}

// TestReadRefusesAStackWithoutARequiredKey: the real CLI refuses `pulumi up` when a stack leaves
// out a key that Pulumi.yaml declares without a default (the engine run met it with
// backupRetentionDays); the tests and the render, which read the stack files here, must too.
func TestReadRefusesAStackWithoutARequiredKey(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"Pulumi.yaml":   "name: proj\nruntime: go\nconfig:\n  retention: {type: integer}\n  size: {type: integer, default: 3}\n",
		"Pulumi.s.yaml": "config:\n  proj:size: 4\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Read(dir, "s")
	if err == nil || !strings.Contains(err.Error(), "missing configuration values retention") {
		t.Fatalf("a stack without the required key retention: got %v, want a refusal naming it", err)
	}
}

// TestReadRefusesAPlainValueForAProjectSecret: a key Pulumi.yaml marks `secret: true` must be
// encrypted in every stack, even when the stack does not set it: the CLI refused `pulumi up`
// ("must be encrypted as it's secret") for the four optional secret keys of this project.
func TestReadRefusesAPlainValueForAProjectSecret(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{
		"Pulumi.yaml":   "name: proj\nruntime: go\nconfig:\n  token: {type: string, secret: true, default: \"\"}\n",
		"Pulumi.s.yaml": "config: {}\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Read(dir, "s")
	if err == nil || !strings.Contains(err.Error(), "token must be encrypted") {
		t.Fatalf("a project secret the stack does not hold encrypted: got %v, want a refusal naming it", err)
	}
}
