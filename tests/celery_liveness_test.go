package tests

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/waste-coach/infra/workloads"
)

// runAliveCheck runs a Celery worker's liveness command with sh, the real python3 and a stand-in
// celery that records its call and exits with celeryExit. Only loopback addresses are dialled.
func runAliveCheck(t *testing.T, brokerURL string, celeryExit int, withPython bool) (exit int, pinged bool) {
	t.Helper()
	dir := t.TempDir()
	stub := fmt.Sprintf("#!/bin/sh\necho \"$@\" > %s/called\nexit %d\n", dir, celeryExit)
	if err := os.WriteFile(filepath.Join(dir, "celery"), []byte(stub), 0o755); err != nil {
		t.Fatal(err)
	}
	path := dir
	if withPython {
		py, err := exec.LookPath("python3")
		if err != nil {
			t.Skip("no python3 here")
		}
		path += ":" + filepath.Dir(py) + ":" + os.Getenv("PATH")
	}
	cmd := exec.Command("/bin/sh", "-c", workloads.CeleryAliveCheck("ai"))
	cmd.Env = []string{"PATH=" + path, "HOSTNAME=celery-ai-0", "HOME=" + dir}
	if os.Getenv("PYENV_ROOT") != "" {
		cmd.Env = append(cmd.Env, "PYENV_ROOT="+os.Getenv("PYENV_ROOT"))
	}
	if brokerURL != "" {
		cmd.Env = append(cmd.Env, "CELERY_BROKER_URL="+brokerURL)
	}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		exit = ee.ExitCode()
	case err != nil:
		t.Fatalf("run: %v\n%s", err, out)
	}
	called, _ := os.ReadFile(filepath.Join(dir, "called"))
	if len(called) > 0 && !strings.Contains(string(called), `inspect ping -d ai@celery-ai-0`) {
		t.Errorf("the liveness check pinged %q, not its own worker", called)
	}
	return exit, len(called) > 0
}

// A worker that does not answer is restarted only while the broker is up: a RabbitMQ outage must
// not restart every worker of every pool.
func TestCeleryLivenessDoesNotDependOnTheBroker(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = up.Close() }()
	down, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	downAddr := down.Addr().String()
	if err := down.Close(); err != nil {
		t.Fatal(err)
	}
	url := func(addr string) string { return "amqp://app:secret@" + addr + "//" }

	for _, c := range []struct {
		name       string
		broker     string
		celeryExit int
		python     bool
		wantExit   bool // a failure: the kubelet counts it towards a restart
		wantPing   bool
	}{
		{"broker up, worker answers", url(up.Addr().String()), 0, true, false, true},
		{"broker up, worker silent", url(up.Addr().String()), 69, true, true, true},
		{"broker down", url(downAddr), 69, true, false, false},
		{"no broker URL: the ping decides", "", 69, true, true, true},
		{"no python3: the ping decides", url(downAddr), 69, false, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			exit, pinged := runAliveCheck(t, c.broker, c.celeryExit, c.python)
			if (exit != 0) != c.wantExit || pinged != c.wantPing {
				t.Errorf("exit %d, pinged %v; want failure %v, ping %v", exit, pinged, c.wantExit, c.wantPing)
			}
		})
	}
}
