package workloads

import (
	"fmt"
	"strconv"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	autoscalingv2 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/autoscaling/v2"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	helmv3 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/helm/v3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/versions"
)

// NamespaceKEDA holds KEDA, which scales the Celery pools on their queues' depth.
const NamespaceKEDA = "keda"

// How the autoscalers behave. The API scales on CPU: metrics-server reports each pod's use,
// the HorizontalPodAutoscaler adds pods when the average passes APICPUTarget percent of the
// request. Scaling down waits ScaleDownWindowSeconds (the highest recommendation of that window
// wins, so a dip between two bursts removes nothing) and then removes one pod a minute.
const (
	// APICPUTarget is the average CPU use, in percent of the request, the API is scaled to.
	APICPUTarget = 70
	// ScaleDownWindowSeconds is the scale-down stabilisation window of every autoscaler.
	ScaleDownWindowSeconds = 300
	// KEDAPollingSeconds is how often KEDA reads the queues' depth.
	KEDAPollingSeconds = 15
	// KEDACooldownSeconds is how long a pool allowed to reach zero waits, once its queues are
	// empty, before its last worker is removed.
	KEDACooldownSeconds = 300
	// RabbitMQTriggerAuth is the TriggerAuthentication the Celery ScaledObjects log in with.
	RabbitMQTriggerAuth = "rabbitmq"
)

// ScaledDeployments maps each autoscaled Deployment of the app namespace to its bounds: the
// API services (HorizontalPodAutoscaler on CPU) and the Celery pools (KEDA on queue depth).
// Celery beat is not in it: exactly one beat runs, or schedules fire twice.
func ScaledDeployments(cfg *config.Config) map[string][2]int {
	a := cfg.Autoscaling
	out := map[string][2]int{}
	for _, s := range APIServices(cfg) {
		out[s.Name] = [2]int{s.Replicas, map[string]int{"auth": a.APIMax.Auth, "users": a.APIMax.Users, "waste": a.APIMax.Waste}[s.Name]}
	}
	for _, p := range CeleryPools(cfg) {
		out["celery-"+p.Name] = [2]int{p.Replicas, a.CeleryMax.CeleryPool(p.Name)}
	}
	return out
}

// autoscaledOpts keep `pulumi up` from fighting the autoscaler over spec.replicas. The
// Deployment is created with its minimum, so it starts with the pods the config asks for; from
// then on the autoscaler owns the count. ignoreChanges on spec.replicas, with server-side apply,
// makes the provider leave the field out of its patch once the autoscaler (the HPA controller
// through the scale subresource) has taken it over, and send the live value while it has not:
// no conflict, no diff on every run, and no reset. Omitting replicas instead would let the
// API server default it to 1 at the first apply, and on a stack that had the field set it would
// drop every pod but one until the autoscaler caught up. A changed minimum reaches the pods
// through the autoscaler's own minimum.
func autoscaledOpts() pulumi.ResourceOption {
	return pulumi.IgnoreChanges([]string{"spec.replicas"})
}

// Autoscaling scales the application: a HorizontalPodAutoscaler (and a PodDisruptionBudget) per
// FastAPI service on CPU, and KEDA with a ScaledObject per Celery pool on its queues' depth.
type Autoscaling struct {
	pulumi.ResourceState

	// KEDA is KEDA's release, which brings the ScaledObject and TriggerAuthentication CRDs.
	KEDA *helmv3.Release
}

// autoscalingArgs are the inputs of the application's autoscaling.
type autoscalingArgs struct {
	// tierArgs name the resources; the configuration holds the bounds.
	tierArgs
	// Charts install KEDA.
	Charts chartArgs
	// APIs and CeleryPools are the Deployments to scale, by service and by pool name
	// (Application): each autoscaler waits for its target.
	APIs, CeleryPools map[string]pulumi.Resource
	// AppSecret is the application's Secret, whose CELERY_BROKER_URL KEDA logs in to RabbitMQ with.
	AppSecret *corev1.Secret
}

// newAutoscaling declares KEDA and the autoscalers.
func newAutoscaling(ctx *pulumi.Context, name string, args *autoscalingArgs, opts ...pulumi.ResourceOption) (*Autoscaling, error) {
	c := &Autoscaling{}
	return c, component(ctx, args.tierArgs, "Autoscaling", name, c, opts, func(s *scope) error {
		cfg := args.Config
		var err error
		// KEDA installs the CRDs the ScaledObjects and the TriggerAuthentication need.
		if c.KEDA, err = s.release(args.Charts, "keda", NamespaceKEDA, versions.KEDA, kedaValues(), s.allNamespaces()...); err != nil {
			return fmt.Errorf("keda: %w", err)
		}
		for _, api := range APIServices(cfg) {
			target, ok := args.APIs[api.Name]
			if !ok {
				return fmt.Errorf("no Deployment of the API service %s to scale", api.Name)
			}
			if err := s.apiAutoscaling(api, ScaledDeployments(cfg)[api.Name][1], target); err != nil {
				return err
			}
		}
		return s.celeryAutoscaling(c.KEDA, args.AppSecret, args.CeleryPools)
	})
}

// apiAutoscaling declares a FastAPI service's HorizontalPodAutoscaler and its
// PodDisruptionBudget.
func (s *scope) apiAutoscaling(api APIService, maxReplicas int, target pulumi.Resource) error {
	ns := NamespaceApp
	scaleDown := &autoscalingv2.HPAScalingRulesArgs{
		StabilizationWindowSeconds: pulumi.Int(ScaleDownWindowSeconds),
		Policies: autoscalingv2.HPAScalingPolicyArray{autoscalingv2.HPAScalingPolicyArgs{
			Type: pulumi.String("Pods"), Value: pulumi.Int(1), PeriodSeconds: pulumi.Int(60),
		}},
	}
	if _, err := autoscalingv2.NewHorizontalPodAutoscaler(s.ctx, s.resourceName(ns, api.Name), &autoscalingv2.HorizontalPodAutoscalerArgs{
		Metadata: meta(api.Name, ns, labels(api.Name, "autoscaler")),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpecArgs{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReferenceArgs{
				ApiVersion: pulumi.String("apps/v1"), Kind: pulumi.String("Deployment"), Name: pulumi.String(api.Name),
			},
			MinReplicas: pulumi.Int(api.Replicas),
			MaxReplicas: pulumi.Int(maxReplicas),
			Metrics: autoscalingv2.MetricSpecArray{autoscalingv2.MetricSpecArgs{
				Type: pulumi.String("Resource"),
				Resource: &autoscalingv2.ResourceMetricSourceArgs{
					Name:   pulumi.String("cpu"),
					Target: autoscalingv2.MetricTargetArgs{Type: pulumi.String("Utilization"), AverageUtilization: pulumi.Int(APICPUTarget)},
				},
			}},
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehaviorArgs{ScaleDown: scaleDown},
		},
	}, s.opts(ns, target)...); err != nil {
		return fmt.Errorf("autoscaler %s: %w", api.Name, err)
	}
	// One pod at a time may be evicted (disruption.go): with two or more pods the service keeps
	// answering; a single-pod dev service still lets the drain finish.
	if err := s.disruptionBudget(ns, api.Name, EvictUnready, labels(api.Name, "disruption-budget"), target); err != nil {
		return err
	}
	return nil
}

// Resources of KEDA's pods (the chart asks 100m and 100Mi for each), sized for three
// ScaledObjects polled every 15 s.
var (
	kedaOperator  = Resources{CPU: 50, MemoryMiB: 128, CPULimit: 500, MemoryLimitMiB: 512, DiskMiB: 16, DiskLimitMiB: diskLimit(0)}
	kedaMetrics   = Resources{CPU: 50, MemoryMiB: 96, CPULimit: 500, MemoryLimitMiB: 384, DiskMiB: 16, DiskLimitMiB: diskLimit(0)}
	kedaWebhooks  = Resources{CPU: 10, MemoryMiB: 48, CPULimit: 100, MemoryLimitMiB: 128, DiskMiB: 16, DiskLimitMiB: diskLimit(0)}
	kedaPlacement = config.RoleStorage
)

// appSecretName is the Secret the TriggerAuthentication reads CELERY_BROKER_URL from.
const appSecretName = appSecret

// kedaValues run KEDA's three pods on the storage node, beside RabbitMQ, whose depth they read:
// the workers' nodes are full at the pools' maximums.
func kedaValues() pulumi.Map {
	on := placement(kedaPlacement)
	return pulumi.Map{
		"nodeSelector": on["nodeSelector"],
		"resources": pulumi.Map{
			"operator":     kedaOperator.values(),
			"metricServer": kedaMetrics.values(),
			"webhooks":     kedaWebhooks.values(),
		},
		// The images are pinned by the chart's appVersion; pulling them on every start would
		// make a restart depend on the registry.
		"image": pulumi.Map{"pullPolicy": pulumi.String("IfNotPresent")},
		// KEDA scales only the application's Celery pools: its operator's rules (Secrets, Jobs,
		// HPAs) are bound in `app` (and its own namespace) instead of cluster-wide, and it gets no
		// read of every kind (`*/*`), which only custom scale targets need (Deployments do not).
		// The operator still lists the Secrets of `app`, where its TriggerAuthentication points;
		// the chart's secret restriction would make it read them from `keda` instead.
		"watchNamespace": pulumi.String(NamespaceApp),
		"rbac":           pulumi.Map{"enabledCustomScaledRefKinds": pulumi.Bool(false)},
	}
}

// celeryAutoscaling declares the TriggerAuthentication KEDA reads the broker's address and
// login with (from the application's Secret: the password is never written into the
// ScaledObjects), and one ScaledObject per Celery pool with a RabbitMQ trigger per queue the
// pool consumes. Beat gets none.
func (s *scope) celeryAutoscaling(kedaRelease pulumi.Resource, appSecret *corev1.Secret, pools map[string]pulumi.Resource) error {
	ns, cfg := NamespaceApp, s.cfg
	auth, err := apiextensions.NewCustomResource(s.ctx, s.resourceName(ns, "trigger-auth-"+RabbitMQTriggerAuth), &apiextensions.CustomResourceArgs{
		ApiVersion: pulumi.String("keda.sh/v1alpha1"),
		Kind:       pulumi.String("TriggerAuthentication"),
		Metadata:   meta(RabbitMQTriggerAuth, ns, labels(RabbitMQTriggerAuth, "autoscaler")),
		OtherFields: map[string]any{"spec": map[string]any{
			"secretTargetRef": []any{map[string]any{"parameter": "host", "name": appSecretName, "key": "CELERY_BROKER_URL"}},
		}},
	}, s.opts(ns, kedaRelease, appSecret)...)
	if err != nil {
		return fmt.Errorf("trigger authentication %s: %w", RabbitMQTriggerAuth, err)
	}
	for _, pool := range CeleryPools(cfg) {
		name := "celery-" + pool.Name
		var triggers []any
		for _, q := range pool.Queues {
			triggers = append(triggers, map[string]any{
				"type": "rabbitmq",
				"name": q,
				"metadata": map[string]any{
					"protocol":  "amqp",
					"queueName": q,
					"mode":      "QueueLength",
					"value":     strconv.Itoa(cfg.Autoscaling.CeleryQueueLength.CeleryPool(pool.Name)),
				},
				"authenticationRef": map[string]any{"name": RabbitMQTriggerAuth},
			})
		}
		if _, err := apiextensions.NewCustomResource(s.ctx, s.resourceName(ns, "scaledobject-"+name), &apiextensions.CustomResourceArgs{
			ApiVersion: pulumi.String("keda.sh/v1alpha1"),
			Kind:       pulumi.String("ScaledObject"),
			Metadata:   meta(name, ns, labels(name, "autoscaler")),
			OtherFields: map[string]any{"spec": map[string]any{
				"scaleTargetRef":  map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
				"minReplicaCount": pool.Replicas,
				"maxReplicaCount": cfg.Autoscaling.CeleryMax.CeleryPool(pool.Name),
				"pollingInterval": KEDAPollingSeconds,
				"cooldownPeriod":  KEDACooldownSeconds,
				"advanced": map[string]any{"horizontalPodAutoscalerConfig": map[string]any{"behavior": map[string]any{
					"scaleDown": map[string]any{
						"stabilizationWindowSeconds": ScaleDownWindowSeconds,
						"policies":                   []any{map[string]any{"type": "Pods", "value": 1, "periodSeconds": 60}},
					},
				}}},
				"triggers": triggers,
			}},
		}, s.opts(ns, kedaRelease, auth, pools[pool.Name])...); err != nil {
			return fmt.Errorf("scaled object %s: %w", name, err)
		}
	}
	return nil
}
