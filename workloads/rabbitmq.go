package workloads

import (
	"fmt"
	"strings"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	rbacv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/rbac/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/versions"
)

// RabbitMQ's cluster: three nodes, because quorum queues need a majority of three.
const (
	RabbitReplicas = 3
	amqpPort       = 5672
	rabbitMgmtPort = 15672
	rabbitPromPort = 15692
	// rabbitStorageGiB holds each broker's message store and quorum logs.
	rabbitStorageGiB = 8
)

// RabbitMQ's scratch: /tmp and its log directory (emptyDirs, MiB); the message store is on the volume.
const rabbitTmpMiB, rabbitLogsMiB = 64, 128

var rabbitResources = Resources{CPU: 200, MemoryMiB: 512, CPULimit: 1000, MemoryLimitMiB: 768, DiskMiB: 128, DiskLimitMiB: diskLimit(rabbitTmpMiB + rabbitLogsMiB)}

// rabbitConfig is rabbitmq.conf: Kubernetes peer discovery through the headless Service, and
// the definitions loaded at boot.
func rabbitConfig() string {
	suffix := "." + serviceDNS("rabbitmq-headless", NamespaceData)
	return strings.Join([]string{
		"cluster_formation.peer_discovery_backend = k8s",
		"cluster_formation.k8s.host = kubernetes.default.svc.cluster.local",
		"cluster_formation.k8s.address_type = hostname",
		"cluster_formation.k8s.service_name = rabbitmq-headless",
		"cluster_formation.k8s.hostname_suffix = " + suffix,
		"cluster_formation.node_cleanup.only_log_warning = true",
		"cluster_partition_handling = pause_minority",
		"vm_memory_high_watermark.relative = 0.6",
		"disk_free_limit.absolute = 1GB",
		"load_definitions = /etc/rabbitmq/definitions/definitions.json",
		"",
	}, "\n")
}

// Messaging is the three-node RabbitMQ cluster on the storage node, its identity, configuration
// and definitions, its disruption budget and its ServiceMonitor.
type Messaging struct {
	pulumi.ResourceState
}

// messagingArgs are the inputs of the message broker.
type messagingArgs struct {
	// tierArgs name the resources and say whether the stack is production (protected claims
	// on the retaining class).
	tierArgs
	// Storage is what the claims and the StatefulSet wait for (ClaimDependencies).
	Storage *Storage
	// Monitoring is the monitoring release, which brings the ServiceMonitor CRD.
	Monitoring pulumi.Resource
	// AdminPassword and AppPassword are the administrator's and the application's passwords,
	// ErlangCookie the brokers' shared secret (all secrets).
	AdminPassword, AppPassword, ErlangCookie pulumi.StringOutput
}

// newMessaging declares the RabbitMQ cluster.
func newMessaging(ctx *pulumi.Context, name string, args *messagingArgs, opts ...pulumi.ResourceOption) (*Messaging, error) {
	c := &Messaging{}
	return c, component(ctx, args.tierArgs, "Messaging", name, c, opts, func(s *scope) error {
		return s.rabbitmq(args)
	})
}

// rabbitmq declares the three-node RabbitMQ cluster on the storage node.
func (s *scope) rabbitmq(args *messagingArgs) error {
	ns, name := NamespaceData, "rabbitmq"
	l := labels(name, "message-broker")
	opts := s.opts(ns)

	sa, err := corev1.NewServiceAccount(s.ctx, s.resourceName(ns, name), &corev1.ServiceAccountArgs{Metadata: meta(name, ns, l)}, opts...)
	if err != nil {
		return fmt.Errorf("service account: %w", err)
	}
	role, err := rbacv1.NewRole(s.ctx, s.resourceName(ns, name+"-peer-discovery"), &rbacv1.RoleArgs{
		Metadata: meta(name+"-peer-discovery", ns, l),
		Rules: rbacv1.PolicyRuleArray{
			rbacv1.PolicyRuleArgs{ApiGroups: pulumi.ToStringArray([]string{""}), Resources: pulumi.ToStringArray([]string{"endpoints"}), Verbs: pulumi.ToStringArray([]string{"get"})},
			rbacv1.PolicyRuleArgs{ApiGroups: pulumi.ToStringArray([]string{""}), Resources: pulumi.ToStringArray([]string{"events"}), Verbs: pulumi.ToStringArray([]string{"create"})},
		},
	}, opts...)
	if err != nil {
		return fmt.Errorf("role: %w", err)
	}
	binding, err := rbacv1.NewRoleBinding(s.ctx, s.resourceName(ns, name+"-peer-discovery"), &rbacv1.RoleBindingArgs{
		Metadata: meta(name+"-peer-discovery", ns, l),
		RoleRef:  rbacv1.RoleRefArgs{ApiGroup: pulumi.String("rbac.authorization.k8s.io"), Kind: pulumi.String("Role"), Name: pulumi.String(name + "-peer-discovery")},
		Subjects: rbacv1.SubjectArray{rbacv1.SubjectArgs{Kind: pulumi.String("ServiceAccount"), Name: pulumi.String(name), Namespace: pulumi.String(ns)}},
	}, s.opts(ns, role, sa)...)
	if err != nil {
		return fmt.Errorf("role binding: %w", err)
	}

	cm, err := corev1.NewConfigMap(s.ctx, s.resourceName(ns, name+"-config"), &corev1.ConfigMapArgs{
		Metadata: meta(name+"-config", ns, l),
		Data: pulumi.StringMap{
			"rabbitmq.conf":   pulumi.String(rabbitConfig()),
			"enabled_plugins": pulumi.String("[rabbitmq_management,rabbitmq_peer_discovery_k8s,rabbitmq_prometheus].\n"),
		},
	}, opts...)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	definitions := pulumi.All(args.AdminPassword, args.AppPassword).ApplyT(func(v []any) string {
		return Definitions(v[0].(string), v[1].(string))
	}).(pulumi.StringOutput)
	secret, err := s.secret(ns, rabbitSecret, pulumi.StringMap{
		"definitions.json": definitions,
		"erlang-cookie":    args.ErlangCookie,
		"admin-password":   args.AdminPassword,
	})
	if err != nil {
		return err
	}

	fqdnSuffix := "." + serviceDNS(name+"-headless", ns)
	// Ready when every listener (AMQP, management, the peers') accepts connections; alive while
	// the node's runtime answers a ping, checked once a minute: each check starts an Erlang VM.
	ping := execCheck("rabbitmq-diagnostics", "-q", "ping")
	sts, err := s.statefulSet(Stateful{
		Name: name, Namespace: ns, Replicas: RabbitReplicas, Parallel: true,
		Ports:      map[string]int{"amqp": amqpPort, "management": rabbitMgmtPort, "prometheus": rabbitPromPort},
		Headless:   map[string]int{"epmd": 4369, "dist": 25672},
		StorageGiB: rabbitStorageGiB, MountPath: "/var/lib/rabbitmq",
		Pod: Pod{
			Labels: l, Role: config.RoleStorage, UID: dataUID, ServiceAccount: name,
			// Quorum queues hand leadership over on a clean stop.
			GracePeriod: 120,
			Init: []Container{{
				// Erlang insists that only its user can read the cookie file.
				Name: "erlang-cookie", Image: pulumi.String(versions.RabbitMQ),
				Command:   []string{"sh", "-c", "cp /cookie/erlang-cookie /var/lib/rabbitmq/.erlang.cookie && chmod 600 /var/lib/rabbitmq/.erlang.cookie"},
				Resources: Resources{CPU: 10, MemoryMiB: 16, CPULimit: 100, MemoryLimitMiB: 32, DiskMiB: 16, DiskLimitMiB: diskLimit(0)},
				Mounts:    corev1.VolumeMountArray{mount("cookie", "/cookie"), mount(VolumeName, "/var/lib/rabbitmq")},
			}},
			Containers: []Container{{
				Name: name, Image: pulumi.String(versions.RabbitMQ),
				Ports: map[string]int{"amqp": amqpPort, "management": rabbitMgmtPort, "prometheus": rabbitPromPort, "epmd": 4369, "dist": 25672},
				Env: corev1.EnvVarArray{
					fieldEnv("MY_POD_NAME", "metadata.name"),
					plainEnv("RABBITMQ_USE_LONGNAME", "true"),
					plainEnv("RABBITMQ_NODENAME", "rabbit@$(MY_POD_NAME)"+fqdnSuffix),
					plainEnv("K8S_SERVICE_NAME", name+"-headless"),
				},
				Resources: rabbitResources,
				Readiness: readiness(execCheck("rabbitmq-diagnostics", "-q", "check_port_connectivity"), 10),
				Liveness:  liveness(ping, 15).every(60),
				// Boot, peer discovery and the quorum queues' recovery.
				Startup: startup(ping, 10, 300),
				Mounts: corev1.VolumeMountArray{
					corev1.VolumeMountArgs{Name: pulumi.String("config"), MountPath: pulumi.String("/etc/rabbitmq/rabbitmq.conf"), SubPath: pulumi.String("rabbitmq.conf")},
					corev1.VolumeMountArgs{Name: pulumi.String("config"), MountPath: pulumi.String("/etc/rabbitmq/enabled_plugins"), SubPath: pulumi.String("enabled_plugins")},
					mount("definitions", "/etc/rabbitmq/definitions"),
					mount("tmp", "/tmp"),
					mount("logs", "/var/log/rabbitmq"),
				},
			}},
			Volumes: corev1.VolumeArray{
				corev1.VolumeArgs{Name: pulumi.String("config"), ConfigMap: &corev1.ConfigMapVolumeSourceArgs{Name: pulumi.String(name + "-config")}},
				corev1.VolumeArgs{Name: pulumi.String("definitions"), Secret: &corev1.SecretVolumeSourceArgs{
					SecretName: pulumi.String(rabbitSecret), Items: corev1.KeyToPathArray{corev1.KeyToPathArgs{Key: pulumi.String("definitions.json"), Path: pulumi.String("definitions.json")}},
				}},
				corev1.VolumeArgs{Name: pulumi.String("cookie"), Secret: &corev1.SecretVolumeSourceArgs{
					SecretName: pulumi.String(rabbitSecret), Items: corev1.KeyToPathArray{corev1.KeyToPathArgs{Key: pulumi.String("erlang-cookie"), Path: pulumi.String("erlang-cookie")}},
				}},
				emptyDir("tmp", rabbitTmpMiB),
				emptyDir("logs", rabbitLogsMiB),
			},
		},
	}, args.Storage.ClaimDependencies, cm, secret, binding)
	if err != nil {
		return err
	}

	// One broker down at a time: a voluntary disruption never costs the quorum.
	if err := s.disruptionBudget(ns, name, EvictUnready, l); err != nil {
		return err
	}

	// Prometheus scrapes the brokers; the ServiceMonitor CRD comes with the monitoring chart.
	if _, err := apiextensions.NewCustomResource(s.ctx, s.resourceName(ns, name+"-monitor"), &apiextensions.CustomResourceArgs{
		ApiVersion: pulumi.String("monitoring.coreos.com/v1"),
		Kind:       pulumi.String("ServiceMonitor"),
		Metadata:   meta(name, ns, l),
		OtherFields: map[string]any{"spec": map[string]any{
			"selector": map[string]any{"matchLabels": map[string]any{"app.kubernetes.io/name": name}},
			// Per-queue metrics (ready messages, consumers) of q.ai ... q.dlq for the alerts; five
			// queues keep the per-object endpoint cheap.
			"endpoints": []any{map[string]any{"port": "prometheus", "path": "/metrics/per-object", "interval": "30s"}},
		}},
	}, s.opts(ns, args.Monitoring, sts)...); err != nil {
		return fmt.Errorf("service monitor: %w", err)
	}
	return nil
}
