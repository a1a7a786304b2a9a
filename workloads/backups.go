package workloads

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"time"

	batchv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/batch/v1"
	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/infra"
	"github.com/waste-coach/infra/internal/s3sh"
	"github.com/waste-coach/infra/versions"
)

// EtcdSnapshotScript is the etcd snapshot the schedule runs (save, then upload); the restore
// drill (tools/kube verify-local -etcd-drill) runs it from the rendered ConfigMap.
//
//go:embed scripts/etcd-snapshot.sh
var EtcdSnapshotScript string

// S3Script is the S3 code the backup scripts share (internal/s3sh); each script sources it from
// its own directory.
var S3Script = s3sh.Script

// S3ScriptFile is S3Script's file name: every ConfigMap of a backup script holds it beside the
// script, so that every container mounting the script has it too.
const S3ScriptFile = s3sh.File

// backupScripts is the data of a backup script's ConfigMap: the script and S3Script.
func backupScripts(file, script string) pulumi.StringMap {
	return pulumi.StringMap{file: pulumi.String(script), S3ScriptFile: pulumi.String(S3Script)}
}

// scriptsConfigMapName names a backup scripts' ConfigMap after its content: base, then 10 hex
// digits of the sha256 of the files. pulumi-kubernetes replaces a ConfigMap whose data changes;
// under a fixed name it must delete the old one first, and the engine then replaces what mounts
// it too (PostgreSQL's StatefulSet, deleted and created again). A new name is a new ConfigMap
// created beside the old one: what mounts it is updated in place (a rolling restart), and the old
// one goes last.
func scriptsConfigMapName(base, file, script string) string {
	sum := sha256.Sum256([]byte(file + "\x00" + script + "\x00" + S3ScriptFile + "\x00" + S3Script))
	return base + "-" + hex.EncodeToString(sum[:])[:10]
}

// Names of the scheduled backups: what an alert on a failed or missing backup selects on.
const (
	// EtcdSnapshotName names the etcd snapshot CronJob and its ConfigMap in kube-system.
	EtcdSnapshotName = "etcd-snapshot"
	// EtcdSnapshotSchedule takes a snapshot every EtcdSnapshotInterval, at 4, 19, 34 and 49
	// minutes past the hour (clear of the hour's other jobs): the cluster state's recovery point
	// is at most 15 minutes, on every stack, kept for the stack's backup retention.
	EtcdSnapshotSchedule = "4-59/15 * * * *"
	// EtcdSnapshotInterval is the time between two snapshots of EtcdSnapshotSchedule.
	EtcdSnapshotInterval = 15 * time.Minute
)

// etcdClientFiles are the files of kubeadm's etcd PKI the snapshot reads, mounted one by one
// (never the directory: it holds the etcd CA's private key), under the names the script uses.
var etcdClientFiles = []struct{ volume, host, name string }{
	{"etcd-ca", "/etc/kubernetes/pki/etcd/ca.crt", "ca.crt"},
	{"etcd-client-cert", "/etc/kubernetes/pki/etcd/healthcheck-client.crt", "client.crt"},
	{"etcd-client-key", "/etc/kubernetes/pki/etcd/healthcheck-client.key", "client.key"},
}

// etcdSnapshotScratchMiB bounds the emptyDir the etcd snapshot is written to before its upload.
const etcdSnapshotScratchMiB = 1024

// backupJob is each step of the etcd snapshot and the upload step of the PostgreSQL backups; the
// snapshot is tens of MiB for a cluster of this size, and may fill its scratch.
var backupJob = Resources{CPU: 50, MemoryMiB: 64, CPULimit: 500, MemoryLimitMiB: 256, DiskMiB: 256, DiskLimitMiB: diskLimit(etcdSnapshotScratchMiB)}

// Backups holds the scheduled backups that run on the cluster.
type Backups struct {
	pulumi.ResourceState

	// EtcdSnapshot is the etcd snapshot CronJob on the master.
	EtcdSnapshot *batchv1.CronJob
	// PostgresBaseBackup and PostgresDump are the daily PostgreSQL backups on the storage node
	// (the write-ahead log is shipped continuously by the server's pod).
	PostgresBaseBackup, PostgresDump *batchv1.CronJob
}

// backupsArgs are the inputs of the scheduled backups.
type backupsArgs struct {
	// tierArgs name the resources; the configuration names the backups bucket and the
	// Kubernetes minor (the etcd image).
	tierArgs
	// PostgresBackupScript is the backup script's ConfigMap, and PostgresBackupLogin the backup
	// role's Secret, declared with PostgreSQL (Data).
	PostgresBackupScript *corev1.ConfigMap
	PostgresBackupLogin  *corev1.Secret
	// EtcdSnapshotPrefix is the cluster's prefix of etcd snapshots (Args.EtcdSnapshotPrefix).
	EtcdSnapshotPrefix pulumi.StringInput
}

// newBackups declares the scheduled backups. The component is as old as the tier's first
// deployments under this name and parent, so its children keep their URNs without an alias.
func newBackups(ctx *pulumi.Context, name string, args *backupsArgs, opts ...pulumi.ResourceOption) (*Backups, error) {
	c := &Backups{}
	if err := ctx.RegisterComponentResource("waste-coach-infra:workloads:Backups", name, c, opts...); err != nil {
		return nil, err
	}
	if args.EtcdSnapshotPrefix == nil {
		return nil, fmt.Errorf("no etcd snapshot prefix: the cluster tier derives it from the cluster's identity")
	}
	s := args.keptScope(ctx, c)
	var err error
	if c.EtcdSnapshot, err = s.etcdSnapshot(args.EtcdSnapshotPrefix); err != nil {
		return nil, fmt.Errorf("etcd snapshot: %w", err)
	}
	if c.PostgresBaseBackup, c.PostgresDump, err = s.postgresBackups(args.PostgresBackupScript, args.PostgresBackupLogin); err != nil {
		return nil, fmt.Errorf("postgresql: %w", err)
	}
	if err := ctx.RegisterResourceOutputs(c, pulumi.Map{
		"etcdSnapshot":       c.EtcdSnapshot.Metadata.Name(),
		"postgresBaseBackup": c.PostgresBaseBackup.Metadata.Name(),
		"postgresDump":       c.PostgresDump.Metadata.Name(),
	}); err != nil {
		return nil, err
	}
	return c, nil
}

// etcdSnapshot declares the CronJob that snapshots etcd on the master and uploads it to the
// backups bucket with a role of its own (infra.PodRoleEtcdBackup). A CronJob rather than a systemd timer: its
// runs and failures are Kubernetes objects (kubectl get jobs, kube-state-metrics'
// kube_cronjob_status_last_successful_time for an alert), and the snapshot runs in the etcd
// image kubeadm already pulled, so the node needs no etcdctl of its own. The snapshots go under
// prefix, the cluster's own (cluster.EtcdSnapshotPrefix).
func (s *scope) etcdSnapshot(prefix pulumi.StringInput) (*batchv1.CronJob, error) {
	ns := NamespaceSystem
	cm, err := corev1.NewConfigMap(s.ctx, s.resourceName(ns, EtcdSnapshotName), &corev1.ConfigMapArgs{
		Metadata: meta(scriptsConfigMapName(EtcdSnapshotName, "etcd-snapshot.sh", EtcdSnapshotScript), ns, labels(EtcdSnapshotName, "backup")),
		Data:     backupScripts("etcd-snapshot.sh", EtcdSnapshotScript),
	}, s.opts(ns)...)
	if err != nil {
		return nil, err
	}
	identity := s.awsIdentity(infra.PodRoleEtcdBackup)
	sa, err := s.serviceAccount(identity, labels(EtcdSnapshotName, "backup"))
	if err != nil {
		return nil, err
	}
	const certDir, snapshotDir = "/etc/etcd-client", "/backup"
	volumes := corev1.VolumeArray{
		emptyDir("backup", etcdSnapshotScratchMiB),
		corev1.VolumeArgs{Name: pulumi.String("script"), ConfigMap: &corev1.ConfigMapVolumeSourceArgs{Name: cm.Metadata.Name()}},
	}
	mounts := corev1.VolumeMountArray{mount("backup", snapshotDir), mount("script", "/scripts")}
	saveMounts := append(corev1.VolumeMountArray{}, mounts...)
	for _, f := range etcdClientFiles {
		volumes = append(volumes, corev1.VolumeArgs{Name: pulumi.String(f.volume),
			HostPath: &corev1.HostPathVolumeSourceArgs{Path: pulumi.String(f.host), Type: pulumi.String("File")}})
		saveMounts = append(saveMounts, corev1.VolumeMountArgs{Name: pulumi.String(f.volume),
			MountPath: pulumi.String(certDir + "/" + f.name), ReadOnly: pulumi.Bool(true)})
	}
	env := corev1.EnvVarArray{plainEnv("SNAPSHOT_DIR", snapshotDir)}
	pod := Pod{
		Labels: labels(EtcdSnapshotName, "backup"), Role: config.RoleMaster,
		HostNetwork: true, RunAsRoot: true,
		Init: []Container{{
			Name: "save", Image: pulumi.String(versions.EtcdImage(s.cfg.Kubernetes.MinorString())),
			Command: []string{"/bin/sh", "/scripts/etcd-snapshot.sh", "save"},
			Env: append(append(corev1.EnvVarArray{}, env...),
				plainEnv("ETCD_ENDPOINT", "https://127.0.0.1:2379"), plainEnv("ETCD_CERT_DIR", certDir)),
			Resources: backupJob, Mounts: saveMounts,
		}},
		Containers: []Container{{
			Name: "upload", Image: pulumi.String(versions.Curl),
			Command: []string{"/bin/sh", "/scripts/etcd-snapshot.sh", "upload"},
			Env: append(append(corev1.EnvVarArray{}, env...),
				plainEnv("BACKUP_BUCKET", s.cfg.Backups.BucketName),
				corev1.EnvVarArgs{Name: pulumi.String("BACKUP_PREFIX"), Value: prefix}),
			Resources: backupJob, Mounts: mounts, AWS: true,
		}},
		Volumes: volumes,
		AWS:     identity,
	}
	tpl := pod.template()
	tpl.Spec.(*corev1.PodSpecArgs).RestartPolicy = pulumi.String("Never")
	job, err := batchv1.NewCronJob(s.ctx, s.resourceName(ns, EtcdSnapshotName), &batchv1.CronJobArgs{
		Metadata: meta(EtcdSnapshotName, ns, labels(EtcdSnapshotName, "backup")),
		Spec: &batchv1.CronJobSpecArgs{
			Schedule:                   pulumi.String(EtcdSnapshotSchedule),
			TimeZone:                   pulumi.String("Etc/UTC"),
			ConcurrencyPolicy:          pulumi.String("Forbid"),
			StartingDeadlineSeconds:    pulumi.Int(3600),
			SuccessfulJobsHistoryLimit: pulumi.Int(3),
			FailedJobsHistoryLimit:     pulumi.Int(3),
			JobTemplate: &batchv1.JobTemplateSpecArgs{
				Metadata: &metav1.ObjectMetaArgs{Labels: labels(EtcdSnapshotName, "backup")},
				Spec: &batchv1.JobSpecArgs{
					BackoffLimit:          pulumi.Int(2),
					ActiveDeadlineSeconds: pulumi.Int(1200),
					Template:              tpl,
				},
			},
		},
	}, s.opts(ns, cm, sa)...)
	if err != nil {
		return nil, err
	}
	return job, nil
}
