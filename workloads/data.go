package workloads

import (
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/versions"
)

// Resources of the data services on the storage node.
var (
	postgresResources = Resources{CPU: 250, MemoryMiB: 512, CPULimit: 1000, MemoryLimitMiB: 1024}
	redisResources    = Resources{CPU: 100, MemoryMiB: 320, CPULimit: 500, MemoryLimitMiB: 448}
)

// Data service ports and sizes.
const (
	postgresPort       = 5432
	redisPort          = 6379
	postgresStorageGiB = 50
	redisStorageGiB    = 5
	// RedisMaxMemory stays well under the container limit: AOF rewrites fork the process.
	RedisMaxMemory = "256mb"
	// dataUID is the uid of the postgres, redis and rabbitmq users in the official images.
	dataUID = 999
)

// PersistentVolumeGiB is the EBS storage the workloads claim: PostgreSQL, Redis, each RabbitMQ
// broker and Prometheus.
func PersistentVolumeGiB() int {
	return postgresStorageGiB + redisStorageGiB + RabbitReplicas*rabbitStorageGiB + prometheusStorageGiB
}

// postgres declares PostgreSQL 16 on the storage node with a 50Gi gp3 volume.
func (b *builder) postgres(addons *Addons, s *Secrets) error {
	secret, err := b.secret(NamespaceData, postgresSecret, pulumi.StringMap{
		"POSTGRES_USER": pulumi.String(postgresUser), "POSTGRES_DB": pulumi.String(postgresDatabase), "POSTGRES_PASSWORD": s.PostgresPassword,
	})
	if err != nil {
		return err
	}
	if b.pgBackupScript, err = b.postgresBackupScript(); err != nil {
		return err
	}
	ready := execProbe(10, 5, "pg_isready", "-U", postgresUser, "-d", postgresDatabase, "-h", "127.0.0.1")
	sts, err := b.statefulSet(Stateful{
		Name: "postgres", Namespace: NamespaceData, Replicas: 1,
		Ports:      map[string]int{"postgres": postgresPort},
		StorageGiB: postgresStorageGiB, MountPath: postgresDataMount,
		Pod: Pod{
			Labels: labels("postgres", "database"), Role: config.RoleStorage, UID: dataUID,
			// A clean shutdown writes a checkpoint; give it time.
			GracePeriod: 60,
			Containers: []Container{{
				Name: "postgres", Image: pulumi.String(versions.Postgres),
				// Continuous archiving (postgres_backup.go); the image's entrypoint runs these.
				Args:    PostgresServerArgs(),
				Ports:   map[string]int{"postgres": postgresPort},
				EnvFrom: corev1.EnvFromSourceArray{corev1.EnvFromSourceArgs{SecretRef: &corev1.SecretEnvSourceArgs{Name: pulumi.String(postgresSecret)}}},
				// A subdirectory: the volume's root holds lost+found, which initdb refuses.
				Env:       corev1.EnvVarArray{plainEnv("PGDATA", postgresPGDATA), plainEnv("WAL_OUTBOX", WALOutbox)},
				Resources: postgresResources,
				Readiness: ready,
				Liveness:  execProbe(20, 5, "pg_isready", "-h", "127.0.0.1"),
				Startup:   withStartup(ready, 300),
				Mounts:    corev1.VolumeMountArray{mount("run", "/var/run/postgresql"), mount("tmp", "/tmp"), mount("backup-script", PostgresScriptDir)},
			}, postgresExporter(), b.walShipper()},
			Volumes: corev1.VolumeArray{emptyDir("run", 16), emptyDir("tmp", 64), scriptVolume(b.pgBackupScript)},
		},
	}, addons, secret, b.pgBackupScript)
	if err != nil {
		return err
	}
	return b.podMonitor(NamespaceData, "postgres", addons.Monitoring, sts)
}

// redis declares Redis 7 with AOF persistence, an LRU memory cap and a password.
func (b *builder) redis(addons *Addons, s *Secrets) error {
	secret, err := b.secret(NamespaceData, redisSecret, pulumi.StringMap{"REDIS_PASSWORD": s.RedisPassword})
	if err != nil {
		return err
	}
	ping := execProbe(10, 3, "sh", "-c", `REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli -h 127.0.0.1 ping | grep -q PONG`)
	sts, err := b.statefulSet(Stateful{
		Name: "redis", Namespace: NamespaceData, Replicas: 1,
		Ports:      map[string]int{"redis": redisPort},
		StorageGiB: redisStorageGiB, MountPath: "/data",
		Pod: Pod{
			Labels: labels("redis", "cache"), Role: config.RoleStorage, UID: dataUID,
			Containers: []Container{{
				Name: "redis", Image: pulumi.String(versions.Redis),
				Command: []string{"redis-server"},
				Args: []string{
					"--appendonly", "yes", "--appendfsync", "everysec",
					"--maxmemory", RedisMaxMemory, "--maxmemory-policy", "allkeys-lru",
					"--dir", "/data", "--requirepass", "$(REDIS_PASSWORD)",
				},
				Ports:     map[string]int{"redis": redisPort},
				Env:       corev1.EnvVarArray{secretEnv("REDIS_PASSWORD", redisSecret, "REDIS_PASSWORD")},
				Resources: redisResources,
				Readiness: ping,
				Liveness:  tcpProbe(redisPort, 20),
			}, redisExporter()},
		},
	}, addons, secret)
	if err != nil {
		return err
	}
	return b.podMonitor(NamespaceData, "redis", addons.Monitoring, sts)
}
