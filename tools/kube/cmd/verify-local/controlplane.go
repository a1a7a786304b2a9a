package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// controlPlane is etcd, kube-apiserver, kube-controller-manager and kube-scheduler, bound to
// 127.0.0.1 only, with their PIDs so every one is stopped on success and on failure.
type controlPlane struct {
	work, bin string
	// apiServerPath is the kube-apiserver binary ("" is bin's): -apiserver runs the objects
	// through a newer minor's API server, the one an upgrade walks to.
	apiServerPath string
	// encryptionConfig is the program's rendered EncryptionConfiguration ("" when the directory
	// has none, as the broken fixture's: the API server then runs without encryption).
	encryptionConfig string
	// admissionConfig is the program's rendered AdmissionConfiguration (Pod Security's defaults
	// for every namespace), "" when the directory has none.
	admissionConfig string
	// audit is the rendered audit policy and this API server's log (nil when the directory has
	// no kubeadm/audit-policy.yaml: the API server then audits nothing).
	audit *auditConfig
	// serviceAccountArgs are the API server's service-account flags of the rendered kubeadm
	// configuration ("--name=value", in order, repeated flags kept) when the render publishes an
	// issuer; nil runs the one default issuer.
	serviceAccountArgs []string
	// apiServerArgs are added to the API server's flags (the engine run turns webhooks off).
	apiServerArgs []string
	pki           *pki
	procs         []*exec.Cmd
	config        *rest.Config
	client        *kubernetes.Clientset
	etcdURL       string
	// etcdPath is the etcd server binary ("etcd" from PATH unless -etcd-bin names a release).
	etcdPath string
	// etcdName and etcdPeerPort are the member's name and peer port; a restored data
	// directory carries the ones it was restored with.
	etcdName     string
	etcdPeerPort int
}

func (c *controlPlane) start(ctx context.Context) error {
	if err := c.startAPI(ctx); err != nil {
		return err
	}
	if c.encryptionConfig == "" {
		fmt.Println("  secrets at rest: not checked (no rendered kubeadm/encryption-config.yaml)")
	} else if err := c.checkSecretsEncrypted(ctx); err != nil {
		return err
	}
	if c.audit == nil {
		fmt.Println("  audit: not checked (no rendered kubeadm/audit-policy.yaml)")
	} else {
		// Loaded when the API server starts: a policy it cannot read would have stopped it.
		fmt.Printf("  audit: the API server loaded the rendered kubeadm/audit-policy.yaml (the master's %s, named by %s), logging to %s instead of the master's %s\n",
			c.audit.masterPolicy, filepath.Base(c.audit.source), c.audit.log, c.audit.masterLog)
	}
	if c.admissionConfig == "" {
		fmt.Println("  Pod Security default: not checked (no rendered kubeadm/admission-config.yaml)")
	} else if err := c.checkPodSecurityDefault(ctx); err != nil {
		return err
	}
	return c.startControllers()
}

// startAPI starts etcd on <work>/etcd (a fresh or a restored data directory) and a
// kube-apiserver on it, and waits until the API server is ready.
func (c *controlPlane) startAPI(ctx context.Context) error {
	etcdClient, err1 := freePort()
	apiPort, err3 := freePort()
	for _, err := range []error{err1, err3} {
		if err != nil {
			return err
		}
	}
	if c.etcdPeerPort == 0 {
		if c.etcdPeerPort, err1 = freePort(); err1 != nil {
			return err1
		}
	}
	if err := c.startEtcdOn(etcdClient); err != nil {
		return err
	}
	return c.startAPIServer(ctx, apiPort)
}

// startEtcd starts etcd alone on a free port (the drill's empty member).
func (c *controlPlane) startEtcd() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	if c.etcdPeerPort, err = freePort(); err != nil {
		return err
	}
	return c.startEtcdOn(port)
}

func (c *controlPlane) startEtcdOn(etcdClient int) error {
	if c.etcdName == "" {
		c.etcdName = "verify"
	}
	if c.etcdPath == "" {
		c.etcdPath = "etcd"
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdClient)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", c.etcdPeerPort)
	if err := c.run("etcd", c.etcdPath,
		"--name="+c.etcdName, "--data-dir="+filepath.Join(c.work, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster="+c.etcdName+"="+peerURL, "--log-level=error",
	); err != nil {
		return err
	}
	c.etcdURL = etcdURL
	// Wait until the member answers: the API server (or the drill's etcdctl) comes next.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(etcdURL + "/health")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd not healthy after 30s (%v); see %s", err, filepath.Join(c.work, "etcd.log"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// startAPIServer starts kube-apiserver on the member and waits until it is ready.
func (c *controlPlane) startAPIServer(ctx context.Context, apiPort int) error {
	var err1 error
	server := fmt.Sprintf("https://127.0.0.1:%d", apiPort)
	var encryption []string
	if c.encryptionConfig != "" {
		// The master's own configuration, as the program renders it: Secrets encrypted at rest.
		encryption = []string{"--encryption-provider-config=" + c.encryptionConfig}
	}
	if c.admissionConfig != "" {
		encryption = append(encryption, "--admission-control-config-file="+c.admissionConfig)
	}
	if c.audit != nil {
		encryption = append(encryption, c.audit.flags()...)
	}
	if err := c.run("kube-apiserver", c.apiServer(), append(append(append(encryption, c.serviceAccountFlags()...),
		"--etcd-servers="+c.etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", apiPort),
		"--tls-cert-file="+c.pki.serverCert, "--tls-private-key-file="+c.pki.serverKey,
		"--client-ca-file="+c.pki.caCert,
		"--service-account-key-file="+c.pki.saPub, "--service-account-signing-key-file="+c.pki.saKey,
		"--service-cluster-ip-range=10.96.0.0/12",
		"--authorization-mode=Node,RBAC",
		// The default admission chain, PodSecurity included: a pod that its namespace's level
		// forbids is refused here as it would be in the real cluster.
		"--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true",
		"--v=1",
	), c.apiServerArgs...)...); err != nil {
		return err
	}
	process := c.procs[len(c.procs)-1]
	kubeconfig := filepath.Join(c.work, "admin.kubeconfig")
	if err := c.writeKubeconfig(kubeconfig, server); err != nil {
		return err
	}
	if c.config, err1 = clientcmd.BuildConfigFromFlags("", kubeconfig); err1 != nil {
		return err1
	}
	c.config.QPS, c.config.Burst = 200, 400
	// Deprecations and Pod Security warnings are worth reading, once each.
	c.config.WarningHandler = rest.NewWarningWriter(os.Stdout, rest.WarningWriterOptions{Deduplicate: true})
	if c.client, err1 = kubernetes.NewForConfig(c.config); err1 != nil {
		return err1
	}
	return c.waitReady(ctx, process)
}

// serviceAccountFlags are the API server's issuer and audience flags: the rendered kubeadm
// configuration's, or kubeadm's default issuer when the render publishes none.
func (c *controlPlane) serviceAccountFlags() []string {
	if len(c.serviceAccountArgs) == 0 {
		return []string{"--service-account-issuer=" + defaultServiceAccountIssuer}
	}
	return c.serviceAccountArgs
}

// apiServer is the kube-apiserver binary this control plane runs.
func (c *controlPlane) apiServer() string {
	if c.apiServerPath != "" {
		return c.apiServerPath
	}
	return filepath.Join(c.bin, "kube-apiserver")
}

// startControllers starts kube-controller-manager and kube-scheduler against the API server.
func (c *controlPlane) startControllers() error {
	cmPort, err4 := freePort()
	schedPort, err5 := freePort()
	for _, err := range []error{err4, err5} {
		if err != nil {
			return err
		}
	}
	kubeconfig := filepath.Join(c.work, "admin.kubeconfig")
	auth := []string{"--kubeconfig=" + kubeconfig, "--authentication-kubeconfig=" + kubeconfig, "--authorization-kubeconfig=" + kubeconfig, "--bind-address=127.0.0.1", "--leader-elect=false"}
	if err := c.run("kube-controller-manager", filepath.Join(c.bin, "kube-controller-manager"), append(auth,
		fmt.Sprintf("--secure-port=%d", cmPort),
		"--service-account-private-key-file="+c.pki.saKey, "--root-ca-file="+c.pki.caCert,
		"--use-service-account-credentials=true",
		// No kubelets report here: without the node lifecycle controller the nodes stay Ready
		// instead of being tainted unreachable and evicted. No CronJob fires either: the nodes'
		// allocatable already keeps the room of their scheduled Jobs (fit.NodeObjects), so a Job
		// started while a slow proof crosses a schedule (the etcd snapshot's, every 15 minutes)
		// would count twice and fail the placement.
		"--controllers=*,-nodelifecycle,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller,-cronjob",
	)...); err != nil {
		return err
	}
	return c.run("kube-scheduler", filepath.Join(c.bin, "kube-scheduler"), append(auth, fmt.Sprintf("--secure-port=%d", schedPort))...)
}

// run starts a process with its output in a log file of the work folder.
func (c *controlPlane) run(name, path string, args ...string) error {
	log, err := os.Create(filepath.Join(c.work, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = log, log
	// A clean environment: etcd reads every ETCD_* variable as a flag.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.work}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	fmt.Printf("  started %s (pid %d)\n", name, cmd.Process.Pid)
	c.procs = append(c.procs, cmd)
	return nil
}

func (c *controlPlane) writeKubeconfig(path, server string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: server, CertificateAuthority: c.pki.caCert}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificate: c.pki.adminCert, ClientKey: c.pki.adminKey}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "admin"}
	cfg.CurrentContext = "local"
	return clientcmd.WriteToFile(*cfg, path)
}

// apiServerReadyTimeout bounds an API server's start. Alone one is ready in seconds; in CI, beside
// the three engine runs at their busiest, one starting on a restored etcd once took over 60 s.
const apiServerReadyTimeout = 3 * time.Minute

// waitReady waits until the API server (process) answers ready. One that exits first (a flag or
// a configuration file it refuses: the rendered audit policy, admission or encryption
// configuration) fails at once.
func (c *controlPlane) waitReady(ctx context.Context, process *exec.Cmd) error {
	deadline := time.Now().Add(apiServerReadyTimeout)
	for {
		body, err := c.client.RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && strings.TrimSpace(string(body)) == "ok" {
			return nil
		}
		if exited(process) {
			logPath, tail := c.logTail("kube-apiserver")
			return fmt.Errorf("kube-apiserver exited before it was ready; %s ends:%s", logPath, tail)
		}
		if time.Now().After(deadline) {
			logPath, tail := c.logTail("kube-apiserver")
			return fmt.Errorf("kube-apiserver not ready after %s (%v); %s ends:%s", apiServerReadyTimeout, err, logPath, tail)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// logTail is a process's log file and its last 15 lines, each after a newline: the work folder
// goes with the run, so the log's end goes into the error.
func (c *controlPlane) logTail(name string) (path, tail string) {
	path = filepath.Join(c.work, name+".log")
	if b, err := os.ReadFile(path); err == nil {
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		tail = "\n" + strings.Join(lines[max(0, len(lines)-15):], "\n")
	}
	return path, tail
}

// exited reports whether a process run started has ended: a zombie until stop waits for it.
// Linux only (/proc); elsewhere it never says so and waitReady waits out its timeout.
func exited(p *exec.Cmd) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Process.Pid))
	if err != nil {
		return errors.Is(err, os.ErrNotExist) && fileExists("/proc/self/stat")
	}
	// pid (comm) state ...: comm may hold spaces and parentheses, the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && (b[i+2] == 'Z' || b[i+2] == 'X')
}

// stop ends every process it started, newest first: SIGTERM, then SIGKILL after 10 s.
func (c *controlPlane) stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = syscall.Kill(-p.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
			<-done
		}
		fmt.Printf("  stopped %s (pid %d)\n", filepath.Base(p.Path), p.Process.Pid)
	}
	c.procs = nil
}

// checkSecretsEncrypted writes a Secret through the API server and reads it straight from etcd
// (its v3 JSON gateway on loopback): the stored value must be secretbox ciphertext, not the
// Secret in plain text.
func (c *controlPlane) checkSecretsEncrypted(ctx context.Context) error {
	const name, marker = "verify-encryption-at-rest", "plain-text-marker-7f3a"
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, StringData: map[string]string{"v": marker}}
	if _, err := c.client.CoreV1().Secrets("default").Create(ctx, secret, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create secret for the encryption check: %w", err)
	}
	defer func() { _ = c.client.CoreV1().Secrets("default").Delete(ctx, name, metav1.DeleteOptions{}) }()
	body, _ := json.Marshal(map[string]string{"key": base64.StdEncoding.EncodeToString([]byte("/registry/secrets/default/" + name))})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.etcdURL+"/v3/kv/range", bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("read the secret from etcd: %w", err)
	}
	defer func() { _ = resp.Body.Close() }() // a read-only request: nothing to lose on close
	var out struct {
		KVs []struct {
			Value []byte `json:"value"`
		} `json:"kvs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.KVs) != 1 {
		return fmt.Errorf("read the secret from etcd: %d values (%v)", len(out.KVs), err)
	}
	stored := out.KVs[0].Value
	if !bytes.HasPrefix(stored, []byte("k8s:enc:secretbox:v1:key1:")) || bytes.Contains(stored, []byte(marker)) {
		return fmt.Errorf("secret %s is stored in etcd without encryption (starts %q)", name, stored[:min(len(stored), 24)])
	}
	fmt.Println("  secrets are encrypted at rest in etcd (k8s:enc:secretbox:v1)")
	return nil
}

// checkPodSecurityDefault proves the program's admission configuration is in force: in a new
// namespace that sets no level, a privileged pod is refused (baseline enforced) and a pod that is
// only short of restricted is admitted with a warning (restricted warned). Dry-run creates: the
// pods pass admission and are never stored.
func (c *controlPlane) checkPodSecurityDefault(ctx context.Context) error {
	const ns = "verify-pod-security-default"
	if _, err := c.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace for the Pod Security check: %w", err)
	}
	defer func() { _ = c.client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}) }()
	// The controller-manager, which makes each namespace's default ServiceAccount, starts later.
	if _, err := c.client.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create the default service account for the Pod Security check: %w", err)
	}
	pod := func(name string, privileged bool) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "c", Image: "registry.k8s.io/pause:3.10", SecurityContext: &corev1.SecurityContext{Privileged: &privileged},
		}}}}
	}
	dryRun := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}
	_, err := c.client.CoreV1().Pods(ns).Create(ctx, pod("privileged", true), dryRun)
	if err == nil || !strings.Contains(err.Error(), `violates PodSecurity "baseline:latest"`) {
		return fmt.Errorf("a privileged pod in a namespace with no Pod Security level must be refused by the default (baseline), got %v", err)
	}
	// The system namespaces are exempt by name (kube-proxy, the CSI node plugin, Calico).
	if _, err := c.client.CoreV1().ServiceAccounts(metav1.NamespaceSystem).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create kube-system's default service account for the Pod Security check: %w", err)
	}
	system := pod("privileged", true)
	system.Namespace = metav1.NamespaceSystem
	if _, err := c.client.CoreV1().Pods(metav1.NamespaceSystem).Create(ctx, system, dryRun); err != nil {
		return fmt.Errorf("a privileged pod in kube-system must be admitted (exempt by name): %w", err)
	}
	warnings := &warningRecorder{}
	config := rest.CopyConfig(c.config)
	config.WarningHandler = warnings
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return err
	}
	if _, err := client.CoreV1().Pods(ns).Create(ctx, pod("unprivileged", false), dryRun); err != nil {
		return fmt.Errorf("a pod that baseline allows must be admitted in a namespace with no level: %w", err)
	}
	if !slices.ContainsFunc(warnings.messages, func(m string) bool { return strings.Contains(m, `violate PodSecurity "restricted:latest"`) }) {
		return fmt.Errorf("a pod short of restricted must be warned about by the default, warnings: %q", warnings.messages)
	}
	fmt.Println("  Pod Security default: a new namespace enforces baseline (a privileged pod refused) and warns restricted; kube-system is exempt")
	return nil
}

// warningRecorder keeps the API server's warnings.
type warningRecorder struct {
	mu       sync.Mutex
	messages []string
}

func (w *warningRecorder) HandleWarningHeader(_ int, _ string, message string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.messages = append(w.messages, message)
}
