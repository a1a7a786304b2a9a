package main

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The database roles, on each source server: what the db-roles container does on every start of
// the pod, and what it must leave true (workloads/postgres_roles.go).

// writeConfig writes the postgres-config ConfigMap's files where the drill's pods "mount" them.
func (d *drill) writeConfig() error {
	d.config = filepath.Join(d.work, "config")
	if err := os.MkdirAll(d.config, 0o755); err != nil {
		return err
	}
	for name, content := range d.render.config {
		if err := os.WriteFile(filepath.Join(d.config, name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// password is the password of the Secret and key ref ("postgres-app/password"), made up on
// first use: the roles get theirs from the Secrets db-roles names, the clients from the Secrets
// they name, so a client reading another Secret than its role's cannot log in.
func (d *drill) password(ref string) string {
	if ref == "" {
		return ""
	}
	if p, ok := d.passwords[ref]; ok {
		return p
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	d.passwords[ref] = hex.EncodeToString(b)
	return d.passwords[ref]
}

// appLogin is the application's role and password, as db-roles gives them.
func (d *drill) appLogin() (string, string) {
	return d.render.roles.env("APP_ROLE"), d.password(d.render.roles.secretRef("APP_PASSWORD"))
}

// existingObjects creates the objects (and rows) of a stack deployed before the roles, as the
// superuser, in the application's database.
func (d *drill) existingObjects(s *server, statements []string) error {
	for _, q := range statements {
		if _, err := d.sql(s, database, q); err != nil {
			return err
		}
	}
	return nil
}

// applyRoles runs the db-roles container's script once, with its rendered environment: the
// server's socket and port mapped to the drill's, the passwords from the Secrets it names.
func (d *drill) applyRoles(s *server, serverBin string) (string, error) {
	applied := filepath.Join(s.volume, "roles-applied")
	env := []string{"PATH=" + d.client + ":" + serverBin + ":/usr/bin:/bin", "HOME=" + d.work, "LC_ALL=C", "ROLES_ONCE=1"}
	for _, e := range d.render.roles.Env {
		v := e.Value
		switch {
		case e.Name == "PGHOST":
			v = s.sock
		case e.Name == "PGPORT":
			v = strconv.Itoa(s.port)
		case e.Name == "ROLES_APPLIED":
			v = applied
		case e.ValueFrom.SecretKeyRef.Name != "":
			v = d.password(e.ValueFrom.SecretKeyRef.Name + "/" + e.ValueFrom.SecretKeyRef.Key)
		}
		env = append(env, e.Name+"="+v)
	}
	out, err := runCmd(command(env, "/bin/sh", d.mapPaths(d.render.rolesScript, s.volume)))
	if err != nil {
		return out, err
	}
	if _, err := os.Stat(applied); err != nil {
		return out, fmt.Errorf("the roles script succeeded without its mark %s", applied)
	}
	return out, nil
}

// notTheAppsQuery counts the schemas, relations, routines and types of the database (outside the
// system's and the extensions') that the application role does not own.
func notTheAppsQuery(app string) string {
	return fmt.Sprintf(`WITH s AS (SELECT oid, nspowner FROM pg_namespace WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\_%%')
SELECT (SELECT count(*) FROM s WHERE pg_get_userbyid(nspowner) <> '%[1]s')
     + (SELECT count(*) FROM pg_class c JOIN s ON s.oid = c.relnamespace WHERE pg_get_userbyid(c.relowner) <> '%[1]s')
     + (SELECT count(*) FROM pg_proc p JOIN s ON s.oid = p.pronamespace WHERE pg_get_userbyid(p.proowner) <> '%[1]s')
     + (SELECT count(*) FROM pg_type t JOIN s ON s.oid = t.typnamespace WHERE pg_get_userbyid(t.typowner) <> '%[1]s' AND t.typtype IN ('c', 'e', 'd', 'r', 'm'))`, app)
}

// secure runs the roles script twice on a server whose objects the superuser owns, then proves
// what the roles must make true.
func (d *drill) secure(s *server, serverBin string) error {
	app, appPassword := d.appLogin()
	if app == "" || appPassword == "" {
		return fmt.Errorf("the db-roles container declares no APP_ROLE or APP_PASSWORD from a Secret")
	}
	before, err := d.sql(s, database, notTheAppsQuery(app))
	if err != nil {
		return err
	}
	start := time.Now()
	for i := range 2 {
		if out, err := d.applyRoles(s, serverBin); err != nil {
			return fmt.Errorf("the roles script, run %d: %w", i+1, err)
		} else if i == 1 {
			fmt.Printf("  %s", strings.ReplaceAll(out, "db-roles: ", "the db-roles script, run twice: "))
		}
	}
	after, err := d.sql(s, database, notTheAppsQuery(app))
	if err != nil {
		return err
	}
	if strings.TrimSpace(after) != "0" || strings.TrimSpace(before) == "0" {
		return fmt.Errorf("%s objects not owned by %s before the roles, %s after: want some, then none", strings.TrimSpace(before), app, strings.TrimSpace(after))
	}
	fmt.Printf("  %s schemas and objects the superuser had made are now %s's, none left (%s)\n", strings.TrimSpace(before), app, time.Since(start).Round(time.Millisecond))
	if err := d.trojan(s, serverBin, app, appPassword); err != nil {
		return err
	}
	// An extension an operator installs into the application's schema (its tables' row types
	// and indexes are the extension's, not the application's): the script still succeeds, so
	// PostgreSQL's pod stays ready.
	if _, err := d.sql(s, database, "CREATE EXTENSION pg_stat_statements SCHEMA public"); err != nil {
		return fmt.Errorf("create an extension in public: %w", err)
	}
	if _, err := d.applyRoles(s, serverBin); err != nil {
		return fmt.Errorf("the roles script with an extension in public fails (the pod would never be ready): %w", err)
	}
	if _, err := d.sql(s, database, "DROP EXTENSION pg_stat_statements"); err != nil {
		return err
	}
	fmt.Println("  with pg_stat_statements installed in public by an operator: the roles script still succeeds")

	// The rendered readiness probe answers, and leaves no refused connection in the log.
	logBefore, _ := os.ReadFile(s.log)
	probe := append(append([]string{}, d.render.readiness...), "-p", strconv.Itoa(s.port))
	if _, err := runCmd(command([]string{"PATH=" + d.client + ":/usr/bin:/bin", "LC_ALL=C"}, filepath.Join(d.client, probe[0]), probe[1:]...)); err != nil {
		return fmt.Errorf("the server's readiness probe fails: %w", err)
	}
	time.Sleep(200 * time.Millisecond)
	logAfter, _ := os.ReadFile(s.log)
	if added := string(logAfter[len(logBefore):]); strings.Contains(added, "FATAL") {
		return fmt.Errorf("the readiness probe %v logs a refused connection at every check:\n%s", d.render.readiness, added)
	}

	// The superuser over TCP, from the server's own loopback: refused by pg_hba.conf.
	out, err := d.sqlAs(s, user, "", "SELECT 1")
	if err == nil || !strings.Contains(out, "pg_hba.conf rejects connection") {
		return fmt.Errorf("the superuser logged in over TCP (or was refused for another reason): %v", err)
	}
	refused := firstLine(err, "pg_hba.conf")
	if i := strings.Index(refused, "FATAL:"); i >= 0 {
		refused = refused[i:]
	}
	fmt.Println("  the readiness probe answers without a refused connection in the log; the superuser over TCP:", refused)

	// The application can do its work, and nothing of the server's.
	if _, err := d.sqlAs(s, app, appPassword, "CREATE TABLE app_made (id int); INSERT INTO app_made VALUES (1); DROP TABLE app_made"); err != nil {
		return fmt.Errorf("%s cannot create a table in its schema: %w", app, err)
	}
	for _, c := range []struct{ what, query string }{
		{"COPY ... TO PROGRAM", "COPY (SELECT 1) TO PROGRAM 'cat > /dev/null'"},
		{"pg_read_file", "SELECT length(pg_read_file('/etc/passwd'))"},
		{"COPY ... FROM '/etc/passwd'", "CREATE TEMP TABLE f (line text); COPY f FROM '/etc/passwd'"},
	} {
		out, err := d.sqlAs(s, app, appPassword, c.query)
		// PostgreSQL 16 says "permission denied", 15 "must be superuser or have privileges of".
		refused := strings.Contains(out, "permission denied") || strings.Contains(out, "must be superuser")
		if err == nil || !refused {
			return fmt.Errorf("%s as %s was not refused for want of a privilege: %v\n%s", c.what, app, err, out)
		}
		if _, err := d.sql(s, database, c.query); err != nil {
			return fmt.Errorf("control: %s as the superuser fails too, so the refusal proves nothing: %w", c.what, err)
		}
		fmt.Printf("  %s as %s: %s (as the superuser: runs)\n", c.what, app, firstLine(err, "ERROR:  "))
	}
	return nil
}

// archivingDrift runs the exporter's archiving query as the exporter logs in: 1 with the rendered
// settings, 0 once archive_library is set (ALTER SYSTEM, which the server's command line does not
// pin), 1 again once it is reset.
func (d *drill) archivingDrift(s *server) error {
	q, err := d.render.archivingQuery()
	if err != nil {
		return err
	}
	// The server runs with the rendered settings' paths mapped to the drill's folders: so is the
	// query's expectation of them.
	q = d.mapPaths(q, s.volume)
	monitor, pw := d.render.exporter.env("DATA_SOURCE_USER"), d.password(d.render.exporter.secretRef("DATA_SOURCE_PASS"))
	if !strings.HasPrefix(d.render.exporter.env("DATA_SOURCE_URI"), "127.0.0.1:") {
		return fmt.Errorf("the exporter connects to %s, not the pod's loopback, which pg_hba.conf lets its role in from", d.render.exporter.env("DATA_SOURCE_URI"))
	}
	await := func(want string) error {
		deadline := time.Now().Add(15 * time.Second)
		for {
			got, err := d.sqlAs(s, monitor, pw, q)
			if err == nil && strings.TrimSpace(got) == want {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the archiving query as %s reads %q (%v), want %s", monitor, strings.TrimSpace(got), err, want)
			}
			time.Sleep(300 * time.Millisecond)
		}
	}
	if err := await("1"); err != nil {
		return err
	}
	set := func(stmt string) error {
		for _, q := range []string{stmt, "SELECT pg_reload_conf()"} {
			if _, err := d.sql(s, "postgres", q); err != nil {
				return err
			}
		}
		return nil
	}
	if err := set("ALTER SYSTEM SET archive_library = 'basic_archive'"); err != nil {
		return err
	}
	if err := await("0"); err != nil {
		return fmt.Errorf("archive_library set: %w", err)
	}
	if err := set("ALTER SYSTEM RESET archive_library"); err != nil {
		return err
	}
	if err := await("1"); err != nil {
		return fmt.Errorf("archive_library reset: %w", err)
	}
	fmt.Printf("  the exporter's archiving query as %s: 1 as rendered, 0 while archive_library is set (ALTER SYSTEM), 1 once reset (%s)\n",
		monitor, path.Base(d.render.exporter.env("PG_EXPORTER_EXTEND_QUERY_PATH")))
	return nil
}

// trojan proves the roles script never runs the application's code as the superuser: the
// application owns schema public and may create there a function named like a built-in the
// script calls (unnest(text[]) beats pg_catalog's unnest(anyarray) on an exact match), which,
// called by a superuser, runs a program on the server. Control: a superuser session on the
// default search path calls it; the script, with its own search path, must not.
func (d *drill) trojan(s *server, serverBin, app, appPassword string) error {
	marker := filepath.Join(filepath.Dir(s.log), "trojan-ran")
	_ = os.Remove(marker)
	fn := fmt.Sprintf(`CREATE FUNCTION public.unnest(a text[]) RETURNS SETOF text LANGUAGE plpgsql AS $f$
BEGIN
  IF current_setting('is_superuser') = 'on' THEN
    EXECUTE format('COPY (SELECT 1) TO PROGRAM %%L', 'touch %s');
  END IF;
  RETURN QUERY SELECT x FROM pg_catalog.unnest(a) AS x;
END $f$`, marker)
	if _, err := d.sqlAs(s, app, appPassword, fn); err != nil {
		return fmt.Errorf("%s cannot create a function in its schema: %w", app, err)
	}
	defer func() { _, _ = d.sqlAs(s, app, appPassword, "DROP FUNCTION public.unnest(text[])") }()
	if _, err := d.applyRoles(s, serverBin); err != nil {
		return fmt.Errorf("the roles script with the application's unnest(text[]) in public: %w", err)
	}
	if _, err := os.Stat(marker); err == nil {
		return fmt.Errorf("the roles script ran %s's public.unnest(text[]) as the superuser: it ran a program on the server", app)
	}
	// Control: a superuser session on the default search path does call it (so the script's
	// refusal is its search path, not a trojan that never fires).
	if _, err := d.sql(s, database, `SET search_path = "$user", public; SELECT count(*) FROM unnest(ARRAY['a']::text[])`); err != nil {
		return fmt.Errorf("control: the superuser's call of unnest: %w", err)
	}
	if _, err := os.Stat(marker); err != nil {
		return fmt.Errorf("control: the trojan did not run for a superuser on the default search path, so its absence proves nothing")
	}
	_ = os.Remove(marker)
	fmt.Printf("  %s's public.unnest(text[]), which runs a program when a superuser calls it: not called by the roles script (search path pg_catalog); a superuser on the default path calls it\n", app)
	return nil
}
