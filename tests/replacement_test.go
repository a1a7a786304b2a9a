package tests

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/cluster"
	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/infra"
	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/internal/stackfile"
)

const instanceType = "aws:ec2/instance:Instance"

// preparation decodes the preparation script a role's bootstrap fetches at first boot.
func preparation(t *testing.T, r *offline.Result, role string) string {
	t.Helper()
	param := must(t, r, "aws:ssm/parameter:Parameter", "sesacthon-nodes-"+role+"-prepare")
	script, err := infra.DecodePreparationParameter(str(param, "insecureValue"))
	if err != nil {
		t.Fatalf("%s: parameter %s: %v", role, str(param, "name"), err)
	}
	return script
}

// Pulumi's ignoreChanges keeps the state's value also when it replaces a resource: an ignored
// ami, userData or keyName would make `pulumi up --replace` boot a node from the old image, the
// old preparation and (after a key-pair rotation) a key pair that no longer exists.
func TestNodesCarryNoOldInputsIntoAReplacement(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		for _, inst := range r.OfType(instanceType) {
			for _, p := range []string{"ami", "userData", "keyName"} {
				if slices.Contains(inst.IgnoreChanges, p) {
					t.Errorf("%s ignores changes of %s: a replacement of the node would be launched with the old value", inst.Name, p)
				}
			}
		}
	})
}

// A node launched now (a replacement, or a new stack) boots the configured image, the current
// preparation and the current key pair.
func TestAReplacementNodeGetsTheCurrentConfiguration(t *testing.T) {
	const image = "ami-0123456789abcdef0"
	const pub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRotatedKey operator@example"
	r, err := offline.RunConfig("prod", prodWith(t, map[string]string{
		"waste-coach-infra:nodeImage":     image,
		"waste-coach-infra:sshPublicKey":  pub,
		"waste-coach-infra:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\noperator\n-----END OPENSSH PRIVATE KEY-----\n",
	}, "waste-coach-infra:sshPrivateKey"))
	if err != nil {
		t.Fatal(err)
	}
	keyPair := must(t, r, "aws:ec2/keyPair:KeyPair", "sesacthon-nodes-ssh")
	if str(keyPair, "keyName") != infra.KeyPairName(r.Config) || str(keyPair, "publicKey") != pub || !keyPair.DeleteBeforeReplace {
		t.Errorf("key pair: name %q (want the fixed %q), public key %q, delete-before-replace %v: a rotation must replace it under the same name",
			str(keyPair, "keyName"), infra.KeyPairName(r.Config), str(keyPair, "publicKey"), keyPair.DeleteBeforeReplace)
	}
	for _, n := range r.Config.Nodes {
		role := string(n.Role)
		inst := must(t, r, instanceType, "sesacthon-nodes-"+role)
		if got := str(inst, "ami"); got != image {
			t.Errorf("%s boots ami %q, want config nodeImage %q", role, got, image)
		}
		if got := str(inst, "keyName"); got != infra.KeyPairName(r.Config) {
			t.Errorf("%s is launched with key pair %q, want the stack's current key pair %q", role, got, infra.KeyPairName(r.Config))
		}
		if !r.DependsOn(inst, keyPair) {
			t.Errorf("%s does not wait for the key pair it names", role)
		}
		param := must(t, r, "aws:ssm/parameter:Parameter", "sesacthon-nodes-"+role+"-prepare")
		if want := infra.BootstrapScript(str(param, "name")); str(inst, "userData") != want {
			t.Errorf("%s user data is not the fixed bootstrap reading %s:\n%s", role, str(param, "name"), str(inst, "userData"))
		}
		if !r.DependsOn(inst, param) {
			t.Errorf("%s may boot before its preparation parameter %s exists", role, str(param, "name"))
		}
		if got, want := preparation(t, r, role), cluster.NodePrepareScript(r.Config, n.Role); got != want {
			t.Errorf("%s: parameter %s does not hold the current preparation script", role, str(param, "name"))
		}
		if v := str(param, "insecureValue"); str(param, "tier") != "Standard" || len(v) > infra.MaxStandardParameterBytes {
			t.Errorf("%s: parameter %s is %d bytes in tier %q; a standard parameter holds %d", role, str(param, "name"), len(v), str(param, "tier"), infra.MaxStandardParameterBytes)
		}
	}
}

// An edit of the preparation (here a new Kubernetes patch) or a key rotation changes no input of
// a running instance: pulumi-aws stops and starts an instance whose user data changes, and
// replaces one whose image or key name changes.
func TestRoutineChangesLeaveRunningNodesAlone(t *testing.T) {
	// The operator supplies the key in every run, so that each run declares the same resources
	// (the offline ids are counters) and only the change under test differs.
	withKey := func(pub string, set map[string]string) *stackfile.Config {
		change := map[string]string{
			"waste-coach-infra:sshPublicKey":  pub,
			"waste-coach-infra:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\noperator\n-----END OPENSSH PRIVATE KEY-----\n",
		}
		maps.Copy(change, set)
		return prodWith(t, change, "waste-coach-infra:sshPrivateKey")
	}
	const oldKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOldKey operator@example"
	const newKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINewKey operator@example"
	base, err := offline.RunConfig("prod", withKey(oldKey, nil))
	if err != nil {
		t.Fatal(err)
	}
	changes := []struct {
		name string
		run  *stackfile.Config
		// changed is the resource the change must reach instead.
		changedType, changedName, changedInput string
	}{
		{"new kubernetes patch in the preparation", withKey(oldKey, map[string]string{"waste-coach-infra:kubernetesVersion": "1.35"}),
			"aws:ssm/parameter:Parameter", "sesacthon-nodes-worker-1-prepare", "insecureValue"},
		{"rotated ssh key", withKey(newKey, nil), "aws:ec2/keyPair:KeyPair", "sesacthon-nodes-ssh", "publicKey"},
	}
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			r, err := offline.RunConfig("prod", c.run)
			if err != nil {
				t.Fatal(err)
			}
			before, after := must(t, base, c.changedType, c.changedName), must(t, r, c.changedType, c.changedName)
			if fmt.Sprint(before.Inputs[resource.PropertyKey(c.changedInput)]) == fmt.Sprint(after.Inputs[resource.PropertyKey(c.changedInput)]) {
				t.Fatalf("the change did not reach %s %s.%s: the test would prove nothing", c.changedType, c.changedName, c.changedInput)
			}
			for _, old := range base.OfType(instanceType) {
				now := must(t, r, instanceType, old.Name)
				for k, v := range old.Inputs {
					if w := now.Inputs[k]; normalized(v) != normalized(w) {
						t.Errorf("%s: input %s changes (%v -> %v): the running node would be stopped or replaced", old.Name, k, short(v), short(w))
					}
				}
				for k := range now.Inputs {
					if _, ok := old.Inputs[k]; !ok {
						t.Errorf("%s: input %s appears: the running node would be updated", old.Name, k)
					}
				}
			}
		})
	}
}

// offlineID matches the serial of an id the mocks fabricated. Serials follow registration order,
// which is concurrent, so the same subnet can get another serial in another run.
var offlineID = regexp.MustCompile(mocks.Placeholder + `[0-9]+`)

// normalized renders an input with fabricated id serials masked.
func normalized(v resource.PropertyValue) string {
	return offlineID.ReplaceAllString(v.String(), mocks.Placeholder+"#")
}

func short(v fmt.Stringer) string {
	s := v.String()
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// Dev leaves nodeImage unset. Its nodes must then keep the image they run, so that a merge after
// Canonical publishes a new image replaces nothing (a replaced master is the cluster's etcd);
// only a node the stack does not run boots the newest image. The stack here runs master and
// worker-1 (worker-1 twice, both from one image: a stray the persistent spot request relaunched),
// worker-2 from another image, and a storage node being terminated; prod runs in the same account.
func TestAnUnpinnedStackKeepsTheImagesItsNodesRun(t *testing.T) {
	sc, err := stackfile.Read("..", "dev")
	if err != nil {
		t.Fatal(err)
	}
	if sc.Values["waste-coach-infra:nodeImage"] != "" {
		t.Skip("dev pins its node image; this test is about a stack that does not")
	}
	const running, older, other, terminating = "ami-0aaaaaaaaaaaaaaa1", "ami-0aaaaaaaaaaaaaaa0", "ami-0bbbbbbbbbbbbbbb2", "ami-0ccccccccccccccc3"
	const prodImage = "ami-0ddddddddddddddd4"
	deployed := func(worker1Stray string) *mocks.Mocks {
		m := mocks.New(config.Project, "dev", sc.Values["aws:region"])
		m.Instances = []mocks.Instance{
			{ID: "i-0master", Role: "master", Cluster: "dev-sesacthon", Image: running, State: "running", Spot: true},
			{ID: "i-0worker1", Role: "worker-1", Cluster: "dev-sesacthon", Image: running, State: "running", Spot: true},
			{ID: "i-0worker1stray", Role: "worker-1", Cluster: "dev-sesacthon", Image: worker1Stray, State: "running", Spot: true},
			{ID: "i-0worker2", Role: "worker-2", Cluster: "dev-sesacthon", Image: other, State: "running", Spot: true},
			{ID: "i-0storage", Role: "storage", Cluster: "dev-sesacthon", Image: terminating, State: "shutting-down"},
			// prod's master in the same account: another cluster tag, so neither kept nor a
			// second master image.
			{ID: "i-0prodmaster", Role: "master", Cluster: "prod-sesacthon", Image: prodImage, State: "running"},
		}
		return m
	}
	r, err := offline.RunMocks("dev", sc, deployed(running))
	if err != nil {
		t.Fatal(err)
	}
	newest := "ami-" + mocks.Placeholder + "0ubuntu2404" // the mocks' answer to the newest-image lookup
	for role, want := range map[string]string{"master": running, "worker-1": running, "worker-2": other, "storage": newest} {
		if got := str(must(t, r, instanceType, "sesacthon-nodes-"+role), "ami"); got != want {
			t.Errorf("%s boots %s, want %s", role, got, want)
		}
	}

	// Two instances of one role from different images: which one the state holds cannot be told,
	// and a guess could replace the node; the run stops, naming both and the way out.
	refused, err := offline.RunMocks("dev", sc, deployed(older))
	if err == nil {
		t.Fatal("two worker-1 instances with different images were accepted")
	}
	for _, want := range []string{"i-0worker1 ", "i-0worker1stray", older, "Role=worker-1", "nodeImage"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal does not name %q: %v", want, err)
		}
	}
	for _, res := range refused.Resources {
		if res.Type == instanceType {
			t.Errorf("instance %s declared despite the refusal", res.Name)
		}
	}

	// A new stack (no instances) boots the newest image everywhere.
	fresh, err := offline.Run("..", "dev")
	if err != nil {
		t.Fatal(err)
	}
	for _, inst := range fresh.OfType(instanceType) {
		if got := str(inst, "ami"); got != newest {
			t.Errorf("new stack: %s boots %s, want the newest image %s", inst.Name, got, newest)
		}
	}
}

// TestAKeptImageThatIsGoneIsFound: a dev node keeps the image it was launched from (nodeImage
// unset); when its owner has deregistered that image, the node runs on but a replacement would fail
// at launch (on the master, after the old one is gone), so the program finds such images, one
// lookup each, and warns before anything is replaced.
func TestAKeptImageThatIsGoneIsFound(t *testing.T) {
	const kept, gone = "ami-0aaaaaaaaaaaaaaa1", "ami-0bbbbbbbbbbbbbbb2"
	m := mocks.New(config.Project, "dev", "ap-northeast-2")
	m.DeregisteredImages = []string{gone}
	var found map[config.Role]string
	err := pulumi.RunErr(func(ctx *pulumi.Context) error {
		found = infra.GoneImages(ctx, map[config.Role]string{
			config.RoleMaster: kept, config.RoleWorker1: gone, config.RoleWorker2: gone, config.RoleStorage: kept,
		}, nil)
		return nil
	}, pulumi.WithMocks(config.Project, "dev", m))
	if err != nil {
		t.Fatal(err)
	}
	want := map[config.Role]string{config.RoleWorker1: gone, config.RoleWorker2: gone}
	if !maps.Equal(found, want) {
		t.Errorf("gone images = %v, want %v", found, want)
	}
	if n := m.Invokes("aws:ec2/getAmi:getAmi"); n != 2 {
		t.Errorf("%d image lookups, want 2 (one per distinct image)", n)
	}
}
