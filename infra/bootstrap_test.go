package infra

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/waste-coach/infra/config"
)

// TestBootstrapPassesShellcheck checks the node bootstrap like the cluster tier's scripts.
func TestBootstrapPassesShellcheck(t *testing.T) {
	if _, err := exec.LookPath("shellcheck"); err != nil {
		t.Skip("shellcheck not installed")
	}
	cmd := exec.Command("shellcheck", "--shell=bash", "-")
	cmd.Stdin = strings.NewReader(BootstrapScript(PreparationParameterName(&config.Config{Stack: "prod", ClusterName: "sesacthon"}, config.RoleMaster)))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("shellcheck node-bootstrap:\n%s", out)
	}
}

// TestPreparationParameterRoundTrips checks that the node decodes what the deploy stored, and
// that the same script always encodes to the same value (no spurious parameter updates).
func TestPreparationParameterRoundTrips(t *testing.T) {
	const script = "#!/usr/bin/env bash\necho prepare\n"
	v := PreparationParameterValue(script)
	if v != PreparationParameterValue(script) {
		t.Errorf("the encoding is not deterministic: every preview would update the parameter")
	}
	if got, err := DecodePreparationParameter(v); err != nil || got != script {
		t.Errorf("decoded %q (%v), want %q", got, err, script)
	}
}
