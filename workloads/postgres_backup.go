package workloads

import (
	_ "embed"
	"fmt"
	"strconv"
	"time"

	batchv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/batch/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/infra"
	"github.com/waste-coach/infra/versions"
)

// PostgreSQL backups, with PostgreSQL's own tools and nothing else: the server archives each
// finished write-ahead log segment (archive_command) and a container beside it ships the
// segments to the backups bucket; a daily CronJob takes a base backup with the server's
// low-level backup API; another dumps the database with pg_dump -Fc. Together they restore the
// database to any moment of the retention window (the latest base backup before it, then the
// WAL up to it), and the dump is a second, portable copy.
//
// Why not WAL-G or pgBackRest: WAL-G cannot be built here (the Go module proxy does not serve
// it), and the Debian packages that can be installed here (pgBackRest 2.45, barman-cli-cloud
// 3.4) were released before PostgreSQL 16 existed; pgBackRest refuses server versions it does
// not know. A backup that has never been restored is not one: this way the exact script and
// server settings the cluster runs are restored from, in CI, by tools/pgdrill.

// PostgresBackupScript is the script of every PostgreSQL backup step (see its header).
//
//go:embed scripts/postgres-backup.sh
var PostgresBackupScript string

// BackupSchedule is when a CronJob runs: its schedule and the time zone it is read in.
type BackupSchedule struct{ Cron, TimeZone string }

// PostgresBackupSchedules are the base backup's and the dump's schedules. A stack with office
// hours is stopped outside them, and a run whose time passes while the cluster is stopped never
// happens (the starting deadline is an hour): there they run 60 and 90 minutes after the start
// of office hours, on the office days, in the office hours' time zone.
func PostgresBackupSchedules(cfg *config.Config) (base, dump BackupSchedule) {
	if o := cfg.OfficeHours; o != nil {
		return BackupSchedule{o.CronJobSchedule(60), o.TimeZone}, BackupSchedule{o.CronJobSchedule(90), o.TimeZone}
	}
	return BackupSchedule{PostgresBaseBackupSchedule, "Etc/UTC"}, BackupSchedule{PostgresDumpSchedule, "Etc/UTC"}
}

// DailyBackupMaxAge is how old a daily backup's last success may be before BackupTooOld: the
// longest wait for its next run plus two hours, a day around the clock, three over a weekend on
// an office-hours stack (which is stopped then, and whose alerts are stopped with it).
func DailyBackupMaxAge(cfg *config.Config) time.Duration {
	days := 1
	if cfg.OfficeHours != nil {
		days = cfg.OfficeHours.LongestGapDays()
	}
	return time.Duration(24*days+2) * time.Hour
}

// Names, schedules and settings of the PostgreSQL backups.
const (
	// PostgresBackupConfigMap holds PostgresBackupScript and S3Script in the data namespace,
	// mounted at PostgresScriptDir in the server's pod and in the backup Jobs; its name is this
	// and a hash of its content (scriptsConfigMapName).
	PostgresBackupConfigMap = "postgres-backup"
	// PostgresScriptDir is where the script is mounted; the archive_command names it.
	PostgresScriptDir = "/scripts"
	// PostgresBaseBackupName names the daily base backup CronJob.
	PostgresBaseBackupName = "postgres-base-backup"
	// PostgresDumpName names the daily logical dump CronJob.
	PostgresDumpName = "postgres-dump"
	// PostgresBaseBackupSchedule is 17:15 UTC (02:15 in Seoul), before the volume snapshots, on
	// a stack that runs around the clock (PostgresBackupSchedules).
	PostgresBaseBackupSchedule = "15 17 * * *"
	// PostgresDumpSchedule is 17:45 UTC, after the base backup.
	PostgresDumpSchedule = "45 17 * * *"
	// PostgresArchiveTimeoutSeconds forces a segment switch at least this often, so that a quiet
	// database still archives its last changes. With the shipper's interval and an upload it
	// keeps the recovery point within 5 minutes.
	PostgresArchiveTimeoutSeconds = 240
	// WALShipperContainer names the container beside the server that ships the WAL.
	WALShipperContainer = "wal-shipper"
	// WALShipIntervalSeconds is how often the shipper uploads the outbox.
	WALShipIntervalSeconds = 20
	// WALOutbox is where archive_command puts finished segments until they are shipped: on the
	// data volume (beside PGDATA, not in it), so that a segment PostgreSQL counts as archived
	// survives a restart of the pod.
	WALOutbox = "/var/lib/postgresql/data/wal-outbox"
	// postgresDataMount is where the data volume is mounted; PGDATA is a directory in it.
	postgresDataMount = "/var/lib/postgresql/data"
	postgresPGDATA    = postgresDataMount + "/pgdata"
)

// PostgresArchiveCommand is the server's archive_command: the backup script's archive-wal step.
const PostgresArchiveCommand = "/bin/sh " + PostgresScriptDir + "/postgres-backup.sh archive-wal %p %f"

// PostgresServerArgs are the server's arguments: the image's entrypoint runs postgres with them
// (and passes them to the temporary server of the first initialisation). Continuous archiving
// needs wal_level replica (the default, set so that nobody lowers it), archive_mode on and the
// archive_command; archive_timeout bounds how long a change waits in an unfinished segment
// (postgresArchiving, which the exporter's query compares the running server with). Settings on
// the command line take precedence over ALTER SYSTEM. hba_file is the program's pg_hba.conf
// (PostgresHBA), not the one initdb wrote into the data directory.
func PostgresServerArgs() []string {
	args := []string{"postgres"}
	for _, s := range postgresArchiving() {
		if s[1] != "" {
			args = append(args, "-c", s[0]+"="+s[1])
		}
	}
	return append(args, "-c", "hba_file="+PostgresHBAFile)
}

// postgresBackupScratchMiB bounds the emptyDir a base backup or a dump is written to before its
// upload: the size of the largest backup the jobs can take.
const postgresBackupScratchMiB = 20 * 1024

var (
	walShipperResources = Resources{CPU: 10, MemoryMiB: 32, CPULimit: 200, MemoryLimitMiB: 64, DiskMiB: 16, DiskLimitMiB: diskLimit(0)}
	// pgBackupJob writes the backup: it requests what today's database takes compressed, and may
	// fill its scratch (the pod's limit is its init container's, the larger). Past its request
	// it is the first pod the kubelet evicts under disk pressure, before any serving pod.
	pgBackupJob = Resources{CPU: 100, MemoryMiB: 128, CPULimit: 1000, MemoryLimitMiB: 512, DiskMiB: 2048, DiskLimitMiB: diskLimit(postgresBackupScratchMiB)}
)

// backupEnv is where the backups go: PostgreSQL's prefix of the bucket (the region comes with
// the container's AWS identity).
func (s *scope) backupEnv() corev1.EnvVarArray {
	return corev1.EnvVarArray{
		plainEnv("BACKUP_BUCKET", s.cfg.Backups.BucketName),
		plainEnv("BACKUP_PREFIX", config.BackupPrefix(config.RoleStorage)),
	}
}

// postgresBackupScript declares the ConfigMap of the backup script.
func (s *scope) postgresBackupScript() (*corev1.ConfigMap, error) {
	return corev1.NewConfigMap(s.ctx, s.resourceName(NamespaceData, PostgresBackupConfigMap), &corev1.ConfigMapArgs{
		Metadata: meta(scriptsConfigMapName(PostgresBackupConfigMap, "postgres-backup.sh", PostgresBackupScript), NamespaceData, labels(PostgresBackupConfigMap, "backup")),
		Data:     backupScripts("postgres-backup.sh", PostgresBackupScript),
	}, s.opts(NamespaceData)...)
}

func scriptVolume(cm *corev1.ConfigMap) corev1.VolumeArgs {
	return corev1.VolumeArgs{Name: pulumi.String("backup-script"), ConfigMap: &corev1.ConfigMapVolumeSourceArgs{Name: cm.Metadata.Name()}}
}

// walShipper is the container beside the server that uploads the archived segments with the
// pod's role (infra.PodRolePostgresWAL), which writes only under wal/. Its probe fails when no pass has succeeded for ten intervals, so a
// shipper that cannot reach the bucket is restarted and counted (kube_pod_container_status_restarts).
func (s *scope) walShipper() Container {
	healthy := execCheck("/bin/sh", PostgresScriptDir+"/postgres-backup.sh", "healthy")
	return Container{
		Name: WALShipperContainer, Image: pulumi.String(versions.Curl),
		Command: []string{"/bin/sh", PostgresScriptDir + "/postgres-backup.sh", "ship-wal"},
		Env: append(s.backupEnv(),
			plainEnv("WAL_OUTBOX", WALOutbox), plainEnv("SHIP_INTERVAL", strconv.Itoa(WALShipIntervalSeconds))),
		Resources: walShipperResources, AWS: true,
		// No readiness probe: an unreachable bucket must not take PostgreSQL out of its Service.
		// The check itself waits ten failed passes; liveness then restarts the shipper.
		Liveness: liveness(healthy, 5),
		Mounts: corev1.VolumeMountArray{
			mount("backup-script", PostgresScriptDir),
			// The whole volume, as the server mounts it: the outbox is created by the server's
			// archive_command, as the same user.
			mount(VolumeName, postgresDataMount),
		},
	}
}

// postgresBackupJob declares a daily CronJob in the data namespace on the storage node: the
// first step (postgres image, the server's major) writes into an emptyDir, the second (curl
// image) uploads it. The first logs in as the backup role, its password from the backup role's
// Secret (login), never from the manifest.
func (s *scope) postgresBackupJob(name string, schedule BackupSchedule, step, kind string, dataVolume bool, cm *corev1.ConfigMap, login *corev1.Secret, sa *corev1.ServiceAccount) (*batchv1.CronJob, error) {
	ns := NamespaceData
	identity := s.awsIdentity(infra.PodRolePostgresBackup)
	const backupDir = "/backup"
	l := labels(name, "backup")
	volumes := corev1.VolumeArray{emptyDir("backup", postgresBackupScratchMiB), scriptVolume(cm)}
	mounts := corev1.VolumeMountArray{mount("backup", backupDir), mount("backup-script", PostgresScriptDir)}
	env := corev1.EnvVarArray{
		plainEnv("BACKUP_DIR", backupDir),
		plainEnv("PGHOST", serviceDNS("postgres", ns)),
		plainEnv("PGPORT", strconv.Itoa(postgresPort)),
		plainEnv("PGUSER", PostgresBackupRole),
		secretEnv("PGPASSWORD", postgresBackupSecret, postgresPasswordKey),
		plainEnv("PGDATABASE", postgresDatabase),
		plainEnv("PGCONNECT_TIMEOUT", "30"),
	}
	stepMounts := append(corev1.VolumeMountArray{}, mounts...)
	if dataVolume {
		// The base backup reads the data directory: the server's claim, read-only, on the same
		// node (ReadWriteOnce is per node).
		volumes = append(volumes, corev1.VolumeArgs{Name: pulumi.String(VolumeName), PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSourceArgs{
			ClaimName: pulumi.String(VolumeName + "-postgres-0"), ReadOnly: pulumi.Bool(true)}})
		stepMounts = append(stepMounts, corev1.VolumeMountArgs{Name: pulumi.String(VolumeName), MountPath: pulumi.String(postgresDataMount), ReadOnly: pulumi.Bool(true)})
		env = append(env, plainEnv("PGDATA", postgresPGDATA))
	}
	pod := Pod{
		Labels: l, Role: config.RoleStorage, UID: dataUID,
		Init: []Container{{
			Name: step, Image: pulumi.String(versions.Postgres),
			Command:   []string{"/bin/sh", PostgresScriptDir + "/postgres-backup.sh", step},
			Env:       env,
			Resources: pgBackupJob, Mounts: stepMounts,
		}},
		Containers: []Container{{
			Name: "upload", Image: pulumi.String(versions.Curl),
			Command:   []string{"/bin/sh", PostgresScriptDir + "/postgres-backup.sh", "upload", kind},
			Env:       append(s.backupEnv(), plainEnv("BACKUP_DIR", backupDir)),
			Resources: backupJob, Mounts: mounts, AWS: true,
		}},
		Volumes: volumes,
		AWS:     identity,
	}
	tpl := pod.template()
	tpl.Spec.(*corev1.PodSpecArgs).RestartPolicy = pulumi.String("Never")
	return batchv1.NewCronJob(s.ctx, s.resourceName(ns, name), &batchv1.CronJobArgs{
		Metadata: meta(name, ns, l),
		Spec: &batchv1.CronJobSpecArgs{
			Schedule:                   pulumi.String(schedule.Cron),
			TimeZone:                   pulumi.String(schedule.TimeZone),
			ConcurrencyPolicy:          pulumi.String("Forbid"),
			StartingDeadlineSeconds:    pulumi.Int(3600),
			SuccessfulJobsHistoryLimit: pulumi.Int(3),
			FailedJobsHistoryLimit:     pulumi.Int(3),
			JobTemplate: &batchv1.JobTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: l},
				Spec: &batchv1.JobSpecArgs{
					BackoffLimit:          pulumi.Int(2),
					ActiveDeadlineSeconds: pulumi.Int(3 * 3600),
					Template:              tpl,
				},
			},
		},
	}, s.opts(ns, cm, login, sa)...)
}

// postgresBackups declares the daily base backup and dump CronJobs, which mount script and log
// in with login (the ConfigMap and the backup role's Secret Data declares with PostgreSQL).
func (s *scope) postgresBackups(script *corev1.ConfigMap, login *corev1.Secret) (base, dump *batchv1.CronJob, err error) {
	if script == nil || login == nil {
		return nil, nil, fmt.Errorf("the backup script's ConfigMap and the backup role's Secret are declared with PostgreSQL, which has not been declared")
	}
	// The jobs' ServiceAccount, which the restore Jobs of docs/operations.md run as too.
	sa, err := s.serviceAccount(s.awsIdentity(infra.PodRolePostgresBackup), labels(infra.PodRoleByKey(infra.PodRolePostgresBackup).ServiceAccount, "backup"))
	if err != nil {
		return nil, nil, fmt.Errorf("backup service account: %w", err)
	}
	baseSchedule, dumpSchedule := PostgresBackupSchedules(s.cfg)
	if base, err = s.postgresBackupJob(PostgresBaseBackupName, baseSchedule, "base-backup", "base", true, script, login, sa); err != nil {
		return nil, nil, fmt.Errorf("base backup: %w", err)
	}
	if dump, err = s.postgresBackupJob(PostgresDumpName, dumpSchedule, "dump", "dump", false, script, login, sa); err != nil {
		return nil, nil, fmt.Errorf("dump: %w", err)
	}
	return base, dump, nil
}
