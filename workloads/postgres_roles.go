package workloads

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"gopkg.in/yaml.v3"

	"github.com/waste-coach/infra/alerting"
	"github.com/waste-coach/infra/versions"
)

// Who may do what in PostgreSQL. The image's POSTGRES_USER is the bootstrap superuser: it owns
// the cluster, cannot be demoted and its objects cannot be handed over wholesale, so it stays the
// server's own, reachable only on the local socket inside the server's pod (pg_hba.conf); the
// clients each have a role of their own with only what they need, applied on every start of
// the pod by the db-roles container (scripts/db-roles.sh, scripts/postgres-roles.sql):
//   - the application (PostgresAppRole) owns its schemas and what is in them, and nothing else:
//     it cannot run a program on the server (COPY ... TO PROGRAM) or read its files;
//   - the backup Jobs (PostgresBackupRole) read everything and run the low-level backup API;
//   - the exporter (PostgresMonitorRole) reads the statistics, from 127.0.0.1 only.
// tools/pgdrill proves each on a real server with the rendered files.

// PostgresRolesSQL is the roles and ownership the db-roles container applies (see its header).
//
//go:embed scripts/postgres-roles.sql
var PostgresRolesSQL string

// DBRolesScript is the db-roles container's script, which runs PostgresRolesSQL.
//
//go:embed scripts/db-roles.sh
var DBRolesScript string

// PostgreSQL's roles, and the Secrets of their passwords in the data namespace (key
// postgresPasswordKey). The superuser is postgresUser, whose Secret (postgresSecret) only the
// server's container reads.
const (
	// PostgresAppRole is the application's login (DATABASE_URL).
	PostgresAppRole = "wastecoach_app"
	// PostgresBackupRole is the base backup's and the dump's login.
	PostgresBackupRole = "wastecoach_backup"
	// PostgresMonitorRole is the exporter's login.
	PostgresMonitorRole = "wastecoach_monitor"

	postgresAppSecret     = "postgres-app"
	postgresBackupSecret  = "postgres-backup"
	postgresMonitorSecret = "postgres-monitor"
	postgresPasswordKey   = "password"
)

// The postgres-config ConfigMap: pg_hba.conf for the server, the roles for db-roles, the
// exporter's query; each container mounts only its own files.
const (
	// PostgresConfigMap names the ConfigMap, after its content (contentConfigMapName): a change
	// is a new ConfigMap and a rolling restart of the server's pod, which reads pg_hba.conf and
	// applies the roles only when it starts.
	PostgresConfigMap = "postgres-config"
	// PostgresHBAFile is where the server reads pg_hba.conf (its hba_file).
	PostgresHBAFile = postgresHBADir + "/" + hbaFileName
	// DBRolesDir is where the db-roles container mounts its script and roles.sql.
	DBRolesDir = "/etc/db-roles"
	// DBRolesContainer names the container beside the server that applies the roles.
	DBRolesContainer = "db-roles"
	// PostgresExporterQueries is the exporter's query file (PostgresExporterQueryFile).
	PostgresExporterQueries = postgresExporterQueryDir + "/" + exporterQueryFileName

	postgresHBADir           = "/etc/postgresql"
	postgresExporterQueryDir = "/etc/postgres-exporter"
	hbaFileName              = "pg_hba.conf"
	rolesSQLFileName         = "roles.sql"
	rolesScriptFileName      = "db-roles.sh"
	exporterQueryFileName    = "queries.yaml"
	// postgresSocketDir is the server's socket directory (the image's default), an emptyDir the
	// server and db-roles share.
	postgresSocketDir = "/var/run/postgresql"
	// dbRolesStateDir holds the mark of the roles applied (an emptyDir of db-roles only).
	dbRolesStateDir = "/var/run/db-roles"
)

// PostgresHBA is the server's pg_hba.conf. The first line that matches a connection decides it:
// the superuser comes in only on the local socket (trust: only the containers that mount the
// socket's emptyDir, the server's and db-roles, reach it, and `kubectl exec` into them) and is
// refused over the network; the application and the backups log in with their passwords to the
// application's database only, the exporter from the pod's loopback only; everything else is
// refused (replication connections match no line, and are refused too).
func PostgresHBA() string {
	rows := [][]string{
		{"# TYPE", "DATABASE", "USER", "ADDRESS", "METHOD"},
		{"local", "all", postgresUser, "", "trust"},
		{"host", "all", postgresUser, "all", "reject"},
		{"host", postgresDatabase, PostgresAppRole + "," + PostgresBackupRole, "all", "scram-sha-256"},
		{"host", postgresDatabase, PostgresMonitorRole, "127.0.0.1/32", "scram-sha-256"},
		{"host", "all", "all", "all", "reject"},
	}
	var b strings.Builder
	b.WriteString("# The program's pg_hba.conf (workloads/postgres_roles.go, PostgresHBA); the first matching line decides.\n")
	for _, r := range rows {
		b.WriteString(strings.TrimRight(fmt.Sprintf("%-7s %-11s %-35s %-13s %s", r[0], r[1], r[2], r[3], r[4]), " ") + "\n")
	}
	return b.String()
}

// postgresArchiving are the server settings continuous archiving rests on, as the server's
// arguments set them (PostgresServerArgs) and as pg_settings shows them, archive_library's
// absence included: a library would take archiving from archive_command (PostgreSQL 15) or stop
// it (16).
func postgresArchiving() [][2]string {
	return [][2]string{
		{"wal_level", "replica"},
		{"archive_mode", "on"},
		{"archive_command", PostgresArchiveCommand},
		{"archive_timeout", fmt.Sprint(PostgresArchiveTimeoutSeconds)},
		{"archive_library", ""},
	}
}

// sqlString quotes s as an SQL string literal (standard_conforming_strings, the default).
func sqlString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// PostgresArchivingQuery is the exporter's query of the archiving settings: 1 while every one is
// as the program set it, 0 otherwise (ALTER SYSTEM can still set archive_library, which the
// arguments leave out, and a setting the monitoring role could not read counts as changed).
func PostgresArchivingQuery() string {
	var pairs []string
	for _, s := range postgresArchiving() {
		pairs = append(pairs, fmt.Sprintf("(%s, %s)", sqlString(s[0]), sqlString(s[1])))
	}
	return fmt.Sprintf("SELECT (count(*) = %d)::int AS %s FROM pg_settings WHERE (name, setting) IN (%s)",
		len(pairs), alerting.PostgresArchivingColumn, strings.Join(pairs, ", "))
}

// PostgresExporterQueryFile is the exporter's query file (its extend.query-path, which the
// exporter still reads though it calls it deprecated): PostgresArchivingQuery as the gauge
// alerting.PostgresArchivingMetric, which PostgreSQLArchivingNotAsDeclared watches. Its pg_settings
// metrics cover numbers and booleans only, not archive_command.
func PostgresExporterQueryFile() string {
	type column struct {
		Usage       string `yaml:"usage"`
		Description string `yaml:"description"`
	}
	type query struct {
		Query   string              `yaml:"query"`
		Master  bool                `yaml:"master"`
		Metrics []map[string]column `yaml:"metrics"`
	}
	var b strings.Builder
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	err := enc.Encode(map[string]query{alerting.PostgresArchivingQueryName: {
		Query: PostgresArchivingQuery(), Master: true,
		Metrics: []map[string]column{{alerting.PostgresArchivingColumn: {
			Usage:       "GAUGE",
			Description: "1 while wal_level, archive_mode, archive_command, archive_timeout and archive_library are as the program set them",
		}}},
	}})
	if err == nil {
		err = enc.Close()
	}
	if err != nil {
		panic("workloads: the exporter's query file: " + err.Error()) // plain strings always marshal
	}
	return b.String()
}

// postgresConfigFiles are the ConfigMap's files by name.
func postgresConfigFiles() map[string]string {
	return map[string]string{
		hbaFileName:           PostgresHBA(),
		rolesSQLFileName:      PostgresRolesSQL,
		rolesScriptFileName:   DBRolesScript,
		exporterQueryFileName: PostgresExporterQueryFile(),
	}
}

// contentConfigMapName names a ConfigMap after its files: base, then 10 hex digits of the
// sha256 of their names and contents (why: scriptsConfigMapName).
func contentConfigMapName(base string, files map[string]string) string {
	h := sha256.New()
	for _, name := range slices.Sorted(maps.Keys(files)) {
		h.Write([]byte(name + "\x00" + files[name] + "\x00"))
	}
	return base + "-" + hex.EncodeToString(h.Sum(nil))[:10]
}

// postgresConfig declares the postgres-config ConfigMap.
func (s *scope) postgresConfig() (*corev1.ConfigMap, error) {
	files := postgresConfigFiles()
	cm, err := corev1.NewConfigMap(s.ctx, s.resourceName(NamespaceData, PostgresConfigMap), &corev1.ConfigMapArgs{
		Metadata: meta(contentConfigMapName(PostgresConfigMap, files), NamespaceData, labels(PostgresConfigMap, "database")),
		Data:     pulumi.ToStringMap(files),
	}, s.opts(NamespaceData)...)
	if err != nil {
		return nil, fmt.Errorf("config map %s: %w", PostgresConfigMap, err)
	}
	return cm, nil
}

// configFiles is a volume of some of the ConfigMap's files.
func configFiles(volume string, cm *corev1.ConfigMap, mode int, files ...string) corev1.VolumeArgs {
	items := corev1.KeyToPathArray{}
	for _, f := range files {
		items = append(items, corev1.KeyToPathArgs{Key: pulumi.String(f), Path: pulumi.String(f)})
	}
	return corev1.VolumeArgs{Name: pulumi.String(volume), ConfigMap: &corev1.ConfigMapVolumeSourceArgs{
		Name: cm.Metadata.Name(), Items: items, DefaultMode: pulumi.Int(mode),
	}}
}

func readOnlyMount(name, path string) corev1.VolumeMountArgs {
	return corev1.VolumeMountArgs{Name: pulumi.String(name), MountPath: pulumi.String(path), ReadOnly: pulumi.Bool(true)}
}

// postgresLogins are the clients' passwords (secrets), each in its Secret.
type postgresLogins struct {
	App, Backup, Monitor pulumi.StringOutput
}

// postgresLoginSecrets declares the Secrets of the clients' passwords; the backup's is returned
// for the backup CronJobs to wait for.
func (s *scope) postgresLoginSecrets(logins postgresLogins) (all []pulumi.Resource, backup *corev1.Secret, err error) {
	for _, l := range []struct {
		secret   string
		password pulumi.StringOutput
	}{{postgresAppSecret, logins.App}, {postgresBackupSecret, logins.Backup}, {postgresMonitorSecret, logins.Monitor}} {
		sec, err := s.secret(NamespaceData, l.secret, pulumi.StringMap{postgresPasswordKey: l.password})
		if err != nil {
			return nil, nil, err
		}
		all = append(all, sec)
		if l.secret == postgresBackupSecret {
			backup = sec
		}
	}
	return all, backup, nil
}

var dbRolesResources = Resources{CPU: 10, MemoryMiB: 32, CPULimit: 200, MemoryLimitMiB: 64, DiskMiB: 16, DiskLimitMiB: diskLimit(1)}

// dbRoles is the container beside the server that applies the roles (DBRolesScript) as the
// superuser over the local socket, on every start of the pod. Unlike the other sidecars it has a
// readiness probe, on its mark: until the roles are applied the clients cannot log in, so the
// pod is not ready for them (and `pulumi up` waits for it, then fails if they never are).
func dbRoles() Container {
	applied := dbRolesStateDir + "/applied"
	return Container{
		Name: DBRolesContainer, Image: pulumi.String(versions.Postgres),
		Command: []string{"/bin/sh", DBRolesDir + "/" + rolesScriptFileName},
		Env: corev1.EnvVarArray{
			plainEnv("PGHOST", postgresSocketDir),
			plainEnv("PGPORT", fmt.Sprint(postgresPort)),
			plainEnv("PGUSER", postgresUser),
			plainEnv("PGDATABASE", postgresDatabase),
			plainEnv("PGCONNECT_TIMEOUT", "10"),
			plainEnv("ROLES_APPLIED", applied),
			plainEnv("APP_ROLE", PostgresAppRole),
			secretEnv("APP_PASSWORD", postgresAppSecret, postgresPasswordKey),
			plainEnv("BACKUP_ROLE", PostgresBackupRole),
			secretEnv("BACKUP_PASSWORD", postgresBackupSecret, postgresPasswordKey),
			plainEnv("MONITOR_ROLE", PostgresMonitorRole),
			secretEnv("MONITOR_PASSWORD", postgresMonitorSecret, postgresPasswordKey),
		},
		Resources: dbRolesResources,
		Readiness: readiness(execCheck("test", "-f", applied), 3),
		// The script retries by itself and never waits on anything without a timeout: alive is
		// its process (pid 1, the script or its final sleep) being there.
		Liveness: liveness(execCheck("sh", "-c", "kill -0 1"), 3),
		Mounts: corev1.VolumeMountArray{
			mount("run", postgresSocketDir),
			readOnlyMount("roles", DBRolesDir),
			mount("roles-state", dbRolesStateDir),
		},
	}
}
