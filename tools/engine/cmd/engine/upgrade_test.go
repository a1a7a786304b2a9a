package main

import (
	"strings"
	"testing"
)

// The upgrade check passes the preview a version bump must give, and fails on a replacement, on
// anything else changed, and on an upgrade step missing.
func TestJudgeUpgradeWantsTheUpgradeStepsInPlaceAndNothingElse(t *testing.T) {
	good := map[string]string{
		urn(instanceType, "sesacthon-nodes-master"):                          "same",
		urn("kubernetes:apps/v1:StatefulSet", "sesacthon-data-postgres"):     "same",
		urn("kubernetes:apps/v1:DaemonSet", "sesacthon-ccm"):                 "update",
		urn("command:remote:Command", "sesacthon-kubeadm-init"):              "update",
		urn("command:remote:Command", "sesacthon-reconfigure-master"):        "update",
		urn("aws:ssm/parameter:Parameter", "sesacthon-nodes-master-prepare"): "update",
		// kubeadm's etcd of the new minor, for the snapshot: allowed, not required.
		urn("kubernetes:batch/v1:CronJob", "sesacthon-kube-system-etcd-snapshot"): "update",
		// Calico of the new minor: allowed, not required.
		urn("command:remote:Command", "sesacthon-calico"): "update",
	}
	for _, role := range []string{"master", "worker-1", "worker-2", "storage"} {
		good[urn("command:remote:Command", "sesacthon-upgrade-"+role)] = "update"
		good[urn("aws:ssm/parameter:Parameter", "sesacthon-nodes-"+role+"-prepare")] = "update"
	}
	if missing, wrong := judgeUpgrade(good); len(missing) != 0 || len(wrong) != 0 {
		t.Fatalf("the preview a bump must give: missing %v, wrong %v", missing, wrong)
	}
	for _, tc := range []struct {
		name, urn, op, want string
	}{
		{"an instance replaced", urn(instanceType, "sesacthon-nodes-master"), opReplace, "replace "},
		{"an upgrade step replaced", urn("command:remote:Command", "sesacthon-upgrade-storage"), opReplace, "replace "},
		{"something else updated", urn("kubernetes:apps/v1:StatefulSet", "sesacthon-data-postgres"), "update", "update "},
		{"an upgrade step unchanged", urn("command:remote:Command", "sesacthon-upgrade-worker-2"), "same", "-upgrade-worker-2"},
	} {
		ops := map[string]string{}
		for k, v := range good {
			ops[k] = v
		}
		ops[tc.urn] = tc.op
		missing, wrong := judgeUpgrade(ops)
		got := strings.Join(append(missing, wrong...), "; ")
		if !strings.Contains(got, tc.want) {
			t.Errorf("%s: judged %q, want it named (%q)", tc.name, got, tc.want)
		}
	}
	if v, err := nextMinor("1.35.4"); err != nil || v != "1.36" {
		t.Errorf("nextMinor(1.35.4) = %q, %v; want 1.36", v, err)
	}
}
