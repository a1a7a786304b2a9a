package standin

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/waste-coach/infra/cluster"
)

func props(t *testing.T, m map[string]any) *structpb.Struct {
	t.Helper()
	s, err := marshal(resource.NewPropertyMapFromMap(m))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestDiffReplacesACommandOnlyWhenItsTriggersChange: the engine run's one-line-change preview is
// only as exact as these answers: a command whose triggers changed is replaced (as the command
// provider does), any other changed input is an update, equal inputs are no change.
func TestDiffReplacesACommandOnlyWhenItsTriggersChange(t *testing.T) {
	p, err := New("command")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	urn := "urn:pulumi:prod::waste-coach-infra::command:remote:Command::sesacthon-join-storage"
	old := map[string]any{"create": "kubeadm join", "triggers": []any{"i-1"}}
	cases := []struct {
		name          string
		news          map[string]any
		want          pulumirpc.DiffResponse_DiffChanges
		wantReplaces  []string
		wantDiffsKeys []string
	}{
		{"same", map[string]any{"create": "kubeadm join", "triggers": []any{"i-1"}}, pulumirpc.DiffResponse_DIFF_NONE, nil, nil},
		{"script", map[string]any{"create": "kubeadm join --v=5", "triggers": []any{"i-1"}}, pulumirpc.DiffResponse_DIFF_SOME, nil, []string{"create"}},
		{"new instance", map[string]any{"create": "kubeadm join", "triggers": []any{"i-2"}}, pulumirpc.DiffResponse_DIFF_SOME, []string{"triggers"}, []string{"triggers"}},
	}
	for _, c := range cases {
		res, err := p.Diff(ctx, &pulumirpc.DiffRequest{Urn: urn, OldInputs: props(t, old), News: props(t, c.news)})
		if err != nil {
			t.Fatal(err)
		}
		if res.GetChanges() != c.want || !slices.Equal(res.GetReplaces(), c.wantReplaces) || !slices.Equal(res.GetDiffs(), c.wantDiffsKeys) {
			t.Errorf("%s: changes %v diffs %v replaces %v, want %v %v %v", c.name, res.GetChanges(), res.GetDiffs(), res.GetReplaces(), c.want, c.wantDiffsKeys, c.wantReplaces)
		}
	}
}

// TestInstancesRegisterNodesAndTheKubeconfigCommandAnswersWithTheLocalCluster: the two answers
// that connect the stand-in to the local cluster.
func TestInstancesRegisterNodesAndTheKubeconfigCommandAnswersWithTheLocalCluster(t *testing.T) {
	dir := t.TempDir()
	nodes := filepath.Join(dir, "nodes")
	if err := os.Mkdir(nodes, 0o700); err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte("apiVersion: v1\nkind: Config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvNodes, nodes)
	t.Setenv(EnvKubeconfig, kubeconfig)
	ctx := context.Background()

	aws, err := New("aws")
	if err != nil {
		t.Fatal(err)
	}
	inst := "urn:pulumi:prod::waste-coach-infra::aws:ec2/instance:Instance::sesacthon-nodes-master"
	created, err := aws.Create(ctx, &pulumirpc.CreateRequest{Urn: inst, Properties: props(t, map[string]any{
		"instanceType": "t3.large", "privateIp": "10.0.1.10", "tags": map[string]any{"Role": "master"},
		"rootBlockDevice": map[string]any{"volumeSize": 80, "volumeType": "gp3"},
	})})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := unmarshal(created.GetProperties())
	name := out["privateDns"].StringValue()
	b, err := os.ReadFile(filepath.Join(nodes, name+".json"))
	if err != nil {
		t.Fatalf("the master instance registered no node: %v", err)
	}
	var node struct {
		Metadata struct{ Labels map[string]string }
		Spec     struct{ Taints []map[string]string }
		Status   struct{ Allocatable map[string]string }
	}
	if err := json.Unmarshal(b, &node); err != nil {
		t.Fatal(err)
	}
	if _, ok := node.Metadata.Labels["node-role.kubernetes.io/control-plane"]; !ok || len(node.Spec.Taints) != 1 {
		t.Errorf("master node: labels %v taints %v, want the control-plane label and taint", node.Metadata.Labels, node.Spec.Taints)
	}
	// t3.large: 2 vCPU less the kubelet's reservations (1800m), less the control plane's own
	// pods, Calico and CoreDNS (1100m), which the engine run does not run; the charts' pods are
	// scheduled for real and must not be reserved twice.
	if got := node.Status.Allocatable["cpu"]; got != "700m" {
		t.Errorf("master allocatable cpu = %s, want 700m (1800m allocatable minus 1100m of system pods)", got)
	}
	// Every pod requests disk: the node offers its root volume's, as the kubelet computes it.
	if got, want := node.Status.Allocatable["ephemeral-storage"], fmt.Sprintf("%dMi", cluster.AllocatableDiskMiB(80)); got != want {
		t.Errorf("master allocatable ephemeral-storage = %s, want %s (an 80 GiB root volume)", got, want)
	}
	if _, err := aws.Delete(ctx, &pulumirpc.DeleteRequest{Urn: inst, Id: created.GetId(), Properties: created.GetProperties()}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(nodes, name+".json")); !os.IsNotExist(err) {
		t.Errorf("the deleted instance's node is still registered (%v)", err)
	}

	cmd, err := New("command")
	if err != nil {
		t.Fatal(err)
	}
	res, err := cmd.Create(ctx, &pulumirpc.CreateRequest{Urn: "urn:pulumi:prod::waste-coach-infra::command:remote:Command::sesacthon-kubeconfig", Properties: props(t, map[string]any{"create": "cat admin.conf"})})
	if err != nil {
		t.Fatal(err)
	}
	out, _ = unmarshal(res.GetProperties())
	if got := out["stdout"].StringValue(); got != "apiVersion: v1\nkind: Config\n" {
		t.Errorf("kubeconfig command stdout = %q, want the local cluster's kubeconfig", got)
	}
}

// A TLS key or a random password is regenerated, never updated, when any of its inputs changes:
// the compatibility check must see a new SSH key or password as the replacement it is.
func TestDiffReplacesGeneratedValuesOnAnyChange(t *testing.T) {
	for pkg, c := range map[string]struct {
		urn      string
		old, new map[string]any
	}{
		"tls":    {"urn:pulumi:prod::waste-coach-infra::tls:index/privateKey:PrivateKey::sesacthon-ssh", map[string]any{"algorithm": "ED25519"}, map[string]any{"algorithm": "RSA"}},
		"random": {"urn:pulumi:prod::waste-coach-infra::random:index/randomPassword:RandomPassword::pg", map[string]any{"length": 32.0}, map[string]any{"length": 40.0}},
	} {
		p, err := New(pkg)
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.Diff(context.Background(), &pulumirpc.DiffRequest{Urn: c.urn, OldInputs: props(t, c.old), News: props(t, c.new)})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.GetReplaces()) != 1 {
			t.Errorf("%s: a changed input of %s gives replaces %v; the %s provider replaces it", pkg, c.urn, res.GetReplaces(), pkg)
		}
	}
}
