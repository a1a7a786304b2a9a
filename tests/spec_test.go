package tests

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/waste-coach/infra/cluster"
	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/internal/offline"
)

// specFact is one fact of ARCHITECTURE.md that the program implements, and where it shows in
// what a stack declares. Facts with a test of their own are not repeated here: the queues,
// exchanges and policies (TestQueuesArePoliciesExactlyAsDesigned), the node table
// (TestNodesMatchTheDesignTable), subnets (TestSubnetsAreTheSeedsInThreeZones), admin ports
// (TestNoAdminPortIsOpenToTheWorld), the bucket (TestUploadsBucketIsVersionedPrivateAndArchived)
// and placement and replicas per stack (TestWorkloadsArePlacedAsDesigned).
type specFact struct {
	fact   string // the spec's words
	stacks []string
	got    func(r *offline.Result) string
	want   string
}

// named returns a Kubernetes object of a kind by name, in any namespace.
func named(r *offline.Result, kind, name string) map[string]any {
	for key, obj := range objects(r, kind) {
		if strings.HasSuffix(key, "/"+name) {
			return obj
		}
	}
	return nil
}

// podTemplates returns the pod spec of every workload the program declares, by kind/namespace/name.
func podTemplates(r *offline.Result) map[string]any {
	out := map[string]any{}
	for _, kind := range []string{"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"} {
		for name, obj := range objects(r, kind) {
			spec := at(obj, "spec", "template", "spec")
			if kind == "CronJob" {
				spec = at(obj, "spec", "jobTemplate", "spec", "template", "spec")
			}
			out[kind+" "+name] = spec
		}
	}
	return out
}

func claimSize(r *offline.Result, statefulSet string) string {
	return fmt.Sprint(at(named(r, "StatefulSet", statefulSet), "spec", "volumeClaimTemplates", 0, "spec", "resources", "requests", "storage"))
}

func ingressPorts(r *offline.Result) []string {
	var out []string
	for _, rule := range r.OfType("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") {
		out = append(out, str(rule, "ipProtocol")+"/"+str(rule, "fromPort")+"-"+str(rule, "toPort"))
	}
	sort.Strings(out)
	return slices.Compact(out)
}

var both = []string{"prod", "dev"}

var specFacts = []specFact{
	{"§1 VPC 10.0.0.0/16", []string{"prod"}, func(r *offline.Result) string {
		return str(r.OfType("aws:ec2/vpc:Vpc")[0], "cidrBlock")
	}, "10.0.0.0/16"},
	{"§1 VPC DNS hostnames + support on", both, func(r *offline.Result) string {
		v := r.OfType("aws:ec2/vpc:Vpc")[0]
		return str(v, "enableDnsHostnames") + " " + str(v, "enableDnsSupport")
	}, "true true"},
	{"§1 one internet gateway", both, func(r *offline.Result) string {
		return fmt.Sprint(len(r.OfType("aws:ec2/internetGateway:InternetGateway")))
	}, "1"},
	{"§1 security groups: SSH, 6443, etcd 2379-2380, 10257, 10259, kubelet 10250, VXLAN UDP 4789, NodePorts 30000-32767", both, func(r *offline.Result) string {
		var missing []string
		ports := ingressPorts(r)
		for _, p := range []string{"tcp/22-22", "tcp/6443-6443", "tcp/2379-2380", "tcp/10257-10257", "tcp/10259-10259", "tcp/10250-10250", "udp/4789-4789", "tcp/30000-32767"} {
			if !slices.Contains(ports, p) {
				missing = append(missing, p)
			}
		}
		return strings.Join(missing, " ")
	}, ""},
	{"§1 S3 bucket <env>-<cluster>-images (prod: prod-sesacthon-images)", []string{"prod"}, func(r *offline.Result) string {
		// The uploads bucket: the other bucket is the backups one (the order resources register in is not fixed).
		for _, b := range r.OfType("aws:s3/bucketV2:BucketV2") {
			if !strings.HasSuffix(b.Name, "-backups") {
				return str(b, "bucket")
			}
		}
		return ""
	}, "prod-sesacthon-images"},
	{"§2 pod subnet 192.168.0.0/16, service subnet 10.96.0.0/12", both, func(*offline.Result) string {
		return cluster.PodCIDR + " " + cluster.ServiceCIDR
	}, "192.168.0.0/16 10.96.0.0/12"},
	{"§2 node labels: worker-1 workload=application, worker-2 workload=async-workers, storage workload=storage", both, func(_ *offline.Result) string {
		var got []string
		for _, role := range []config.Role{config.RoleWorker1, config.RoleWorker2, config.RoleStorage} {
			got = append(got, string(role)+":"+strings.TrimPrefix(cluster.WorkloadLabel(role), "workload="))
		}
		return strings.Join(got, " ")
	}, "worker-1:application worker-2:async-workers storage:storage"},
	{"§3 default gp3 StorageClass: encrypted, WaitForFirstConsumer, expandable", both, func(r *offline.Result) string {
		sc := named(r, "StorageClass", "gp3")
		return fmt.Sprint(at(sc, "metadata", "annotations", "storageclass.kubernetes.io/is-default-class"), " ",
			at(sc, "parameters", "type"), " ", at(sc, "parameters", "encrypted"), " ", at(sc, "volumeBindingMode"), " ", at(sc, "allowVolumeExpansion"))
	}, "true gp3 true WaitForFirstConsumer true"},
	{"§3 PostgreSQL 16 StatefulSet, 50Gi gp3 PVC", both, func(r *offline.Result) string {
		// The claim's class is gp3 (dev) or gp3-retain (prod data): both are EBS gp3 volumes.
		class := fmt.Sprint(at(named(r, "StatefulSet", "postgres"), "spec", "volumeClaimTemplates", 0, "spec", "storageClassName"))
		return claimSize(r, "postgres") + " " + fmt.Sprint(at(named(r, "StorageClass", class), "parameters", "type"))
	}, "50Gi gp3"},
	{"§3 PostgreSQL pg_isready probes", both, func(r *offline.Result) string {
		c := at(named(r, "StatefulSet", "postgres"), "spec", "template", "spec", "containers", 0)
		runs := func(probe string) bool {
			return strings.Contains(fmt.Sprint(at(c, probe, "exec", "command")), "pg_isready")
		}
		return fmt.Sprint(runs("readinessProbe"), " ", runs("livenessProbe"), " ", runs("startupProbe"))
	}, "true true true"},
	{"§3 Redis data on a volume that survives a pod restart", both, func(r *offline.Result) string {
		return fmt.Sprint(claimSize(r, "redis") != "<nil>")
	}, "true"},
	{"§3 RabbitMQ 3-node cluster (quorum queues need 3), management plugin", both, func(r *offline.Result) string {
		sts := named(r, "StatefulSet", "rabbitmq")
		image := fmt.Sprint(at(sts, "spec", "template", "spec", "containers", 0, "image"))
		return fmt.Sprint(at(sts, "spec", "replicas"), " ", strings.Contains(image, "management"))
	}, "3 true"},
	{"§3 API: auth, users, waste, 6 pods in all, port 8000", []string{"prod"}, func(r *offline.Result) string {
		pods, ports := 0.0, map[string]bool{}
		for _, svc := range []string{"auth", "users", "waste"} {
			d := named(r, "Deployment", svc)
			n, _ := at(d, "spec", "replicas").(float64)
			pods += n
			ports[fmt.Sprint(at(d, "spec", "template", "spec", "containers", 0, "ports", 0, "containerPort"))] = true
		}
		return fmt.Sprint(pods, " ", ports)
	}, "6 map[8000:true]"},
	{"§3 every pod: non-root security context with the RuntimeDefault seccomp profile", both, func(r *offline.Result) string {
		var bad []string
		for name, spec := range podTemplates(r) {
			if strings.Contains(name, " kube-system/") {
				continue // the cloud-controller-manager: host network, its image's user
			}
			if at(spec, "securityContext", "seccompProfile", "type") != "RuntimeDefault" || at(spec, "securityContext", "runAsNonRoot") != true {
				bad = append(bad, name)
			}
		}
		sort.Strings(bad)
		return strings.Join(bad, ", ")
	}, ""},
	{"§3 every container: no privilege escalation", both, func(r *offline.Result) string {
		var bad []string
		for name, spec := range podTemplates(r) {
			for _, list := range []string{"containers", "initContainers"} {
				cs, _ := at(spec, list).([]any)
				for _, c := range cs {
					if at(c, "securityContext", "allowPrivilegeEscalation") != false {
						bad = append(bad, fmt.Sprintf("%s/%v", name, at(c, "name")))
					}
				}
			}
		}
		sort.Strings(bad)
		return strings.Join(bad, ", ")
	}, ""},
	{"§3 Celery ai x3, batch x2, api x2, beat x1", []string{"prod"}, func(r *offline.Result) string {
		var got []string
		for _, d := range []string{"celery-ai", "celery-batch", "celery-api", "celery-beat"} {
			got = append(got, fmt.Sprint(at(named(r, "Deployment", d), "spec", "replicas")))
		}
		return strings.Join(got, " ")
	}, "3 2 2 1"},
}

// TestSpecFacts pins every fact of ARCHITECTURE.md listed in specFacts, by its words: a failure
// names the fact the program no longer keeps.
func TestSpecFacts(t *testing.T) {
	for _, f := range specFacts {
		for _, stack := range f.stacks {
			t.Run(stack+"/"+f.fact, func(t *testing.T) {
				if got := f.got(run(t, stack)); got != f.want {
					t.Errorf("spec %q: the %s stack declares %q, want %q", f.fact, stack, got, f.want)
				}
			})
		}
	}
}
