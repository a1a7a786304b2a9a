package workloads

import (
	"fmt"

	appsv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apps/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/infra"
	"github.com/waste-coach/infra/versions"
)

// Resources of the data services on the storage node.
var (
	postgresResources = Resources{CPU: 250, MemoryMiB: 512, CPULimit: 1000, MemoryLimitMiB: 1024, DiskMiB: 64, DiskLimitMiB: diskLimit(postgresRunMiB + postgresTmpMiB)}
	redisResources    = Resources{CPU: 100, MemoryMiB: 320, CPULimit: 500, MemoryLimitMiB: 448, DiskMiB: 32, DiskLimitMiB: diskLimit(0)}
)

// PostgreSQL's scratch (emptyDirs, MiB): its socket directory and /tmp; the data is on the volume.
const postgresRunMiB, postgresTmpMiB = 16, 64

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

// Data is PostgreSQL and Redis on the storage node, each with its exporter and PodMonitor.
type Data struct {
	pulumi.ResourceState

	// PostgresBackupScript is the ConfigMap of the PostgreSQL backup script, which the server's
	// pod (archive_command, the wal-shipper) and the backup CronJobs mount.
	PostgresBackupScript *corev1.ConfigMap
	// PostgresBackupLogin is the Secret of the backup role's password, which the backup CronJobs
	// read.
	PostgresBackupLogin *corev1.Secret
	// Postgres is PostgreSQL's StatefulSet: ready once the server takes connections and its
	// roles are applied (postgres_roles.go), which is when its clients' logins work.
	Postgres *appsv1.StatefulSet
}

// dataArgs are the inputs of the data services.
type dataArgs struct {
	// tierArgs name the resources and say whether the stack is production (protected claims
	// on the retaining class).
	tierArgs
	// Storage is what the claims and the StatefulSets wait for (ClaimDependencies).
	Storage *Storage
	// Monitoring is the monitoring release, which brings the PodMonitor CRD.
	Monitoring pulumi.Resource
	// PostgresPassword and RedisPassword are the services' passwords (secrets); PostgresLogins
	// the passwords of PostgreSQL's client roles.
	PostgresPassword, RedisPassword pulumi.StringOutput
	PostgresLogins                  postgresLogins
}

// newData declares PostgreSQL and Redis.
func newData(ctx *pulumi.Context, name string, args *dataArgs, opts ...pulumi.ResourceOption) (*Data, error) {
	c := &Data{}
	return c, component(ctx, args.tierArgs, "Data", name, c, opts, func(s *scope) error {
		var err error
		if c.PostgresBackupScript, c.PostgresBackupLogin, c.Postgres, err = s.postgres(args); err != nil {
			return fmt.Errorf("postgresql: %w", err)
		}
		if err := s.redis(args); err != nil {
			return fmt.Errorf("redis: %w", err)
		}
		return nil
	})
}

// postgres declares PostgreSQL 16 on the storage node with a 50Gi gp3 volume, its roles and
// who may connect (postgres_roles.go), and returns the ConfigMap of its backup script, the backup
// role's Secret and the StatefulSet.
func (s *scope) postgres(args *dataArgs) (*corev1.ConfigMap, *corev1.Secret, *appsv1.StatefulSet, error) {
	// The superuser's Secret: only the server's container reads it, for its first initialisation.
	secret, err := s.secret(NamespaceData, postgresSecret, pulumi.StringMap{
		"POSTGRES_USER": pulumi.String(postgresUser), "POSTGRES_DB": pulumi.String(postgresDatabase), "POSTGRES_PASSWORD": args.PostgresPassword,
	})
	if err != nil {
		return nil, nil, nil, err
	}
	logins, backupLogin, err := s.postgresLoginSecrets(args.PostgresLogins)
	if err != nil {
		return nil, nil, nil, err
	}
	backupScript, err := s.postgresBackupScript()
	if err != nil {
		return nil, nil, nil, err
	}
	pgConfig, err := s.postgresConfig()
	if err != nil {
		return nil, nil, nil, err
	}
	// Ready when it accepts connections to the application's database. Alive while the server
	// answers at all: pg_isready exits 1 for "rejecting connections" (starting, recovering after
	// an unclean stop, shutting down), which is work in progress, not a hang; 2 is no answer.
	// Both ask as the application (a line of pg_hba.conf that wants a password, which pg_isready
	// never sends): a refused connection, the superuser's over TCP, would be logged at every check.
	ready := execCheck("pg_isready", "-U", PostgresAppRole, "-d", postgresDatabase, "-h", "127.0.0.1")
	answers := execCheck("sh", "-c", fmt.Sprintf("pg_isready -q -U %s -d %s -h 127.0.0.1; test $? -le 1", PostgresAppRole, postgresDatabase))
	// The WAL shipper's identity: a role that writes only archived segments.
	walIdentity := s.awsIdentity(infra.PodRolePostgresWAL)
	sa, err := s.serviceAccount(walIdentity, labels("postgres", "database"))
	if err != nil {
		return nil, nil, nil, err
	}
	sts, err := s.statefulSet(Stateful{
		Name: "postgres", Namespace: NamespaceData, Replicas: 1,
		Ports:      map[string]int{"postgres": postgresPort},
		StorageGiB: postgresStorageGiB, MountPath: postgresDataMount,
		Pod: Pod{
			Labels: labels("postgres", "database"), Role: config.RoleStorage, UID: dataUID,
			// A clean shutdown writes a checkpoint; give it time.
			GracePeriod: 60,
			Containers: []Container{{
				Name: "postgres", Image: pulumi.String(versions.Postgres),
				// Continuous archiving (postgres_backup.go) and pg_hba.conf (postgres_roles.go);
				// the image's entrypoint runs these.
				Args:    PostgresServerArgs(),
				Ports:   map[string]int{"postgres": postgresPort},
				EnvFrom: corev1.EnvFromSourceArray{corev1.EnvFromSourceArgs{SecretRef: &corev1.SecretEnvSourceArgs{Name: pulumi.String(postgresSecret)}}},
				// A subdirectory: the volume's root holds lost+found, which initdb refuses.
				Env:       corev1.EnvVarArray{plainEnv("PGDATA", postgresPGDATA), plainEnv("WAL_OUTBOX", WALOutbox)},
				Resources: postgresResources,
				Readiness: readiness(ready, 5),
				Liveness:  liveness(answers, 10),
				// The first start runs initdb before the server listens; a recovery then answers.
				Startup: startup(answers, 5, 300),
				Mounts: corev1.VolumeMountArray{mount("run", postgresSocketDir), mount("tmp", "/tmp"), mount("backup-script", PostgresScriptDir),
					readOnlyMount("hba", postgresHBADir)},
			}, postgresExporter(), s.walShipper(), dbRoles()},
			Volumes: corev1.VolumeArray{emptyDir("run", postgresRunMiB), emptyDir("tmp", postgresTmpMiB), scriptVolume(backupScript),
				configFiles("hba", pgConfig, 0o444, hbaFileName),
				configFiles("roles", pgConfig, 0o444, rolesScriptFileName, rolesSQLFileName),
				configFiles("exporter-queries", pgConfig, 0o444, exporterQueryFileName),
				emptyDir("roles-state", 1)},
			AWS: walIdentity,
		},
	}, args.Storage.ClaimDependencies, append([]pulumi.Resource{secret, backupScript, pgConfig, sa}, logins...)...)
	if err != nil {
		return nil, nil, nil, err
	}
	return backupScript, backupLogin, sts, s.podMonitor(NamespaceData, "postgres", args.Monitoring, sts)
}

// RedisPasswordFile is the Redis Secret's key, and the file, that holds the server's password
// as configuration (requirepass).
const RedisPasswordFile = "redis.conf"

// redisConfigSecret holds RedisPasswordFile.
const redisConfigSecret = "redis-config"

// redisAuthDir is where the Redis container mounts RedisPasswordFile.
const redisAuthDir = "/etc/redis/auth"

// redis declares Redis 7 with AOF persistence, an LRU memory cap and a password.
func (s *scope) redis(args *dataArgs) error {
	secret, err := s.secret(NamespaceData, redisSecret, pulumi.StringMap{"REDIS_PASSWORD": args.RedisPassword})
	if err != nil {
		return err
	}
	// The server reads its password from a configuration file in a Secret of its own, never from
	// its command line, which every process on the node may read (/proc/<pid>/cmdline). The probe
	// and the exporter take it from the environment, which only the same user may read. (A Secret
	// of its own: pulumi-kubernetes replaces a Secret whose data changes, and the clients' Secret
	// stays as it was.)
	conf, err := s.secret(NamespaceData, redisConfigSecret, pulumi.StringMap{
		RedisPasswordFile: pulumi.Sprintf("requirepass %s\n", args.RedisPassword),
	})
	if err != nil {
		return err
	}
	// Ready when it answers PONG (not while it loads its append-only file: LOADING); alive while
	// it accepts connections, which it does while it loads.
	ping := execCheck("sh", "-c", `REDISCLI_AUTH="$REDIS_PASSWORD" redis-cli -h 127.0.0.1 ping | grep -q PONG`)
	sts, err := s.statefulSet(Stateful{
		Name: "redis", Namespace: NamespaceData, Replicas: 1,
		Ports:      map[string]int{"redis": redisPort},
		StorageGiB: redisStorageGiB, MountPath: "/data",
		Pod: Pod{
			Labels: labels("redis", "cache"), Role: config.RoleStorage, UID: dataUID,
			Containers: []Container{{
				Name: "redis", Image: pulumi.String(versions.Redis),
				// A configuration file first, then options, as redis-server takes them.
				Command: []string{"redis-server"},
				Args: []string{
					redisAuthDir + "/" + RedisPasswordFile,
					"--appendonly", "yes", "--appendfsync", "everysec",
					"--maxmemory", RedisMaxMemory, "--maxmemory-policy", "allkeys-lru",
					"--dir", "/data",
				},
				Mounts:    corev1.VolumeMountArray{corev1.VolumeMountArgs{Name: pulumi.String("auth"), MountPath: pulumi.String(redisAuthDir), ReadOnly: pulumi.Bool(true)}},
				Ports:     map[string]int{"redis": redisPort},
				Env:       corev1.EnvVarArray{secretEnv("REDIS_PASSWORD", redisSecret, "REDIS_PASSWORD")},
				Resources: redisResources,
				Readiness: readiness(ping, 3),
				Liveness:  liveness(tcpCheck(redisPort), 3),
			}, redisExporter()},
			// Readable by the pod's group (its fsGroup) only.
			Volumes: corev1.VolumeArray{corev1.VolumeArgs{Name: pulumi.String("auth"), Secret: &corev1.SecretVolumeSourceArgs{
				SecretName: pulumi.String(redisConfigSecret), DefaultMode: pulumi.Int(0o440),
				Items: corev1.KeyToPathArray{corev1.KeyToPathArgs{Key: pulumi.String(RedisPasswordFile), Path: pulumi.String(RedisPasswordFile)}},
			}}},
		},
	}, args.Storage.ClaimDependencies, secret, conf)
	if err != nil {
		return err
	}
	return s.podMonitor(NamespaceData, "redis", args.Monitoring, sts)
}
