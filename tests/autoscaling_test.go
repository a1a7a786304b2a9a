package tests

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/internal/fit"
	"github.com/waste-coach/infra/internal/manifest"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/internal/stackfile"
	"github.com/waste-coach/infra/workloads"
)

// Each FastAPI service scales on CPU between its configured replicas and its maximum, waits
// before scaling down, and keeps a pod serving through a drain.
func TestAPIServicesScaleOnCPUWithinTheirBounds(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		hpas, pdbs := objects(r, "HorizontalPodAutoscaler"), objects(r, "PodDisruptionBudget")
		bounds := map[string][2]int{
			"auth":  {r.Config.APIReplicas.Auth, r.Config.Autoscaling.APIMax.Auth},
			"users": {r.Config.APIReplicas.Users, r.Config.Autoscaling.APIMax.Users},
			"waste": {r.Config.APIReplicas.Waste, r.Config.Autoscaling.APIMax.Waste},
		}
		if len(hpas) != len(bounds) {
			t.Errorf("%d HorizontalPodAutoscalers, want one per API service (%d)", len(hpas), len(bounds))
		}
		for svc, b := range bounds {
			h, ok := hpas["app/"+svc]
			if !ok {
				t.Errorf("no HorizontalPodAutoscaler app/%s", svc)
				continue
			}
			if at(h, "apiVersion") != "autoscaling/v2" {
				t.Errorf("HPA %s is %v, want autoscaling/v2", svc, at(h, "apiVersion"))
			}
			if k, n := at(h, "spec", "scaleTargetRef", "kind"), at(h, "spec", "scaleTargetRef", "name"); k != "Deployment" || n != svc {
				t.Errorf("HPA %s targets %v %v, want Deployment %s", svc, k, n, svc)
			}
			if lo, hi := at(h, "spec", "minReplicas"), at(h, "spec", "maxReplicas"); lo != float64(b[0]) || hi != float64(b[1]) {
				t.Errorf("HPA %s bounds %v..%v, want apiReplicas %d .. apiMaxReplicas %d", svc, lo, hi, b[0], b[1])
			}
			if m := at(h, "spec", "metrics", 0); at(m, "type") != "Resource" || at(m, "resource", "name") != "cpu" ||
				at(m, "resource", "target", "type") != "Utilization" || at(m, "resource", "target", "averageUtilization") != float64(workloads.APICPUTarget) {
				t.Errorf("HPA %s metric %v, want CPU utilisation %d%% (metrics-server)", svc, m, workloads.APICPUTarget)
			}
			if w := at(h, "spec", "behavior", "scaleDown", "stabilizationWindowSeconds"); w != float64(workloads.ScaleDownWindowSeconds) {
				t.Errorf("HPA %s scale-down window %v, want %d s", svc, w, workloads.ScaleDownWindowSeconds)
			}
			p, ok := pdbs["app/"+svc]
			if !ok {
				t.Errorf("no PodDisruptionBudget app/%s", svc)
				continue
			}
			if at(p, "spec", "maxUnavailable") != float64(1) || at(p, "spec", "selector", "matchLabels", "app.kubernetes.io/name") != svc {
				t.Errorf("PDB %s = %v, want maxUnavailable 1 over the service's pods", svc, at(p, "spec"))
			}
		}
	})
}

// Every autoscaled Deployment is created at its minimum and then left to its autoscaler: the
// program must not reset the count on every `pulumi up`. Deployments nobody scales keep theirs.
func TestAutoscaledDeploymentsLeaveReplicasToTheirAutoscaler(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		scaled := workloads.ScaledDeployments(r.Config)
		for _, res := range r.OfType("kubernetes:apps/v1:Deployment") {
			obj, _ := manifest.KubernetesObject(res)
			name := fmt.Sprint(at(obj, "metadata", "name"))
			ignores := slices.Contains(res.IgnoreChanges, "spec.replicas")
			b, isScaled := scaled[name]
			switch {
			case isScaled && !ignores:
				t.Errorf("Deployment %s is autoscaled but pulumi up would set spec.replicas back (no ignoreChanges)", name)
			case !isScaled && ignores:
				t.Errorf("Deployment %s is not autoscaled but ignores changes of spec.replicas", name)
			case isScaled && at(obj, "spec", "replicas") != float64(b[0]):
				t.Errorf("Deployment %s starts at %v replicas, want its minimum %d", name, at(obj, "spec", "replicas"), b[0])
			}
		}
	})
}

// Each Celery pool scales on its own queues' depth, with the broker's login read from the
// existing Secret: no ScaledObject or TriggerAuthentication carries an address or password.
func TestCeleryPoolsScaleOnTheirQueues(t *testing.T) {
	wantQueues := map[string][]string{"ai": {"q.ai"}, "batch": {"q.batch", "q.sched"}, "api": {"q.api"}}
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		sos := objects(r, "ScaledObject")
		if len(sos) != len(wantQueues) {
			t.Errorf("%d ScaledObjects, want one per Celery pool", len(sos))
		}
		a := r.Config.Autoscaling
		for pool, queues := range wantQueues {
			so, ok := sos["app/celery-"+pool]
			if !ok {
				t.Errorf("no ScaledObject app/celery-%s", pool)
				continue
			}
			if at(so, "spec", "scaleTargetRef", "name") != "celery-"+pool {
				t.Errorf("ScaledObject %s targets %v", pool, at(so, "spec", "scaleTargetRef", "name"))
			}
			lo, hi := r.Config.CeleryReplicas.CeleryPool(pool), a.CeleryMax.CeleryPool(pool)
			if at(so, "spec", "minReplicaCount") != float64(lo) || at(so, "spec", "maxReplicaCount") != float64(hi) {
				t.Errorf("ScaledObject %s bounds %v..%v, want celeryReplicas %d .. celeryMaxReplicas %d", pool,
					at(so, "spec", "minReplicaCount"), at(so, "spec", "maxReplicaCount"), lo, hi)
			}
			triggers, _ := at(so, "spec", "triggers").([]any)
			var got []string
			for _, tr := range triggers {
				got = append(got, fmt.Sprint(at(tr, "metadata", "queueName")))
				if at(tr, "type") != "rabbitmq" || at(tr, "metadata", "mode") != "QueueLength" ||
					at(tr, "metadata", "value") != fmt.Sprint(a.CeleryQueueLength.CeleryPool(pool)) {
					t.Errorf("ScaledObject %s trigger %v, want rabbitmq QueueLength %d per worker", pool, tr, a.CeleryQueueLength.CeleryPool(pool))
				}
				if at(tr, "authenticationRef", "name") != workloads.RabbitMQTriggerAuth {
					t.Errorf("ScaledObject %s trigger logs in with %v, want the TriggerAuthentication %s", pool, at(tr, "authenticationRef"), workloads.RabbitMQTriggerAuth)
				}
				for _, k := range []string{"host", "hostFromEnv", "password", "username"} {
					if at(tr, "metadata", k) != nil {
						t.Errorf("ScaledObject %s trigger carries %s in its metadata: credentials must come from the Secret", pool, k)
					}
				}
			}
			if !slices.Equal(got, queues) {
				t.Errorf("ScaledObject %s scales on %v, want %v", pool, got, queues)
			}
		}
		// KEDA puts a finalizer on each ScaledObject: destroy must delete them while KEDA runs.
		keda := must(t, r, "kubernetes:helm.sh/v3:Release", "sesacthon-keda-keda")
		for _, typ := range []string{"kubernetes:keda.sh/v1alpha1:ScaledObject", "kubernetes:keda.sh/v1alpha1:TriggerAuthentication"} {
			for _, res := range r.OfType(typ) {
				if !r.DependsOn(res, keda) {
					t.Errorf("%s does not depend on the KEDA release: its CRD would be missing on create, its finalizer unremovable on destroy", res.Name)
				}
			}
		}
		if len(r.OfType("kubernetes:keda.sh/v1alpha1:ScaledObject")) == 0 {
			t.Error("no ScaledObject resources of type kubernetes:keda.sh/v1alpha1:ScaledObject")
		}
		ta, ok := objects(r, "TriggerAuthentication")["app/"+workloads.RabbitMQTriggerAuth]
		if !ok {
			t.Fatal("no TriggerAuthentication app/rabbitmq")
		}
		ref := at(ta, "spec", "secretTargetRef", 0)
		if at(ref, "parameter") != "host" || at(ref, "name") != "app-secrets" || at(ref, "key") != "CELERY_BROKER_URL" {
			t.Errorf("TriggerAuthentication reads %v, want host from Secret app-secrets key CELERY_BROKER_URL", ref)
		}
		for _, kind := range []string{"ScaledObject", "TriggerAuthentication"} {
			for name, o := range objects(r, kind) {
				b, _ := json.Marshal(o)
				if strings.Contains(string(b), "amqp://") || strings.Contains(string(b), "password") {
					t.Errorf("%s %s holds a broker address or password in plain text: %s", kind, name, b)
				}
			}
		}
	})
}

// Exactly one beat runs, whatever the load: nothing scales it.
func TestBeatIsNeverScaled(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		for _, kind := range []string{"HorizontalPodAutoscaler", "ScaledObject"} {
			for name, o := range objects(r, kind) {
				if at(o, "spec", "scaleTargetRef", "name") == "celery-beat" {
					t.Errorf("%s %s scales celery-beat: two beats fire every schedule twice", kind, name)
				}
			}
		}
		if _, ok := fit.Maxima(r.Resources)["app/celery-beat"]; ok {
			t.Error("celery-beat has an autoscaling maximum")
		}
	})
}

// The fit counts every autoscaled Deployment at its maximum, and a stack file whose maximums do
// not fit a node is refused with the key to lower and the node named.
func TestFitIsCheckedAtTheMaximumsAndRefusesWhatDoesNotFit(t *testing.T) {
	r := run(t, "prod")
	for _, n := range fit.Check(r.Config, r.Resources) {
		if n.Role != config.RoleWorker2 {
			continue
		}
		var names []string
		for _, d := range n.Demands {
			names = append(names, d.Name)
		}
		want := fmt.Sprintf("celery-ai x%d (max)", r.Config.Autoscaling.CeleryMax.AI)
		if !slices.Contains(names, want) {
			t.Errorf("worker-2 demands %v, want %q: the fit must count the maximum", names, want)
		}
	}

	sc, err := stackfile.Read("..", "prod")
	if err != nil {
		t.Fatal(err)
	}
	sc.Values["waste-coach-infra:celeryMaxReplicas"] = `{"ai":6,"batch":3,"api":2}`
	big, err := offline.RunConfig("prod", sc)
	if err != nil {
		t.Fatalf("run prod with celeryMaxReplicas.ai 6: %v", err)
	}
	err = fit.Refuse(fit.Check(big.Config, big.Resources))
	if err == nil {
		t.Fatal("six ai workers at 200m each on a t3.medium beside the batch pool were accepted")
	}
	for _, want := range []string{"worker-2", "waste-coach-infra:celeryMaxReplicas.ai"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("refusal %q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), "worker-1") {
		t.Errorf("refusal %q names worker-1, which fits", err)
	}
}
