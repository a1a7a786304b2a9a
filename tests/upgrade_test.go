package tests

import (
	"fmt"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/charts"
	"github.com/waste-coach/infra/cluster"
	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/internal/stackfile"
	"github.com/waste-coach/infra/platform"
	"github.com/waste-coach/infra/versions"
)

// A kubernetesVersion change upgrades the running cluster: the control plane's step first, right
// after kubeadm init and before anything that must not run ahead of the API server's version (the
// CCM of the configured minor, the joins of nodes prepared with that kubelet); then the other
// nodes one at a time in config order after every node is Ready; then the kubelet rollout. Each
// step runs on its own node, has no trigger and is tied to no instance (a replaced node is
// prepared at the version already): its script names the version and the apt key's fingerprint,
// so a change of either is an update that runs it again, never a replacement.
func TestAVersionChangeUpgradesTheControlPlaneFirstThenEachNode(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		get := func(name string) *node { return &node{r, must(t, r, remoteCommand, "sesacthon-"+name)} }
		master := get("upgrade-master")
		if !master.waitsFor(get("kubeadm-init")) {
			t.Error("upgrade-master does not wait for kubeadm init")
		}
		if !strings.Contains(str(master.Resource, "create"), "kubeadm upgrade apply") {
			t.Error("upgrade-master does not run kubeadm upgrade apply")
		}
		ds := must(t, r, "kubernetes:apps/v1:DaemonSet", "sesacthon-ccm")
		var ccmProvider *node
		for _, p := range r.OfType("pulumi:providers:kubernetes") {
			if ds.ProviderURN() == p.URN {
				ccmProvider = &node{r, p}
			}
		}
		if ccmProvider == nil || !ccmProvider.waitsFor(master) {
			t.Error("the cloud-controller-manager's provider does not wait for upgrade-master: the CCM of a new minor would run against the old API server")
		}
		// What talks to the API server while `kubeadm upgrade apply` restarts it waits for the step.
		for _, name := range []string{"kubeconfig", "calico"} {
			if !get(name).waitsFor(master) {
				t.Errorf("%s does not wait for upgrade-master: it could run while the API server restarts", name)
			}
		}
		if crds := (&node{r, must(t, r, "pulumi:providers:kubernetes", "sesacthon-crds")}); !crds.waitsFor(master) {
			t.Error("the CRDs' provider does not wait for upgrade-master: the CRDs could be applied while the API server restarts")
		}
		prev, prevName := get("nodes-ready"), "nodes-ready"
		steps := []*node{master}
		for _, role := range []string{"worker-1", "worker-2", "storage"} {
			if !get("join-token-" + role).waitsFor(master) {
				t.Errorf("join-token-%s does not wait for upgrade-master: a node prepared with the new kubelet could join an older API server", role)
			}
			step := get("upgrade-" + role)
			if !contains(step.Dependencies, prev.URN) {
				t.Errorf("upgrade-%s does not wait directly for %s: the nodes go one at a time, after every node is Ready", role, prevName)
			}
			script := str(step.Resource, "create")
			if !strings.Contains(script, "kubeadm upgrade node") || strings.Contains(script, "kubeadm upgrade apply") {
				t.Errorf("upgrade-%s does not run kubeadm upgrade node (and only that)", role)
			}
			if str(step.Resource, "connection", "host") == str(master.Resource, "connection", "host") {
				t.Errorf("upgrade-%s runs on the master, not on its node", role)
			}
			prev, prevName = step, "upgrade-"+role
			steps = append(steps, step)
		}
		if !get("kubelet-configmap").waitsFor(prev) {
			t.Error("the kubelet rollout does not wait for the last node's upgrade")
		}
		version := r.Config.Kubernetes.String()
		for _, s := range steps {
			if v := prop(s.Resource, "triggers"); v.IsArray() && len(v.ArrayValue()) > 0 {
				t.Errorf("%s has triggers %v: a trigger change replaces the command, and an instance id would run it on every replacement", s.Name, v)
			}
			script := str(s.Resource, "create")
			if !strings.Contains(script, `target="`+version+`"`) || !strings.Contains(script, versions.KubernetesAptKeyFingerprint) {
				t.Errorf("%s does not name kubernetesVersion %s and the apt key's fingerprint: a change of either would not run it", s.Name, version)
			}
		}
	})
}

// A running master is brought to the program's kubeadm configuration (the admission
// configuration among it) by reconfigure-master, right after its upgrade step, on the master,
// untied from the instance; what talks to the API server, which it may restart, waits for it. Its
// script carries the same kubeadm configuration as kubeadm-init's, so a new master and a running
// one end up configured alike.
func TestTheMasterIsReconfiguredAfterItsUpgrade(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		get := func(name string) *node { return &node{r, must(t, r, remoteCommand, "sesacthon-"+name)} }
		step, master := get("reconfigure-master"), get("upgrade-master")
		if !contains(step.Dependencies, master.URN) {
			t.Error("reconfigure-master does not wait for upgrade-master: it would store a configuration at a release the control plane does not run yet")
		}
		for _, name := range []string{"kubeconfig", "calico", "join-token-worker-1", "join-token-storage"} {
			if !get(name).waitsFor(step) {
				t.Errorf("%s does not wait for reconfigure-master: it could run while the API server restarts", name)
			}
		}
		if crds := (&node{r, must(t, r, "pulumi:providers:kubernetes", "sesacthon-crds")}); !crds.waitsFor(step) {
			t.Error("the CRDs' provider does not wait for reconfigure-master")
		}
		if v := prop(step.Resource, "triggers"); v.IsArray() && len(v.ArrayValue()) > 0 {
			t.Errorf("reconfigure-master has triggers %v: it must run again only when the configuration changes", v)
		}
		if str(step.Resource, "connection", "host") != str(master.Resource, "connection", "host") {
			t.Error("reconfigure-master does not run on the master")
		}
		init := str(get("kubeadm-init").Resource, "create")
		kubeadmConfig := init[strings.Index(init, "<<'KUBEADM'\n")+len("<<'KUBEADM'\n"):]
		kubeadmConfig = kubeadmConfig[:strings.Index(kubeadmConfig, "KUBEADM\n")]
		if str(step.Resource, "create") != cluster.ReconfigureScript(kubeadmConfig) {
			t.Error("reconfigure-master does not carry kubeadm-init's kubeadm configuration")
		}
		if !strings.Contains(kubeadmConfig, "admission-control-config-file") || !strings.Contains(kubeadmConfig, cluster.AdmissionConfigPath()) {
			t.Error("the kubeadm configuration does not give the API server the admission configuration")
		}
	})
}

// The control plane's certificates are renewed on the master by a daily timer, installed by a
// command tied to the master's instance (a new master gets it too) whose script is the timer's
// program: a change of it is an update that installs it again.
func TestTheMasterRenewsItsCertificatesDaily(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		c := must(t, r, remoteCommand, "sesacthon-cert-renewal")
		if str(c, "create") != cluster.CertRenewalScript() {
			t.Error("cert-renewal does not install the renewal program and its timer")
		}
		master := must(t, r, "aws:ec2/instance:Instance", "sesacthon-nodes-master")
		if master.ID == "" || !strings.Contains(prop(c, "triggers").String(), master.ID) {
			t.Error("cert-renewal is not tied to the master's instance: a new master would have no renewal")
		}
		if str(c, "connection", "host") != str(must(t, r, remoteCommand, "sesacthon-kubeadm-init"), "connection", "host") {
			t.Error("cert-renewal does not run on the master")
		}
	})
}

// The stack records the version its control plane runs (the kubernetesVersion output); the next
// run, a `pulumi preview` included, refuses before declaring anything a kubernetesVersion the
// cluster cannot be taken to in one step: a downgrade (of the minor or of the patch) or a skipped
// minor. The same minor's patch, the next minor and a stack that recorded nothing go ahead.
func TestAVersionTheClusterCannotReachIsRefusedBeforeAnything(t *testing.T) {
	sc, err := stackfile.Read("..", "prod")
	if err != nil {
		t.Fatal(err)
	}
	configured := sc.Values["waste-coach-infra:kubernetesVersion"] // 1.35.4
	if configured != "1.35.4" {
		t.Fatalf("prod's kubernetesVersion is %s: the cases below are written for 1.35.4", configured)
	}
	archives, err := offline.ChartsDir()
	if err != nil {
		t.Fatal(err)
	}
	program := platform.ProgramWith(platform.Options{Charts: charts.Folder(archives)})
	for _, tc := range []struct {
		recorded string // "" = no output recorded
		refusal  string // "" = goes ahead
	}{
		{"", ""},
		{"1.35.4", ""},
		{"1.35.2", ""},
		{"1.35", ""},
		{"1.34.7", ""},
		{"1.35.6", "a patch downgrade: the cluster runs 1.35.6"},
		{"1.36", "a downgrade: the cluster runs 1.36"},
		{"1.33.2", "it skips 1 minor(s): the cluster runs 1.33.2"},
		{"1.29", "it skips 5 minor(s): the cluster runs 1.29"},
	} {
		for _, preview := range []bool{false, true} {
			m := mocks.New(config.Project, "prod", sc.Values["aws:region"])
			if tc.recorded != "" {
				m.PreviousOutputs = map[string]any{cluster.VersionOutput: tc.recorded, "url": "https://example.org"}
			}
			err := pulumi.RunErr(program, pulumi.WithMocks(config.Project, "prod", m), func(info *pulumi.RunInfo) {
				info.Config, info.ConfigSecretKeys, info.DryRun = sc.Values, sc.Secrets, preview
			})
			name := fmt.Sprintf("recorded %q, preview %v", tc.recorded, preview)
			if tc.refusal == "" {
				if err != nil {
					t.Errorf("%s: refused: %v", name, err)
				}
				continue
			}
			if err == nil {
				t.Errorf("%s: kubernetesVersion 1.35.4 went ahead", name)
				continue
			}
			for _, want := range []string{"config waste-coach-infra:kubernetesVersion: \"1.35.4\" is not allowed", tc.refusal, "one minor at a time"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%s: the refusal does not say %q:\n%v", name, want, err)
				}
			}
			if n := len(m.Resources()); n != 0 {
				t.Errorf("%s: %d resources declared before the refusal", name, n)
			}
			if reads := m.Reads(); len(reads) != 1 || reads[0].Inputs["name"].StringValue() != "prod" {
				t.Errorf("%s: the guard must read the stack's own outputs, once, by the bare stack name a self-managed backend takes; read %v", name, reads)
			}
		}
	}
}

func TestVersionStepTellsEachRefusalApart(t *testing.T) {
	v := func(s string) config.KubeVersion {
		k, ok := config.ParseKubeVersion(s)
		if !ok {
			t.Fatalf("%s does not parse", s)
		}
		return k
	}
	if err := cluster.VersionStep("1.35.4", v("1.36.3")); err != nil {
		t.Errorf("1.35.4 -> 1.36.3 is the next minor: %v", err)
	}
	if err := cluster.VersionStep("v1.35.4", v("1.35")); err != nil {
		t.Errorf("1.35.4 -> 1.35 (the newest patch) is the same minor: %v", err)
	}
	if err := cluster.VersionStep("2.0", v("1.35")); err == nil || !strings.Contains(err.Error(), "a downgrade") {
		t.Errorf("another major must be refused, got %v", err)
	}
	if err := cluster.VersionStep("garbage", v("1.35")); err == nil || !strings.Contains(err.Error(), `"garbage", not a Kubernetes version`) {
		t.Errorf("an unreadable record must be named, got %v", err)
	}
	// The record is the release the master reported, so a minor-only config that took the newest
	// patch still refuses an older patch named later.
	if err := cluster.VersionStep("1.36.3", v("1.36.1")); err == nil || !strings.Contains(err.Error(), "a patch downgrade") {
		t.Errorf("1.36.3 -> 1.36.1 must be refused, got %v", err)
	}
}

// The record is what the control plane's upgrade step said its node runs, on the last line it
// printed, never the configured version: a run that did not reach the step keeps its old output.
func TestTheRecordedVersionIsWhatTheMastersStepReported(t *testing.T) {
	for stdout, want := range map[string]string{
		"upgrading the control plane from 1.35.4 to 1.36.3\nnode ip-10-0-1-10 runs Kubernetes 1.36.3\n": "1.36.3",
		"node ip-10-0-1-10 runs Kubernetes 1.35.4\nnode ip-10-0-1-10 runs Kubernetes 1.36.3\n":          "1.36.3",
		"node ip-10-0-1-10 runs Kubernetes 1.36\n":                                                      "1.36",
		"refusing: a skipped minor\n":                                                                   "",
		"":                                                                                              "",
		"the node runs Kubernetes 1.36.3 now\n":                                                         "",
	} {
		if got := cluster.RunningVersion(stdout); got != want {
			t.Errorf("RunningVersion(%q) = %q, want %q", stdout, got, want)
		}
	}
	// cluster's TestTheControlPlaneUpgradesInOrder reads it from the real script's output.
}
