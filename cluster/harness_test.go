package cluster

// The script harness: runs a rendered node script with bash, the way the deploy runs it, in a
// scratch root, and records every command it hands to the machine.
//
// - The script runs in private mount, user and network namespaces (`unshare --mount
//   --map-root-user --net`). /etc, /var, /run and /usr/local are overlays whose upper layers are folders of
//   the test's temporary directory: the script reads the real files, and everything it writes or
//   removes lands in the scratch root, nowhere else. The scripts write absolute paths and the
//   renderers have no root prefix, so the paths are redirected by mounts, not by rewriting text.
// - The commands that act on the machine (sudo, kubeadm, kubectl, apt-get, systemctl, curl,
//   cloud-init, ...) are stand-ins first on PATH. Each records its argument list, then runs a
//   bash body chosen by the test case, which answers as the real command would for that case.
//   Text tools (grep, sed, install, tee, cmp, ...) are the real ones, so the scripts' own logic
//   runs for real.
// - The network namespace has only a loopback (down unless the case brings it up): nothing the
//   script runs can dial out.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// overlaid are the folders redirected into the scratch root (node preparation unpacks containerd
// and runc under /usr/local).
var overlaid = []string{"etc", "var", "run", "usr/local"}

// hidden are folders of the machine running the tests that the script must not see: each is
// replaced by the scratch root's own copy (a bind mount of its upper layer), which starts empty.
// CI installs etcd, whose /var/lib/etcd is the path of a master's etcd data.
var hidden = []string{"var/lib/etcd"}

// scriptTimeout bounds one run of a script.
const scriptTimeout = 90 * time.Second

// defaultStubs are the commands every run replaces, with what each does unless the case says
// otherwise. `sudo` runs its arguments (the harness is already root in its user namespace).
// curl reads its config from standard input when given "-K -", as s3.sh passes the credentials:
// the stand-in reads it too, or the writer could fail on a closed pipe.
var defaultStubs = map[string]string{
	"sudo":      `exec "$@"`,
	"kubeadm":   `exit 0`,
	"kubectl":   `exit 0`,
	"apt-get":   `exit 0`,
	"apt-mark":  `exit 0`,
	"systemctl": `exit 0`,
	"curl":      `case " $* " in *" -K - "*) cat > /dev/null ;; *"/version "*) printf '{\n  "major": "1",\n  "minor": "35",\n  "gitVersion": "v1.35.4"\n}\n' ;; esac`,
	// The node's kubelet, of the API server's minor above (join.sh compares them).
	"kubelet":     `[ "$1" = --version ] && echo "Kubernetes v1.35.4"`,
	"gpg":         `exit 0`,
	"crictl":      `exit 0`,
	"cloud-init":  `exit 0`,
	"containerd":  `exit 0`,
	"hostnamectl": `exit 0`,
	"swapoff":     `exit 0`,
	"modprobe":    `exit 0`,
	"sysctl":      `exit 0`,
	"timeout":     `exit 0`,
	"sleep":       `exit 0`,
	"ssh":         `exit 0`,
	"reboot":      `exit 0`,
	"shutdown":    `exit 0`,
	// The kubelet holds its shutdown lock (behaviour_kubelet_test.go models logind where it matters).
	"systemd-inhibit": `echo "kubelet 0 root 4581 kubelet shutdown Kubelet needs time to handle node shutdown delay"`,
}

// scriptCase is what a test sets up for a run: files present before it, the stand-ins' answers,
// standard input and extra environment.
type scriptCase struct {
	// files are written before the run, by absolute path (under /etc, /var or /run).
	files map[string]string
	// stubs override defaultStubs (or add commands): command name to bash body. The body sees
	// the call's arguments as "$@", $STUB_STATE (a folder kept across runs of one scratch root)
	// and its standard input.
	stubs map[string]string
	stdin string
	env   []string
	// loopback brings the namespace's loopback interface up (it stays without any route out).
	loopback bool
}

// call is one recorded command: its name and arguments.
type call []string

func (c call) String() string { return strings.Join(c, " ") }

// scriptResult is what a run left behind.
type scriptResult struct {
	code           int
	stdout, stderr string
	calls          []call
	root           *scratchRoot
}

// output is what the deploy log shows of a run: standard output and error.
func (r scriptResult) output() string { return r.stdout + r.stderr }

// called returns the recorded calls of a command whose arguments start with prefix.
func (r scriptResult) called(name string, prefix ...string) []call {
	var out []call
	for _, c := range r.calls {
		if c[0] == name && len(c)-1 >= len(prefix) && slices.Equal(c[1:1+len(prefix)], prefix) {
			out = append(out, c)
		}
	}
	return out
}

// index is the position of the first call of name with the given argument prefix, or -1.
func (r scriptResult) index(name string, prefix ...string) int {
	for i, c := range r.calls {
		if c[0] == name && len(c)-1 >= len(prefix) && slices.Equal(c[1:1+len(prefix)], prefix) {
			return i
		}
	}
	return -1
}

func (r scriptResult) describe() string {
	var b strings.Builder
	fmt.Fprintf(&b, "exit %d\n--- stdout\n%s--- stderr\n%s--- calls\n", r.code, r.stdout, r.stderr)
	for _, c := range r.calls {
		fmt.Fprintf(&b, "  %s\n", c)
	}
	return b.String()
}

// scratchRoot is one machine's scratch file system: runs on the same root see each other's files,
// as a second run of a script on the same node would.
type scratchRoot struct {
	t   *testing.T
	dir string
}

var (
	unshareOnce sync.Once
	unshareErr  error
)

// newRoot makes a scratch root, or skips the test where namespaces are not available (never in
// CI, which runs as root on a kernel that allows them).
func newRoot(t *testing.T) *scratchRoot {
	t.Helper()
	unshareOnce.Do(func() {
		out, err := exec.Command("unshare", "--mount", "--map-root-user", "--net", "true").CombinedOutput()
		if err != nil {
			unshareErr = fmt.Errorf("unshare --mount --map-root-user --net: %v: %s", err, out)
		}
	})
	if unshareErr != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("the script harness needs user and mount namespaces: %v", unshareErr)
		}
		t.Skipf("no namespaces here: %v", unshareErr)
	}
	dir := t.TempDir()
	for _, top := range overlaid {
		if strings.HasPrefix(dir, "/"+top+"/") {
			t.Fatalf("the scratch root %s is under /%s, which the harness overlays: set TMPDIR elsewhere", dir, top)
		}
	}
	for _, d := range []string{"bin", "state", "home", "tmp"} {
		mustMkdir(t, filepath.Join(dir, d))
	}
	for _, top := range overlaid {
		mustMkdir(t, filepath.Join(dir, "upper", top))
		mustMkdir(t, filepath.Join(dir, "work", top))
	}
	for _, h := range hidden {
		mustMkdir(t, filepath.Join(dir, "upper", h))
	}
	return &scratchRoot{t: t, dir: dir}
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// path is where an absolute machine path lives in the scratch root after a run (only what a run
// wrote or a case seeded is there; the rest is the real, untouched file system).
func (s *scratchRoot) path(abs string) string {
	s.t.Helper()
	if !filepath.IsAbs(abs) {
		s.t.Fatalf("%s: not an absolute path", abs)
	}
	rel := strings.TrimPrefix(abs, "/")
	if !slices.ContainsFunc(overlaid, func(top string) bool { return strings.HasPrefix(rel+"/", top+"/") }) {
		s.t.Fatalf("%s is outside the redirected folders %v", abs, overlaid)
	}
	return filepath.Join(s.dir, "upper", strings.TrimPrefix(abs, "/"))
}

// write seeds a file on the machine.
func (s *scratchRoot) write(abs, content string) {
	s.t.Helper()
	p := s.path(abs)
	mustMkdir(s.t, filepath.Dir(p))
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// read returns a file a run wrote, and whether it is there.
func (s *scratchRoot) read(abs string) (string, bool) {
	s.t.Helper()
	b, err := os.ReadFile(s.path(abs))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false
	}
	if err != nil {
		s.t.Fatal(err)
	}
	return string(b), true
}

// mode returns the permission bits of a file a run wrote.
func (s *scratchRoot) mode(abs string) fs.FileMode {
	s.t.Helper()
	fi, err := os.Stat(s.path(abs))
	if err != nil {
		s.t.Fatalf("%s: %v", abs, err)
	}
	return fi.Mode().Perm()
}

// snapshot lists every file the runs wrote, with its mode and content, by machine path.
func (s *scratchRoot) snapshot() map[string]string {
	s.t.Helper()
	out := map[string]string{}
	upper := filepath.Join(s.dir, "upper")
	err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == upper {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel := "/" + strings.TrimPrefix(p, upper+"/")
		content := ""
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			content = string(b)
		}
		out[rel] = fmt.Sprintf("%v %s", fi.Mode(), content)
		return nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
	return out
}

// runScript renders nothing: it runs an already rendered script once on a fresh scratch root.
func runScript(t *testing.T, script string, c scriptCase) scriptResult {
	t.Helper()
	return newRoot(t).run(script, c)
}

// run runs script on this scratch root with the case's files, stand-ins, input and environment.
func (s *scratchRoot) run(script string, c scriptCase) scriptResult {
	t := s.t
	t.Helper()
	for p, content := range c.files {
		s.write(p, content)
	}
	stubs := map[string]string{}
	for k, v := range defaultStubs {
		stubs[k] = v
	}
	for k, v := range c.stubs {
		stubs[k] = v
	}
	bin := filepath.Join(s.dir, "bin")
	old, _ := filepath.Glob(filepath.Join(bin, "*"))
	for _, f := range old {
		_ = os.Remove(f)
	}
	for name, body := range stubs {
		// The record: the command name and each argument, separated by 0x1f, ended by 0x1e, so
		// arguments with spaces or newlines come back intact.
		// One write per record: a pipeline runs two stand-ins at once, and records written piece
		// by piece would interleave.
		stub := fmt.Sprintf("#!/bin/bash\nprintf -v __args '\\x1f%%s' \"$@\"; printf '%%s%%s\\x1e' %q \"${__args}\" >> \"${STUB_CALLS}\"\n%s\n", name, body)
		if err := os.WriteFile(filepath.Join(bin, name), []byte(stub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	callsFile := filepath.Join(s.dir, "calls")
	if err := os.WriteFile(callsFile, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	scriptFile := filepath.Join(s.dir, "script.sh")
	if err := os.WriteFile(scriptFile, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	var enter strings.Builder
	enter.WriteString("set -eu\n")
	for _, top := range overlaid {
		fmt.Fprintf(&enter, "mount -t overlay overlay -o lowerdir=/%[1]s,upperdir=%[2]s/upper/%[1]s,workdir=%[2]s/work/%[1]s /%[1]s\n", top, s.dir)
	}
	env := []string{
		"PATH=" + bin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + filepath.Join(s.dir, "home"),
		"LANG=C",
		"STUB_CALLS=" + callsFile,
		"STUB_STATE=" + filepath.Join(s.dir, "state"),
		"TMPDIR=" + filepath.Join(s.dir, "tmp"),
	}
	for _, h := range hidden {
		fmt.Fprintf(&enter, "mount --bind %[2]s/upper/%[1]s /%[1]s\n", h, s.dir)
	}
	if c.loopback {
		enter.WriteString("PATH=/usr/sbin:/sbin:$PATH ip link set lo up\n")
	}
	env = append(env, c.env...)
	fmt.Fprintf(&enter, "exec env -i %s bash %s\n", shellQuote(env), scriptFile)

	// A script that hangs fails its test; the bound is wide because CI runs the tests beside the
	// engine runs, where a stand-in's start can take a second.
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", "--mount", "--map-root-user", "--net", "bash", "-c", enter.String())
	cmd.Stdin = strings.NewReader(c.stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := scriptResult{stdout: stdout.String(), stderr: stderr.String(), root: s}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("the script did not finish in %s:\n%s", scriptTimeout, r.describe())
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	raw, err := os.ReadFile(callsFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range strings.Split(string(raw), "\x1e") {
		if rec != "" {
			r.calls = append(r.calls, strings.Split(rec, "\x1f"))
		}
	}
	return r
}

func shellQuote(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// sortedKeys is for stable failure messages.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
