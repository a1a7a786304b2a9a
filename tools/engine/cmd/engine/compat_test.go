package main

import (
	"strings"
	"testing"
)

const master = "urn:pulumi:prod::waste-coach-infra::waste-coach-infra:infra:Infra$waste-coach-infra:infra:Nodes$aws:ec2/instance:Instance::sesacthon-master"

// An allowlist entry must say why; a reviewer reads the reason, not the glob.
func TestAllowlistRefusesEntriesWithoutAReasonOrWithAnotherOperation(t *testing.T) {
	for _, bad := range []string{
		"replace prod " + master,
		"replace prod " + master + " -- ",
		"update prod " + master + " -- an update needs no entry",
		"replace " + master + " -- no stack",
	} {
		if _, err := parseAllowlist(strings.NewReader(bad)); err == nil {
			t.Errorf("allowlist %q was accepted; it must be refused", bad)
		}
	}
}

// A replacement is allowed only by an entry of its own operation, for its stack, whose glob
// matches its whole URN; anything else is reported with its operation and URN.
func TestJudgeAllowsOnlyListedReplacementsAndDeletions(t *testing.T) {
	list, err := parseAllowlist(strings.NewReader(`# comment
replace prod urn:pulumi:prod::*$aws:ec2/instance:Instance::sesacthon-master -- a reviewed master replacement
delete * urn:pulumi:*::*kubernetes:core/v1:ConfigMap::gone -- the ConfigMap was retired
`))
	if err != nil {
		t.Fatal(err)
	}
	worker := strings.Replace(master, "master", "worker-1", 1)
	steps := map[string][]string{
		master: {"create-replacement", "replace", "delete-replaced"},
		worker: {"create-replacement", "replace", "delete-replaced"},
		"urn:pulumi:prod::waste-coach-infra::kubernetes:core/v1:ConfigMap::gone":           {"delete"},
		"urn:pulumi:prod::waste-coach-infra::kubernetes:core/v1:ConfigMap::gone-but-other": {"delete"},
		"urn:pulumi:prod::waste-coach-infra::kubernetes:core/v1:ConfigMap::kept":           {"same"},
		"urn:pulumi:prod::waste-coach-infra::kubernetes:core/v1:ConfigMap::changed":        {"update"},
	}
	r := judge("prod", steps, list)
	want := []string{
		"delete urn:pulumi:prod::waste-coach-infra::kubernetes:core/v1:ConfigMap::gone-but-other",
		"replace " + worker,
	}
	if strings.Join(r.disallowed, "\n") != strings.Join(want, "\n") {
		t.Errorf("disallowed:\n%s\nwant:\n%s", strings.Join(r.disallowed, "\n"), strings.Join(want, "\n"))
	}
	if got := r.counts(); got != "delete 2, replace 2, same 1, update 1" {
		t.Errorf("counts %q", got)
	}
	if dev := judge("dev", map[string][]string{strings.Replace(master, ":prod:", ":dev:", 1): {"replace"}}, list); len(dev.disallowed) != 1 {
		t.Errorf("a prod-only entry allowed dev's replacement: %v", dev.disallowed)
	}
}
