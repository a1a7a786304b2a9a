package main

import (
	"strings"
	"testing"
)

// urn builds a URN of the program's shape: a parent chain, then the type and the name.
func urn(typ, name string) string {
	return "urn:pulumi:prod::waste-coach-infra::waste-coach-infra:cluster:Cluster$" + typ + "::" + name
}

// The replacement check fails on what a master replacement must not do, and on nothing else. The
// first case is the defect it was written for: member-<role> used to drain its node on delete, and
// a new master replaced it. An update of a command runs its create script again against the
// cluster that stays (a worker's kubelet restart or upgrade): it fails the check too, while the
// Kubernetes provider and objects may be updated (a new master's credential is a new kubeconfig).
func TestJudgeReplacementRefusesWhatAMasterReplacementMustNotDo(t *testing.T) {
	masterURN := urn(instanceType, "sesacthon-nodes-master")
	member := urn("command:remote:Command", "sesacthon-member-storage")
	good := map[string]string{
		masterURN: opReplace,
		urn("aws:ec2/eipAssociation:EipAssociation", "sesacthon-nodes-endpoint"): opReplace,
		member: opReplace,
		urn("command:remote:Command", "sesacthon-join-storage"):                opReplace,
		urn("kubernetes:apps/v1:StatefulSet", "sesacthon-data-postgres"):       "same",
		urn("pulumi:providers:kubernetes", "sesacthon"):                        "update",
		urn(instanceType, "sesacthon-nodes-storage"):                           "same",
		urn("command:remote:Command", "sesacthon-retire-storage"):              "same",
		urn("command:remote:Command", "sesacthon-kubelet-config-storage"):      "same",
		urn("kubernetes:core/v1:ConfigMap", "sesacthon-kube-system-etcd-snap"): "update",
	}
	replaced, updated, wrong := judgeReplacement(good, masterURN, map[string]bool{})
	if len(wrong) != 0 || len(replaced) != 4 {
		t.Fatalf("a clean replacement: replaced %v, wrong %v", replaced, wrong)
	}
	if want := "sesacthon, sesacthon-kube-system-etcd-snap"; strings.Join(updated, ", ") != want {
		t.Errorf("updated %v, want %s listed", updated, want)
	}
	for _, tc := range []struct {
		name       string
		urn, op    string
		withDelete bool
		want       string
	}{
		{"a replaced command with a delete step (the drain)", member, opReplace, true, "its delete step runs against the cluster that stays"},
		{"a worker's command updated", urn("command:remote:Command", "sesacthon-kubelet-config-storage"), "update", false, "an update runs the command's create script again"},
		{"a local command updated", urn("command:local:Command", "sesacthon-wait-ssh-storage"), "update", false, "an update runs the command's create script again"},
		{"another node replaced", urn(instanceType, "sesacthon-nodes-storage"), opReplace, false, "only the master is replaced"},
		{"another node updated", urn(instanceType, "sesacthon-nodes-worker-1"), "update", false, "only the master is replaced"},
		{"a Kubernetes object replaced", urn("kubernetes:apps/v1:StatefulSet", "sesacthon-data-postgres"), opReplace, false, "must outlive the master"},
		{"the Kubernetes provider replaced", urn("pulumi:providers:kubernetes", "sesacthon"), opReplace, false, "must outlive the master"},
		{"a Kubernetes object created", urn("kubernetes:core/v1:ConfigMap", "x"), "create", false, "must outlive the master"},
		{"a generated key replaced", urn("tls:index/privateKey:PrivateKey", "sesacthon-ca-key"), opReplace, false, "is not replaced with the master"},
		{"something else deleted", urn("aws:ssm/parameter:Parameter", "p"), opDelete, false, "creates or deletes nothing else"},
		{"the master kept", masterURN, "same", false, "was not replaced"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ops := map[string]string{}
			for k, v := range good {
				ops[k] = v
			}
			ops[tc.urn] = tc.op
			_, _, wrong := judgeReplacement(ops, masterURN, map[string]bool{tc.urn: tc.withDelete})
			if !strings.Contains(strings.Join(wrong, "\n"), tc.want) {
				t.Errorf("want a complaint %q, got %v", tc.want, wrong)
			}
		})
	}
}
