package tests

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"gopkg.in/yaml.v3"

	"github.com/waste-coach/infra/alerting"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/workloads"
)

// PostgreSQL's roles (issue 27): the superuser is the server's own, reached only on the local
// socket inside its pod; the application, the backups and the exporter each log in as a role
// of their own. tools/pgdrill proves on a real server what these tests pin in the render.

// postgresPod is the pod spec of PostgreSQL's StatefulSet.
func postgresPod(t *testing.T, r *offline.Result) any {
	t.Helper()
	pod := at(named(r, "StatefulSet", "postgres"), "spec", "template", "spec")
	if pod == nil {
		t.Fatal("no StatefulSet postgres")
	}
	return pod
}

// mountedFile returns the content of the file a container of pod sees at file, from the
// ConfigMap volume mounted at its directory, and the ConfigMap's name.
func mountedFile(t *testing.T, r *offline.Result, pod any, c map[string]any, file string) (content, configMap string) {
	t.Helper()
	dir, base := path.Dir(file), path.Base(file)
	for _, m := range asList(c["volumeMounts"]) {
		if at(m, "mountPath") != dir {
			continue
		}
		for _, v := range asList(at(pod, "volumes")) {
			if at(v, "name") != at(m, "name") || at(v, "configMap") == nil {
				continue
			}
			name := fmt.Sprint(at(v, "configMap", "name"))
			key := base
			if items := asList(at(v, "configMap", "items")); len(items) > 0 {
				key = ""
				for _, it := range items {
					if at(it, "path") == base {
						key = fmt.Sprint(at(it, "key"))
					}
				}
			}
			data, ok := at(objects(r, "ConfigMap")["data/"+name], "data", key).(string)
			if !ok {
				t.Fatalf("container %v: ConfigMap %s mounted at %s has no %s", c["name"], name, dir, base)
			}
			return data, name
		}
	}
	t.Fatalf("container %v mounts no ConfigMap at %s (for %s)", c["name"], dir, file)
	return "", ""
}

// plainValue unwraps a secret or an output to the string it holds.
func plainValue(v resource.PropertyValue) string {
	for {
		switch {
		case v.IsSecret():
			v = v.SecretValue().Element
		case v.IsOutput():
			v = v.OutputValue().Element
		case v.IsString():
			return v.StringValue()
		default:
			return ""
		}
	}
}

// superuser is the image's POSTGRES_USER, as the server's Secret gives it.
func superuser(t *testing.T, r *offline.Result) string {
	t.Helper()
	u := plainValue(prop(must(t, r, "kubernetes:core/v1:Secret", "sesacthon-data-postgres"), "stringData", "POSTGRES_USER"))
	if u == "" {
		t.Fatal("the postgres Secret has no POSTGRES_USER")
	}
	return u
}

// secretRef is an environment variable's Secret and key ("" if it is not read from one).
func secretRef(e map[string]any) string {
	if at(e, "valueFrom", "secretKeyRef") == nil {
		return ""
	}
	return fmt.Sprintf("%v/%v", at(e, "valueFrom", "secretKeyRef", "name"), at(e, "valueFrom", "secretKeyRef", "key"))
}

// TestOnlyTheServerReadsTheSuperusersSecret: the postgres Secret (the superuser's name and first
// password) reaches no container but the server's own and db-roles beside it: not the
// application, the exporter or the backup Jobs.
func TestOnlyTheServerReadsTheSuperusersSecret(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		allowed := []string{"StatefulSet data/postgres container postgres", "StatefulSet data/postgres container " + workloads.DBRolesContainer}
		for pname, pod := range podTemplates(r) {
			if !strings.Contains(pname, " data/") {
				continue // a Secret is read only in its own namespace
			}
			for _, v := range asList(at(pod, "volumes")) {
				if at(v, "secret", "secretName") == "postgres" {
					t.Errorf("%s mounts the postgres Secret as volume %v", pname, at(v, "name"))
				}
			}
			for _, c := range append(asList(at(pod, "initContainers")), asList(at(pod, "containers"))...) {
				where := fmt.Sprintf("%s container %v", pname, at(c, "name"))
				reads := false
				for _, e := range asList(at(c, "env")) {
					reads = reads || at(e, "valueFrom", "secretKeyRef", "name") == "postgres"
				}
				for _, e := range asList(at(c, "envFrom")) {
					reads = reads || at(e, "secretRef", "name") == "postgres"
				}
				if reads && !slices.Contains(allowed, where) {
					t.Errorf("%s reads the postgres Secret: the superuser's login is the server's alone", where)
				}
			}
		}
	})
}

// TestApplicationLogsInAsItsOwnRole: DATABASE_URL logs in as the role db-roles gives the
// application, with that role's password, never as the superuser; the application's pods
// restart onto it (a pod reads its environment only when it starts) and come after PostgreSQL,
// which is ready only once the role exists.
func TestApplicationLogsInAsItsOwnRole(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		roles := envOf(containerNamed(postgresPod(t, r), workloads.DBRolesContainer))
		appRole := fmt.Sprint(at(roles["APP_ROLE"], "value"))
		secret := must(t, r, "kubernetes:core/v1:Secret", "sesacthon-app-app-secrets")
		u, err := url.Parse(plainValue(prop(secret, "stringData", "DATABASE_URL")))
		if err != nil || u.User == nil {
			t.Fatalf("DATABASE_URL does not parse as a URL with a login: %v", err)
		}
		if u.User.Username() != appRole || appRole == "<nil>" || appRole == superuser(t, r) {
			t.Errorf("DATABASE_URL logs in as %q, want the application role db-roles applies (%q), not the superuser %q",
				u.User.Username(), appRole, superuser(t, r))
		}
		ref := strings.SplitN(secretRef(roles["APP_PASSWORD"]), "/", 2)
		pw, _ := u.User.Password()
		if len(ref) != 2 || pw == "" || pw != plainValue(prop(must(t, r, "kubernetes:core/v1:Secret", "sesacthon-data-"+ref[0]), "stringData", ref[1])) {
			t.Errorf("DATABASE_URL's password is not the one db-roles gives %s (Secret %v)", appRole, ref)
		}
		if u.Path != "/wastecoach" || u.Hostname() != "postgres.data.svc.cluster.local" {
			t.Errorf("DATABASE_URL points at %s%s, want the postgres Service's wastecoach database", u.Host, u.Path)
		}
		if !slices.Contains(secret.Dependencies, must(t, r, "kubernetes:apps/v1:StatefulSet", "sesacthon-data-postgres").URN) {
			t.Errorf("the application's Secret does not wait for PostgreSQL's StatefulSet: the pods could start before their role exists")
		}
		for pname, pod := range podTemplates(r) {
			if !strings.Contains(fmt.Sprint(at(pod, "containers")), "app-secrets") {
				continue
			}
			kind, name, _ := strings.Cut(pname, " ")
			obj := objects(r, kind)[name]
			if got := at(obj, "spec", "template", "metadata", "annotations", "waste-coach.io/database-role"); got != appRole {
				t.Errorf("%s reads DATABASE_URL but its pods are annotated with role %v, want %s: they would keep the old login", pname, got, appRole)
			}
		}
	})
}

// TestBackupsAndTheExporterLogInAsTheirOwnRoles: the base backup's and the dump's step log in as
// the backup role db-roles applies, with its password's Secret; the exporter as the monitoring
// role; neither as the superuser.
func TestBackupsAndTheExporterLogInAsTheirOwnRoles(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		pod := postgresPod(t, r)
		roles := envOf(containerNamed(pod, workloads.DBRolesContainer))
		if roles == nil || at(roles["BACKUP_ROLE"], "value") == nil {
			t.Fatal("StatefulSet postgres has no db-roles container declaring the backup role")
		}
		su := superuser(t, r)
		for _, n := range []string{workloads.PostgresBaseBackupName, workloads.PostgresDumpName} {
			spec := at(named(r, "CronJob", n), "spec", "jobTemplate", "spec", "template", "spec")
			step := containerNamed(spec, fmt.Sprint(at(spec, "initContainers", 0, "name")))
			env := envOf(step)
			if user := at(env["PGUSER"], "value"); user != at(roles["BACKUP_ROLE"], "value") || user == su {
				t.Errorf("CronJob %s logs in as %v, want the backup role %v", n, user, at(roles["BACKUP_ROLE"], "value"))
			}
			if got, want := secretRef(env["PGPASSWORD"]), secretRef(roles["BACKUP_PASSWORD"]); got != want || got == "" {
				t.Errorf("CronJob %s reads its password from %q, want the backup role's %q", n, got, want)
			}
		}
		env := envOf(containerNamed(pod, "exporter"))
		if user := at(env["DATA_SOURCE_USER"], "value"); user != at(roles["MONITOR_ROLE"], "value") || user == su {
			t.Errorf("the exporter logs in as %v, want the monitoring role %v", user, at(roles["MONITOR_ROLE"], "value"))
		}
		if got, want := secretRef(env["DATA_SOURCE_PASS"]), secretRef(roles["MONITOR_PASSWORD"]); got != want || got == "" {
			t.Errorf("the exporter reads its password from %q, want the monitoring role's %q", got, want)
		}
	})
}

// TestRolesAreAppliedOnEveryStart: the db-roles container runs the program's script and roles
// (as embedded, from a ConfigMap named after its content, so a change restarts the pod) with the
// server's image, as the superuser over the socket it shares with the server, and holds the pod
// out of service until they are applied; every role's password comes from its own Secret.
func TestRolesAreAppliedOnEveryStart(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		pod := postgresPod(t, r)
		c, pg := containerNamed(pod, workloads.DBRolesContainer), containerNamed(pod, "postgres")
		if c == nil {
			t.Fatal("StatefulSet postgres has no db-roles container")
		}
		if c["image"] != pg["image"] {
			t.Errorf("db-roles runs %v, the server %v: psql must be the server's", c["image"], pg["image"])
		}
		script := fmt.Sprint(at(c, "command", 1))
		got, cm := mountedFile(t, r, pod, c, script)
		if got != workloads.DBRolesScript {
			t.Errorf("db-roles runs %s, which is not the embedded db-roles.sh", script)
		}
		if sql, _ := mountedFile(t, r, pod, c, path.Dir(script)+"/roles.sql"); sql != workloads.PostgresRolesSQL {
			t.Errorf("the roles.sql beside %s is not the embedded one", script)
		}
		if !regexp.MustCompile(`^` + workloads.PostgresConfigMap + `-[0-9a-f]{10}$`).MatchString(cm) {
			t.Errorf("db-roles' ConfigMap is %q, not named after its content: a change would not restart the pod", cm)
		}
		env := envOf(c)
		sock := at(env["PGHOST"], "value")
		shared := ""
		for _, m := range asList(c["volumeMounts"]) {
			if at(m, "mountPath") == sock {
				shared = fmt.Sprint(at(m, "name"))
			}
		}
		serverMounts := fmt.Sprint(pg["volumeMounts"])
		if shared == "" || !strings.Contains(serverMounts, fmt.Sprintf("mountPath:%v name:%s", sock, shared)) {
			t.Errorf("db-roles' PGHOST %v is not the server's socket directory, mounted from the same volume", sock)
		}
		if at(env["PGUSER"], "value") != superuser(t, r) {
			t.Errorf("db-roles applies the roles as %v, want the superuser", at(env["PGUSER"], "value"))
		}
		for _, v := range []string{"APP_PASSWORD", "BACKUP_PASSWORD", "MONITOR_PASSWORD"} {
			if ref := secretRef(env[v]); ref == "" || strings.HasPrefix(ref, "postgres/") || at(env[v], "value") != nil {
				t.Errorf("db-roles' %s comes from %q, want a role's own Secret", v, ref)
			}
		}
		if probe := fmt.Sprint(at(c, "readinessProbe", "exec", "command")); !strings.Contains(probe, fmt.Sprint(at(env["ROLES_APPLIED"], "value"))) {
			t.Errorf("db-roles' readiness %s does not check its mark %v: the pod would be ready before its roles", probe, at(env["ROLES_APPLIED"], "value"))
		}
		if at(c, "securityContext", "readOnlyRootFilesystem") != true || at(c, "securityContext", "allowPrivilegeEscalation") != false {
			t.Errorf("db-roles is not locked down: %v", at(c, "securityContext"))
		}
	})
}

// hbaLine is one line of pg_hba.conf.
type hbaLine struct {
	typ          string
	dbs, users   []string
	addr, method string
}

func parseHBA(text string) []hbaLine {
	var out []hbaLine
	for _, l := range strings.Split(text, "\n") {
		l, _, _ = strings.Cut(l, "#")
		f := strings.Fields(l)
		switch {
		case len(f) == 4 && f[0] == "local":
			out = append(out, hbaLine{f[0], strings.Split(f[1], ","), strings.Split(f[2], ","), "", f[3]})
		case len(f) == 5:
			out = append(out, hbaLine{f[0], strings.Split(f[1], ","), strings.Split(f[2], ","), f[3], f[4]})
		case len(f) > 0:
			out = append(out, hbaLine{typ: "unparsed: " + l})
		}
	}
	return out
}

// decide returns the method of the first line that matches a connection, as the server reads
// them, or "refused" when none does.
func decide(lines []hbaLine, typ, db, user, addr string) string {
	for _, l := range lines {
		typeMatches := l.typ == typ || typ == "host" && strings.HasPrefix(l.typ, "host")
		// "all" matches every database but replication, which only its own keyword matches.
		dbMatches := slices.Contains(l.dbs, db) || db != "replication" && slices.Contains(l.dbs, "all")
		if !typeMatches || !dbMatches {
			continue
		}
		if !slices.Contains(l.users, user) && !slices.Contains(l.users, "all") {
			continue
		}
		if typ == "host" && l.addr != "all" {
			_, n, err := net.ParseCIDR(l.addr)
			if err != nil || !n.Contains(net.ParseIP(addr)) {
				continue
			}
		}
		return l.method
	}
	return "refused"
}

// TestSuperuserIsRefusedOverTheNetwork: the server reads the program's pg_hba.conf, in which the
// superuser comes in only on the local socket and never over TCP, not even from the pod's own
// loopback; the application and the backups log in with a password to their database only, the
// exporter only from the loopback; anything else is refused.
func TestSuperuserIsRefusedOverTheNetwork(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		pod := postgresPod(t, r)
		pg := containerNamed(pod, "postgres")
		file, ok := serverSetting(asList(pg["args"]), "hba_file")
		if !ok {
			t.Fatal("the server reads the pg_hba.conf initdb wrote (no hba_file argument): it lets any role in from anywhere with a password, the superuser included")
		}
		text, _ := mountedFile(t, r, pod, pg, file)
		lines := parseHBA(text)
		roles := envOf(containerNamed(pod, workloads.DBRolesContainer))
		role := func(name string) string { return fmt.Sprint(at(roles[name], "value")) }
		su, app, backup, monitor := superuser(t, r), role("APP_ROLE"), role("BACKUP_ROLE"), role("MONITOR_ROLE")
		const scram = "scram-sha-256"
		for _, c := range []struct{ typ, db, user, addr, want string }{
			{"host", "wastecoach", su, "10.0.3.7", "reject"},
			{"host", "wastecoach", su, "127.0.0.1", "reject"},
			{"host", "postgres", su, "192.168.12.4", "reject"},
			{"host", "replication", su, "127.0.0.1", "refused"},
			{"local", "wastecoach", su, "", "trust"},
			{"local", "postgres", su, "", "trust"},
			{"host", "wastecoach", app, "192.168.12.4", scram},
			{"host", "postgres", app, "192.168.12.4", "reject"},
			{"local", "wastecoach", app, "", "refused"},
			{"host", "wastecoach", backup, "192.168.40.2", scram},
			{"host", "wastecoach", monitor, "127.0.0.1", scram},
			{"host", "wastecoach", monitor, "192.168.12.4", "reject"},
			{"host", "wastecoach", "someone", "127.0.0.1", "reject"},
		} {
			if got := decide(lines, c.typ, c.db, c.user, c.addr); got != c.want {
				t.Errorf("pg_hba.conf answers a %s connection to %s as %s from %q with %s, want %s", c.typ, c.db, c.user, c.addr, got, c.want)
			}
		}
		for _, l := range lines {
			if strings.HasPrefix(l.typ, "unparsed") || l.typ != "local" && (l.method == "trust" || l.method == "password" || l.method == "md5") {
				t.Errorf("pg_hba.conf line %+v: every network login is a SCRAM password or refused", l)
			}
		}
		// The socket trusts the superuser: only the server and db-roles may reach it.
		sock := at(roles["PGHOST"], "value")
		volume := ""
		for _, m := range asList(pg["volumeMounts"]) {
			if at(m, "mountPath") == sock {
				volume = fmt.Sprint(at(m, "name"))
			}
		}
		var reach []string
		for _, c := range append(asList(at(pod, "initContainers")), asList(at(pod, "containers"))...) {
			for _, m := range asList(at(c, "volumeMounts")) {
				if at(m, "name") == volume {
					reach = append(reach, fmt.Sprint(at(c, "name")))
				}
			}
		}
		slices.Sort(reach)
		if volume == "" || fmt.Sprint(reach) != fmt.Sprint([]string{workloads.DBRolesContainer, "postgres"}) {
			t.Errorf("the server's socket directory %v (volume %q) is mounted by %v, want only db-roles and postgres: the socket lets the superuser in without a password", sock, volume, reach)
		}
	})
}

// TestArchivingQueryComparesWhatTheServerIsGiven: the exporter runs the program's query of the
// archiving settings, whose expected values are the server's own arguments (archive_command
// quoted as SQL), as the gauge the alert PostgreSQLArchivingNotAsDeclared reads.
func TestArchivingQueryComparesWhatTheServerIsGiven(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		pod := postgresPod(t, r)
		args := asList(containerNamed(pod, "postgres")["args"])
		exporter := containerNamed(pod, "exporter")
		file, ok := at(envOf(exporter)["PG_EXPORTER_EXTEND_QUERY_PATH"], "value").(string)
		if !ok {
			t.Fatal("the exporter has no PG_EXPORTER_EXTEND_QUERY_PATH: it runs no query of the archiving settings")
		}
		text, _ := mountedFile(t, r, pod, exporter, file)
		var queries map[string]struct {
			Query   string                         `yaml:"query"`
			Metrics []map[string]map[string]string `yaml:"metrics"`
		}
		if err := yaml.Unmarshal([]byte(text), &queries); err != nil {
			t.Fatalf("the exporter's %s: %v", file, err)
		}
		q, ok := queries[alerting.PostgresArchivingQueryName]
		if !ok || len(q.Metrics) != 1 || q.Metrics[0][alerting.PostgresArchivingColumn]["usage"] != "GAUGE" {
			t.Fatalf("the exporter's %s has no gauge %s.%s: %s", file, alerting.PostgresArchivingQueryName, alerting.PostgresArchivingColumn, text)
		}
		expected := func(name string) (string, bool) {
			m := regexp.MustCompile(`\('` + name + `', '((?:[^']|'')*)'\)`).FindStringSubmatch(q.Query)
			if m == nil {
				return "", false
			}
			return strings.ReplaceAll(m[1], "''", "'"), true
		}
		for _, name := range []string{"archive_command", "archive_mode", "wal_level", "archive_timeout"} {
			arg, _ := serverSetting(args, name)
			if got, ok := expected(name); !ok || got != arg || arg == "" {
				t.Errorf("the archiving query expects %s = %q (found: %v), the server is given %q", name, got, ok, arg)
			}
		}
		if got, ok := expected("archive_library"); !ok || got != "" {
			t.Errorf("the archiving query does not expect archive_library to be empty (%q, %v): a library would take archiving from archive_command", got, ok)
		}
		found := false
		for _, g := range alerting.Groups(workloads.RuleParams(r.Config)) {
			for _, rule := range g.Rules {
				if rule.Alert == "PostgreSQLArchivingNotAsDeclared" {
					found = strings.Contains(rule.Expr, alerting.PostgresArchivingMetric+`{job="postgres"}`) && rule.Severity == alerting.SeverityCritical
				}
			}
		}
		if !found {
			t.Errorf("no critical alert PostgreSQLArchivingNotAsDeclared reads %s", alerting.PostgresArchivingMetric)
		}
	})
}
