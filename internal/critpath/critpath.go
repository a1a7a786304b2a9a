// Package critpath computes how long a fresh `pulumi up` of a stack takes at best: the longest
// chain of the dependency graph the program registers, each resource weighted by a typical
// duration. Pulumi starts a resource as soon as everything it waits for is done, so that chain
// is the deploy time however many resources run beside it.
package critpath

import (
	"strings"

	"github.com/waste-coach/infra/internal/mocks"
)

// Duration is a typical creation time in seconds, with where the figure comes from.
type Duration struct {
	Seconds int
	Source  string
}

// byType are creation times per resource type.
var byType = map[string]Duration{
	"aws:ec2/instance:Instance":                           {45, "EC2 RunInstances to running, typical (estimate)"},
	"aws:ec2/eip:Eip":                                     {3, "estimate"},
	"aws:ec2/eipAssociation:EipAssociation":               {5, "estimate"},
	"aws:ec2/vpc:Vpc":                                     {5, "estimate"},
	"aws:ec2/subnet:Subnet":                               {5, "estimate"},
	"aws:ec2/internetGateway:InternetGateway":             {5, "estimate"},
	"aws:ec2/routeTable:RouteTable":                       {5, "estimate"},
	"aws:ec2/securityGroup:SecurityGroup":                 {5, "estimate"},
	"aws:iam/role:Role":                                   {3, "estimate"},
	"aws:iam/instanceProfile:InstanceProfile":             {10, "IAM eventual consistency: the provider waits for the profile to propagate (estimate)"},
	"aws:acm/certificate:Certificate":                     {10, "estimate"},
	"aws:acm/certificateValidation:CertificateValidation": {120, "ACM DNS validation once the CNAME is visible, typically 1-5 min (estimate)"},
	"aws:route53/record:Record":                           {50, "Route53 change propagation to INSYNC, typically 30-60 s (estimate)"},
	"aws:s3/bucketV2:BucketV2":                            {5, "estimate"},
	"kubernetes:helm.sh/v3:Release":                       {90, "chart install with atomic wait for its workloads (estimate)"},
	"kubernetes:apps/v1:StatefulSet":                      {90, "image pull and readiness of the data services (estimate)"},
	"kubernetes:apps/v1:Deployment":                       {45, "image pull and readiness (estimate)"},
	"kubernetes:apps/v1:DaemonSet":                        {30, "estimate"},
	"kubernetes:networking.k8s.io/v1:Ingress":             {150, "ALB provisioning until the hostname is in the Ingress status (estimate)"},
	"aws:lb/loadBalancer:LoadBalancer":                    {150, "ALB provisioning until active, the same estimate as the Ingress's (estimate)"},
}

// nameTimes are durations by a part of the logical name ("-join-" matches "c-join-worker-1"
// and a name ending in "-join"), first match first.
type nameTimes []struct {
	suffix string
	Duration
}

// of returns the duration of the first entry that matches name.
func (t nameTimes) of(name string) (Duration, bool) {
	for _, n := range t {
		if strings.Contains(name+"-", n.suffix) {
			return n.Duration, true
		}
	}
	return Duration{}, false
}

// byName are times for steps that share a type but not a duration: the remote commands and the
// charts that take longest. Matched on the end of the logical name.
var byName = nameTimes{
	{"-wait-ssh-", Duration{30, "boot to sshd after the instance is running (estimate)"}},
	{"-wait-node-", Duration{150, "rest of user data: apt update, containerd, kubelet/kubeadm from pkgs.k8s.io (estimate)"}},
	{"-kubeadm-init", Duration{90, "kubeadm init: image pulls, control plane up (estimate)"}},
	{"-kubeconfig", Duration{3, "one SSH round trip"}},
	{"-pki-read", Duration{3, "one SSH round trip"}},
	{"-etcdutl", Duration{15, "etcd release download (about 25 MB) and sha256 check (estimate)"}},
	{"-join-token-", Duration{3, "one SSH round trip"}},
	{"-join-", Duration{45, "kubeadm join: TLS bootstrap, kubelet start (estimate)"}},
	{"-member-", Duration{15, "node object appears, label (estimate)"}},
	{"-calico", Duration{40, "operator manifests applied (estimate)"}},
	{"-nodes-ready", Duration{60, "Calico agents running, nodes Ready (estimate)"}},
	// The kubelet settings' rollout (cluster.go, kubeletRollout). On a new cluster the ConfigMap
	// already holds them and no kubelet restarts; on a running one each node adds its restart
	// and Ready wait, tens of seconds, to an update rather than to a fresh deploy. The workloads'
	// provider waits for the last node's step, so the chain (5 s and 10 s a node) is on the
	// critical path of a fresh deploy too.
	{"-kubelet-configmap", Duration{5, "read and compare the ConfigMap, one SSH round trip (estimate)"}},
	{"-kubelet-config-", Duration{10, "kubeadm writes the same file, no restart, Ready check (estimate)"}},
	// The version upgrade (cluster/upgrade.go): on a new cluster every node runs the configured
	// version already; the control plane's step is before the joins, the others' before the
	// kubelet rollout.
	{"-upgrade-", Duration{5, "the node runs the version already: read the versions, one SSH round trip (estimate)"}},
	{"-cert-renewal", Duration{3, "write the renewal program and its timer, one SSH round trip (estimate)"}},
	// The figure dates from when the release also installed the operator's CRDs (now their own
	// resources, workloads/crds.go); it is kept, unmeasured. Helm waits for the hook Jobs and the
	// chart's own workloads, not for the Prometheus and Alertmanager pods the operator makes.
	{"-kube-prometheus-stack", Duration{180, "largest chart: admission hook Jobs, operator, kube-state-metrics, Grafana, node-exporter on every node (estimate)"}},
	{"-argo-cd", Duration{120, "estimate"}},
}

// DurationOf returns a resource's typical creation time; unlisted resources take a second.
func DurationOf(r *mocks.Resource) Duration {
	if r.Type == "command:remote:Command" || r.Type == "command:local:Command" || r.Type == "kubernetes:helm.sh/v3:Release" {
		if d, ok := byName.of(r.Name); ok {
			return d
		}
	}
	if md, ok := r.Inputs["metadata"]; ok && md.IsObject() {
		if a, ok := md.ObjectValue()["annotations"]; ok && a.IsObject() {
			if _, skip := a.ObjectValue()["pulumi.com/skipAwait"]; skip {
				return Duration{2, "created without waiting for readiness (pulumi.com/skipAwait)"}
			}
		}
	}
	if d, ok := byType[r.Type]; ok {
		return d
	}
	if !r.Custom {
		return Duration{0, "component"}
	}
	return Duration{1, "API call (estimate)"}
}

// Step is one resource on the critical path, with when it starts and ends.
type Step struct {
	Resource   *mocks.Resource
	Start, End int
	Duration
}

// Path returns the critical path of a run, first step first, and its total in seconds.
func Path(resources []*mocks.Resource) ([]Step, int) {
	s := schedule(resources)
	var last *mocks.Resource
	for _, r := range resources {
		if last == nil || s.finish[r.URN] > s.finish[last.URN] {
			last = r
		}
	}
	if last == nil {
		return nil, 0
	}
	var steps []Step
	for cur := last; cur != nil; cur = s.byURN[s.via[cur.URN]] {
		if d := DurationOf(cur); d.Seconds > 0 {
			steps = append([]Step{{Resource: cur, Start: s.finish[cur.URN] - d.Seconds, End: s.finish[cur.URN], Duration: d}}, steps...)
		}
	}
	return steps, s.finish[last.URN]
}

// Finish returns when the first resource whose name ends with suffix is done at best, in
// seconds from the start of the run, and whether there is one: a milestone such as the end of
// the cluster's bootstrap.
func Finish(resources []*mocks.Resource, suffix string) (int, bool) {
	s := schedule(resources)
	for _, r := range resources {
		if strings.HasSuffix(r.Name, suffix) {
			return s.finish[r.URN], true
		}
	}
	return 0, false
}

// timetable is when each resource of a run is done at best, and which dependency (or, for a
// component, which child) determined it.
type timetable struct {
	byURN  map[string]*mocks.Resource
	finish map[string]int
	via    map[string]string
}

func schedule(resources []*mocks.Resource) timetable {
	return scheduleWith(resources, func(r *mocks.Resource) int { return DurationOf(r).Seconds })
}

// scheduleWith is schedule with each resource taking duration(r) seconds.
func scheduleWith(resources []*mocks.Resource, duration func(*mocks.Resource) int) timetable {
	s := timetable{byURN: map[string]*mocks.Resource{}, finish: map[string]int{}, via: map[string]string{}}
	children := map[string][]*mocks.Resource{}
	for _, r := range resources {
		s.byURN[r.URN] = r
		children[r.Parent] = append(children[r.Parent], r)
	}
	done := map[string]bool{}
	var end func(r *mocks.Resource) int
	end = func(r *mocks.Resource) int {
		if done[r.URN] {
			return s.finish[r.URN]
		}
		done[r.URN] = true // cycles cannot happen in a Pulumi graph; this guards the recursion
		start := 0
		for _, dep := range waitsFor(r) {
			if d, ok := s.byURN[dep]; ok {
				if f := end(d); f > start {
					start, s.via[r.URN] = f, dep
				}
			}
		}
		f := start + duration(r)
		if !r.Custom {
			// A component is done when its last child is.
			for _, c := range children[r.URN] {
				if cf := end(c); cf > f {
					f, s.via[r.URN] = cf, c.URN
				}
			}
		}
		s.finish[r.URN] = f
		return f
	}
	for _, r := range resources {
		end(r)
	}
	return s
}

// waitsFor returns what a resource waits for: its dependencies and its explicit provider.
func waitsFor(r *mocks.Resource) []string {
	if p := r.ProviderURN(); p != "" {
		return append(append([]string{}, r.Dependencies...), p)
	}
	return r.Dependencies
}

// byNameOnReplacement are the times of the steps that run again when the master is replaced
// (`pulumi up --replace` of its instance) and then take a time other than on a fresh deploy.
var byNameOnReplacement = nameTimes{
	{"-kubeadm-init", Duration{150, "list the day's snapshots, download (tens of MB, same region) and restore etcd (about 20 s), kubeadm init (90 s), the old Node deleted and the kubelet registered again (about 40 s) (estimate)"}},
	{"-join-", Duration{3, "the worker is joined to the same CA: nothing to do, one SSH round trip"}},
	{"-member-", Duration{3, "the label is there already: one SSH round trip"}},
	{"-kubelet-config-", Duration{5, "the node's settings are the ConfigMap's already: no restart (estimate)"}},
}

// OldInstanceGone is how long EC2 takes to terminate the old master before its replacement is
// created (the master is replaced delete-first: the replacement takes its fixed address).
var OldInstanceGone = Duration{60, "EC2 TerminateInstances until terminated, typical (estimate)"}

// Replacement estimates `pulumi up --replace` of the instance named replaced: the instance (after
// the old one is terminated) and every command tied to its id run again; everything else is
// already there. It returns when the resource whose name ends with milestone is done again, in
// seconds from the start of the up, and whether it runs again at all.
func Replacement(resources []*mocks.Resource, replaced, milestone string) (int, bool) {
	var target *mocks.Resource
	for _, r := range resources {
		if r.Name == replaced {
			target = r
		}
	}
	if target == nil {
		return 0, false
	}
	again := func(r *mocks.Resource) bool { return r == target || triggeredBy(r, target.ID) }
	s := scheduleWith(resources, func(r *mocks.Resource) int {
		switch {
		case r == target:
			return OldInstanceGone.Seconds + DurationOf(r).Seconds
		case !again(r):
			return 0
		}
		if d, ok := byNameOnReplacement.of(r.Name); ok {
			return d.Seconds
		}
		return DurationOf(r).Seconds
	})
	for _, r := range resources {
		if strings.HasSuffix(r.Name, milestone) && again(r) {
			return s.finish[r.URN], true
		}
	}
	return 0, false
}

// triggeredBy says whether a command's triggers hold the id of an instance: replacing the
// instance runs it again.
func triggeredBy(r *mocks.Resource, id string) bool {
	t, ok := r.Inputs["triggers"]
	if !ok || !t.IsArray() || id == "" {
		return false
	}
	for _, v := range t.ArrayValue() {
		if v.IsSecret() {
			v = v.SecretValue().Element
		}
		if v.IsString() && v.StringValue() == id {
			return true
		}
	}
	return false
}
