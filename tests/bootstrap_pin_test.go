package tests

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
	"testing"

	"github.com/waste-coach/infra/internal/offline"
)

// pinnedBootstrap is the SHA-256 of every node's user data in each stack (the rendered
// infra/scripts/node-bootstrap.sh.tmpl, one line "<instance>=<userData>" per node, sorted).
//
// pulumi-aws applies a user data change by stopping the instance, modifying it and starting it
// again, and every node's bootstrap comes from the same template: one edit stops all nodes of
// every stack at once, the master and production included. Change the bootstrap only for a
// reason worth that outage, or put the change in the preparation script (cluster.UserData, in an
// SSM parameter, which running nodes never re-read). To change it deliberately: schedule the
// outage (docs/operations.md), then set the new hashes this test prints and say why in the commit.
var pinnedBootstrap = map[string]string{
	"prod": "c7e8cbe67939ea656869c3f1a6e5c805d198cbfd1a47acbfa4620e8fd19d76e5",
	"dev":  "0abc021b29e1dc8499191ab72232b84e0ed2b0d05d24d3848c3a11cf08b2a4d2",
}

// TestBootstrapIsPinned fails when any node's user data changes.
func TestBootstrapIsPinned(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		var lines []string
		for _, inst := range r.OfType("aws:ec2/instance:Instance") {
			ud := str(inst, "userData")
			if ud == "" {
				t.Errorf("instance %s has no userData: the bootstrap is how a node fetches its preparation", inst.Name)
			}
			lines = append(lines, inst.Name+"="+ud)
		}
		if len(lines) == 0 {
			t.Fatalf("stack %s declares no instance", r.Stack)
		}
		sort.Strings(lines)
		sum := sha256.Sum256([]byte(strings.Join(lines, "\n")))
		got := hex.EncodeToString(sum[:])
		if want := pinnedBootstrap[r.Stack]; got != want {
			t.Errorf("the user data of %s's %d instances changed (sha256 %s, pinned %s): this stops every node of the stack at once, "+
				"the master included (pulumi-aws stops, modifies and starts an instance whose user data changes). "+
				"Put the change in the preparation script instead, or schedule the outage and update pinnedBootstrap deliberately (see its comment)",
				r.Stack, len(lines), got, want)
		}
	})
}
