// Command pgdrill runs the PostgreSQL restore drills on this machine, with the backup script,
// server settings and database roles exactly as a render of the program declares them (the
// postgres-backup and postgres-config ConfigMaps, the postgres StatefulSet's arguments, its
// db-roles container and exporter, and the backup CronJobs' steps and logins), and a local S3
// (gofakes3) on 127.0.0.1 standing in for the backups bucket. Each source server runs with the
// rendered pg_hba.conf and is first an existing stack's: its objects created by the superuser;
// then the db-roles script runs twice (roles.go: the objects are the application role's, the
// superuser is refused over TCP, the application role cannot run a program or read a server file,
// the exporter's archiving query reads 1, and 0 while archive_library is set), and the backup
// steps log in as the backup role, with its password, over SCRAM:
//
//   - point-in-time recovery, on PostgreSQL 16: a base backup by the CronJob's steps, rows
//     inserted, the time noted, more rows inserted, the WAL archived by the server's
//     archive_command and shipped by the wal-shipper's step; then, into an empty directory, the
//     documented restore steps (fetch-base, fetch-wal, recover) to the noted time. Exactly the
//     first rows must be there. Control: the same restore from an archive that lost its later
//     segments must be refused.
//   - the logical dump, on PostgreSQL 15: the CronJob's dump and upload steps, the dump fetched
//     back and restored with pg_restore into an empty database, compared row by row. Control: a
//     truncated dump must be refused. PostgreSQL 15 because the only pg_dump served here is
//     Debian's 15 (pg_dump refuses a newer server; the npm packages carry no client tools); the
//     cluster runs the same step with pg_dump 16 from the server's own image.
//
// Processes run as nobody: PostgreSQL refuses to run as root.
//
//	pgdrill -dir out/prod -server16 .bin/postgres-16.../bin -server15 .bin/postgres-15.../bin -client /usr/lib/postgresql/15/bin
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

const (
	nobody = 65534
	// user is the superuser, as initdb names it here and the image's POSTGRES_USER does.
	user     = "wastecoach"
	database = "wastecoach"
	bucket   = "drill-backups"
	region   = "ap-northeast-2"
	// Mount paths of the rendered pods, mapped to the drill's folders.
	scriptDir = "/scripts"
	dataMount = "/var/lib/postgresql/data"
)

func main() {
	dir := flag.String("dir", "", "a render's output folder (out/<stack>)")
	server16 := flag.String("server16", "", "folder with initdb, pg_ctl and postgres of PostgreSQL 16")
	server15 := flag.String("server15", "", "folder with initdb, pg_ctl and postgres of PostgreSQL 15 (the dump drill)")
	client := flag.String("client", "/usr/lib/postgresql/15/bin", "folder with psql, pg_dump and pg_restore")
	flag.Parse()
	if err := run(*dir, *server16, *server15, *client); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL pgdrill:", err)
		os.Exit(1)
	}
}

func run(dir, server16, server15, client string) error {
	r, err := readRender(dir)
	if err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "pgdrill-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(work) }()
	if err := os.Chmod(work, 0o755); err != nil {
		return err
	}
	s3, backend, err := startS3()
	if err != nil {
		return err
	}
	d := &drill{work: work, render: r, s3: s3, backend: backend, client: client, passwords: map[string]string{}}
	if err := d.writeScript(); err != nil {
		return err
	}
	if err := d.writeConfig(); err != nil {
		return err
	}
	if err := d.pitr(server16); err != nil {
		return fmt.Errorf("point-in-time recovery drill: %w", err)
	}
	if err := d.dumpDrill(server15); err != nil {
		return fmt.Errorf("dump drill: %w", err)
	}
	fmt.Println("pgdrill: both PostgreSQL restore drills passed")
	return nil
}

type drill struct {
	work    string
	render  *render
	s3      string
	backend *s3mem.Backend
	client  string
	script  string
	// config is where the postgres-config ConfigMap's files are "mounted".
	config string
	// passwords are the roles' passwords by the Secret and key they are read from
	// ("postgres-app/password"), made up once per drill.
	passwords map[string]string
}

// startS3 serves an in-memory S3 on 127.0.0.1 with the drill's bucket. Every request must carry
// a SigV4 Authorization for the drill's key and S3 in the bucket's region, and every upload the
// sha256 of its body, as S3 checks them.
func startS3() (string, *s3mem.Backend, error) {
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		return "", nil, err
	}
	fake := gofakes3.New(backend, gofakes3.WithAutoBucket(false)).Server()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	go func() {
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			if err := checkRequest(req); err != nil {
				fmt.Fprintln(os.Stderr, "local S3 refused", req.Method, req.URL.Path+":", err)
				http.Error(w, err.Error(), http.StatusForbidden)
				return
			}
			if status, why := conditionalWrite(backend, req); status != 0 {
				fmt.Fprintln(os.Stderr, "local S3 refused", req.Method, req.URL.Path+":", why)
				http.Error(w, why, status)
				return
			}
			fake.ServeHTTP(w, req)
		}))
	}()
	return "http://" + ln.Addr().String(), backend, nil
}

// conditionalWrite answers a PUT as the backups bucket does (infra.BackupsBucketPolicy): a
// backup's upload without If-None-Match is refused (403), and with it a key that exists is
// refused (412), as S3 does; a cluster's mark (clusters/<cluster>, config.MarkPrefix) is not a
// backup. 0 lets the request through.
func conditionalWrite(backend *s3mem.Backend, req *http.Request) (int, string) {
	if req.Method != http.MethodPut {
		return 0, ""
	}
	key := strings.TrimPrefix(req.URL.Path, "/"+bucket+"/")
	if strings.HasPrefix(key, "clusters/") {
		return 0, ""
	}
	if req.Header.Get("If-None-Match") != "*" {
		return http.StatusForbidden, "a backup's upload without If-None-Match: * (the bucket policy's BackupsAreWrittenOnce)"
	}
	if _, err := backend.HeadObject(bucket, key); err == nil {
		return http.StatusPreconditionFailed, key + " exists"
	}
	return 0, ""
}

const (
	accessKey = "AKIADRILL0000000000"
	secretKey = "drill-secret"
)

// checkRequest verifies a request as S3 would: a SigV4 signature by the drill's key for s3 in
// the bucket's region over the method, path, query, signed headers and payload hash, and, on an
// upload, that the payload hash is the body's.
func checkRequest(req *http.Request) error {
	auth := req.Header.Get("Authorization")
	fields := map[string]string{}
	rest, ok := strings.CutPrefix(auth, "AWS4-HMAC-SHA256 ")
	if !ok {
		return fmt.Errorf("not signed with AWS4-HMAC-SHA256: %q", auth)
	}
	for _, f := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	scope := strings.Split(fields["Credential"], "/")
	if len(scope) != 5 || scope[0] != accessKey || scope[2] != region || scope[3] != "s3" || scope[4] != "aws4_request" {
		return fmt.Errorf("credential scope %q, want %s/<date>/%s/s3/aws4_request", fields["Credential"], accessKey, region)
	}
	payload := req.Header.Get("X-Amz-Content-Sha256")
	if req.Method == http.MethodPut {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return err
		}
		req.Body = io.NopCloser(bytes.NewReader(body))
		if want := sha256Hex(body); payload != want {
			return fmt.Errorf("x-amz-content-sha256 %q does not match the body (%s)", payload, want)
		}
	}
	var canonHeaders strings.Builder
	for _, h := range strings.Split(fields["SignedHeaders"], ";") {
		v := req.Header.Get(h)
		if h == "host" {
			v = req.Host
		}
		fmt.Fprintf(&canonHeaders, "%s:%s\n", h, strings.TrimSpace(v))
	}
	query := req.URL.Query()
	var pairs []string
	for k, vs := range query {
		for _, v := range vs {
			pairs = append(pairs, url.QueryEscape(k)+"="+url.QueryEscape(v))
		}
	}
	slices.Sort(pairs)
	canonical := strings.Join([]string{req.Method, req.URL.EscapedPath(), strings.Join(pairs, "&"), canonHeaders.String(), fields["SignedHeaders"], payload}, "\n")
	date := req.Header.Get("X-Amz-Date")
	toSign := strings.Join([]string{"AWS4-HMAC-SHA256", date, strings.Join(scope[1:], "/"), sha256Hex([]byte(canonical))}, "\n")
	key := []byte("AWS4" + secretKey)
	for _, part := range append(scope[1:4:4], "aws4_request") {
		key = hmacSHA256(key, part)
	}
	if want := hex.EncodeToString(hmacSHA256(key, toSign)); fields["Signature"] != want {
		return fmt.Errorf("signature %s does not verify (want %s)", fields["Signature"], want)
	}
	return nil
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// writeScript writes every file of the rendered ConfigMap (the script and the s3.sh it sources)
// where the drill's pods "mount" it, as the ConfigMap volume does.
func (d *drill) writeScript() error {
	dir := filepath.Join(d.work, "scripts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, content := range d.render.scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			return err
		}
	}
	d.script = filepath.Join(dir, "postgres-backup.sh")
	return nil
}

// mapPaths maps a rendered container's paths to the drill's folders: the scripts' and the
// configuration's mounts, and the data volume's mount to the given volume folder.
func (d *drill) mapPaths(s, volume string) string {
	s = strings.ReplaceAll(s, scriptDir+"/", filepath.Join(d.work, "scripts")+"/")
	for _, f := range []string{d.render.hbaFile, d.render.rolesScript} {
		s = strings.ReplaceAll(s, path.Dir(f)+"/", d.config+"/")
	}
	return strings.ReplaceAll(s, dataMount, volume)
}

func (d *drill) baseEnv(serverBin string) []string {
	return []string{
		"PATH=" + d.client + ":" + serverBin + ":/usr/bin:/bin",
		"HOME=" + d.work, "LC_ALL=C", "TZ=UTC",
		"BACKUP_BUCKET=" + bucket, "BACKUP_PREFIX=" + d.render.prefix, "AWS_REGION=" + region,
		"S3_ENDPOINT=" + d.s3, "AWS_ACCESS_KEY_ID=" + accessKey, "AWS_SECRET_ACCESS_KEY=" + secretKey,
	}
}

// command runs a program as nobody with env; its output goes to the drill's log.
func command(env []string, name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	return cmd
}

func runCmd(cmd *exec.Cmd) (string, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, out.String())
	}
	return out.String(), nil
}

// step runs one step of the rendered script, as a container of the rendered pods would.
func (d *drill) step(env []string, args ...string) (string, error) {
	return runCmd(command(env, "/bin/sh", append([]string{d.script}, args...)...))
}

func mkdirNobody(path string) error {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return err
	}
	return os.Chown(path, nobody, nobody)
}

// server is one PostgreSQL on 127.0.0.1.
type server struct {
	bin, data, volume string
	port              int
	// sock is the server's socket directory, where the superuser logs in (pg_hba.conf).
	sock string
	cmd  *exec.Cmd
	log  string
	// exited is closed when the process has exited, with waitErr set.
	exited  chan struct{}
	waitErr error
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = ln.Close() }()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// start runs postgres on the data directory with the rendered server arguments (paths mapped),
// listening on 127.0.0.1 only, and waits until it answers (or, in recovery, until it has
// promoted).
func (d *drill) start(s *server, args []string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.port = port
	s.log = filepath.Join(s.volume, "server.log")
	s.sock = filepath.Join(s.volume, "run")
	if err := mkdirNobody(s.sock); err != nil {
		return err
	}
	argv := []string{"-D", s.data, "-p", strconv.Itoa(port), "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + s.sock}
	for _, a := range args {
		argv = append(argv, d.mapPaths(a, s.volume))
	}
	logf, err := os.Create(s.log)
	if err != nil {
		return err
	}
	env := append(d.baseEnv(s.bin), "WAL_OUTBOX="+d.mapPaths(d.render.walOutbox, s.volume))
	s.cmd = command(env, filepath.Join(s.bin, "postgres"), argv...)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.exited = make(chan struct{})
	go func() { s.waitErr = s.cmd.Wait(); _ = logf.Close(); close(s.exited) }()
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, err := d.sql(s, "postgres", "SELECT pg_is_in_recovery()")
		if err == nil && strings.TrimSpace(out) == "f" {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("postgres exited (%v); its log:\n%s", s.waitErr, tail(s.log, 15))
		case <-time.After(300 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not become ready in 90s; its log:\n%s", tail(s.log, 15))
		}
	}
}

func (d *drill) stop(s *server, mode string) {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	sig := map[string]syscall.Signal{"immediate": syscall.SIGQUIT, "fast": syscall.SIGINT}[mode]
	_ = s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

func tail(file string, n int) string {
	b, _ := os.ReadFile(file)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// sql runs a query as the superuser, on the server's socket: the only way in for it.
func (d *drill) sql(s *server, db, query string) (string, error) {
	env := []string{"PATH=" + d.client + ":/usr/bin:/bin", "HOME=" + d.work, "LC_ALL=C", "PGCONNECT_TIMEOUT=5"}
	return runCmd(command(env, filepath.Join(d.client, "psql"), "-X", "-At", "-q", "-v", "ON_ERROR_STOP=1",
		"-h", s.sock, "-p", strconv.Itoa(s.port), "-U", user, "-d", db, "-c", query))
}

// sqlAs runs a query as role over TCP on 127.0.0.1, with its password, as a client in the
// cluster connects.
func (d *drill) sqlAs(s *server, role, password, query string) (string, error) {
	env := []string{"PATH=" + d.client + ":/usr/bin:/bin", "HOME=" + d.work, "LC_ALL=C", "PGCONNECT_TIMEOUT=5", "PGPASSWORD=" + password}
	return runCmd(command(env, filepath.Join(d.client, "psql"), "-X", "-At", "-q", "-v", "ON_ERROR_STOP=1",
		"-h", "127.0.0.1", "-p", strconv.Itoa(s.port), "-U", role, "-d", database, "-c", query))
}

// initdb creates a cluster whose bootstrap superuser is the image's POSTGRES_USER (the
// rendered pg_hba.conf decides who logs in, not initdb's), and its database.
func (d *drill) initdb(bin, volume string) (*server, error) {
	if err := mkdirNobody(volume); err != nil {
		return nil, err
	}
	s := &server{bin: bin, volume: volume, data: filepath.Join(volume, "pgdata")}
	if _, err := runCmd(command(d.baseEnv(bin), filepath.Join(bin, "initdb"), "-D", s.data, "-U", user, "--auth=trust", "-E", "UTF8", "--locale=C")); err != nil {
		return nil, err
	}
	return s, nil
}

// jobEnv is a backup step's environment: its login as the CronJob declares it (the password the
// Secret it names holds), the server on 127.0.0.1 as the Service in the cluster.
func (d *drill) jobEnv(s *server, serverBin, backupDir string, login container) []string {
	return append(d.baseEnv(serverBin), "BACKUP_DIR="+backupDir, "PGHOST=127.0.0.1", "PGPORT="+strconv.Itoa(s.port),
		"PGUSER="+login.env("PGUSER"), "PGPASSWORD="+d.password(login.secretRef("PGPASSWORD")),
		"PGDATABASE="+login.env("PGDATABASE"), "PGDATA="+s.data, "PGCONNECT_TIMEOUT=30")
}

// pitr is the point-in-time recovery drill.
func (d *drill) pitr(bin string) error {
	fmt.Println("point-in-time recovery drill (PostgreSQL 16):")
	src, err := d.initdb(bin, filepath.Join(d.work, "volume"))
	if err != nil {
		return err
	}
	defer d.stop(src, "fast")
	if err := d.start(src, d.render.serverArgs); err != nil {
		return err
	}
	if _, err := d.sql(src, "postgres", "CREATE DATABASE "+database); err != nil {
		return err
	}
	v, _ := d.sql(src, database, "SHOW server_version")
	at, _ := d.sql(src, database, "SHOW archive_timeout")
	fmt.Printf("  server %s with the rendered settings (archive_mode on, archive_timeout %s)\n", strings.TrimSpace(v), strings.TrimSpace(at))
	// An existing stack's objects, all the superuser's, as the application made them before it
	// had a role of its own.
	if err := d.existingObjects(src, []string{
		"CREATE TABLE drill (id int PRIMARY KEY, note text NOT NULL)",
		"CREATE TABLE events (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())",
		"CREATE TABLE items (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, kind text)",
		"CREATE VIEW drill_notes AS SELECT note FROM drill",
		"CREATE FUNCTION drill_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM drill'",
		"CREATE TYPE waste_kind AS ENUM ('paper', 'glass', 'food')",
	}); err != nil {
		return err
	}
	if err := d.secure(src, bin); err != nil {
		return err
	}
	app, appPassword := d.appLogin()

	// The base backup CronJob: its backup step, then its upload step.
	start := time.Now()
	jobDir := filepath.Join(d.work, "job-base")
	if err := mkdirNobody(jobDir); err != nil {
		return err
	}
	env := d.jobEnv(src, bin, jobDir, d.render.baseLogin)
	if _, err := d.step(env, d.render.baseSteps[0]...); err != nil {
		return err
	}
	if _, err := d.step(env, d.render.baseSteps[1]...); err != nil {
		return err
	}
	keys, err := d.list(d.render.prefix + "/base/")
	stamps := map[string]bool{}
	for _, k := range keys {
		stamps[strings.Split(strings.TrimPrefix(k, d.render.prefix+"/base/"), "/")[0]] = true
	}
	if err != nil || len(stamps) != 1 {
		return fmt.Errorf("want one base backup in the bucket, found %v (%v)", keys, err)
	}
	stamp := strings.Split(strings.TrimPrefix(keys[0], d.render.prefix+"/base/"), "/")[0]
	fmt.Printf("  base backup by the CronJob's steps as %s (SCRAM over TCP): %d files under %s/base/%s/ in %s\n",
		d.render.baseLogin.env("PGUSER"), len(keys), d.render.prefix, stamp, time.Since(start).Round(time.Millisecond))

	// The application writes, as its own role.
	const first, more = 500, 500
	if _, err := d.sqlAs(src, app, appPassword, fmt.Sprintf("INSERT INTO drill SELECT g, 'before the target ' || g FROM generate_series(1, %d) g", first)); err != nil {
		return err
	}
	target, err := d.sql(src, database, "SELECT clock_timestamp()")
	if err != nil {
		return err
	}
	target = strings.TrimSpace(target)
	time.Sleep(1100 * time.Millisecond)
	if _, err := d.sqlAs(src, app, appPassword, fmt.Sprintf("INSERT INTO drill SELECT g, 'after the target ' || g FROM generate_series(%d, %d) g", first+1, first+more)); err != nil {
		return err
	}
	// archive_timeout would close the segment within minutes; the drill closes it now.
	seg, err := d.sql(src, database, "SELECT pg_walfile_name(pg_switch_wal())")
	if err != nil {
		return err
	}
	seg = strings.TrimSpace(seg)
	if err := d.waitArchived(src, seg); err != nil {
		return err
	}
	start = time.Now()
	shipEnv := append(d.baseEnv(bin), "WAL_OUTBOX="+d.mapPaths(d.render.walOutbox, src.volume), "SHIP_INTERVAL="+d.render.shipInterval, "SHIP_ONCE=1")
	if _, err := d.step(shipEnv, "ship-wal"); err != nil {
		return err
	}
	wal, _ := d.list(d.render.prefix + "/wal/")
	left, _ := filepath.Glob(filepath.Join(d.mapPaths(d.render.walOutbox, src.volume), "0*"))
	if len(left) > 0 {
		return fmt.Errorf("the shipper left %d segments in the outbox: %v", len(left), left)
	}
	if _, err := d.step(shipEnv, "healthy"); err != nil {
		return fmt.Errorf("the shipper's probe fails after a good pass: %w", err)
	}
	fmt.Printf("  %d rows by %s, target time %s, %d more rows; %d WAL segments archived by archive_command and shipped (%s)\n",
		first, app, target, more, len(wal), time.Since(start).Round(time.Millisecond))
	if err := d.archivingDrift(src); err != nil {
		return err
	}
	d.stop(src, "immediate")
	fmt.Println("  server stopped (immediate: as if the node and its volume were lost)")

	start = time.Now()
	restored, err := d.restore(bin, "restored", stamp, target, nil)
	if err != nil {
		return err
	}
	got, err := d.sql(restored, database, "SELECT count(*) || ' ' || min(id) || ' ' || max(id) || ' ' || count(*) FILTER (WHERE note LIKE 'before%') FROM public.drill")
	d.stop(restored, "fast")
	if err != nil {
		return err
	}
	want := fmt.Sprintf("%d 1 %d %d", first, first, first)
	if strings.TrimSpace(got) != want {
		return fmt.Errorf("after restoring to %s: rows (count min max before-target) = %q, want %q", target, strings.TrimSpace(got), want)
	}
	fmt.Printf("  restored into an empty directory to the target: exactly rows 1..%d, none of the %d after (%s)\n", first, more, time.Since(start).Round(time.Millisecond))

	// The control: an archive that lost every segment after the base backup's first one.
	_, err = d.restore(bin, "control", stamp, target, func(walDir string) error {
		segs, _ := filepath.Glob(filepath.Join(walDir, "0*"))
		if len(segs) < 2 {
			return fmt.Errorf("control: %d segments fetched, want at least 2", len(segs))
		}
		for _, s := range segs[1:] {
			if err := os.Remove(s); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		return fmt.Errorf("control: a restore from an archive missing its later segments succeeded: the drill cannot tell a good archive from a broken one")
	}
	fmt.Println("  control: the same restore from an archive missing its later segments is refused:", firstLine(err, "recovery ended before"))
	return nil
}

func firstLine(err error, want string) string {
	for _, l := range strings.Split(err.Error(), "\n") {
		if strings.Contains(l, want) {
			return strings.TrimSpace(l)
		}
	}
	return strings.SplitN(err.Error(), "\n", 2)[0]
}

// restore runs the documented restore steps into an empty volume folder and starts the server
// on it; breakArchive, when set, damages the fetched WAL before recovery (the control).
func (d *drill) restore(bin, name, stamp, target string, breakArchive func(walDir string) error) (*server, error) {
	volume := filepath.Join(d.work, name)
	if err := mkdirNobody(volume); err != nil {
		return nil, err
	}
	env := d.baseEnv(bin)
	for _, args := range [][]string{{"fetch-base", stamp, volume}, {"fetch-wal", volume}} {
		if _, err := d.step(env, args...); err != nil {
			return nil, err
		}
	}
	if breakArchive != nil {
		if err := breakArchive(filepath.Join(volume, "restore-wal")); err != nil {
			return nil, err
		}
	}
	if _, err := d.step(env, "recover", volume, target); err != nil {
		return nil, err
	}
	s := &server{bin: bin, volume: volume, data: filepath.Join(volume, "pgdata")}
	if err := d.start(s, d.render.serverArgs); err != nil {
		d.stop(s, "fast")
		return nil, err
	}
	return s, nil
}

func (d *drill) waitArchived(s *server, seg string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		out, err := d.sql(s, database, "SELECT coalesce(last_archived_wal, '') || ' ' || failed_count FROM pg_stat_archiver")
		if err != nil {
			return err
		}
		f := strings.Fields(out)
		if len(f) == 2 && f[0] >= seg {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("segment %s was not archived in 30s; server log:\n%s", seg, tail(s.log, 15))
}

func (d *drill) list(prefix string) ([]string, error) {
	res, err := d.backend.ListBucket(bucket, &gofakes3.Prefix{HasPrefix: true, Prefix: prefix}, gofakes3.ListBucketPage{})
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, c := range res.Contents {
		keys = append(keys, c.Key)
	}
	return keys, nil
}

func (d *drill) getObject(key string) ([]byte, error) {
	o, err := d.backend.GetObject(bucket, key, nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = o.Contents.Close() }()
	return io.ReadAll(o.Contents)
}

// dumpDrill is the logical dump drill.
func (d *drill) dumpDrill(bin string) error {
	fmt.Println("dump drill (PostgreSQL 15: the one major with both a server and pg_dump here):")
	src, err := d.initdb(bin, filepath.Join(d.work, "dump-volume"))
	if err != nil {
		return err
	}
	defer d.stop(src, "fast")
	if err := d.start(src, d.render.serverArgs); err != nil {
		return err
	}
	if _, err := d.sql(src, "postgres", "CREATE DATABASE "+database); err != nil {
		return err
	}
	const rows = 2000
	if err := d.existingObjects(src, []string{
		"CREATE TABLE users (id int PRIMARY KEY, email text UNIQUE NOT NULL)",
		"CREATE TABLE waste (id bigserial PRIMARY KEY, user_id int REFERENCES users, kind text, grams numeric(10,2), at timestamptz DEFAULT now())",
		"CREATE INDEX waste_user ON waste (user_id)",
		"CREATE VIEW waste_by_kind AS SELECT kind, sum(grams) AS grams FROM waste GROUP BY kind",
		fmt.Sprintf("INSERT INTO users SELECT g, 'user' || g || '@example.com' FROM generate_series(1, %d) g", rows/10),
		fmt.Sprintf("INSERT INTO waste (user_id, kind, grams) SELECT 1 + g %% %d, (ARRAY['paper','glass','food'])[1 + g %% 3], g * 1.25 FROM generate_series(1, %d) g", rows/10, rows),
	}); err != nil {
		return err
	}
	if err := d.secure(src, bin); err != nil {
		return err
	}
	start := time.Now()
	jobDir := filepath.Join(d.work, "job-dump")
	if err := mkdirNobody(jobDir); err != nil {
		return err
	}
	env := d.jobEnv(src, bin, jobDir, d.render.dumpLogin)
	for _, s := range d.render.dumpSteps {
		if _, err := d.step(env, s...); err != nil {
			return err
		}
	}
	keys, err := d.list(d.render.prefix + "/dump/")
	if err != nil || len(keys) != 1 {
		return fmt.Errorf("want one dump in the bucket, found %v (%v)", keys, err)
	}
	dump, err := d.getObject(keys[0])
	if err != nil {
		return err
	}
	fmt.Printf("  dump by the CronJob's steps as %s (SCRAM over TCP): %s, %d bytes (%s)\n", d.render.dumpLogin.env("PGUSER"), keys[0], len(dump), time.Since(start).Round(time.Millisecond))

	start = time.Now()
	if err := d.restoreDump(src, "restored", dump); err != nil {
		return err
	}
	fmt.Printf("  pg_restore into an empty database: %d users and %d waste rows, every row and the sequence equal to the source (%s)\n", rows/10, rows, time.Since(start).Round(time.Millisecond))

	err = d.restoreDump(src, "control", dump[:len(dump)*2/3])
	if err == nil {
		return errors.New("control: a truncated dump restored and compared equal: the drill cannot tell a good dump from a broken one")
	}
	fmt.Println("  control: a truncated dump is refused:", strings.SplitN(err.Error(), "\n", 2)[0])
	return d.archivingDrift(src)
}

// fingerprint is what must be equal after a restore: every row of both tables and the sequence.
// (Names qualified: the superuser's search path is the catalog only, roles.sql.)
const fingerprint = "SELECT (SELECT md5(string_agg(u::text, ',' ORDER BY id)) FROM public.users u) || ' ' || " +
	"(SELECT md5(string_agg(w::text, ',' ORDER BY id)) FROM public.waste w) || ' ' || (SELECT last_value FROM public.waste_id_seq)"

func (d *drill) restoreDump(src *server, db string, dump []byte) error {
	file := filepath.Join(d.work, "job-dump", db+".dump")
	if err := os.WriteFile(file, dump, 0o644); err != nil {
		return err
	}
	if _, err := d.sql(src, "postgres", "CREATE DATABASE "+db); err != nil {
		return err
	}
	env := []string{"PATH=" + d.client + ":/usr/bin:/bin", "HOME=" + d.work, "LC_ALL=C"}
	if _, err := runCmd(command(env, filepath.Join(d.client, "pg_restore"), "--exit-on-error", "-h", src.sock, "-p", strconv.Itoa(src.port), "-U", user, "-d", db, file)); err != nil {
		return fmt.Errorf("pg_restore: %w", err)
	}
	want, err := d.sql(src, database, fingerprint)
	if err != nil {
		return err
	}
	got, err := d.sql(src, db, fingerprint)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("restored database %s differs from the source: %q, want %q", db, strings.TrimSpace(got), strings.TrimSpace(want))
	}
	return nil
}
