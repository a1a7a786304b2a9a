package tests

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/infra"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/versions"
	"github.com/waste-coach/infra/workloads"
)

// containerNamed returns the container (or init container) of a pod spec by name.
func containerNamed(pod any, name string) map[string]any {
	for _, list := range []string{"containers", "initContainers"} {
		cs, _ := at(pod, list).([]any)
		for _, c := range cs {
			if at(c, "name") == name {
				return c.(map[string]any)
			}
		}
	}
	return nil
}

func envOf(c map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	es, _ := c["env"].([]any)
	for _, e := range es {
		out[fmt.Sprint(at(e, "name"))] = e.(map[string]any)
	}
	return out
}

// serverSetting returns the value of a -c name=value argument of the postgres container.
func serverSetting(args []any, name string) (string, bool) {
	for i, a := range args {
		if a == "-c" && i+1 < len(args) {
			if v, ok := strings.CutPrefix(fmt.Sprint(args[i+1]), name+"="); ok {
				return v, true
			}
		}
	}
	return "", false
}

// TestPostgresArchivesItsWALWithinTheRecoveryPoint: the server archives every WAL segment
// through the backup script into an outbox on its data volume (so an archived segment survives
// a pod restart), closes a segment at least every archive_timeout, and the wal-shipper beside it
// uploads the outbox often enough that archive_timeout + the ship interval stay within the 5
// minutes of the recovery point objective.
func TestPostgresArchivesItsWALWithinTheRecoveryPoint(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		pod := at(named(r, "StatefulSet", "postgres"), "spec", "template", "spec")
		pg := containerNamed(pod, "postgres")
		if pg == nil {
			t.Fatal("StatefulSet postgres has no postgres container")
		}
		args, _ := pg["args"].([]any)
		if len(args) == 0 || args[0] != "postgres" {
			t.Fatalf("postgres container args %v do not start the server through the image's entrypoint", args)
		}
		for name, want := range map[string]string{"wal_level": "replica", "archive_mode": "on"} {
			if got, _ := serverSetting(args, name); got != want {
				t.Errorf("postgres %s = %q, want %q: without it no WAL is archived", name, got, want)
			}
		}
		cmd, _ := serverSetting(args, "archive_command")
		if cmd != "/bin/sh "+workloads.PostgresScriptDir+"/postgres-backup.sh archive-wal %p %f" {
			t.Errorf("archive_command = %q, want the backup script's archive-wal step with %%p %%f", cmd)
		}
		timeout, _ := serverSetting(args, "archive_timeout")
		secs, err := strconv.Atoi(timeout)
		if err != nil || secs <= 0 || secs > 300 {
			t.Errorf("archive_timeout = %q, want 1..300 seconds (a segment at least every 5 minutes)", timeout)
		}
		outbox := fmt.Sprint(at(envOf(pg)["WAL_OUTBOX"], "value"))
		dataMount := ""
		mounts, _ := pg["volumeMounts"].([]any)
		for _, m := range mounts {
			if at(m, "name") == workloads.VolumeName {
				dataMount = fmt.Sprint(at(m, "mountPath"))
			}
		}
		if dataMount == "" || !strings.HasPrefix(outbox, dataMount+"/") || strings.HasPrefix(outbox, fmt.Sprint(at(envOf(pg)["PGDATA"], "value"))) {
			t.Errorf("WAL_OUTBOX %q is not on the data volume (%q) beside PGDATA: an archived segment would be lost with the pod, or copied into base backups", outbox, dataMount)
		}

		ship := containerNamed(pod, "wal-shipper")
		if ship == nil {
			t.Fatal("StatefulSet postgres has no wal-shipper container: archived segments never leave the node")
		}
		if ship["image"] != versions.Curl {
			t.Errorf("wal-shipper image %v, want the pinned %s", ship["image"], versions.Curl)
		}
		if got := at(ship, "command", 2); got != "ship-wal" {
			t.Errorf("wal-shipper runs step %v, want ship-wal", got)
		}
		env := envOf(ship)
		if at(env["WAL_OUTBOX"], "value") != outbox {
			t.Errorf("wal-shipper ships %v, the server archives to %s", at(env["WAL_OUTBOX"], "value"), outbox)
		}
		interval, err := strconv.Atoi(fmt.Sprint(at(env["SHIP_INTERVAL"], "value")))
		if err != nil || secs+interval > 300 {
			t.Errorf("archive_timeout %ds + ship interval %v exceeds the 5-minute recovery point", secs, at(env["SHIP_INTERVAL"], "value"))
		}
		if got, want := at(env["BACKUP_PREFIX"], "value"), config.BackupPrefix(config.RoleStorage); got != want {
			t.Errorf("wal-shipper writes under %v, but its pod role may only write under %s/wal/", got, want)
		}
		if got := at(env["BACKUP_BUCKET"], "value"); got != r.Stack+"-sesacthon-backups" {
			t.Errorf("wal-shipper uploads to bucket %v, want the stack's backups bucket", got)
		}
	})
}

var cronAt = regexp.MustCompile(`^([0-9]{1,2}) ([0-9]{1,2}) \* \* (\*|[A-Z,]+)$`)

// runsWhileTheClusterRuns: a daily backup's schedule fires when the stack's nodes run: any time
// around the clock on a stack without office hours, else on the office days, in their time zone,
// at least half an hour after the start (the nodes boot) and before the stop.
func runsWhileTheClusterRuns(t *testing.T, cfg *config.Config, name string, spec any) {
	t.Helper()
	schedule, zone := fmt.Sprint(at(spec, "schedule")), at(spec, "timeZone")
	m := cronAt.FindStringSubmatch(schedule)
	if m == nil {
		t.Errorf("CronJob %s schedule %q: want a daily time", name, schedule)
		return
	}
	o := cfg.OfficeHours
	if o == nil {
		if m[3] != "*" || zone != "Etc/UTC" {
			t.Errorf("CronJob %s runs %q in %v, want every day at a fixed UTC time", name, schedule, zone)
		}
		return
	}
	minute, _ := strconv.Atoi(m[1])
	hour, _ := strconv.Atoi(m[2])
	runs := fmt.Sprintf("%02d:%02d", hour, minute)
	start, _ := time.Parse("15:04", o.Start)
	stop, _ := time.Parse("15:04", o.Stop)
	// Half an hour after the start (the cluster boots) and before the stop.
	if zone != o.TimeZone || m[3] != strings.Join(o.Days, ",") || runs < start.Add(30*time.Minute).Format("15:04") || runs > stop.Add(-30*time.Minute).Format("15:04") {
		t.Errorf("CronJob %s runs %q in %v; the cluster runs only %s: a run outside it never happens", name, schedule, zone, o)
	}
}

// TestPostgresBaseBackupAndDumpRunDaily: the base backup and the dump are daily CronJobs on the
// storage node in the data namespace, one at a time, their failures kept in the history; the
// backup step runs in the server's own image (same major: pg_dump refuses a newer server) and
// the upload in the pinned curl image, each a step of the script the drill restores from.
func TestPostgresBaseBackupAndDumpRunDaily(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		for _, c := range []struct{ name, step, kind string }{
			{workloads.PostgresBaseBackupName, "base-backup", "base"},
			{workloads.PostgresDumpName, "dump", "dump"},
		} {
			cj := objects(r, "CronJob")[workloads.NamespaceData+"/"+c.name]
			if cj == nil {
				t.Errorf("no CronJob %s/%s", workloads.NamespaceData, c.name)
				continue
			}
			spec := at(cj, "spec")
			runsWhileTheClusterRuns(t, r.Config, c.name, spec)
			if at(spec, "concurrencyPolicy") != "Forbid" {
				t.Errorf("CronJob %s may run twice at once", c.name)
			}
			if n, _ := at(spec, "failedJobsHistoryLimit").(float64); n < 1 {
				t.Errorf("CronJob %s keeps no failed Jobs: a failure would not be visible", c.name)
			}
			pod := at(spec, "jobTemplate", "spec", "template", "spec")
			if at(pod, "nodeSelector", config.WorkloadLabel) != string(config.RoleStorage) {
				t.Errorf("CronJob %s runs on %v, want the storage node (beside its data)", c.name, at(pod, "nodeSelector"))
			}
			step, upload := containerNamed(pod, c.step), containerNamed(pod, "upload")
			if step == nil || upload == nil {
				t.Errorf("CronJob %s lacks its %s or upload step", c.name, c.step)
				continue
			}
			if step["image"] != versions.Postgres || !strings.Contains(versions.Postgres, ":16.") {
				t.Errorf("CronJob %s step %s runs %v, want the server's image %s (PostgreSQL 16)", c.name, c.step, step["image"], versions.Postgres)
			}
			if upload["image"] != versions.Curl {
				t.Errorf("CronJob %s upload runs %v, want %s", c.name, upload["image"], versions.Curl)
			}
			if got := fmt.Sprint(at(step, "command")); got != fmt.Sprint([]any{"/bin/sh", workloads.PostgresScriptDir + "/postgres-backup.sh", c.step}) {
				t.Errorf("CronJob %s step command %s, want the script's %s step", c.name, got, c.step)
			}
			if got := fmt.Sprint(at(upload, "command")); got != fmt.Sprint([]any{"/bin/sh", workloads.PostgresScriptDir + "/postgres-backup.sh", "upload", c.kind}) {
				t.Errorf("CronJob %s upload command %s, want upload %s", c.name, got, c.kind)
			}
		}
		cm := must(t, r, "kubernetes:core/v1:ConfigMap", "sesacthon-data-"+workloads.PostgresBackupConfigMap)
		if str(cm, "data", "postgres-backup.sh") != workloads.PostgresBackupScript {
			t.Errorf("the postgres-backup ConfigMap does not hold the embedded script the drill runs")
		}
	})
}

// TestPostgresBackupCredentialsComeFromSecrets: every credential the backup containers and
// PostgreSQL's pod use is a reference to a Secret (the Jobs' database password, the backup role's:
// TestBackupsAndTheExporterLogInAsTheirOwnRoles), or the pod's own role, whose credentials STS
// gives at run time for the pod's projected ServiceAccount token: no password, key or token is
// written into a manifest or the script. The only plain AWS settings are the web identity's (the
// role's ARN, the token's path, the region and STS's endpoint), none of them a secret; no static
// AWS key is set at all (the SDKs would prefer it to the role). A login name (PGUSER) is not a
// secret.
func TestPostgresBackupCredentialsComeFromSecrets(t *testing.T) {
	sensitive := regexp.MustCompile(`PASSWORD|SECRET|TOKEN|ACCESS_KEY|^POSTGRES_`)
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		roleARN := func(key string) string {
			return must(t, r, "aws:iam/role:Role", "sesacthon-pod-identity-"+key).Outputs["arn"].StringValue()
		}
		// The web identity's settings, as plain values: AWS_ROLE_ARN is the pod's own role.
		webIdentity := func(role string) map[string]string {
			return map[string]string{
				"AWS_ROLE_ARN":                roleARN(role),
				"AWS_WEB_IDENTITY_TOKEN_FILE": infra.WebIdentityTokenFile,
				"AWS_REGION":                  r.Config.Region,
				"AWS_DEFAULT_REGION":          r.Config.Region,
				"AWS_STS_REGIONAL_ENDPOINTS":  "regional",
			}
		}
		type podSpec struct {
			spec any
			role string
		}
		pods := map[string]podSpec{
			"StatefulSet postgres": {at(named(r, "StatefulSet", "postgres"), "spec", "template", "spec"), infra.PodRolePostgresWAL},
		}
		for _, n := range []string{workloads.PostgresBaseBackupName, workloads.PostgresDumpName} {
			pods["CronJob "+n] = podSpec{at(named(r, "CronJob", n), "spec", "jobTemplate", "spec", "template", "spec"), infra.PodRolePostgresBackup}
		}
		for pname, pod := range pods {
			plain := webIdentity(pod.role)
			dbCredentials := 0
			for _, list := range []string{"containers", "initContainers"} {
				cs, _ := at(pod.spec, list).([]any)
				for _, c := range cs {
					for name, e := range envOf(c.(map[string]any)) {
						if want, ok := plain[name]; ok {
							if e["value"] != want || e["valueFrom"] != nil {
								t.Errorf("%s container %v: %s = %v, want the plain value %q", pname, at(c, "name"), name, e, want)
							}
							continue
						}
						if slices.Contains([]string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}, name) {
							t.Errorf("%s container %v sets %s: a static AWS key, which the SDKs prefer to the pod's role", pname, at(c, "name"), name)
							continue
						}
						if !sensitive.MatchString(name) {
							continue
						}
						if e["value"] != nil || at(e, "valueFrom", "secretKeyRef", "name") == nil {
							t.Errorf("%s container %v: %s is not read from a Secret (%v)", pname, at(c, "name"), name, e)
						}
						if name == "PGPASSWORD" {
							dbCredentials++
						}
					}
				}
			}
			// The Jobs log in to the server: their password must be a Secret's, not absent.
			if strings.HasPrefix(pname, "CronJob ") && dbCredentials < 1 {
				t.Errorf("%s reads no PGPASSWORD from a Secret: its step cannot log in", pname)
			}
		}
		for _, word := range []string{"AKIA", "BEGIN", "password="} {
			for name, s := range map[string]string{"postgres-backup.sh": workloads.PostgresBackupScript, workloads.S3ScriptFile: workloads.S3Script} {
				if strings.Contains(s, word) {
					t.Errorf("the backup script %s contains %q: credentials belong in Secrets or the pod's role", name, word)
				}
			}
		}
	})
}

// TestPostgresBackupFlowsAreExactlyThoseNeeded: the PostgreSQL pod (its wal-shipper) and the
// backup Jobs may reach HTTPS outside the cluster (S3, and STS for their own role's
// credentials), and the Jobs the server's port; nothing else in the data namespace gains them,
// and none of them reaches the metadata service (the node's role is not theirs).
func TestPostgresBackupFlowsAreExactlyThoseNeeded(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		policies := objects(r, "NetworkPolicy")
		egress := func(key string) []string {
			var out []string
			rules, _ := at(policies[key], "spec", "egress").([]any)
			for _, rule := range rules {
				var to []string
				peers, _ := at(rule, "to").([]any)
				for _, p := range peers {
					switch {
					case at(p, "ipBlock") != nil:
						to = append(to, fmt.Sprint(at(p, "ipBlock", "cidr")))
					default:
						to = append(to, fmt.Sprintf("%v/%v", at(p, "namespaceSelector", "matchLabels", "kubernetes.io/metadata.name"), at(p, "podSelector", "matchLabels", "app.kubernetes.io/name")))
					}
				}
				ports, _ := at(rule, "ports").([]any)
				for _, p := range ports {
					for _, t := range to {
						out = append(out, fmt.Sprintf("%s:%v", t, at(p, "port")))
					}
				}
			}
			slices.Sort(out)
			return out
		}
		want := map[string][]string{
			"data/postgres":         {"0.0.0.0/0:443"},
			"data/postgres-backups": {"0.0.0.0/0:443", "data/postgres:5432"},
		}
		for key, w := range want {
			if got := egress(key); fmt.Sprint(got) != fmt.Sprint(w) {
				t.Errorf("NetworkPolicy %s egress %v, want exactly %v", key, got, w)
			}
		}
		if sel := at(policies["data/postgres-backups"], "spec", "podSelector", "matchLabels"); fmt.Sprint(sel) != "map[app.kubernetes.io/component:backup]" {
			t.Errorf("NetworkPolicy data/postgres-backups selects %v, want the backup Jobs' pods", sel)
		}
		for _, key := range []string{"data/redis", "data/rabbitmq"} {
			for _, e := range egress(key) {
				if strings.HasPrefix(e, "0.0.0.0/0:") || strings.HasPrefix(e, "169.254.") {
					t.Errorf("NetworkPolicy %s allows %s: only the PostgreSQL backups reach S3, and no pod the metadata service", key, e)
				}
			}
		}
		// The Jobs' pods carry the component the policy selects.
		for _, n := range []string{workloads.PostgresBaseBackupName, workloads.PostgresDumpName} {
			labels := at(named(r, "CronJob", n), "spec", "jobTemplate", "spec", "template", "metadata", "labels")
			if at(labels, "app.kubernetes.io/component") != "backup" || at(labels, "app.kubernetes.io/name") != n {
				t.Errorf("CronJob %s pods are labelled %v: the network policies would not select them", n, labels)
			}
		}
	})
}

// TestRestoredVolumeIsPreBoundToItsClaim: the documented volume restore's PersistentVolume puts
// the snapshot-restored EBS volume under exactly the claim it is for, with the claim's size and
// class, in the volume's zone, never deleted with the claim; wrong input is refused.
func TestRestoredVolumeIsPreBoundToItsClaim(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		claim := named(r, "PersistentVolumeClaim", "data-postgres-0")
		pv, err := workloads.RestoredVolume(r.Config, "data", "data-postgres-0", "vol-0abcdef1234567890", r.Config.Region+"a")
		if err != nil {
			t.Fatal(err)
		}
		spec := pv["spec"]
		checks := []struct {
			what      string
			got, want any
		}{
			{"csi driver", at(spec, "csi", "driver"), "ebs.csi.aws.com"},
			{"csi volumeHandle", at(spec, "csi", "volumeHandle"), "vol-0abcdef1234567890"},
			{"claimRef", fmt.Sprint(at(spec, "claimRef", "namespace"), "/", at(spec, "claimRef", "name")), "data/data-postgres-0"},
			{"storage class", at(spec, "storageClassName"), at(claim, "spec", "storageClassName")},
			{"capacity", at(spec, "capacity", "storage"), at(claim, "spec", "resources", "requests", "storage")},
			{"reclaim policy", at(spec, "persistentVolumeReclaimPolicy"), "Retain"},
			{"zone key", at(spec, "nodeAffinity", "required", "nodeSelectorTerms", 0, "matchExpressions", 0, "key"), "topology.kubernetes.io/zone"},
			{"zone", at(spec, "nodeAffinity", "required", "nodeSelectorTerms", 0, "matchExpressions", 0, "values", 0), r.Config.Region + "a"},
		}
		for _, c := range checks {
			if fmt.Sprint(c.got) != fmt.Sprint(c.want) {
				t.Errorf("restored volume %s = %v, want %v", c.what, c.got, c.want)
			}
		}
		for _, bad := range []struct{ ns, claim, volume, zone, want string }{
			{"data", "data-postgres-9", "vol-0abcdef1234567890", r.Config.Region + "a", "not a data claim"},
			{"data", "data-postgres-0", "snap-0abcdef1234567890", r.Config.Region + "a", "volume ID"},
			{"data", "data-postgres-0", "vol-0abcdef1234567890", "us-east-1a", "zone"},
		} {
			if _, err := workloads.RestoredVolume(r.Config, bad.ns, bad.claim, bad.volume, bad.zone); err == nil || !strings.Contains(err.Error(), bad.want) {
				t.Errorf("RestoredVolume(%s/%s, %s, %s) error %v, want one about the %s", bad.ns, bad.claim, bad.volume, bad.zone, err, bad.want)
			}
		}
	})
}
