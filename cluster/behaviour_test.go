package cluster

// Behaviour tests: one per promise a node script makes, proven by running the rendered script in
// the harness (harness_test.go), not by reading its text.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/versions"
)

const (
	testToken  = "abcdef.0123456789abcdef"
	testCAHash = "sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
	// testNode is the storage node's private DNS name, the name its Node object has.
	testNode = "ip-10-0-1-21.ap-northeast-2.compute.internal"
)

// kubeadmJoinCommand is the line `kubeadm token create --print-join-command` prints: kubeadm
// renders its join template (cmd/kubeadm/app/cmd/util/join.go) and, for this command, removes
// the template's line continuations and tabs (cmd/kubeadm/app/cmd/token.go), which leaves one
// line with a space after the hash, ended by a newline. tools/kubeadm/check.sh sets
// KUBEADM_JOIN_COMMAND_FILE to a line printed by the real kubeadm of each version line, whose
// CA hash TestCACertHashIsKubeadms compares with the program's.
func kubeadmJoinCommand(t *testing.T) string {
	t.Helper()
	if f := os.Getenv("KUBEADM_JOIN_COMMAND_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	return "kubeadm join 10.0.1.10:6443 --token " + testToken + " --discovery-token-ca-cert-hash " + testCAHash + " \n"
}

// testJoinConfig is the JoinConfiguration the program hands a worker whose cluster CA has the
// discovery hash caHash.
func testJoinConfig(t *testing.T, caHash string) string {
	t.Helper()
	c, err := JoinConfiguration("kubeadm.k8s.io/v1beta4", "10.0.1.10:6443", testToken, caHash)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func failIfKubeadmRan(t *testing.T, r scriptResult, why string) {
	t.Helper()
	if got := r.called("kubeadm"); len(got) > 0 {
		t.Errorf("%s, yet kubeadm ran: %v\n%s", why, got, r.describe())
	}
}

// expectRefusal checks that a script refused: it failed, kubeadm never ran, and its standard
// error says why (message; "" when the test does not pin the wording). accepted says what
// accepting would have meant for the cluster.
func expectRefusal(t *testing.T, r scriptResult, accepted, message string) {
	t.Helper()
	if r.code == 0 {
		t.Errorf("%s\n%s", accepted, r.describe())
	}
	failIfKubeadmRan(t, r, "the script should have refused")
	if message != "" && !strings.Contains(r.stderr, message) {
		t.Errorf("the refusal does not say %q:\n%s", message, r.describe())
	}
}

// --- join ---

func TestJoinRefusesAConfigurationWithoutTheCAHash(t *testing.T) {
	for name, stdin := range map[string]string{
		"no hash":     strings.Replace(testJoinConfig(t, testCAHash), "    caCertHashes:\n      - "+testCAHash+"\n", "", 1),
		"two hashes":  strings.Replace(testJoinConfig(t, testCAHash), "      - "+testCAHash+"\n", "      - "+testCAHash+"\n      - "+newTestCA(t).hash+"\n", 1),
		"a join line": kubeadmJoinCommand(t),
	} {
		t.Run(name, func(t *testing.T) {
			r := runScript(t, JoinScript(config.RoleWorker1), scriptCase{stdin: stdin})
			expectRefusal(t, r, "join accepted a configuration without exactly one CA hash: the node would trust any API server that answers at that address, or one of two clusters", "refusing")
		})
	}
}

func TestJoinRefusesTheUnsafeSkipOfCAVerification(t *testing.T) {
	conf := strings.Replace(testJoinConfig(t, testCAHash), "    caCertHashes:", "    unsafeSkipCAVerification: true\n    caCertHashes:", 1)
	r := runScript(t, JoinScript(config.RoleWorker1), scriptCase{stdin: conf})
	expectRefusal(t, r, "join accepted a configuration that skips CA verification", "skips CA verification")
}

// testCA is a cluster CA: its certificate (PEM), key, and the discovery hash kubeadm prints for
// it (sha256 of the DER SubjectPublicKeyInfo).
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	pem     string
	hash    string
	encoded string // base64 of pem, as kubeconfigs carry it
}

func newTestCA(t *testing.T) testCA {
	t.Helper()
	ca, err := makeTestCA()
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func makeTestCA() (testCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return testCA{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kubernetes"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return testCA{}, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return testCA{}, err
	}
	pemText := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return testCA{cert, key, pemText, "sha256:" + hex.EncodeToString(sum[:]), base64.StdEncoding.EncodeToString([]byte(pemText))}, nil
}

// joinConfigFor is the program's JoinConfiguration with the discovery hash of ca.
func joinConfigFor(t *testing.T, ca testCA) string {
	t.Helper()
	return testJoinConfig(t, ca.hash)
}

// joinedNodeCase is a re-run of the join on a node joined to ca's cluster, named testWorkerHost
// by its hostname; kubectl, asked with the node's own credential, answers body.
func joinedNodeCase(t *testing.T, ca testCA, kubectl string) scriptCase {
	return scriptCase{
		files: map[string]string{
			"/etc/kubernetes/kubelet.conf": "apiVersion: v1\nkind: Config\n",
			"/etc/kubernetes/pki/ca.crt":   ca.pem,
		},
		stdin: joinConfigFor(t, ca),
		stubs: map[string]string{"hostname": "echo " + testWorkerHost, "kubectl": kubectl},
	}
}

// testWorkerHost is a worker's hostname as the instance may report it; its Node is named in
// lower case (testWorkerNode), as kubeadm names it.
const (
	testWorkerHost = "IP-10-0-2-11.ap-northeast-2.compute.internal"
	testWorkerNode = "ip-10-0-2-11.ap-northeast-2.compute.internal"
)

func TestJoinLeavesANodeJoinedToThisClusterAlone(t *testing.T) {
	ca := newTestCA(t)
	r := runScript(t, JoinScript(config.RoleWorker1), joinedNodeCase(t, ca, `echo node/`+testWorkerNode))
	if r.code != 0 {
		t.Fatalf("a re-run on a joined node failed: every `pulumi up` after the first would fail\n%s", r.describe())
	}
	if !strings.Contains(r.stdout, "already joined to this cluster: nothing to do") {
		t.Errorf("the no-op does not say why:\n%s", r.describe())
	}
	failIfKubeadmRan(t, r, "the node had joined this cluster already (kubelet.conf, same CA)")
	if _, ok := r.root.read("/var/log/waste-coach/kubeadm-join.log"); ok {
		t.Error("a re-run on a joined node truncated the join log")
	}
	if got := r.called("systemctl"); len(got) > 0 {
		t.Errorf("the kubelet of a node whose Node is there was touched: %v", got)
	}
}

// TestJoinRegistersAgainANodeTheRestoredClusterLacks: a master restored from a snapshot taken
// before this node joined has no Node for it, and its running kubelet never registers again by
// itself (it registers once, at start: kubelet_node_status.go, registerWithAPIServer), so its
// member step would wait for the Node in vain. The join, which runs again with a new master,
// asks for the node's own Node with the node's credential and restarts the kubelet when it is
// gone; it never resets or joins the node again.
func TestJoinRegistersAgainANodeTheRestoredClusterLacks(t *testing.T) {
	ca := newTestCA(t)
	r := runScript(t, JoinScript(config.RoleWorker1), joinedNodeCase(t, ca, `exit 0`))
	if r.code != 0 {
		t.Fatalf("the join failed on a joined node without a Node:\n%s", r.describe())
	}
	want := "kubectl --kubeconfig /etc/kubernetes/kubelet.conf get node " + testWorkerNode + " --ignore-not-found -o name"
	if got := r.called("kubectl"); len(got) != 1 || got[0].String() != want {
		t.Errorf("asked %v, want one %q (the node's own credential may read only its own Node)", got, want)
	}
	if got := r.called("systemctl", "restart", "kubelet"); len(got) != 1 {
		t.Errorf("the kubelet was restarted %d times, want once: without a restart it never registers again\n%s", len(got), r.describe())
	}
	if !strings.Contains(r.stdout, "restarting its kubelet") {
		t.Errorf("the deploy log does not say why the kubelet restarts:\n%s", r.describe())
	}
	failIfKubeadmRan(t, r, "the node had joined this cluster already")
}

func TestJoinFailsWhenANodeCannotAskForItsNode(t *testing.T) {
	ca := newTestCA(t)
	r := runScript(t, JoinScript(config.RoleWorker1), joinedNodeCase(t, ca, `echo "The connection to the server 10.0.1.10:6443 was refused" >&2; exit 1`))
	expectRefusal(t, r, "a node that could not tell whether the cluster has its Node passed: its member step would wait for it in vain", "cannot ask the API server for its Node "+testWorkerNode)
	if got := r.called("kubectl"); len(got) != 60 {
		t.Errorf("asked %d times, want 60 (300 s: a new master's API server that answers minutes later is waited for, as the membership check waits)", len(got))
	}
	if !strings.Contains(r.stderr, "was refused") {
		t.Errorf("the refusal does not quote kubectl's last error:\n%s", r.describe())
	}
	if got := r.called("systemctl"); len(got) > 0 {
		t.Errorf("the kubelet was restarted on an unanswered question: %v", got)
	}
}

// TestJoinRefusesAKubeletNewerThanTheAPIServer: a node prepared with a newer minor than the
// control plane runs (an upgrade that failed, or was reverted in config) does not join; one of
// the same minor does.
func TestJoinRefusesAKubeletNewerThanTheAPIServer(t *testing.T) {
	ca := newTestCA(t)
	r := runScript(t, JoinScript(config.RoleWorker1), scriptCase{
		stdin: joinConfigFor(t, ca),
		stubs: map[string]string{"kubelet": `echo "Kubernetes v1.36.2"`},
	})
	if r.code == 0 || !strings.Contains(r.stderr, "kubelet is 1.36, newer than the API server's 1.35") {
		t.Fatalf("a 1.36 kubelet joined a 1.35 API server:\n%s", r.describe())
	}
	failIfKubeadmRan(t, r, "the kubelet is newer than the API server")
	if got := r.called("curl"); len(got) != 1 || !strings.HasSuffix(got[0].String(), "/version") {
		t.Errorf("the API server's version was not read from its /version: %v", got)
	}
	same := runScript(t, JoinScript(config.RoleWorker1), scriptCase{stdin: joinConfigFor(t, ca)})
	if same.code != 0 || len(same.called("kubeadm", "join")) != 1 {
		t.Errorf("a kubelet of the API server's minor did not join:\n%s", same.describe())
	}
}

// A node joined to another CA is never reset: with the program's CA, only a deliberate rotation
// changes it, and that procedure replaces the nodes; a reset would stop PostgreSQL, RabbitMQ and
// the API on a node that was serving.
func TestJoinRefusesANodeJoinedToAnotherCA(t *testing.T) {
	old, current := newTestCA(t), newTestCA(t)
	r := runScript(t, JoinScript(config.RoleWorker1), scriptCase{
		files: map[string]string{
			"/etc/kubernetes/kubelet.conf": "apiVersion: v1\nkind: Config\n",
			"/etc/kubernetes/pki/ca.crt":   old.pem,
		},
		stdin: joinConfigFor(t, current),
	})
	expectRefusal(t, r, "a node joined to another CA was accepted", "whose CA ("+old.hash+") is not the cluster's")
	if got, _ := r.root.read("/etc/kubernetes/kubelet.conf"); got != "apiVersion: v1\nkind: Config\n" {
		t.Error("the node's kubelet.conf was touched")
	}
}

func TestJoinLeavesANodeWithoutAReadableCAAlone(t *testing.T) {
	ca := newTestCA(t)
	r := runScript(t, JoinScript(config.RoleWorker1), scriptCase{
		files: map[string]string{"/etc/kubernetes/kubelet.conf": "apiVersion: v1\nkind: Config\n"},
		stdin: joinConfigFor(t, ca),
	})
	expectRefusal(t, r, "join succeeded on a node whose cluster it cannot tell", "no readable /etc/kubernetes/pki/ca.crt")
}

// TestJoinHandsKubeadmARootOnlyConfigurationAndNoTokenOnACommandLine: sudo logs every command
// line it runs, and /proc shows them to every process; the token travels only in the file.
func TestJoinHandsKubeadmARootOnlyConfigurationAndNoTokenOnACommandLine(t *testing.T) {
	conf := testJoinConfig(t, testCAHash)
	const path = "/etc/kubernetes/waste-coach/kubeadm-join.yaml"
	r := runScript(t, JoinScript(config.RoleWorker1), scriptCase{
		stdin: conf,
		stubs: map[string]string{"kubeadm": `cp "$3" "${STUB_STATE}/seen-config"; stat -c %a "$3" > "${STUB_STATE}/seen-mode"
echo "[preflight] joining with token ` + testToken + `"; echo "This node has joined the cluster"`},
	})
	if r.code != 0 {
		t.Fatalf("join failed on the program's configuration:\n%s", r.describe())
	}
	joins := r.called("kubeadm", "join")
	if len(joins) != 1 || joins[0].String() != "kubeadm join --config "+path {
		t.Fatalf("want one `kubeadm join --config %s`, got %v\n%s", path, joins, r.describe())
	}
	if anyCallMentions(r.calls, testToken) {
		t.Errorf("the bootstrap token reached a command line:\n%s", r.describe())
	}
	seen, _ := os.ReadFile(filepath.Join(r.root.dir, "state", "seen-config"))
	mode, _ := os.ReadFile(filepath.Join(r.root.dir, "state", "seen-mode"))
	if strings.TrimSpace(string(seen)) != strings.TrimSpace(conf) || strings.TrimSpace(string(mode)) != "600" {
		t.Errorf("kubeadm read %q (mode %s), want the configuration from standard input in a 0600 file", seen, mode)
	}
	if _, ok := r.root.read(path); ok {
		t.Errorf("%s, which holds the token, is left on the node after the join", path)
	}
	if strings.Contains(r.output(), testToken) {
		t.Errorf("the bootstrap token reached the deploy log:\n%s", r.output())
	}
	log, ok := r.root.read("/var/log/waste-coach/kubeadm-join.log")
	if !ok || !strings.Contains(log, "This node has joined the cluster") {
		t.Errorf("kubeadm's output is not in the join log (%v): %q", ok, log)
	}
	if m := r.root.mode("/var/log/waste-coach/kubeadm-join.log"); m != 0o600 {
		t.Errorf("the join log, which holds the token, has mode %v, want 0600", m)
	}
	if m := r.root.mode("/var/log/waste-coach"); m != 0o700 {
		t.Errorf("the log folder has mode %v, want 0700", m)
	}
}

func TestJoinFailureShowsTheLogWithoutTheToken(t *testing.T) {
	r := runScript(t, JoinScript(config.RoleWorker1), scriptCase{
		stdin: testJoinConfig(t, testCAHash),
		stubs: map[string]string{"kubeadm": `echo "I1128 discovery with token ` + testToken + `"; echo "error execution phase preflight: couldn't validate the identity of the API Server"; exit 1`},
	})
	if r.code == 0 {
		t.Fatalf("a failed kubeadm join was reported as success\n%s", r.describe())
	}
	if !strings.Contains(r.stderr, "couldn't validate the identity of the API Server") {
		t.Errorf("the failure does not show kubeadm's error:\n%s", r.describe())
	}
	if strings.Contains(r.output(), testToken) {
		t.Errorf("the bootstrap token reached the deploy log on failure:\n%s", r.output())
	}
	if _, ok := r.root.read("/etc/kubernetes/waste-coach/kubeadm-join.yaml"); ok {
		t.Error("the configuration, which holds the token, is left on the node after a failed join")
	}
}

// --- kubeadm init ---

// testEncryptionConfig is the API server's EncryptionConfiguration the deploy sends on standard
// input; its key is a secret.
const testEncryptionConfig = `apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - aescbc:
          keys:
            - name: key1
              secret: c2VjcmV0LWtleS1vZi10aGlydHktdHdvLWJ5dGVzLi4uLi4=
      - identity: {}
`

// kubeadmInitCase is a new master's kubeadm init: standard input is the program's bundle (the
// identity of testIdentity and the EncryptionConfiguration); kubeadm prints its token and writes
// admin.conf, keeping the CA it found.
func kubeadmInitCase() scriptCase {
	return scriptCase{stdin: InitBundle(testIdentity.files, testEncryptionConfig), stubs: map[string]string{
		"kubeadm": `echo "[bootstrap-token] Using token: ` + testToken + `"
echo "kubeadm join 10.0.1.10:6443 --token ` + testToken + ` \\"
echo "	--discovery-token-ca-cert-hash ` + testCAHash + `"
mkdir -p /etc/kubernetes && echo "kind: Config" > /etc/kubernetes/admin.conf`,
	}}
}

func TestKubeadmInitRunsOnceWithTheRenderedConfig(t *testing.T) {
	kc := KubeadmConfig(prodConfig(t), KubeadmParams{PublicIP: "198.51.100.10", EndpointName: "k8s.wastecoach.example.com"})
	root := newRoot(t)
	r := root.run(testInitScript(kc), kubeadmInitCase())
	if r.code != 0 {
		t.Fatalf("kubeadm init script failed:\n%s", r.describe())
	}
	inits := r.called("kubeadm", "init")
	if len(inits) != 1 || inits[0].String() != "kubeadm init --config /etc/kubernetes/waste-coach/kubeadm-init.yaml" {
		t.Fatalf("want one `kubeadm init --config /etc/kubernetes/waste-coach/kubeadm-init.yaml`, got %v", inits)
	}
	written, _ := root.read("/etc/kubernetes/waste-coach/kubeadm-init.yaml")
	if written != kc {
		t.Errorf("kubeadm read a config different from the rendered one:\n%s", written)
	}
	if m := root.mode("/etc/kubernetes/waste-coach/kubeadm-init.yaml"); m != 0o600 {
		t.Errorf("the kubeadm config has mode %v, want 0600", m)
	}

	again := root.run(testInitScript(kc), kubeadmInitCase())
	if again.code != 0 || !strings.Contains(again.stdout, "already initialised") {
		t.Errorf("a re-run on an initialised control plane did not succeed as a no-op:\n%s", again.describe())
	}
	failIfKubeadmRan(t, again, "admin.conf exists (the control plane is initialised)")
}

func TestKubeadmInitKeepsItsTokenInTheRootOnlyLog(t *testing.T) {
	r := runScript(t, testInitScript("kind: InitConfiguration\n"), kubeadmInitCase())
	if r.code != 0 {
		t.Fatalf("kubeadm init script failed:\n%s", r.describe())
	}
	if strings.Contains(r.output(), testToken) || strings.Contains(r.output(), testCAHash) {
		t.Errorf("kubeadm init's token reached the deploy log:\n%s", r.output())
	}
	log, _ := r.root.read("/var/log/waste-coach/kubeadm-init.log")
	if !strings.Contains(log, testToken) {
		t.Errorf("kubeadm's output is not in its log: %q", log)
	}
	if m := r.root.mode("/var/log/waste-coach/kubeadm-init.log"); m != 0o600 {
		t.Errorf("the init log has mode %v, want 0600", m)
	}
	if m := r.root.mode("/var/log/waste-coach"); m != 0o700 {
		t.Errorf("the log folder has mode %v, want 0700", m)
	}
}

func TestKubeadmInitFailureFailsTheStepWithoutTheToken(t *testing.T) {
	r := runScript(t, testInitScript("kind: InitConfiguration\n"), scriptCase{stdin: kubeadmInitCase().stdin, stubs: map[string]string{
		"kubeadm": `echo "[bootstrap-token] Using token: ` + testToken + `"; echo "error execution phase wait-control-plane"; exit 1`,
	}})
	if r.code == 0 {
		t.Fatalf("a failed kubeadm init was reported as success\n%s", r.describe())
	}
	if !strings.Contains(r.stderr, "/var/log/waste-coach/kubeadm-init.log") {
		t.Errorf("the failure does not name the log to read:\n%s", r.describe())
	}
	if strings.Contains(r.output(), testToken) {
		t.Errorf("the token reached the deploy log on failure:\n%s", r.output())
	}
}

func TestKubeadmInitWritesTheEncryptionConfigurationRootOnly(t *testing.T) {
	r := runScript(t, testInitScript("kind: InitConfiguration\n"), kubeadmInitCase())
	if r.code != 0 {
		t.Fatalf("kubeadm init script failed:\n%s", r.describe())
	}
	if got, _ := r.root.read(EncryptionConfigPath); got != testEncryptionConfig {
		t.Errorf("%s is not the EncryptionConfiguration given on standard input:\n%s", EncryptionConfigPath, got)
	}
	if m := r.root.mode(EncryptionConfigPath); m != 0o600 {
		t.Errorf("the EncryptionConfiguration, which holds the key, has mode %v, want 0600", m)
	}
	if m := r.root.mode(EncryptionConfigDir); m != 0o700 {
		t.Errorf("%s has mode %v, want 0700", EncryptionConfigDir, m)
	}
	if strings.Contains(r.output(), "c2VjcmV0LWtleS1vZi10aGlydHktdHdvLWJ5dGVzLi4uLi4=") {
		t.Errorf("the encryption key reached the deploy log:\n%s", r.output())
	}
	if len(r.called("kubeadm", "init")) != 1 {
		t.Errorf("kubeadm init did not run after the EncryptionConfiguration was written:\n%s", r.describe())
	}
}

// A new master's API server starts with Pod Security's defaults: kubeadm init runs only after
// the AdmissionConfiguration its configuration names is in place.
func TestKubeadmInitWritesTheAdmissionConfigurationFirst(t *testing.T) {
	r := runScript(t, testInitScript("kind: InitConfiguration\n"), kubeadmInitCase())
	if r.code != 0 {
		t.Fatalf("kubeadm init script failed:\n%s", r.describe())
	}
	if got, _ := r.root.read(AdmissionConfigPath()); got != AdmissionConfig() {
		t.Errorf("%s is not the program's AdmissionConfiguration:\n%s", AdmissionConfigPath(), got)
	}
	written, init := r.index("sudo", "mv", AdmissionConfigPath()+".new", AdmissionConfigPath()), r.index("kubeadm", "init")
	if written < 0 || init < written {
		t.Errorf("kubeadm init ran before the AdmissionConfiguration was in place:\n%s", r.describe())
	}
}

func TestKubeadmInitRefusesToRunWithoutAnEncryptionConfiguration(t *testing.T) {
	for name, tc := range map[string]struct{ stdin, message string }{
		"empty":        {"", "no " + EncryptionConfigEntry + " on standard input"},
		"none":         {FormatBundle(testIdentity.files), "no " + EncryptionConfigEntry + " on standard input"},
		"another kind": {InitBundle(testIdentity.files, "apiVersion: v1\nkind: ConfigMap\n"), "is no EncryptionConfiguration"},
	} {
		t.Run(name, func(t *testing.T) {
			expectInitRefusesStdin(t, tc.stdin, "kubeadm init ran without an EncryptionConfiguration: Secrets would be stored in plain text in etcd", tc.message)
		})
	}
}

// expectInitRefusesStdin runs a new master's kubeadm-init with stdin and expects it to refuse,
// saying message, before kubeadm runs.
func expectInitRefusesStdin(t *testing.T, stdin, accepted, message string) {
	t.Helper()
	c := kubeadmInitCase()
	c.stdin = stdin
	expectRefusal(t, runScript(t, testInitScript("kind: InitConfiguration\n"), c), accepted, message)
}

// --- join token ---

func TestJoinTokenMintsAShortLivedTokenAndPrintsIt(t *testing.T) {
	r := runScript(t, JoinTokenScript(config.RoleWorker1), scriptCase{stubs: map[string]string{
		"kubeadm": `echo ` + testToken,
	}})
	if r.code != 0 {
		t.Fatalf("join-token failed:\n%s", r.describe())
	}
	want := "kubeadm token create --ttl " + JoinTokenTTL + " --description join worker-1"
	if got := r.called("kubeadm"); len(got) != 1 || got[0].String() != want {
		t.Errorf("kubeadm calls %v, want one %q", got, want)
	}
	if r.stdout != testToken+"\n" {
		t.Errorf("join-token printed %q, want kubeadm's token %q alone", r.stdout, testToken)
	}
}

// --- member delete ---

func nodeExistsStub(exists bool) string {
	if exists {
		return `exit 0`
	}
	return `[ "$3" = get ] && { echo "Error from server (NotFound): nodes \"$5\" not found" >&2; exit 1; }; exit 0`
}

func TestMemberDeleteDrainsThenDeletesTheNode(t *testing.T) {
	r := runScript(t, MemberDeleteScript(config.RoleStorage, testNode), scriptCase{stubs: map[string]string{"kubectl": nodeExistsStub(true)}})
	if r.code != 0 {
		t.Fatalf("member-delete failed:\n%s", r.describe())
	}
	admin := []string{"--kubeconfig", "/etc/kubernetes/admin.conf"}
	drain := r.index("kubectl", append(admin, "drain", testNode)...)
	del := r.index("kubectl", append(admin, "delete", "node", testNode)...)
	if drain < 0 || del < 0 || drain > del {
		t.Fatalf("want a drain of %s, then its deletion; got\n%s", testNode, r.describe())
	}
	got := r.calls[drain].String()
	for _, flag := range []string{"--ignore-daemonsets", "--delete-emptydir-data", "--force", "--timeout=900s"} {
		if !strings.Contains(got, flag) {
			t.Errorf("the drain lacks %s (without it a node with daemonsets, emptyDir pods or bare pods never drains): %s", flag, got)
		}
	}
}

func TestMemberDeleteDeletesTheNodeEvenWhenTheDrainFails(t *testing.T) {
	r := runScript(t, MemberDeleteScript(config.RoleStorage, testNode), scriptCase{stubs: map[string]string{
		"kubectl": `[ "$3" = drain ] && { echo "error: cannot evict pod as it would violate the pod's disruption budget" >&2; exit 1; }; exit 0`,
	}})
	if r.code != 0 {
		t.Fatalf("a failed drain failed the replacement; the node must be removed anyway:\n%s", r.describe())
	}
	if len(r.called("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "delete", "node", testNode)) != 1 {
		t.Errorf("the node was not deleted after a failed drain:\n%s", r.describe())
	}
}

func TestMemberDeleteFallsBackToDeletingPodsWhenABudgetHoldsTheDrain(t *testing.T) {
	admin := []string{"--kubeconfig", "/etc/kubernetes/admin.conf"}
	// The eviction drain times out on a budget; the one without eviction succeeds.
	r := runScript(t, MemberDeleteScript(config.RoleWorker2, testNode), scriptCase{stubs: map[string]string{
		"kubectl": `[ "$3" = drain ] && [[ " $* " != *" --disable-eviction "* ]] && { echo "error: timed out waiting for the condition" >&2; exit 1; }; exit 0`,
	}})
	if r.code != 0 {
		t.Fatalf("member-delete failed:\n%s", r.describe())
	}
	drains := r.called("kubectl", append(admin, "drain", testNode)...)
	if len(drains) != 2 {
		t.Fatalf("%d drains, want the eviction drain then the fallback:\n%s", len(drains), r.describe())
	}
	if got := drains[0].String(); strings.Contains(got, "--disable-eviction") || !strings.Contains(got, "--timeout=300s") {
		t.Errorf("the first drain must evict within the budgets for 300 s: %s", got)
	}
	if got := drains[1].String(); !strings.Contains(got, "--disable-eviction") || !strings.Contains(got, "--timeout=330s") {
		t.Errorf("the fallback must delete without eviction and give the Celery workers' 300 s grace period: %s", got)
	}
	del := r.index("kubectl", append(admin, "delete", "node", testNode)...)
	if del < 0 || del < r.index("kubectl", append(admin, "drain", testNode, "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--disable-eviction")...) {
		t.Errorf("the node is not deleted after the fallback:\n%s", r.describe())
	}
	if !strings.Contains(r.stderr, "without eviction") {
		t.Errorf("the log does not say the budgets were bypassed:\n%s", r.describe())
	}

	// A drain that completes needs no fallback.
	ok := runScript(t, MemberDeleteScript(config.RoleWorker2, testNode), scriptCase{stubs: map[string]string{"kubectl": nodeExistsStub(true)}})
	if n := len(ok.called("kubectl", append(admin, "drain", testNode)...)); ok.code != 0 || n != 1 {
		t.Errorf("a drain that completed was followed by %d drains in all (exit %d), want 1", n, ok.code)
	}
}

func TestMemberDeleteNeverDeletesDataPodsPastTheirBudgets(t *testing.T) {
	admin := []string{"--kubeconfig", "/etc/kubernetes/admin.conf"}
	// The storage node's eviction drain times out with a broker still held by its budget.
	r := runScript(t, MemberDeleteScript(config.RoleStorage, testNode), scriptCase{stubs: map[string]string{
		"kubectl": `case "$3 $4 $5" in
  "drain "*) [[ " $* " != *" --disable-eviction "* ]] && { echo "error: timed out waiting for the condition" >&2; exit 1; }; exit 0 ;;
  "get pods -n") [ "$6" = data ] && [ "$7 $8" = "--field-selector spec.nodeName=` + testNode + `" ] && echo "pod/rabbitmq-2" ;;
esac
exit 0`,
	}})
	if r.code == 0 {
		t.Fatalf("the removal passed with a RabbitMQ broker still on the node:\n%s", r.describe())
	}
	if n := len(r.called("kubectl", append(admin, "drain", testNode, "--ignore-daemonsets", "--delete-emptydir-data", "--force", "--disable-eviction")...)); n != 0 {
		t.Errorf("the data namespace's pods were deleted past their budgets (%d drains without eviction):\n%s", n, r.describe())
	}
	if n := len(r.called("kubectl", append(admin, "delete", "node", testNode)...)); n != 0 {
		t.Errorf("the node was deleted with a broker still on it:\n%s", r.describe())
	}
	for _, want := range []string{"pod/rabbitmq-2", "kubectl drain " + testNode + " --ignore-daemonsets --delete-emptydir-data --force --disable-eviction", "kubectl delete node " + testNode} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the failure does not say %q:\n%s", want, r.describe())
		}
	}
	if got := r.called("kubectl", append(admin, "drain", testNode)...); len(got) != 1 || !strings.Contains(got[0].String(), "--timeout=900s") {
		t.Errorf("the storage node's drain must evict within the budgets for 900 s (three brokers one at a time): %v", got)
	}
}

func TestMemberDeleteToleratesANodeAlreadyGone(t *testing.T) {
	r := runScript(t, MemberDeleteScript(config.RoleStorage, testNode), scriptCase{stubs: map[string]string{"kubectl": nodeExistsStub(false)}})
	if r.code != 0 {
		t.Fatalf("member-delete failed on a node that is already gone: destroy would stop here\n%s", r.describe())
	}
	for _, verb := range []string{"drain", "delete"} {
		if n := len(r.called("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", verb)); n != 0 {
			t.Errorf("kubectl %s ran for a node that is not in the cluster", verb)
		}
	}
}

// --- member ---

func TestMemberWaitsForTheNodeThenLabelsIt(t *testing.T) {
	// The Node appears at the third look.
	r := runScript(t, MemberScript(config.RoleWorker2, testNode), scriptCase{stubs: map[string]string{
		"kubectl": `if [ "$3" = get ]; then n=$(cat "$STUB_STATE/gets" 2>/dev/null || echo 0); echo $((n+1)) > "$STUB_STATE/gets"; [ "$n" -ge 2 ]; fi`,
	}})
	if r.code != 0 {
		t.Fatalf("member failed:\n%s", r.describe())
	}
	if n := len(r.called("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "get", "node", testNode)); n != 4 {
		t.Errorf("looked for the Node %d times, want 4 (until it appears, and once more to be sure)", n)
	}
	want := "kubectl --kubeconfig /etc/kubernetes/admin.conf label node " + testNode + " --overwrite node-role.kubernetes.io/worker= workload=async-workers"
	labels := r.called("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "label")
	if len(labels) != 1 || labels[0].String() != want {
		t.Errorf("labels %v, want %q: the workloads' node selectors need both labels", labels, want)
	}
	if last := r.calls[len(r.calls)-1]; last[0] != "kubectl" || last[3] != "label" {
		t.Errorf("the label was not the last step: %v", last)
	}
}

func TestMemberSaysWhichNodeNeverRegistered(t *testing.T) {
	r := runScript(t, MemberScript(config.RoleWorker2, testNode), scriptCase{stubs: map[string]string{
		"kubectl": `[ "$3" != get ] || { echo "Error from server (NotFound): nodes \"$5\" not found" >&2; exit 1; }`,
	}})
	if r.code == 0 || !strings.Contains(r.stderr, "Node "+testNode+" has not registered within 300 s") {
		t.Errorf("member does not fail naming the Node that never registered:\n%s", r.describe())
	}
	if got := r.called("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "label"); len(got) > 0 {
		t.Errorf("labelled a Node that is not there: %v", got)
	}
}

// --- wait-node ---

func TestWaitNodeAcceptsCloudInitsRecoverableErrorsWhenTheMarkerIsThere(t *testing.T) {
	r := runScript(t, WaitNodeScript(), scriptCase{
		files: map[string]string{ReadyMarker: "2026-11-28T02:00:00Z\n"},
		stubs: map[string]string{"cloud-init": `exit 2`},
	})
	if r.code != 0 || !strings.Contains(r.stdout, "node ready since 2026-11-28T02:00:00Z") {
		t.Errorf("a prepared node whose cloud-init reports recoverable errors (exit 2) was not accepted:\n%s", r.describe())
	}
	if len(r.called("cloud-init", "status", "--wait")) != 1 {
		t.Errorf("wait-node did not wait for cloud-init:\n%s", r.describe())
	}
}

func TestWaitNodeFailsWithTheLogWhenPreparationDidNotFinish(t *testing.T) {
	for _, tc := range []struct {
		name, cloudInit string
		marker          bool
	}{
		{"no marker", `exit 0`, false},
		{"cloud-init error", `exit 1`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := scriptCase{
				files: map[string]string{"/var/log/cloud-init-output.log": "node-prepare: packages\nE: Unable to locate package kubelet\n"},
				stubs: map[string]string{"cloud-init": tc.cloudInit},
			}
			if tc.marker {
				c.files[ReadyMarker] = "2026-11-28T02:00:00Z\n"
			}
			r := runScript(t, WaitNodeScript(), c)
			if r.code == 0 {
				t.Fatalf("wait-node passed a node whose preparation failed (%s)\n%s", tc.name, r.describe())
			}
			if !tc.marker && !strings.Contains(r.stderr, "Unable to locate package kubelet") {
				t.Errorf("the failure does not show the end of cloud-init's log:\n%s", r.describe())
			}
		})
	}
}

// --- read-kubeconfig ---

// deployerKubeconfig is a kubeconfig for DeployUser whose client certificate, signed by ca, expires
// in validFor.
func deployerKubeconfig(t *testing.T, ca testCA, validFor time.Duration) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: DeployUser},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(validFor),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	certData := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return "apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: " + ca.encoded +
		"\n    server: https://k8s.wastecoach.example.com:6443\n  name: kubernetes\nusers:\n- name: " + DeployUser +
		"\n  user:\n    client-certificate-data: " + certData + "\n    client-key-data: LS0tLS1CRUdJTi...\n"
}

// mintedKubeconfig is what the kubeadm stand-in prints for `kubeadm kubeconfig user`.
const mintedKubeconfig = "apiVersion: v1\nkind: Config\n# minted by kubeadm kubeconfig user\n"

// readKubeconfigCase is a control plane with CA ca and, unless stored is empty, a stored deploy
// kubeconfig. kubectl answers the ClusterRoleBinding dry run and the kubeadm-config ConfigMap;
// kubeadm mints a kubeconfig only from a ClusterConfiguration.
func readKubeconfigCase(ca testCA, stored string) scriptCase {
	files := map[string]string{
		"/etc/kubernetes/admin.conf": "apiVersion: v1\nkind: Config\n# admin\n",
		"/etc/kubernetes/pki/ca.crt": ca.pem,
	}
	if stored != "" {
		files["/etc/kubernetes/waste-coach/"+DeployUser+".conf"] = stored
	}
	return scriptCase{files: files, stubs: map[string]string{
		"kubectl": `case "$*" in
*" create clusterrolebinding "*) printf 'apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: %s\n' "$4" ;;
*" apply "*) cat > "$STUB_STATE/applied.yaml" ;;
*" get configmap kubeadm-config "*) printf 'apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nclusterName: kubernetes\n' ;;
*) exit 1 ;;
esac`,
		"kubeadm": `[ "$1 $2 $3" = "kubeconfig user --config" ] && grep -q '^kind: ClusterConfiguration$' "$4" || { echo "unexpected kubeadm $*" >&2; exit 1; }
printf '%s' ` + shellQuote([]string{mintedKubeconfig}),
	}}
}

func TestReadKubeconfigPrintsTheStoredCredentialWhileItHasMoreThan45Days(t *testing.T) {
	ca := newTestCA(t)
	stored := deployerKubeconfig(t, ca, 60*24*time.Hour)
	r := runScript(t, ReadKubeconfigScript(), readKubeconfigCase(ca, stored))
	if r.code != 0 || r.stdout != stored {
		t.Fatalf("read-kubeconfig printed %q, want the stored deploy kubeconfig unchanged\n%s", r.stdout, r.describe())
	}
	if got := r.called("kubeadm"); len(got) > 0 {
		t.Errorf("a credential valid for 60 more days was minted again: %v", got)
	}
	want := "kubectl --kubeconfig /etc/kubernetes/admin.conf create clusterrolebinding " + DeployUser + " --clusterrole=cluster-admin --user=" + DeployUser + " --dry-run=client -o yaml"
	if got := r.called("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "create"); len(got) != 1 || got[0].String() != want {
		t.Errorf("the deploy user's binding: got %v, want %q", got, want)
	}
	if len(r.called("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "apply", "--server-side", "--force-conflicts", "-f", "-")) != 1 {
		t.Errorf("the ClusterRoleBinding was not applied: the credential would have no rights\n%s", r.describe())
	}
}

// TestReadKubeconfigLeavesTheCertificateForTheExpiryAlert: the certificate exporter on the master
// reads the credential's certificate from a file of its own, readable by anyone and holding no key.
func TestReadKubeconfigLeavesTheCertificateForTheExpiryAlert(t *testing.T) {
	ca := newTestCA(t)
	stored := deployerKubeconfig(t, ca, 60*24*time.Hour)
	r := runScript(t, ReadKubeconfigScript(), readKubeconfigCase(ca, stored))
	if r.code != 0 {
		t.Fatalf("read-kubeconfig failed\n%s", r.describe())
	}
	path := "/etc/kubernetes/waste-coach/" + DeployUser + ".crt"
	got, ok := r.root.read(path)
	if !ok {
		t.Fatalf("%s not written: the AdminCredentialExpiring alert would have nothing to read", path)
	}
	block, _ := pem.Decode([]byte(got))
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("%s holds %q, want the credential's PEM certificate", path, got)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || cert.Subject.CommonName != DeployUser {
		t.Fatalf("%s is not the deploy credential's certificate: %v", path, err)
	}
	if strings.Contains(got, "PRIVATE KEY") || strings.Contains(got, "client-key-data") {
		t.Errorf("%s holds key material", path)
	}
	if m := r.root.mode(path); m != 0o644 {
		t.Errorf("%s has mode %v, want 0644 (the exporter runs as nobody)", path, m)
	}
}

// TestReadKubeconfigRewritesTheCertificateInPlace: the exporter mounts the certificate file by
// itself, and a file bind mount keeps the inode it was made with. A re-mint must therefore write
// the same file (same inode), or AdminCredentialExpiring keeps reading the old certificate and
// goes false after the renewal, then never fires again.
func TestReadKubeconfigRewritesTheCertificateInPlace(t *testing.T) {
	ca := newTestCA(t)
	root := newRoot(t)
	path := "/etc/kubernetes/waste-coach/" + DeployUser + ".crt"
	if r := root.run(ReadKubeconfigScript(), readKubeconfigCase(ca, deployerKubeconfig(t, ca, 60*24*time.Hour))); r.code != 0 {
		t.Fatalf("read-kubeconfig failed\n%s", r.describe())
	}
	before, _ := root.read(path)
	inode := func() uint64 {
		fi, err := os.Stat(root.path(path))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	first := inode()
	// Ten days left: the next run mints a new credential.
	r := root.run(ReadKubeconfigScript(), readKubeconfigCase(ca, deployerKubeconfig(t, ca, 10*24*time.Hour)))
	if r.code != 0 || len(r.called("kubeadm")) == 0 {
		t.Fatalf("a credential with 10 days left was not minted again\n%s", r.describe())
	}
	if after, _ := root.read(path); after == before {
		t.Fatal("the certificate file still holds the old certificate after the re-mint")
	}
	if inode() != first {
		t.Errorf("the re-mint replaced %s by a new file (inode %d, was %d): the exporter's file mount would keep the old one", path, inode(), first)
	}
	if m := root.mode(path); m != 0o644 {
		t.Errorf("%s has mode %v after the re-mint, want 0644", path, m)
	}
}

func TestReadKubeconfigMintsANewCredentialWhenNeeded(t *testing.T) {
	ca := newTestCA(t)
	for name, stored := range map[string]string{
		"none stored":          "",
		"expires in 30 days":   deployerKubeconfig(t, ca, 30*24*time.Hour),
		"minted by another CA": deployerKubeconfig(t, newTestCA(t), 300*24*time.Hour),
	} {
		t.Run(name, func(t *testing.T) {
			r := runScript(t, ReadKubeconfigScript(), readKubeconfigCase(ca, stored))
			if r.code != 0 || r.stdout != mintedKubeconfig {
				t.Fatalf("read-kubeconfig printed %q, want a newly minted kubeconfig\n%s", r.stdout, r.describe())
			}
			want := "kubeadm kubeconfig user --config /etc/kubernetes/waste-coach/cluster-configuration.yaml --client-name " + DeployUser + " --validity-period 8760h"
			if got := r.called("kubeadm"); len(got) != 1 || got[0].String() != want {
				t.Errorf("kubeadm calls %v, want one %q", got, want)
			}
			conf := "/etc/kubernetes/waste-coach/" + DeployUser + ".conf"
			if got, _ := r.root.read(conf); got != mintedKubeconfig {
				t.Errorf("the minted kubeconfig was not stored for the next run: %q", got)
			}
			if m := r.root.mode(conf); m != 0o600 {
				t.Errorf("the stored credential has mode %v, want 0600", m)
			}
		})
	}
}

// --- wait-ssh ---

// TestWaitSSHPausesBetweenTriesUntilTheNodeAnswers runs the probe for real against the namespace's
// loopback: nothing listens on port 22 at the first try; the pause after it (a stand-in sleep)
// starts a listener, which the second try reaches. Giving up takes the full fifteen minutes of
// bash's SECONDS, which the environment cannot shorten, so that path is checked by its text.
func TestWaitSSHPausesBetweenTriesUntilTheNodeAnswers(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("the stand-in SSH listener needs /usr/bin/python3")
	}
	listen := `import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 22))
s.listen(1)
open(sys.argv[1], "w").close()
s.settimeout(10)
s.accept()
`
	r := runScript(t, WaitSSHScript(), scriptCase{
		loopback: true,
		env:      []string{"NODE_HOST=127.0.0.1"},
		stubs: map[string]string{"sleep": `if [ "$1" = 10 ] && [ ! -e "$STUB_STATE/listening" ]; then
  /usr/bin/python3 -c ` + shellQuote([]string{listen}) + ` "$STUB_STATE/listening" < /dev/null > /dev/null 2>&1 &
  for _ in $(seq 100); do [ -e "$STUB_STATE/listening" ] && break; /bin/sleep 0.05; done
fi`},
	})
	if r.code != 0 || !strings.Contains(r.stdout, "ssh on 127.0.0.1 answers") {
		t.Fatalf("wait-ssh did not return once SSH answered at the second try:\n%s", r.describe())
	}
	if pauses := len(r.called("sleep", "10")); pauses != 1 {
		t.Errorf("%d pauses of 10s, want one between the refused try and the answered one\n%s", pauses, r.describe())
	}
	script := WaitSSHScript()
	for _, hint := range []string{"did not answer within 900s", "adminCidrs", "aws ec2 get-console-output --instance-id ${NODE_ID:-<instance id>}", "blocks outbound port 22"} {
		if !strings.Contains(script, hint) {
			t.Errorf("the give-up message lacks %q, which tells the operator where to look", hint)
		}
	}
}

// --- calico ---

// calicoStubs stand in for the manifest downloads: curl writes "<file> as published" to -o,
// or a tampered copy for the file named in tampered; sha256sum --check accepts exactly the
// published copies under their pins and hands anything else to the real sha256sum.
func calicoStubs(tampered string) map[string]string {
	return map[string]string{
		"curl": `out=; url=; while [ $# -gt 0 ]; do case "$1" in -o) out=$2; shift ;; https://*) url=$1 ;; esac; shift; done
f=${url##*/}
if [ "${f}" = "` + tampered + `" ]; then echo "${f} with an extra object" > "${out}"; else echo "${f} as published" > "${out}"; fi`,
		"sha256sum": `[ "$1" = --check ] || exec /usr/bin/sha256sum "$@"
read -r sum file
case "${sum}" in
` + versions.CalicoOperatorCRDsSHA256 + `) grep -qx 'operator-crds.yaml as published' "${file}" && exit 0 ;;
` + versions.CalicoOperatorSHA256 + `) grep -qx 'tigera-operator.yaml as published' "${file}" && exit 0 ;;
esac
echo "${sum}  ${file}" | /usr/bin/sha256sum "$@"`,
		"kubectl": `if [ "${*: -1}" = - ]; then cat > "$STUB_STATE/installation.yaml"; fi
for a in "$@"; do case "${a}" in /*.yaml) cp "${a}" "$STUB_STATE/applied-$(basename "${a}")" ;; esac; done`,
	}
}

func TestCalicoAppliesTheVerifiedOperatorThenTheInstallation(t *testing.T) {
	r := runScript(t, CalicoScript(kube135), scriptCase{stubs: calicoStubs("")})
	if r.code != 0 {
		t.Fatalf("calico failed:\n%s", r.describe())
	}
	applyFile := func(file string) int {
		for i, c := range r.calls {
			if c[0] == "kubectl" && slices.Contains(c, "apply") && strings.HasSuffix(c[len(c)-1], "/"+file) {
				return i
			}
		}
		return -1
	}
	crds, operator := applyFile("operator-crds.yaml"), applyFile("tigera-operator.yaml")
	wait := r.index("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "wait", "--for=condition=Established", "--timeout=120s", "crd/installations.operator.tigera.io")
	inst := r.index("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "apply", "--server-side", "--force-conflicts", "-f", "-")
	if crds < 0 || operator < crds || wait < operator || inst < wait {
		t.Errorf("want the verified CRDs, then the operator applied, the Installation CRD established, then the Installation; got\n%s", r.describe())
	}
	for _, f := range []string{"operator-crds.yaml", "tigera-operator.yaml"} {
		if got, _ := os.ReadFile(r.root.dir + "/state/applied-" + f); string(got) != f+" as published\n" {
			t.Errorf("applied %s is %q, not the verified download", f, got)
		}
	}
	got, _ := os.ReadFile(r.root.dir + "/state/installation.yaml")
	if string(got) != CalicoInstallation() {
		t.Errorf("the Installation applied is not CalicoInstallation():\n%s", got)
	}
}

// TestCalicoRefusesATamperedManifest: a download whose sha256 is not the pinned one (a moved
// tag, a compromised mirror) fails the step and nothing is applied, not even the file that matched.
func TestCalicoRefusesATamperedManifest(t *testing.T) {
	for _, tampered := range []string{"operator-crds.yaml", "tigera-operator.yaml"} {
		t.Run(tampered, func(t *testing.T) {
			r := runScript(t, CalicoScript(kube135), scriptCase{stubs: calicoStubs(tampered)})
			if r.code == 0 {
				t.Fatalf("calico accepted a tampered %s:\n%s", tampered, r.describe())
			}
			if applied := r.called("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "apply"); len(applied) != 0 {
				t.Errorf("applied %v although %s did not match its pin", applied, tampered)
			}
			if !strings.Contains(r.output(), "does not match its pinned sha256") {
				t.Errorf("the refusal does not say why:\n%s", r.describe())
			}
		})
	}
}

// --- nodes-ready ---

// nodesStub answers kubectl as a cluster whose nodes are given as "name providerID taints zone".
func nodesStub(nodes ...string) string {
	var names, ids, taints, zones strings.Builder
	for _, n := range nodes {
		f := strings.Split(n, "|")
		names.WriteString(f[0] + "   Ready   <none>   1m   v1.35.4\n")
		ids.WriteString(f[0] + " " + f[1] + "\n")
		taints.WriteString(f[0] + " " + f[2] + "\n")
		zones.WriteString(f[0] + " " + f[3] + "\n")
	}
	return `case "$*" in
*--no-headers*) printf '%s' ` + shellQuote([]string{names.String()}) + ` ;;
*providerID*) printf '%s' ` + shellQuote([]string{ids.String()}) + ` ;;
*taints*) printf '%s' ` + shellQuote([]string{taints.String()}) + ` ;;
*topology*zone*"{"*) printf '%s' ` + shellQuote([]string{zones.String()}) + ` ;;
esac`
}

// TestNodesReadyCountsTheNodesTheProgramDeclares: a node missing from the cluster (a worker
// whose kubelet never registered again after the master's restore) fails the step, naming the
// nodes there; the Ready check alone would pass on the nodes that are.
func TestNodesReadyCountsTheNodesTheProgramDeclares(t *testing.T) {
	good := "ip-10-0-1-10|aws:///ap-northeast-2a/i-0a||ap-northeast-2a"
	r := runScript(t, NodesReadyScript(2), scriptCase{stubs: map[string]string{"kubectl": nodesStub(good)}})
	if r.code == 0 || !strings.Contains(r.stderr, "the cluster has 1 nodes after 900 s, want 2: ip-10-0-1-10") {
		t.Errorf("nodes-ready passed, or did not say why, with one node of two:\n%s", r.describe())
	}
	if n := len(r.called("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "get", "nodes", "--no-headers")); n < 90 {
		t.Errorf("looked for the nodes %d times, want the 90 tries (15 minutes) first", n)
	}
}

func TestNodesReadyRequiresProviderIDsInitialisationAndZones(t *testing.T) {
	good := "ip-10-0-1-10|aws:///ap-northeast-2a/i-0a||ap-northeast-2a"
	for _, tc := range []struct {
		name, bad, want string
	}{
		{"all good", "ip-10-0-2-11|aws:///ap-northeast-2b/i-0b||ap-northeast-2b", ""},
		{"no providerID", "ip-10-0-2-11|||ap-northeast-2b", "nodes without an AWS providerID: ip-10-0-2-11"},
		{"uninitialised", "ip-10-0-2-11|aws:///ap-northeast-2b/i-0b|node.cloudprovider.kubernetes.io/uninitialized|ap-northeast-2b", "the cloud-controller-manager has not initialised: ip-10-0-2-11"},
		{"no zone", "ip-10-0-2-11|aws:///ap-northeast-2b/i-0b||", "nodes without a zone label: ip-10-0-2-11"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runScript(t, NodesReadyScript(2), scriptCase{stubs: map[string]string{"kubectl": nodesStub(good, tc.bad)}})
			if tc.want == "" {
				if r.code != 0 || len(r.called("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "wait", "--for=condition=Ready", "nodes", "--all")) != 1 {
					t.Errorf("nodes-ready did not pass a Ready, initialised, zoned cluster after waiting for Ready:\n%s", r.describe())
				}
				return
			}
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("nodes-ready: want failure %q\n%s", tc.want, r.describe())
			}
		})
	}
}
