package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/waste-coach/infra/infra"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/workloads"
)

// backupScripts are the backup scripts that source workloads.S3Script from their directory.
var backupScripts = map[string]string{
	"etcd-snapshot.sh":   workloads.EtcdSnapshotScript,
	"postgres-backup.sh": workloads.PostgresBackupScript,
}

// scriptUse finds, in a container, the directory and file of a backup script it runs (command,
// arguments such as the server's archive_command, or probes).
var scriptUse = regexp.MustCompile(`(/[^\s\[\]]*)/(etcd-snapshot\.sh|postgres-backup\.sh)`)

// TestEveryBackupScriptHasItsS3LibraryMounted: the backup scripts share their S3 code (the
// instance role's credentials from IMDSv2, the SigV4-signed upload) in s3.sh, which each sources
// from its own directory. So every container that runs one of them (the etcd snapshot's save
// and upload steps, the PostgreSQL server's archive_command, the wal-shipper and its probe, the
// base backup's and the dump's steps) must find s3.sh beside the script: the ConfigMap mounted at
// the script's directory holds the script and the library the program embeds. A pod without it
// would fail its first scheduled backup, at night, with "s3.sh: not found".
func TestEveryBackupScriptHasItsS3LibraryMounted(t *testing.T) {
	for name, s := range backupScripts {
		if !strings.Contains(s, "\n. \"${0%/*}/"+workloads.S3ScriptFile+"\"\n") {
			t.Errorf("%s does not source %s from its own directory", name, workloads.S3ScriptFile)
		}
	}
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		configMaps := objects(r, "ConfigMap")
		var found []string
		for pod, spec := range podTemplates(r) {
			ns, _, _ := strings.Cut(strings.Fields(pod)[1], "/")
			volumes := map[string]any{}
			for _, v := range asList(at(spec, "volumes")) {
				volumes[fmt.Sprint(at(v, "name"))] = v
			}
			for _, c := range append(asList(at(spec, "initContainers")), asList(at(spec, "containers"))...) {
				uses := scriptUse.FindAllStringSubmatch(fmt.Sprint(c), -1)
				if len(uses) == 0 {
					continue
				}
				where := fmt.Sprintf("%s container %v", pod, at(c, "name"))
				found = append(found, where)
				checked := map[string]bool{}
				for _, use := range uses {
					dir, file := use[1], use[2]
					if checked[use[0]] {
						continue
					}
					checked[use[0]] = true
					var cmName string
					for _, m := range asList(at(c, "volumeMounts")) {
						if at(m, "mountPath") == dir {
							cmName = fmt.Sprint(at(volumes[fmt.Sprint(at(m, "name"))], "configMap", "name"))
						}
					}
					data := at(configMaps[ns+"/"+cmName], "data")
					if at(data, file) != backupScripts[file] || at(data, workloads.S3ScriptFile) != workloads.S3Script {
						t.Errorf("%s runs %s/%s, but the ConfigMap %q mounted there does not hold both %s and %s as embedded: the script would fail to source its S3 code",
							where, dir, file, cmName, file, workloads.S3ScriptFile)
					}
				}
			}
		}
		slices.Sort(found)
		want := []string{
			"CronJob data/postgres-base-backup container base-backup",
			"CronJob data/postgres-base-backup container upload",
			"CronJob data/postgres-dump container dump",
			"CronJob data/postgres-dump container upload",
			"CronJob kube-system/etcd-snapshot container save",
			"CronJob kube-system/etcd-snapshot container upload",
			"StatefulSet data/postgres container postgres",
			"StatefulSet data/postgres container wal-shipper",
		}
		if !slices.Equal(found, want) {
			t.Errorf("containers running a backup script:\n%s\nwant:\n%s", strings.Join(found, "\n"), strings.Join(want, "\n"))
		}
	})
}

func asList(v any) []any { l, _ := v.([]any); return l }

// s3Request is one request the stand-in S3 received.
type s3Request struct {
	method, path string
	header       http.Header
	body         []byte
}

// s3StandIn serves on 127.0.0.1, records every request and answers status.
func s3StandIn(t *testing.T, status int) (*httptest.Server, func() []s3Request) {
	var mu sync.Mutex
	var got []s3Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		mu.Lock()
		got = append(got, s3Request{req.Method, req.URL.Path, req.Header.Clone(), body})
		mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []s3Request { mu.Lock(); defer mu.Unlock(); return slices.Clone(got) }
}

// mountConfigMap writes a rendered ConfigMap's data into a directory, as its volume mount does.
// The backup scripts' ConfigMaps are named after their content: nsName is the name before the hash.
func mountConfigMap(t *testing.T, r *offline.Result, nsName string) string {
	t.Helper()
	dir := t.TempDir()
	var found []map[string]any
	for key, obj := range objects(r, "ConfigMap") {
		if key == nsName || regexp.MustCompile("^"+regexp.QuoteMeta(nsName)+"-[0-9a-f]{10}$").MatchString(key) {
			found = append(found, obj)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d ConfigMaps named %s, want one", len(found), nsName)
	}
	data, _ := at(found[0], "data").(map[string]any)
	for k, v := range data {
		writeFile(t, filepath.Join(dir, k), fmt.Sprint(v))
	}
	return dir
}

// runStep runs a step of a rendered backup script with /bin/sh, as the curl image's container does.
func runStep(t *testing.T, script string, env []string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("/bin/sh", append([]string{script}, args...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// signedPut checks what s3.sh's put sends: a PUT of the file, its sha256 in
// x-amz-content-sha256 (S3 refuses a body that does not match), If-None-Match: * (S3 then never
// replaces an object, and the bucket refuses a backup's upload without it), the session token,
// and a SigV4 Authorization for the key, the bucket's region and S3 that signs those headers.
func signedPut(t *testing.T, what string, req s3Request, wantPath *regexp.Regexp, body []byte) {
	t.Helper()
	sum := sha256.Sum256(body)
	auth := regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=drill-key/[0-9]{8}/ap-northeast-2/s3/aws4_request, ` +
		`SignedHeaders=host;if-none-match;x-amz-content-sha256;x-amz-date;x-amz-security-token, Signature=[0-9a-f]{64}$`)
	switch {
	case req.method != http.MethodPut || !wantPath.MatchString(req.path):
		t.Errorf("%s: %s %s, want PUT %s", what, req.method, req.path, wantPath)
	case !bytes.Equal(req.body, body):
		t.Errorf("%s: the body is not the file (%d bytes, want %d)", what, len(req.body), len(body))
	case req.header.Get("X-Amz-Content-Sha256") != hex.EncodeToString(sum[:]):
		t.Errorf("%s: x-amz-content-sha256 %q, want the file's sha256 %x", what, req.header.Get("X-Amz-Content-Sha256"), sum)
	case req.header.Get("If-None-Match") != "*":
		t.Errorf("%s: If-None-Match %q, want *: the upload could replace a backup", what, req.header.Get("If-None-Match"))
	case req.header.Get("X-Amz-Security-Token") != "drill-token":
		t.Errorf("%s: x-amz-security-token %q, want the role's session token", what, req.header.Get("X-Amz-Security-Token"))
	case !auth.MatchString(req.header.Get("Authorization")):
		t.Errorf("%s: Authorization %q, want SigV4 for S3 in ap-northeast-2 signing the body hash and token", what, req.header.Get("Authorization"))
	}
}

// TestBackupUploadsGoThroughTheSharedS3Code runs the upload steps of the rendered etcd-snapshot
// and postgres-backup ConfigMaps (the scripts and s3.sh, as mounted) against a stand-in S3 on
// 127.0.0.1: the etcd snapshot goes to <prefix>/YYYY/MM/DD/etcd-<UTC time>.db and a dump to
// <prefix>/dump/<UTC time>/<file>, each PUT signed the same way with the body's sha256; and a
// bucket that keeps failing (HTTP 500) is tried 4 times (3 retries) and then fails the step, so
// the Job fails and the backup alert fires. (The instance role's credentials from IMDSv2 cannot
// be reached from here; the drills and this test use the key variables the scripts also take.)
func TestBackupUploadsGoThroughTheSharedS3Code(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl here: the upload steps run in the curl image")
	}
	r := run(t, "prod")
	etcdScript := filepath.Join(mountConfigMap(t, r, "kube-system/"+workloads.EtcdSnapshotName), "etcd-snapshot.sh")
	pgScript := filepath.Join(mountConfigMap(t, r, "data/"+workloads.PostgresBackupConfigMap), "postgres-backup.sh")
	// upload runs an upload step against a stand-in answering status, with the drill's key.
	upload := func(t *testing.T, status int, script string, env []string, args ...string) (string, []s3Request, error) {
		srv, got := s3StandIn(t, status)
		env = append([]string{"AWS_REGION=ap-northeast-2", "BACKUP_BUCKET=drill-bucket", "S3_ENDPOINT=" + srv.URL,
			"AWS_ACCESS_KEY_ID=drill-key", "AWS_SECRET_ACCESS_KEY=drill-secret", "AWS_SESSION_TOKEN=drill-token"}, env...)
		out, err := runStep(t, script, env, args...)
		return out, got(), err
	}

	t.Run("etcd snapshot", func(t *testing.T) {
		snapDir := t.TempDir()
		snapshot := []byte("etcd snapshot bytes\n")
		writeFile(t, filepath.Join(snapDir, "etcd-snapshot.db"), string(snapshot))
		out, reqs, err := upload(t, http.StatusOK, etcdScript, []string{"SNAPSHOT_DIR=" + snapDir, "BACKUP_PREFIX=etcd"}, "upload")
		// One PUT: the snapshot. The cluster's mark is kubeadm-init's, outside the backups.
		if err != nil || len(reqs) != 1 {
			t.Fatalf("upload step: %v, %d requests (want one PUT, the snapshot)\n%s", err, len(reqs), out)
		}
		key := regexp.MustCompile(`^/drill-bucket/(etcd/[0-9]{4}/[0-9]{2}/[0-9]{2}/etcd-[0-9]{8}T[0-9]{6}Z\.db)$`)
		signedPut(t, "etcd snapshot upload", reqs[0], key, snapshot)
		sum := sha256.Sum256(snapshot)
		if m := key.FindStringSubmatch(reqs[0].path); m != nil {
			want := fmt.Sprintf("etcd-snapshot: uploaded %d bytes to s3://drill-bucket/%s (sha256 %x)\n", len(snapshot), m[1], sum)
			if out != want {
				t.Errorf("upload step says %q, want %q", out, want)
			}
		}
	})

	t.Run("postgres dump", func(t *testing.T) {
		backupDir := t.TempDir()
		dump := []byte("PGDMP dump bytes")
		writeFile(t, filepath.Join(backupDir, "wastecoach.dump"), string(dump))
		out, reqs, err := upload(t, http.StatusOK, pgScript, []string{"BACKUP_DIR=" + backupDir, "BACKUP_PREFIX=postgres"}, "upload", "dump")
		if err != nil || len(reqs) != 1 {
			t.Fatalf("upload step: %v, %d requests (want one PUT)\n%s", err, len(reqs), out)
		}
		signedPut(t, "dump upload", reqs[0], regexp.MustCompile(`^/drill-bucket/postgres/dump/[0-9]{8}T[0-9]{6}Z/wastecoach\.dump$`), dump)
	})

	t.Run("failing bucket", func(t *testing.T) {
		snapDir := t.TempDir()
		writeFile(t, filepath.Join(snapDir, "etcd-snapshot.db"), "x")
		out, reqs, err := upload(t, http.StatusInternalServerError, etcdScript, []string{"SNAPSHOT_DIR=" + snapDir, "BACKUP_PREFIX=etcd"}, "upload")
		if err == nil {
			t.Errorf("the upload step succeeded against a bucket answering 500:\n%s", out)
		}
		if len(reqs) != 4 {
			t.Errorf("%d attempts against a failing bucket, want 4 (curl --retry 3)", len(reqs))
		}
	})
}

// TestBackupUploadsAssumeTheirOwnRole runs the etcd snapshot's upload step as its CronJob
// declares it, with its role and token file, against a stand-in STS and S3 on 127.0.0.1: s3.sh
// exchanges the pod's projected token for the role's credentials (AssumeRoleWithWebIdentity, the
// token read from its file into the request body, never onto a command line) and signs the
// uploads with them; no pod reaches the instance metadata service, so this is the only way a
// backup gets credentials. An STS refusal fails the step before anything is uploaded.
func TestBackupUploadsAssumeTheirOwnRole(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl here: the upload steps run in the curl image")
	}
	r := run(t, "prod")
	script := filepath.Join(mountConfigMap(t, r, "kube-system/"+workloads.EtcdSnapshotName), "etcd-snapshot.sh")
	var upload any
	for _, c := range asList(at(named(r, "CronJob", workloads.EtcdSnapshotName), "spec", "jobTemplate", "spec", "template", "spec", "containers")) {
		if at(c, "name") == "upload" {
			upload = c
		}
	}
	env := map[string]string{}
	for _, e := range asList(at(upload, "env")) {
		env[fmt.Sprint(at(e, "name"))] = fmt.Sprint(at(e, "value"))
	}
	if env["AWS_ROLE_ARN"] == "" || env["AWS_WEB_IDENTITY_TOKEN_FILE"] != infra.WebIdentityTokenFile {
		t.Fatalf("the upload container's environment names no role and token file: %v", env)
	}
	tokenFile := filepath.Join(t.TempDir(), "token")
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6a3ViZS1zeXN0ZW06ZXRjZC1zbmFwc2hvdCJ9.c2ln+/="
	writeFile(t, tokenFile, jwt)

	for _, tc := range []struct {
		name      string
		stsStatus int
	}{{"assumed", http.StatusOK}, {"refused", http.StatusForbidden}} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var form url.Values
			var puts []s3Request
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				body, _ := io.ReadAll(req.Body)
				mu.Lock()
				defer mu.Unlock()
				if req.Method == http.MethodPost && req.URL.Path == "/" {
					form, _ = url.ParseQuery(string(body))
					if req.Header.Get("Authorization") != "" {
						t.Errorf("AssumeRoleWithWebIdentity was sent signed (%q): it takes the token as its only proof", req.Header.Get("Authorization"))
					}
					w.WriteHeader(tc.stsStatus)
					_, _ = fmt.Fprint(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <AccessKeyId>ASIAPODROLE</AccessKeyId>
      <SecretAccessKey>pod-secret</SecretAccessKey>
      <SessionToken>pod-session-token</SessionToken>
      <Expiration>2026-12-07T10:00:00Z</Expiration>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>`)
					return
				}
				puts = append(puts, s3Request{req.Method, req.URL.Path, req.Header.Clone(), body})
			}))
			t.Cleanup(srv.Close)
			snapDir := t.TempDir()
			writeFile(t, filepath.Join(snapDir, "etcd-snapshot.db"), "etcd snapshot bytes\n")
			out, err := runStep(t, script, []string{"SNAPSHOT_DIR=" + snapDir, "BACKUP_PREFIX=etcd", "BACKUP_BUCKET=drill-bucket",
				"AWS_REGION=" + env["AWS_REGION"], "AWS_ROLE_ARN=" + env["AWS_ROLE_ARN"], "AWS_WEB_IDENTITY_TOKEN_FILE=" + tokenFile,
				"S3_ENDPOINT=" + srv.URL, "STS_ENDPOINT=" + srv.URL}, "upload")
			mu.Lock()
			defer mu.Unlock()
			if tc.stsStatus != http.StatusOK {
				if err == nil || len(puts) != 0 {
					t.Errorf("STS refused the role, yet the step ended with %v after %d uploads:\n%s", err, len(puts), out)
				}
				return
			}
			if err != nil || len(puts) != 1 {
				t.Fatalf("upload step: %v, %d uploads (want the snapshot)\n%s", err, len(puts), out)
			}
			if form.Get("Action") != "AssumeRoleWithWebIdentity" || form.Get("Version") != "2011-06-15" ||
				form.Get("RoleArn") != env["AWS_ROLE_ARN"] || form.Get("WebIdentityToken") != jwt || form.Get("RoleSessionName") == "" {
				t.Errorf("STS was asked %v, want AssumeRoleWithWebIdentity of %s with the token file's content", form, env["AWS_ROLE_ARN"])
			}
			for _, p := range puts {
				if !strings.Contains(p.header.Get("Authorization"), "Credential=ASIAPODROLE/") || p.header.Get("X-Amz-Security-Token") != "pod-session-token" {
					t.Errorf("%s %s is signed %q with token %q, want the assumed role's credentials", p.method, p.path, p.header.Get("Authorization"), p.header.Get("X-Amz-Security-Token"))
				}
			}
		})
	}
}

// TestABackupIsNeverReplaced runs the dump's upload against a stand-in S3 where the key already
// exists (S3 answers If-None-Match with 412): the same bytes there (an earlier attempt of this
// upload got through before its answer was lost) are success, other bytes fail the step and are
// left as they are.
func TestABackupIsNeverReplaced(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("no curl here: the upload steps run in the curl image")
	}
	r := run(t, "prod")
	pgScript := filepath.Join(mountConfigMap(t, r, "data/"+workloads.PostgresBackupConfigMap), "postgres-backup.sh")
	dump := []byte("PGDMP dump bytes")
	for _, tc := range []struct {
		name     string
		existing []byte
		wantErr  bool
	}{{"same bytes", dump, false}, {"other bytes", []byte("PGDMP another dump"), true}} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			var methods []string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
				_, _ = io.ReadAll(req.Body)
				mu.Lock()
				methods = append(methods, req.Method)
				mu.Unlock()
				switch req.Method {
				case http.MethodPut:
					if req.Header.Get("If-None-Match") != "*" {
						t.Errorf("PUT without If-None-Match: it would replace the backup there")
					}
					w.WriteHeader(http.StatusPreconditionFailed)
				case http.MethodGet:
					_, _ = w.Write(tc.existing)
				}
			}))
			t.Cleanup(srv.Close)
			backupDir := t.TempDir()
			writeFile(t, filepath.Join(backupDir, "wastecoach.dump"), string(dump))
			out, err := runStep(t, pgScript, []string{"AWS_REGION=ap-northeast-2", "BACKUP_BUCKET=drill-bucket", "S3_ENDPOINT=" + srv.URL,
				"AWS_ACCESS_KEY_ID=drill-key", "AWS_SECRET_ACCESS_KEY=drill-secret", "BACKUP_DIR=" + backupDir, "BACKUP_PREFIX=postgres"}, "upload", "dump")
			mu.Lock()
			defer mu.Unlock()
			if (err != nil) != tc.wantErr {
				t.Errorf("upload over an existing key with %s: err %v, want failure %v\n%s", tc.name, err, tc.wantErr, out)
			}
			if !slices.Equal(methods, []string{http.MethodPut, http.MethodGet}) {
				t.Errorf("requests %v, want the conditional PUT, then a GET of what is there", methods)
			}
			if tc.wantErr && !strings.Contains(out, "exists with other content") {
				t.Errorf("the failure does not say the backup there differs:\n%s", out)
			}
		})
	}
}
