// Command verify-local proves a stack's rendered Kubernetes objects against a real control
// plane on this machine: etcd, kube-apiserver, kube-controller-manager and kube-scheduler on
// 127.0.0.1. It creates Nodes shaped like the stack's, applies every rendered object with
// server-side apply, gives every claim a volume, waits until the scheduler has placed every pod,
// and prints the per-node fit. Objects it cannot check (Helm releases, custom resources whose
// CRD only a chart provides) are listed, never silently dropped. The charts' ServiceAccounts and
// RBAC (chartfit's chart-rbac.yaml) are applied too, and SubjectAccessReviews of every
// ServiceAccount must answer rbac-table.txt's (rbac.go).
//
//	verify-local -dir out/prod -bin .bin
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	dir := flag.String("dir", "", "a render's output folder (out/<stack>)")
	bin := flag.String("bin", ".bin", "folder with kube-apiserver, kube-controller-manager, kube-scheduler")
	timeout := flag.Duration("timeout", 3*time.Minute, "how long to wait for every pod to be scheduled")
	charts := flag.String("charts", defaultChartsDir(), "folder of the pinned chart archives (../shared/charts beside the repository): the load balancer controller's CRDs are applied from it first")
	expectFailure := flag.Bool("expect-failure", false, "negative test: succeed only if every line of <dir>/expected-failures.txt appears among the failures")
	serveState := flag.String("serve", "", "instead of verifying: run the offline engine run's local cluster (control plane, kwok, node registration, stand-in volumes) with its state in this folder, until SIGTERM (tools/engine)")
	kwokStages := flag.String("kwok-stages", "", "with -serve: comma-separated kwok Stage files (node heartbeat, pod ready/complete/delete)")
	apiServer := flag.String("apiserver", "", "the kube-apiserver binary to run instead of -bin's: a newer minor's (tools/kubeadm/build-apiserver.sh), to prove the objects against the release an upgrade walks to; the controller-manager and scheduler stay -bin's, one minor older, as the skew policy allows")
	etcdBin := flag.String("etcd-bin", "", "folder with etcd, etcdctl and etcdutl of the cluster's etcd release (tools/etcd/build.sh): run the control plane on that etcd and, after the checks, the etcd restore drill")
	flag.Parse()
	if *serveState != "" {
		if err := serve(*serveState, *bin, strings.Split(*kwokStages, ",")); err != nil {
			fmt.Fprintln(os.Stderr, "verify-local -serve:", err)
			os.Exit(1)
		}
		return
	}
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "verify-local: -dir is required")
		os.Exit(2)
	}
	failures, err := run(*dir, *bin, *apiServer, *charts, *etcdBin, *timeout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "verify-local:", err)
		os.Exit(1)
	}
	if *expectFailure {
		if missed := unmet(filepath.Join(*dir, "expected-failures.txt"), failures); len(missed) > 0 {
			fmt.Fprintf(os.Stderr, "verify-local: the broken objects did not fail as expected; no failure mentions:\n  %s\n", strings.Join(missed, "\n  "))
			os.Exit(1)
		}
		fmt.Println("verify-local: every broken object was refused or left unschedulable, as expected")
		return
	}
	if len(failures) > 0 {
		os.Exit(1)
	}
}

// unmet returns the expected failure texts that no failure contains.
func unmet(path string, failures []string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return []string{"(cannot read " + path + ": " + err.Error() + ")"}
	}
	var missed []string
	for _, want := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if !slices.ContainsFunc(failures, func(f string) bool { return strings.Contains(f, want) }) {
			missed = append(missed, want)
		}
	}
	return missed
}

// run verifies one folder and returns what failed: objects refused, workloads short of pods,
// pods not placed. An error means the verification itself could not run.
func run(dir, bin, apiServer, charts, etcdBin string, timeout time.Duration) ([]string, error) {
	crds, err := pinnedCRDs(charts)
	if err != nil {
		return nil, err
	}
	chartRBAC, err := readChartRBAC(dir)
	if err != nil {
		return nil, err
	}
	rbacSkipped := ""
	if chartRBAC == nil {
		rbacSkipped = "no helm-releases.yaml in " + dir + ": not a stack's render"
	}
	work, err := os.MkdirTemp("", "verify-local-")
	if err != nil {
		return nil, err
	}
	if os.Getenv("VERIFY_LOCAL_KEEP") == "" {
		defer func() { _ = os.RemoveAll(work) }()
	} else {
		fmt.Println("keeping logs in", work)
	}
	identity, err := filepath.Abs(filepath.Join(dir, identityDir)) // the kubeconfig names its files
	if err != nil {
		return nil, err
	}
	if !fileExists(identity) {
		identity = ""
	}
	pki, err := newPKI(work, identity)
	if err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	cp := &controlPlane{work: work, bin: bin, apiServerPath: apiServer, pki: pki}
	if etcdBin != "" {
		if etcdBin, err = filepath.Abs(etcdBin); err != nil {
			return nil, err
		}
		cp.etcdPath = filepath.Join(etcdBin, "etcd")
	}
	if rendered := filepath.Join(dir, "kubeadm", "encryption-config.yaml"); fileExists(rendered) {
		cp.encryptionConfig = rendered
	}
	if rendered := filepath.Join(dir, "kubeadm", "admission-config.yaml"); fileExists(rendered) {
		if cp.admissionConfig, err = filepath.Abs(rendered); err != nil {
			return nil, err
		}
	}
	if fileExists(filepath.Join(dir, "kubeadm", "audit-policy.yaml")) {
		// The API server audits with the rendered policy, to a log of this run's work folder.
		if cp.audit, err = renderedAuditConfig(dir, work); err != nil {
			return nil, fmt.Errorf("audit policy: %w", err)
		}
	}
	serviceAccountSource := ""
	if fileExists(filepath.Join(dir, issuerDir, discoveryPath)) {
		// The render publishes the pods' issuer: the API server signs for it, as the master's does.
		if cp.serviceAccountArgs, serviceAccountSource, err = renderedServiceAccountArgs(dir); err != nil {
			return nil, fmt.Errorf("service-account flags: %w", err)
		}
	}
	defer cp.stop()
	t := newTimer()
	fmt.Println("control plane:")
	if pki.program {
		fmt.Printf("  identity: the program's cluster CA and service-account key pair (%s)\n", identityDir)
	} else {
		fmt.Println("  identity: a CA and a service-account key pair made for this run (no rendered " + identityDir + ")")
	}
	if serviceAccountSource != "" {
		fmt.Printf("  service-account flags of the rendered %s: %s\n", serviceAccountSource, strings.Join(cp.serviceAccountArgs, " "))
	} else {
		fmt.Printf("  service-account issuer: %s (no rendered %s/%s)\n", defaultServiceAccountIssuer, issuerDir, discoveryPath)
	}
	if err := cp.start(ctx); err != nil {
		return nil, err
	}
	version, err := cp.client.Discovery().ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("the API server's version: %w", err)
	}
	fmt.Printf("  API server: %s (%s)\n", version.GitVersion, cp.apiServer())
	t.phase("control plane ready")

	v := &verifier{cp: cp, dir: dir, chartCRDs: crds, chartRBAC: chartRBAC, rbacSkipped: rbacSkipped}
	if err := v.createNodes(ctx); err != nil {
		return nil, err
	}
	t.phase("nodes created")
	if err := v.provideVolumes(ctx); err != nil {
		return nil, err
	}
	v.apply(ctx)
	t.phase("objects applied")
	v.scaleToMaximums(ctx)
	t.phase("autoscaled workloads at their maximums")
	v.waitScheduled(ctx, timeout)
	t.phase("pods scheduled")
	v.checkRBAC(ctx, v.objects)
	t.phase("RBAC questions")
	v.checkRestoredVolumes(ctx)
	v.checkPodIdentity(ctx)
	t.phase("pod identity tokens")
	if cp.audit != nil {
		v.checkAudit(ctx)
		t.phase("audit log")
	}
	v.report(ctx)
	t.phase("report")
	if etcdBin != "" {
		v.etcdDrill(ctx, etcdBin)
		t.phase("etcd restore drill")
	}
	return v.failures, nil
}

type timer struct{ start, last time.Time }

func newTimer() *timer { now := time.Now(); return &timer{now, now} }

func (t *timer) phase(name string) {
	now := time.Now()
	fmt.Printf("  [%s in %s, %s total]\n", name, now.Sub(t.last).Round(time.Millisecond), now.Sub(t.start).Round(time.Millisecond))
	t.last = now
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
