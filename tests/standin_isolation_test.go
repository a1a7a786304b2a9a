package tests

import (
	"os/exec"
	"strings"
	"testing"
)

// TestStandInIsNeverPartOfTheProgram: the provider stand-in of the offline engine run fabricates
// AWS resources; if the program ever linked it, a deploy could "succeed" without touching AWS.
// Only the engine run's own commands may import it.
func TestStandInIsNeverPartOfTheProgram(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "..", "../cmd/render").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasSuffix(pkg, "/internal/standin") || strings.Contains(pkg, "/tools/engine") {
			t.Errorf("the program or the render command depends on %s, the engine run's stand-in", pkg)
		}
	}
}
