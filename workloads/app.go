package workloads

import (
	"fmt"
	"strings"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/infra"
	"github.com/waste-coach/infra/routing"
	"github.com/waste-coach/infra/versions"
)

// The contract the application images keep (README, "Application images"): they run as uid
// 10001, FastAPI services listen on 8000 and answer GET /health, and the Celery app is CeleryApp.
const (
	appUID     = 10001
	apiPort    = 8000
	healthPath = "/health"
	// CeleryApp is the module passed to `celery -A`.
	CeleryApp      = "app.worker"
	appConfig      = "app-config"
	backendPort    = 8080
	defaultBackend = "default-backend"
)

// APIService is one FastAPI service and the path prefix the ALB routes to it.
type APIService struct {
	Name, Path string
	Replicas   int
	Image      string
}

// APIServices lists the FastAPI services with their configured replicas and images.
func APIServices(cfg *config.Config) []APIService {
	return []APIService{
		{"auth", "/api/v1/auth", cfg.APIReplicas.Auth, cfg.Images.Auth},
		{"users", "/api/v1/users", cfg.APIReplicas.Users, cfg.Images.Users},
		{"waste", "/api/v1/waste", cfg.APIReplicas.Waste, cfg.Images.Waste},
	}
}

// CeleryPool is one Celery deployment: which queues it consumes, with which pool, where.
type CeleryPool struct {
	Name        string
	Queues      []string
	Pool        string
	Concurrency int
	// Prefetch is the prefetch multiplier; 0 keeps Celery's default.
	Prefetch  int
	Replicas  int
	Role      config.Role
	Resources Resources
}

// CeleryPools lists the worker pools of ARCHITECTURE.md section 3.
func CeleryPools(cfg *config.Config) []CeleryPool {
	return []CeleryPool{
		{Name: "ai", Queues: []string{"q.ai"}, Pool: "gevent", Concurrency: 4, Replicas: cfg.CeleryReplicas.AI, Role: config.RoleWorker2,
			Resources: Resources{CPU: 200, MemoryMiB: 384, CPULimit: 1000, MemoryLimitMiB: 768, DiskMiB: 128, DiskLimitMiB: diskLimit(celeryTmpMiB)}},
		{Name: "batch", Queues: []string{"q.batch", "q.sched"}, Pool: "prefork", Concurrency: 4, Prefetch: 1, Replicas: cfg.CeleryReplicas.Batch, Role: config.RoleWorker2,
			Resources: Resources{CPU: 200, MemoryMiB: 512, CPULimit: 1000, MemoryLimitMiB: 1024, DiskMiB: 128, DiskLimitMiB: diskLimit(celeryTmpMiB)}},
		{Name: "api", Queues: []string{"q.api"}, Pool: "gevent", Concurrency: 4, Replicas: cfg.CeleryReplicas.API, Role: config.RoleWorker1,
			Resources: Resources{CPU: 100, MemoryMiB: 256, CPULimit: 500, MemoryLimitMiB: 512, DiskMiB: 128, DiskLimitMiB: diskLimit(celeryTmpMiB)}},
	}
}

// Scratch space of the application's pods (emptyDirs, in MiB): the API's /tmp (request bodies
// spooled to disk), the Celery workers' /tmp (files a task downloads or builds before it uploads
// them), beat's schedule and pid file, nginx's temp and cache directories.
const (
	apiTmpMiB, celeryTmpMiB, beatTmpMiB = 64, 256, 64
	backendTmpMiB, backendCacheMiB      = 16, 64
)

var (
	apiResources     = Resources{CPU: 100, MemoryMiB: 192, CPULimit: 500, MemoryLimitMiB: 384, DiskMiB: 64, DiskLimitMiB: diskLimit(apiTmpMiB)}
	beatResources    = Resources{CPU: 50, MemoryMiB: 128, CPULimit: 200, MemoryLimitMiB: 256, DiskMiB: 32, DiskLimitMiB: diskLimit(beatTmpMiB)}
	backendResources = Resources{CPU: 10, MemoryMiB: 16, CPULimit: 100, MemoryLimitMiB: 64, DiskMiB: 32, DiskLimitMiB: diskLimit(backendTmpMiB + backendCacheMiB)}
)

// appEnv is what every application container reads: the ConfigMap and the Secret of URLs.
var appEnv = corev1.EnvFromSourceArray{
	corev1.EnvFromSourceArgs{ConfigMapRef: &corev1.ConfigMapEnvSourceArgs{Name: pulumi.String(appConfig)}},
	corev1.EnvFromSourceArgs{SecretRef: &corev1.SecretEnvSourceArgs{Name: pulumi.String(appSecret)}},
}

// appEnvAnnotations go on the pods that read appEnv. A container reads its environment when it
// starts, and a changed Secret changes no pod template: naming the database role DATABASE_URL
// logs in as restarts the pods onto the Secret whenever the role changes (once when it became
// PostgresAppRole instead of the superuser, which pg_hba.conf now refuses over the network).
func appEnvAnnotations() pulumi.StringMap {
	return pulumi.StringMap{"waste-coach.io/database-role": pulumi.String(PostgresAppRole)}
}

// Application is the FastAPI services, the Celery pools and beat, and the default backend,
// with their configuration, their Secret of URLs and their NodePort Services.
type Application struct {
	pulumi.ResourceState

	// APIs are the FastAPI services' Deployments by service name (APIServices).
	APIs map[string]pulumi.Resource
	// CeleryPools are the Celery pools' Deployments by pool name (CeleryPools).
	CeleryPools map[string]pulumi.Resource
	// Secret is the application's Secret of connection URLs (appSecret).
	Secret *corev1.Secret
	// Served is how the application's routed Services answer, by route name.
	Served map[string]Served
}

// applicationArgs are the inputs of the application.
type applicationArgs struct {
	// tierArgs name the resources; the configuration holds the images, replicas and the
	// uploads bucket.
	tierArgs
	// PostgresPassword (the application role's), RedisPassword and RabbitPassword (the
	// application's broker login) go into the connection URLs of the application's Secret (all
	// secrets).
	PostgresPassword, RedisPassword, RabbitPassword pulumi.StringOutput
	// Postgres is PostgreSQL's StatefulSet, ready once the application role exists: the Secret
	// of URLs, and so the pods that read it, come after it.
	Postgres pulumi.Resource
}

// newApplication declares the application's workloads.
func newApplication(ctx *pulumi.Context, name string, args *applicationArgs, opts ...pulumi.ResourceOption) (*Application, error) {
	c := &Application{APIs: map[string]pulumi.Resource{}, CeleryPools: map[string]pulumi.Resource{}, Served: map[string]Served{}}
	return c, component(ctx, args.tierArgs, "Application", name, c, opts, func(s *scope) error {
		return s.application(args, c)
	})
}

// application declares the workloads and fills in the component's outputs.
func (s *scope) application(args *applicationArgs, c *Application) error {
	cfg, ns := s.cfg, NamespaceApp
	cm, err := corev1.NewConfigMap(s.ctx, s.resourceName(ns, appConfig), &corev1.ConfigMapArgs{
		Metadata: meta(appConfig, ns, labels(appConfig, "config")),
		Data: pulumi.StringMap{
			"APP_ENV":                 pulumi.String(cfg.Stack),
			"AWS_REGION":              pulumi.String(cfg.Region),
			"UPLOADS_BUCKET":          pulumi.String(cfg.Uploads.BucketName),
			"POSTGRES_HOST":           pulumi.String(serviceDNS("postgres", NamespaceData)),
			"REDIS_HOST":              pulumi.String(serviceDNS("redis", NamespaceData)),
			"RABBITMQ_HOST":           pulumi.String(serviceDNS("rabbitmq", NamespaceData)),
			"CELERY_TASK_EXCHANGE":    pulumi.String("tasks"),
			"PYTHONDONTWRITEBYTECODE": pulumi.String("1"),
		},
	}, s.opts(ns)...)
	if err != nil {
		return fmt.Errorf("config map: %w", err)
	}
	urls := pulumi.All(args.PostgresPassword, args.RedisPassword, args.RabbitPassword).ApplyT(func(v []any) map[string]string {
		pg, redis, amqp := v[0].(string), v[1].(string), v[2].(string)
		return map[string]string{
			"DATABASE_URL":          fmt.Sprintf("postgresql://%s:%s@%s:%d/%s", PostgresAppRole, pg, serviceDNS("postgres", NamespaceData), postgresPort, postgresDatabase),
			"REDIS_URL":             fmt.Sprintf("redis://:%s@%s:%d/0", redis, serviceDNS("redis", NamespaceData), redisPort),
			"CELERY_RESULT_BACKEND": fmt.Sprintf("redis://:%s@%s:%d/1", redis, serviceDNS("redis", NamespaceData), redisPort),
			"CELERY_BROKER_URL":     fmt.Sprintf("amqp://%s:%s@%s:%d//", rabbitAppUser, amqp, serviceDNS("rabbitmq", NamespaceData), amqpPort),
		}
	}).(pulumi.StringMapOutput)
	secret, err := s.secret(ns, appSecret, urls, args.Postgres)
	if err != nil {
		return err
	}
	c.Secret = secret
	pull, err := s.registryPullSecret()
	if err != nil {
		return err
	}

	// The API services and the Celery workers sign upload URLs and read uploads with a role of
	// their own (infra.PodRoleUploads): the uploads bucket only.
	uploads := s.awsIdentity(infra.PodRoleUploads)
	uploadsSA, err := s.serviceAccount(uploads, labels(uploads.Role.ServiceAccount, "identity"))
	if err != nil {
		return err
	}

	for _, api := range APIServices(cfg) {
		l := labels(api.Name, "api")
		pod := Pod{
			Labels: l, Role: config.RoleWorker1, UID: appUID, Annotations: appEnvAnnotations(),
			Containers: []Container{{
				Name: api.Name, Image: pulumi.String(api.Image),
				Ports:     map[string]int{"http": apiPort},
				EnvFrom:   appEnv,
				Env:       corev1.EnvVarArray{plainEnv("SERVICE_NAME", api.Name), plainEnv("ROOT_PATH", api.Path)},
				Resources: apiResources,
				// A slow /health takes the pod out of the Service within 30 s; only one that fails
				// for two and a half minutes is restarted.
				Readiness: readiness(httpCheck(healthPath, apiPort), 3),
				Liveness:  liveness(httpCheck(healthPath, apiPort), 10),
				Mounts:    corev1.VolumeMountArray{mount("tmp", "/tmp")},
				AWS:       true,
			}},
			Volumes: corev1.VolumeArray{emptyDir("tmp", apiTmpMiB)},
			AWS:     uploads,
		}
		d, err := s.deployment(pull, ns, api.Name, api.Replicas, pod, "RollingUpdate", []pulumi.ResourceOption{autoscaledOpts()}, cm, secret, uploadsSA)
		if err != nil {
			return err
		}
		c.APIs[api.Name] = d
		// NodePort: the ALB sends traffic to the nodes (target-type instance), since pod IPs
		// on the Calico overlay are not routable from the VPC.
		if err := s.publicService(ns, api.Name, l, routing.For(api.Name)); err != nil {
			return err
		}
		c.Served[routing.For(api.Name).Name] = Served{Local: true, Role: pod.Role}
	}

	for _, pool := range CeleryPools(cfg) {
		name := "celery-" + pool.Name
		args := []string{"-A", CeleryApp, "worker", "--loglevel=INFO", "-n", pool.Name + "@%h",
			"-Q", strings.Join(pool.Queues, ","), "-P", pool.Pool, "-c", fmt.Sprint(pool.Concurrency)}
		if pool.Prefetch > 0 {
			args = append(args, "--prefetch-multiplier", fmt.Sprint(pool.Prefetch))
		}
		ping := execCheck("sh", "-c", celeryPing(pool.Name))
		// Liveness and the startup probe ask the same, unless the broker does not even take a
		// TCP connection: a restart cannot bring the broker back, and every worker restarted in
		// a RabbitMQ outage would lose its tasks in flight and start again into the same outage.
		alive := execCheck("sh", "-c", CeleryAliveCheck(pool.Name))
		pod := Pod{
			Labels: labels(name, "worker"), Role: pool.Role, UID: appUID, Annotations: appEnvAnnotations(),
			// Let running tasks finish (warm shutdown) before the pod is killed.
			GracePeriod: 300,
			Containers: []Container{{
				Name: "worker", Image: pulumi.String(cfg.Images.Celery),
				Command: []string{"celery"}, Args: args,
				EnvFrom:   appEnv,
				Resources: pool.Resources,
				// Not ready after 90 s without an answer, the broker's outages included (a rollout
				// waits for it); restarted only after 10 minutes of no answer while the broker is
				// up: a gevent pool busy with a long task may answer late, and a restart would
				// lose the tasks in flight. The app's import may take minutes.
				Readiness: readiness(ping, 20).every(30),
				Liveness:  liveness(alive, 20).every(120),
				Startup:   startup(alive, 20, 300),
				Mounts:    corev1.VolumeMountArray{mount("tmp", "/tmp")},
				AWS:       true,
			}},
			Volumes: corev1.VolumeArray{emptyDir("tmp", celeryTmpMiB)},
			AWS:     uploads,
		}
		d, err := s.deployment(pull, ns, name, pool.Replicas, pod, "RollingUpdate", []pulumi.ResourceOption{autoscaledOpts()}, cm, secret, uploadsSA)
		if err != nil {
			return err
		}
		c.CeleryPools[pool.Name] = d
		// A drain takes one worker of the pool at a time (disruption.go), each given its grace
		// period to finish its tasks, and a busy (unready) worker only while the rest are Ready.
		if err := s.disruptionBudget(ns, name, EvictUnreadyIfHealthy, labels(name, "disruption-budget"), d); err != nil {
			return err
		}
	}

	// Exactly one beat, or schedules fire twice: Recreate never runs two during a rollout.
	// Beat writes its pid file once the app is imported and the schedule opened.
	beatRunning := execCheck("sh", "-c", `kill -0 "$(cat /tmp/celerybeat.pid)"`)
	if _, err := s.deployment(pull, ns, "celery-beat", 1, Pod{
		Labels: labels("celery-beat", "scheduler"), Role: config.RoleStorage, UID: appUID, Annotations: appEnvAnnotations(),
		Containers: []Container{{
			Name: "beat", Image: pulumi.String(cfg.Images.Celery),
			Command: []string{"celery"},
			Args:    []string{"-A", CeleryApp, "beat", "--loglevel=INFO", "--schedule", "/tmp/celerybeat-schedule", "--pidfile", "/tmp/celerybeat.pid"},
			EnvFrom: appEnv, Resources: beatResources,
			Readiness: readiness(beatRunning, 5), Liveness: liveness(beatRunning, 5), Startup: startup(beatRunning, 5, 120),
			Mounts: corev1.VolumeMountArray{mount("tmp", "/tmp")},
		}},
		Volumes: corev1.VolumeArray{emptyDir("tmp", beatTmpMiB)},
	}, "Recreate", nil, cm, secret); err != nil {
		return err
	}

	// The default backend answers / until a front end is deployed.
	backendLabels := labels(defaultBackend, "web")
	backend := Pod{
		Labels: backendLabels, Role: config.RoleWorker1, UID: 101,
		Containers: []Container{{
			Name: "nginx", Image: pulumi.String(versions.DefaultBackend),
			Ports:     map[string]int{"http": backendPort},
			Resources: backendResources,
			// Serving the page is readiness; accepting a connection at all is liveness.
			Readiness: readiness(httpCheck("/", backendPort), 3), Liveness: liveness(tcpCheck(backendPort), 3),
			Mounts: corev1.VolumeMountArray{mount("tmp", "/tmp"), mount("cache", "/var/cache/nginx")},
		}},
		Volumes: corev1.VolumeArray{emptyDir("tmp", backendTmpMiB), emptyDir("cache", backendCacheMiB)},
	}
	if _, err := s.deployment(pull, ns, defaultBackend, 1, backend, "RollingUpdate", nil); err != nil {
		return err
	}
	if err := s.publicService(ns, defaultBackend, backendLabels, routing.For(defaultBackend)); err != nil {
		return err
	}
	c.Served[routing.For(defaultBackend).Name] = Served{Local: true, Role: backend.Role}
	return nil
}

// deployment declares a Deployment of pod with the given replicas, update strategy and resource
// options of its own (autoscaledOpts); pullSecret is the private registry's login, nil without one.
func (s *scope) deployment(pullSecret *corev1.Secret, namespace, name string, replicas int, pod Pod, strategy string, extra []pulumi.ResourceOption, deps ...pulumi.Resource) (*appsv1.Deployment, error) {
	st := &appsv1.DeploymentStrategyArgs{Type: pulumi.String(strategy)}
	if strategy == "RollingUpdate" {
		// Keep serving during a rollout: add one new pod before taking an old one away.
		st.RollingUpdate = &appsv1.RollingUpdateDeploymentArgs{MaxUnavailable: pulumi.Int(0), MaxSurge: pulumi.Int(1)}
	}
	pod, deps = withRegistryLogin(pullSecret, namespace, pod, deps)
	d, err := appsv1.NewDeployment(s.ctx, s.resourceName(namespace, name), &appsv1.DeploymentArgs{
		Metadata: meta(name, namespace, pod.Labels),
		Spec: appsv1.DeploymentSpecArgs{
			Replicas: pulumi.Int(replicas),
			Selector: &metav1.LabelSelectorArgs{MatchLabels: selector(name)},
			Strategy: st,
			Template: pod.template(),
		},
	}, append(s.opts(namespace, deps...), extra...)...)
	if err != nil {
		return nil, fmt.Errorf("deployment %s: %w", name, err)
	}
	return d, nil
}

// celeryPing asks the pool's worker on this pod (-n <pool>@%h) for an answer through the
// broker: it is connected and its consumer loop runs. Each check starts a Python process that
// imports the app, inside the worker's memory limit, so it runs at most every 30 s.
func celeryPing(pool string) string {
	return fmt.Sprintf(`exec celery -A %s inspect ping -d "%s@$HOSTNAME" --timeout 10`, CeleryApp, pool)
}

// brokerDownExit is the status of CeleryAliveCheck's broker test when the broker refuses or
// does not answer a TCP connection; any other failure (no python3, no broker URL) leads to the
// ping, so that a broken test never turns liveness off.
const brokerDownExit = 3

// CeleryAliveCheck is a Celery worker's liveness check: "stuck for good" is a worker that does
// not answer its ping while the broker is up. While the broker does not take a TCP connection
// (a RabbitMQ outage, its pod moving) the check passes without the ping, from a Python process
// that imports nothing of the app; the readiness check, the ping alone, still fails then.
func CeleryAliveCheck(pool string) string {
	return fmt.Sprintf(`python3 -c 'import os, socket, urllib.parse
u = urllib.parse.urlsplit(os.environ["CELERY_BROKER_URL"])
try:
    socket.create_connection((u.hostname, u.port or %d), 5).close()
except OSError:
    raise SystemExit(%d)
'
[ $? -eq %d ] && exit 0
%s`, amqpPort, brokerDownExit, brokerDownExit, celeryPing(pool))
}
