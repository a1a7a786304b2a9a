package tests

import (
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/waste-coach/infra/internal/manifest"
	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/workloads"
)

// k8sResource finds a declared Kubernetes object by kind, namespace and name.
func k8sResource(t *testing.T, r *offline.Result, typ, namespace, name string) *mocks.Resource {
	t.Helper()
	for _, res := range r.OfType(typ) {
		if str(res, "metadata", "name") == name && str(res, "metadata", "namespace") == namespace {
			return res
		}
	}
	t.Fatalf("stack %s declares no %s %s/%s", r.Stack, typ, namespace, name)
	return nil
}

func dataClaims(r *offline.Result) []*mocks.Resource {
	var out []*mocks.Resource
	for _, res := range r.OfType("kubernetes:core/v1:PersistentVolumeClaim") {
		if str(res, "metadata", "namespace") == workloads.NamespaceData {
			out = append(out, res)
		}
	}
	return out
}

// TestProductionDataCannotBeDeletedByAccident: on prod, `pulumi destroy --exclude-protected` or a
// replaced claim must not delete the EBS volumes of PostgreSQL, Redis and RabbitMQ; on dev, a
// destroy removes everything.
func TestProductionDataCannotBeDeletedByAccident(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		prod := r.Config.Production
		claims := dataClaims(r)
		if len(claims) != 1+1+workloads.RabbitReplicas {
			t.Fatalf("want a claim each for PostgreSQL, Redis and %d RabbitMQ brokers, got %d", workloads.RabbitReplicas, len(claims))
		}
		wantClass := map[bool]string{true: workloads.RetainStorageClassName, false: workloads.StorageClassName}[prod]
		for _, c := range claims {
			name := str(c, "metadata", "name")
			if c.Protect != prod {
				t.Errorf("claim data/%s: protect = %v, want %v (production: %v)", name, c.Protect, prod, prod)
			}
			if got := str(c, "spec", "storageClassName"); got != wantClass {
				t.Errorf("claim data/%s: storage class %q, want %q", name, got, wantClass)
			}
		}
		ns := k8sResource(t, r, "kubernetes:core/v1:Namespace", "", workloads.NamespaceData)
		if ns.Protect != prod {
			t.Errorf("namespace data: protect = %v, want %v: deleting it deletes every claim in it", ns.Protect, prod)
		}
		var retain *mocks.Resource
		for _, sc := range r.OfType("kubernetes:storage.k8s.io/v1:StorageClass") {
			if str(sc, "metadata", "name") == workloads.RetainStorageClassName {
				retain = sc
			}
			if str(sc, "metadata", "name") == workloads.StorageClassName && str(sc, "reclaimPolicy") != "Delete" {
				t.Errorf("storage class gp3 reclaims with %q: a destroy would leave its volumes behind", str(sc, "reclaimPolicy"))
			}
		}
		switch {
		case prod && retain == nil:
			t.Error("prod declares no gp3-retain storage class for its data")
		case prod && str(retain, "reclaimPolicy") != "Retain":
			t.Errorf("gp3-retain reclaims with %q, want Retain", str(retain, "reclaimPolicy"))
		case !prod && retain != nil:
			t.Error("dev declares gp3-retain: its destroy must remove every volume")
		}
	})
}

// TestDestroyWaitsForTheVolumes: deleting a claim only starts the deletion of its EBS volume, so
// the guard's delete step must run after every claim (and the monitoring release, whose
// Prometheus claim the operator makes) is gone, and before the CSI driver is removed.
func TestDestroyWaitsForTheVolumes(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		var guard *mocks.Resource
		for _, c := range r.OfType("command:remote:Command") {
			if strings.HasSuffix(c.Name, "-volumes-released") {
				guard = c
			}
		}
		if guard == nil {
			t.Fatal("no volume guard command")
		}
		if !strings.Contains(str(guard, "delete"), workloads.EBSDriver) {
			t.Errorf("%s: delete step does not wait for %s volumes", guard.Name, workloads.EBSDriver)
		}
		var csi, monitoring *mocks.Resource
		for _, rel := range r.OfType("kubernetes:helm.sh/v3:Release") {
			switch str(rel, "name") {
			case "aws-ebs-csi-driver":
				csi = rel
			case "kube-prometheus-stack":
				monitoring = rel
			}
		}
		if csi == nil || monitoring == nil {
			t.Fatal("EBS CSI or monitoring release missing")
		}
		if !r.DependsOn(guard, csi) {
			t.Errorf("%s does not depend on the EBS CSI driver: destroy could remove the driver first", guard.Name)
		}
		for _, c := range append(dataClaims(r), monitoring) {
			if !r.DependsOn(c, guard) {
				t.Errorf("%s %s does not depend on %s: its volume would not be awaited", c.Type, c.Name, guard.Name)
			}
		}
		if got := str(monitoring, "values", "prometheus", "prometheusSpec", "persistentVolumeClaimRetentionPolicy", "whenDeleted"); got != "Delete" {
			t.Errorf("Prometheus' claim retention whenDeleted = %q, want Delete: its claim is no Pulumi resource and would outlive the release", got)
		}
	})
}

// TestVolumeGuardScript runs the guard's delete step against a stand-in kubectl: it waits while a
// Delete volume remains, lists retained ones without waiting, and fails naming what is left.
func TestVolumeGuardScript(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not found")
	}
	script := strings.NewReplacer(
		"sleep 10", "sleep 0",
		"-ge \"${deadline}\"", "-ge \"${deadline}\" ] || [ -f \"${STATE}/expire\"",
		"/etc/kubernetes/admin.conf", "${STATE}/admin.conf",
	).Replace(workloads.VolumesReleasedScript())
	cases := []struct {
		name string
		// answers are the stand-in's successive `kubectl get pv` outputs; the last repeats.
		answers           []string
		adminConf, expire bool
		wantExit          int
		wantOut           []string
		wantGets          int
	}{
		{name: "waits until the driver has deleted the volumes", adminConf: true,
			answers:  []string{"pv-a Delete data/data-redis-0\npv-b Delete monitoring/prom-0\n", "pv-b Delete monitoring/prom-0\n", ""},
			wantOut:  []string{"waiting for the driver to delete: data/data-redis-0 monitoring/prom-0", "volume with reclaim policy Delete is gone"},
			wantGets: 3},
		{name: "lists retained volumes without waiting for them", adminConf: true,
			answers:  []string{"pv-c Retain data/data-postgres-0\n"},
			wantOut:  []string{"kept on purpose", "data/data-postgres-0"},
			wantGets: 1},
		{name: "fails naming the volumes left at the deadline", adminConf: true, expire: true,
			answers:  []string{"pv-a Delete data/data-redis-0\n"},
			wantExit: 1, wantOut: []string{"were not deleted", "pv-a Delete data/data-redis-0"}},
		{name: "a node without a cluster has nothing to wait for",
			wantOut: []string{"no cluster on this node"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			state := t.TempDir()
			if tc.adminConf {
				writeFile(t, filepath.Join(state, "admin.conf"), "")
			}
			if tc.expire {
				writeFile(t, filepath.Join(state, "expire"), "")
			}
			for i, a := range tc.answers {
				writeFile(t, filepath.Join(state, "answer"+string(rune('0'+i))), a)
			}
			// The stand-in answers `get pv` with the next answer and counts the calls.
			out, exit := runWithKubectl(t, script, state, `#!/bin/bash
n=$(cat "${STATE}/gets" 2>/dev/null || echo 0)
echo $((n + 1)) > "${STATE}/gets"
f="${STATE}/answer${n}"
[ -f "${f}" ] || f=$(ls "${STATE}"/answer* 2>/dev/null | sort | tail -n 1)
[ -n "${f}" ] && printf '%s' "$(cat "${f}")"
exit 0
`)
			if exit != tc.wantExit {
				t.Fatalf("exit %d, want %d; output:\n%s", exit, tc.wantExit, out)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if tc.wantGets > 0 {
				gets, _ := os.ReadFile(filepath.Join(state, "gets"))
				if strings.TrimSpace(string(gets)) != string(rune('0'+tc.wantGets)) {
					t.Errorf("kubectl get pv called %s times, want %d", strings.TrimSpace(string(gets)), tc.wantGets)
				}
			}
		})
	}
}

// runWithKubectl runs a control-plane script with bash, sudo passing through and kubectl played
// by the given stand-in, with STATE (plus any env given) in its environment; it returns the
// combined output and the exit code.
func runWithKubectl(t *testing.T, script, state, kubectl string, env ...string) (string, int) {
	t.Helper()
	bin := t.TempDir()
	writeFile(t, filepath.Join(bin, "sudo"), "#!/bin/bash\nexec \"$@\"\n")
	writeFile(t, filepath.Join(bin, "kubectl"), kubectl)
	cmd := exec.Command("bash", "-c", script)
	cmd.Env = append(append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "STATE="+state), env...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestNoPodReachesTheNodesCredentials: the metadata service hands the node role's credentials
// to anything that asks. Besides the nodes' hop limit of 1, a Calico policy, in a tier evaluated
// before the Kubernetes NetworkPolicies and passing everything else on to them, denies it to
// every pod, and no NetworkPolicy opens it.
func TestNoPodReachesTheNodesCredentials(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		var tier, policy *mocks.Resource
		for _, cr := range r.OfType("kubernetes:crd.projectcalico.org/v1:Tier") {
			if str(cr, "metadata", "name") == "node-credentials" {
				tier = cr
			}
		}
		for _, cr := range r.OfType("kubernetes:crd.projectcalico.org/v1:GlobalNetworkPolicy") {
			if str(cr, "spec", "tier") == "node-credentials" {
				policy = cr
			}
		}
		if tier == nil || policy == nil {
			t.Fatal("no Calico tier and global policy guard the metadata service")
		}
		if got := str(tier, "spec", "defaultAction"); got != "Pass" {
			t.Errorf("tier %s defaultAction %q, want Pass: otherwise every other flow of the selected pods is dropped", str(tier, "metadata", "name"), got)
		}
		if order := prop(tier, "spec", "order"); !order.IsNumber() || order.NumberValue() >= 1000 {
			t.Errorf("tier order %v must come before Calico's admin and default tiers (1,000 and up)", order)
		}
		if str(policy, "spec", "tier") != str(tier, "metadata", "name") || !strings.HasPrefix(str(policy, "metadata", "name"), str(tier, "metadata", "name")+".") {
			t.Errorf("policy %s is not in tier %s", str(policy, "metadata", "name"), str(tier, "metadata", "name"))
		}
		if a, n := str(policy, "spec", "egress", 0, "action"), str(policy, "spec", "egress", 0, "destination", "nets", 0); a != "Deny" || n != workloads.IMDSAddress {
			t.Errorf("policy's first egress rule is %s to %s, want Deny to %s", a, n, workloads.IMDSAddress)
		}
		if sel := str(policy, "spec", "selector"); sel != "all()" {
			t.Errorf("policy selects %q, want every pod (all())", sel)
		}
		// An address block that holds the metadata service opens it, but for the catch-all
		// 0.0.0.0/0 (HTTPS to AWS), where the tier above denies it first; CoreDNS's upstream,
		// the Route 53 Resolver's link-local 169.254.169.253/32, does not hold it.
		imds := netip.MustParsePrefix(workloads.IMDSAddress).Addr()
		for _, np := range r.OfType("kubernetes:networking.k8s.io/v1:NetworkPolicy") {
			b, _ := json.Marshal(manifest.PlainMap(np.Inputs))
			for _, cidr := range regexp.MustCompile(`"cidr":"([^"]+)"`).FindAllStringSubmatch(string(b), -1) {
				if block, err := netip.ParsePrefix(cidr[1]); err != nil || (block.Contains(imds) && block.Bits() > 0) {
					t.Errorf("NetworkPolicy %s opens the metadata service: address block %s", np.Name, cidr[1])
				}
			}
		}
		for _, inst := range r.OfType("aws:ec2/instance:Instance") {
			if hop := prop(inst, "metadataOptions", "httpPutResponseHopLimit"); !hop.IsNumber() || hop.NumberValue() != 1 {
				t.Errorf("instance %s answers IMDS %v hops away, want 1: a pod's network namespace is a hop further", inst.Name, hop)
			}
		}
	})
}
