package tests

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/waste-coach/infra/internal/fit"
	"github.com/waste-coach/infra/internal/manifest"
	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/workloads"
)

// objects returns the manifests of a kind, by metadata namespace/name.
func objects(r *offline.Result, kind string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, res := range r.Resources {
		if obj, ok := manifest.KubernetesObject(res); ok && obj["kind"] == kind {
			md := obj["metadata"].(map[string]any)
			out[fmt.Sprintf("%v/%v", md["namespace"], md["name"])] = obj
		}
	}
	return out
}

func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func TestWorkloadsArePlacedAsDesigned(t *testing.T) {
	want := map[string]map[string]struct {
		replicas int
		node     string // the workload label the pod selects, or "control-plane"
	}{
		"prod": {
			"app/auth": {2, "application"}, "app/users": {2, "application"}, "app/waste": {2, "application"},
			"app/celery-ai": {3, "async-workers"}, "app/celery-batch": {2, "async-workers"}, "app/celery-api": {2, "application"},
			"app/celery-beat": {1, "storage"}, "app/default-backend": {1, "application"},
			"data/postgres": {1, "storage"}, "data/redis": {1, "storage"}, "data/rabbitmq": {3, "storage"},
			// The certificate exporter reads the master's certificate files (node "" = the master).
			"node-metrics/x509-certificate-exporter": {1, ""},
		},
		"dev": {
			"app/auth": {1, "application"}, "app/users": {1, "application"}, "app/waste": {1, "application"},
			"app/celery-ai": {1, "async-workers"}, "app/celery-batch": {1, "async-workers"}, "app/celery-api": {1, "application"},
			"app/celery-beat": {1, "storage"}, "app/default-backend": {1, "application"},
			"data/postgres": {1, "storage"}, "data/redis": {1, "storage"}, "data/rabbitmq": {3, "storage"},
			// The certificate exporter reads the master's certificate files (node "" = the master).
			"node-metrics/x509-certificate-exporter": {1, ""},
		},
	}
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		got := objects(r, "Deployment")
		for k, v := range objects(r, "StatefulSet") {
			got[k] = v
		}
		for name, w := range want[r.Stack] {
			obj, ok := got[name]
			if !ok {
				t.Errorf("%s is not declared", name)
				continue
			}
			if n := at(obj, "spec", "replicas"); n != float64(w.replicas) {
				t.Errorf("%s has %v replicas, want %d", name, n, w.replicas)
			}
			if w.node == "" {
				if at(obj, "spec", "template", "spec", "nodeSelector", "node-role.kubernetes.io/control-plane") != "" {
					t.Errorf("%s is not pinned to the master", name)
				}
			} else if sel := at(obj, "spec", "template", "spec", "nodeSelector", "workload"); sel != w.node {
				t.Errorf("%s runs on workload=%v, want %s", name, sel, w.node)
			}
		}
		if len(got) != len(want[r.Stack]) {
			t.Errorf("%d Deployments and StatefulSets, want %d", len(got), len(want[r.Stack]))
		}
		if s := at(got["app/celery-beat"], "spec", "strategy", "type"); s != "Recreate" {
			t.Errorf("celery beat rolls out with %v; two beats would fire every schedule twice", s)
		}
		if img := at(got["data/postgres"], "spec", "template", "spec", "containers", 0, "image"); !strings.Contains(fmt.Sprint(img), "postgres:16.") {
			t.Errorf("PostgreSQL image %v is not major 16", img)
		}
		if img := at(got["data/redis"], "spec", "template", "spec", "containers", 0, "image"); !strings.Contains(fmt.Sprint(img), "redis:7.") {
			t.Errorf("Redis image %v is not major 7", img)
		}
		args := fmt.Sprint(at(got["data/redis"], "spec", "template", "spec", "containers", 0, "args"))
		for _, a := range []string{"--appendonly yes", "--maxmemory-policy allkeys-lru", "--maxmemory " + workloads.RedisMaxMemory} {
			if !strings.Contains(args, a) {
				t.Errorf("redis args %s lack %q", args, a)
			}
		}
		pools := map[string]string{"app/celery-ai": "-Q q.ai -P gevent -c 4", "app/celery-batch": "-Q q.batch,q.sched -P prefork -c 4 --prefetch-multiplier 1", "app/celery-api": "-Q q.api -P gevent -c 4"}
		for name, want := range pools {
			args := strings.Trim(fmt.Sprint(at(got[name], "spec", "template", "spec", "containers", 0, "args")), "[]")
			if !strings.Contains(args, want) {
				t.Errorf("%s args %q lack %q", name, args, want)
			}
		}
		pdb := objects(r, "PodDisruptionBudget")["data/rabbitmq"]
		if at(pdb, "spec", "maxUnavailable") != float64(1) {
			t.Errorf("RabbitMQ disruption budget allows %v unavailable, want 1", at(pdb, "spec", "maxUnavailable"))
		}
	})
}

func TestEveryContainerHasLimitsProbesAndNoPrivilege(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		for _, kind := range []string{"Deployment", "StatefulSet", "DaemonSet"} {
			for name, obj := range objects(r, kind) {
				pod := at(obj, "spec", "template", "spec")
				for _, list := range []string{"containers", "initContainers"} {
					cs, _ := at(pod, list).([]any)
					for i, c := range cs {
						cn := fmt.Sprintf("%s %s container %v", kind, name, at(c, "name"))
						for _, q := range []string{"requests", "limits"} {
							if at(c, "resources", q, "memory") == nil || (q == "requests" && at(c, "resources", q, "cpu") == nil) {
								t.Errorf("%s has no %s for cpu and memory", cn, q)
							}
						}
						// Every long-running container has a liveness probe, and the pod's main
						// container (the first) a readiness probe. A sidecar (an exporter, the WAL
						// shipper) has none: its failure would take the pod out of its Service.
						if list == "containers" && (i == 0 && at(c, "readinessProbe") == nil && kind != "DaemonSet" || at(c, "livenessProbe") == nil) {
							t.Errorf("%s lacks a readiness or liveness probe", cn)
						}
						if at(c, "securityContext", "allowPrivilegeEscalation") != false {
							t.Errorf("%s may escalate privileges", cn)
						}
					}
				}
				if strings.HasPrefix(name, "kube-system/") {
					continue // the cloud-controller-manager runs as its image's user on the host network
				}
				if at(pod, "securityContext", "runAsNonRoot") != true {
					t.Errorf("%s %s does not run as non-root", kind, name)
				}
			}
		}
	})
}

func TestQueuesArePoliciesExactlyAsDesigned(t *testing.T) {
	var d struct {
		Exchanges []struct{ Name, Type string }
		Queues    []struct {
			Name      string
			Arguments map[string]any
		}
		Bindings []struct {
			Source, Destination string
			RoutingKey          string `json:"routing_key"`
		}
		Policies []struct {
			Name, Pattern string
			Definition    map[string]any
		}
		Users []struct {
			Name         string
			PasswordHash string `json:"password_hash"`
		}
	}
	if err := json.Unmarshal([]byte(workloads.Definitions("admin-pw", "app-pw")), &d); err != nil {
		t.Fatal(err)
	}
	exchanges := map[string]string{}
	for _, e := range d.Exchanges {
		exchanges[e.Name] = e.Type
	}
	if fmt.Sprint(exchanges) != "map[dlx:direct tasks:topic]" {
		t.Errorf("exchanges %v, want tasks (topic) and dlx (direct)", exchanges)
	}
	type q struct {
		typ, exchange, key string
		ttlMS, maxLen      any
		dlx                bool
	}
	want := map[string]q{
		"q.ai":    {"quorum", "tasks", "ai.*", float64(300000), float64(5000), true},
		"q.batch": {"quorum", "tasks", "batch.*", float64(3600000), float64(1000), true},
		"q.api":   {"quorum", "tasks", "api.*", float64(300000), float64(2000), true},
		"q.sched": {"quorum", "tasks", "sched.*", nil, nil, true},
		"q.dlq":   {"classic", "dlx", "dlq", nil, nil, false},
	}
	if len(d.Queues) != len(want) {
		t.Errorf("%d queues, want %d", len(d.Queues), len(want))
	}
	for _, queue := range d.Queues {
		w, ok := want[queue.Name]
		if !ok {
			t.Errorf("unexpected queue %s", queue.Name)
			continue
		}
		if queue.Arguments["x-queue-type"] != w.typ || len(queue.Arguments) != 1 {
			t.Errorf("%s arguments %v: want only x-queue-type=%s (TTL, limits and dead-lettering belong in policies)", queue.Name, queue.Arguments, w.typ)
		}
		bound := false
		for _, b := range d.Bindings {
			bound = bound || (b.Destination == queue.Name && b.Source == w.exchange && b.RoutingKey == w.key)
		}
		if !bound {
			t.Errorf("%s is not bound to %s with %s", queue.Name, w.exchange, w.key)
		}
		var def map[string]any
		for _, p := range d.Policies {
			if regexp.MustCompile(p.Pattern).MatchString(queue.Name) {
				if def != nil {
					t.Errorf("two policies match %s", queue.Name)
				}
				def = p.Definition
			}
		}
		if def["message-ttl"] != w.ttlMS || def["max-length"] != w.maxLen {
			t.Errorf("%s policy ttl=%v max-length=%v, want %v and %v", queue.Name, def["message-ttl"], def["max-length"], w.ttlMS, w.maxLen)
		}
		if w.dlx && (def["dead-letter-exchange"] != "dlx" || def["dead-letter-routing-key"] != "dlq") {
			t.Errorf("%s does not dead-letter to dlx/dlq: %v", queue.Name, def)
		}
		if !w.dlx && def != nil {
			t.Errorf("%s has a policy %v; the dead-letter queue itself needs none", queue.Name, def)
		}
	}
	for _, u := range d.Users {
		if u.PasswordHash == "" || strings.Contains(workloads.Definitions("admin-pw", "app-pw"), "app-pw") {
			t.Errorf("user %s: definitions must carry a password hash, never the password", u.Name)
		}
	}
}

func TestPodsFitTheirNodes(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		nodes := fit.Check(r.Config, r.Resources)
		for _, n := range nodes {
			if o := n.Overflow(); o != "" {
				t.Errorf("node %s (%s): %s\n%s", n.Role, n.InstanceType, o, fit.Table(nodes))
			}
			if len(n.Demands) < 3 {
				t.Errorf("node %s has only %d demands counted; the check is not seeing the workloads", n.Role, len(n.Demands))
			}
		}
	})
}

func TestNamespacesCarryPodSecurityLevels(t *testing.T) {
	// monitoring serves Grafana to the internet: not privileged; the exporters that read the
	// host (node-exporter, the certificate exporter) are in a namespace of their own.
	want := map[string]string{"app": "restricted", "data": "restricted", "argocd": "baseline", "monitoring": "baseline", "node-metrics": "privileged", "keda": "restricted", "logging": "privileged"}
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		ns := objects(r, "Namespace")
		for name, level := range want {
			if got := at(ns["<nil>/"+name], "metadata", "labels", "pod-security.kubernetes.io/enforce"); got != level {
				t.Errorf("namespace %s enforces %v, want %s", name, got, level)
			}
		}
	})
}

func TestNetworkPoliciesDenyByDefaultButAllowDNSAndTheAPIServer(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		pols := objects(r, "NetworkPolicy")
		for _, ns := range []string{"app", "data", "argocd", "monitoring"} {
			deny := pols[ns+"/default-deny"]
			if deny == nil || len(at(deny, "spec", "podSelector", "matchLabels").(map[string]any)) != 0 || fmt.Sprint(at(deny, "spec", "policyTypes")) != "[Ingress Egress]" {
				t.Errorf("namespace %s has no default-deny policy for ingress and egress", ns)
			}
			if dns := pols[ns+"/allow-dns"]; !strings.Contains(fmt.Sprint(dns), "kube-dns") {
				t.Errorf("namespace %s cannot resolve names", ns)
			}
		}
		rabbit := fmt.Sprint(at(pols["data/rabbitmq"], "spec", "egress"))
		if !strings.Contains(rabbit, "10.96.0.1/32") || !strings.Contains(rabbit, r.Config.MasterPrivateIP().String()+"/32") {
			t.Errorf("RabbitMQ's peer discovery cannot reach the API server at 10.96.0.1 and the master: %s", rabbit)
		}
		if api := fmt.Sprint(at(pols["app/api"], "spec", "ingress")); !strings.Contains(api, r.Config.VPCCIDR.String()) {
			t.Errorf("the API does not accept the ALB's traffic from the VPC: %s", api)
		}
		if pg := fmt.Sprint(at(pols["data/postgres"], "spec", "ingress")); !strings.Contains(pg, "kubernetes.io/metadata.name:app") || strings.Contains(pg, "ipBlock") {
			t.Errorf("PostgreSQL accepts more than the application namespace: %s", pg)
		}
	})
}

func TestChartsArePinnedAndOrderedForCreateAndDestroy(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		releases := map[string]*mocks.Resource{}
		for _, rel := range r.OfType("kubernetes:helm.sh/v3:Release") {
			releases[str(rel, "name")] = rel
			// The chart is a checked archive whose file name carries the exact version
			// (TestReleasesInstallOnlyCheckedArchives proves the bytes).
			if !regexp.MustCompile(`^\.charts/[0-9a-f]{12}/[a-z-]+-\d+\.\d+\.\d+\.tgz$`).MatchString(str(rel, "chart")) {
				t.Errorf("chart %s is not a checked archive of an exact version: %q", str(rel, "name"), str(rel, "chart"))
			}
		}
		want := []string{"argo-cd", "aws-ebs-csi-driver", "aws-load-balancer-controller", "fluent-bit", "keda", "kube-prometheus-stack", "metrics-server"}
		if got := slices.Sorted(func(yield func(string) bool) {
			for k := range releases {
				if !yield(k) {
					return
				}
			}
		}); !slices.Equal(got, want) {
			t.Fatalf("releases %v, want %v", got, want)
		}
		waits := func(res, on *mocks.Resource) bool { return r.DependsOn(res, on) }
		for _, tgb := range r.OfType("kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding") {
			if !waits(tgb, releases["aws-load-balancer-controller"]) {
				t.Errorf("binding %s does not depend on the load balancer controller: destroy would remove the controller first and leave the binding's finalizer unremovable", tgb.Name)
			}
		}
		for _, typ := range []string{"kubernetes:apps/v1:StatefulSet", "kubernetes:core/v1:PersistentVolumeClaim"} {
			for _, res := range r.OfType(typ) {
				if !waits(res, releases["aws-ebs-csi-driver"]) {
					t.Errorf("%s does not depend on the EBS CSI driver: its volumes would be orphaned on destroy", res.Name)
				}
			}
		}
		for _, sm := range r.OfType("kubernetes:monitoring.coreos.com/v1:ServiceMonitor") {
			if !waits(sm, releases["kube-prometheus-stack"]) {
				t.Errorf("ServiceMonitor %s is declared before its CRD's chart", sm.Name)
			}
		}
		sc := objects(r, "StorageClass")["<nil>/gp3"]
		if at(sc, "parameters", "encrypted") != "true" || at(sc, "volumeBindingMode") != "WaitForFirstConsumer" || at(sc, "allowVolumeExpansion") != true ||
			at(sc, "metadata", "annotations", "storageclass.kubernetes.io/is-default-class") != "true" {
			t.Errorf("gp3 StorageClass is not the encrypted, expandable, WaitForFirstConsumer default: %v", sc)
		}
	})
}

// secretRefs returns the names of the Secrets a pod template reads (env, envFrom, volumes) or
// the kubelet pulls its images with (imagePullSecrets).
func secretRefs(pod any) []string {
	var names []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				switch k {
				case "secretRef", "secretKeyRef":
					names = append(names, fmt.Sprint(at(e, "name")))
				case "secret":
					names = append(names, fmt.Sprint(at(e, "secretName")))
				case "imagePullSecrets":
					refs, _ := e.([]any)
					for _, ref := range refs {
						names = append(names, fmt.Sprint(at(ref, "name")))
					}
				}
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(pod)
	slices.Sort(names)
	return slices.Compact(names)
}

func TestWorkloadsWaitForTheSecretsTheyRead(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) { checkSecretsAwaited(t, r) })
}

// checkSecretsAwaited fails for each Secret a Deployment or StatefulSet reads that the program
// does not declare or that the workload does not wait for.
func checkSecretsAwaited(t *testing.T, r *offline.Result) {
	t.Helper()
	secrets := map[string]*mocks.Resource{}
	for _, s := range r.OfType("kubernetes:core/v1:Secret") {
		secrets[str(s, "metadata", "namespace")+"/"+str(s, "metadata", "name")] = s
	}
	checked := 0
	for _, typ := range []string{"kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:StatefulSet"} {
		for _, w := range r.OfType(typ) {
			obj, _ := manifest.KubernetesObject(w)
			ns := fmt.Sprint(at(obj, "metadata", "namespace"))
			for _, name := range secretRefs(at(obj, "spec", "template")) {
				s := secrets[ns+"/"+name]
				if s == nil {
					t.Errorf("%s reads Secret %s/%s, which the program does not declare", w.Name, ns, name)
					continue
				}
				checked++
				if !r.DependsOn(w, s) {
					t.Errorf("%s does not wait for Secret %s/%s: its pods could start before it exists", w.Name, ns, name)
				}
			}
		}
	}
	if checked < 8 {
		t.Errorf("only %d secret references checked; the walk is not finding them", checked)
	}
}

// TestRedisReadsItsPasswordFromAFile: the Redis password never reaches a command line, which
// every process on the node can read (issue 27): the server reads it as configuration from a
// file of a Secret of its own (the clients' Secret is left as it was: a changed Secret is
// replaced), mounted read-only and readable by the pod's group only, holding exactly
// the password the application connects with.
func TestRedisReadsItsPasswordFromAFile(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		sts := objects(r, "StatefulSet")["data/redis"]
		spec := at(sts, "spec", "template", "spec")
		argv := fmt.Sprint(at(spec, "containers", 0, "command"), at(spec, "containers", 0, "args"))
		if strings.Contains(argv, "requirepass") || strings.Contains(argv, "PASSWORD") {
			t.Errorf("redis-server's command line carries the password: %s", argv)
		}
		if first := at(spec, "containers", 0, "args", 0); first != "/etc/redis/auth/"+workloads.RedisPasswordFile {
			t.Errorf("redis-server's first argument is %v, want its configuration file /etc/redis/auth/%s", first, workloads.RedisPasswordFile)
		}
		var mounted bool
		for i := range 4 {
			if at(spec, "containers", 0, "volumeMounts", i, "name") == "auth" {
				mounted = at(spec, "containers", 0, "volumeMounts", i, "mountPath") == "/etc/redis/auth" && at(spec, "containers", 0, "volumeMounts", i, "readOnly") == true
			}
		}
		vol := at(spec, "volumes", 0, "secret")
		if !mounted || at(vol, "secretName") != "redis-config" || at(vol, "defaultMode") != float64(0o440) || at(vol, "items", 0, "key") != workloads.RedisPasswordFile {
			t.Errorf("the password file is not the Redis Secret's %s mounted read-only at /etc/redis/auth with mode 0440: mount %v, volume %v", workloads.RedisPasswordFile, mounted, vol)
		}
		secrets := map[string]*mocks.Resource{}
		for _, s := range r.OfType("kubernetes:core/v1:Secret") {
			if str(s, "metadata", "namespace") == "data" {
				secrets[str(s, "metadata", "name")] = s
			}
		}
		pw := str(secrets["redis"], "stringData", "REDIS_PASSWORD")
		if conf := str(secrets["redis-config"], "stringData", workloads.RedisPasswordFile); pw == "" || conf != "requirepass "+pw+"\n" {
			t.Errorf("Secret redis-config's %s is %q, want requirepass and the password the clients use", workloads.RedisPasswordFile, conf)
		}
	})
}
