package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// identity is a cluster identity for the tests: its files (as IdentityFiles name them) and the
// CA whose hash workers check.
type identity struct {
	files map[string]string
	ca    testCA
}

// newIdentityForTest makes an identity (ECDSA keys: quicker than RSA, and kubeadm reads both).
// It panics on a failure of the system's random source, which no test could survive.
func newIdentityForTest() identity {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	var id identity
	id.files = map[string]string{}
	for _, stem := range []string{"ca", "front-proxy-ca", "etcd/ca"} {
		c, err := makeTestCA()
		must(err)
		if stem == "ca" {
			id.ca = c
		}
		id.files[stem+".crt"] = c.pem
		id.files[stem+".key"] = ecKeyPEM(c.key)
	}
	sa, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	pub, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	must(err)
	id.files["sa.key"] = ecKeyPEM(sa)
	id.files["sa.pub"] = string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	return id
}

func ecKeyPEM(key *ecdsa.PrivateKey) string {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		panic(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}))
}

// testIdentity is the identity the kubeadm-init cases install.
var testIdentity = newIdentityForTest()

// --- the program's side ---

func TestChooseIdentityKeepsTheIdentityReadFromAnExistingMaster(t *testing.T) {
	adopted, generated := newIdentityForTest(), newIdentityForTest()
	got, err := ChooseIdentity(FormatBundle(adopted.files), FormatBundle(generated.files))
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, adopted.files) {
		t.Error("an existing master's identity was not kept: its workers would see a new CA and be reset")
	}
	got, err = ChooseIdentity("", FormatBundle(generated.files))
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(got, generated.files) {
		t.Error("a new stack does not get the program's own identity")
	}
}

func TestChooseIdentityRefusesAPartOfAnIdentity(t *testing.T) {
	partial := maps.Clone(testIdentity.files)
	delete(partial, "sa.key")
	if _, err := ChooseIdentity(FormatBundle(partial), FormatBundle(testIdentity.files)); err == nil || !strings.Contains(err.Error(), "sa.key is missing") {
		t.Errorf("an identity read without sa.key was accepted (err %v): service-account tokens would change", err)
	}
	notCA := maps.Clone(testIdentity.files)
	notCA["ca.crt"] = testIdentity.files["ca.key"]
	if _, err := ChooseIdentity("", FormatBundle(notCA)); err == nil {
		t.Error("a ca.crt that is no certificate was accepted")
	}
	if _, err := ChooseIdentity("offline-stdout", FormatBundle(testIdentity.files)); err == nil {
		t.Error("an unreadable identity from the master was ignored instead of refused")
	}
}

func TestCACertHashIsWhatTheJoinScriptChecks(t *testing.T) {
	ca := newTestCA(t)
	hash, err := CACertHash(ca.pem)
	if err != nil {
		t.Fatal(err)
	}
	// The join script computes the hash of the node's CA with openssl; a joined node whose CA
	// is the program's must be left alone.
	root := newRoot(t)
	root.write("/etc/kubernetes/kubelet.conf", "kind: Config\n")
	root.write("/etc/kubernetes/pki/ca.crt", ca.pem)
	join, err := JoinConfiguration("kubeadm.k8s.io/v1beta4", "10.0.1.10:6443", testToken+"\n", hash)
	if err != nil {
		t.Fatal(err)
	}
	r := root.run(JoinScript("worker-1"), scriptCase{stdin: join, stubs: map[string]string{"kubectl": `echo node/worker-1`}})
	if r.code != 0 || !strings.Contains(r.stdout, "already joined") {
		t.Fatalf("a worker whose CA is the program's was not left alone:\n%s", r.describe())
	}
	failIfKubeadmRan(t, r, "the worker's CA is the cluster's")
}

// TestCACertHashIsKubeadms checks the program's hash against the one kubeadm itself printed for
// the CA in KUBEADM_CA_FILE (tools/kubeadm/check.sh runs the real kubeadm); without it, against
// the hash computed here the way kubeadm documents it.
func TestCACertHashIsKubeadms(t *testing.T) {
	caPEM, want := testIdentity.ca.pem, testIdentity.ca.hash
	if f := os.Getenv("KUBEADM_CA_FILE"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		caPEM = string(b)
		m := regexp.MustCompile(`--discovery-token-ca-cert-hash (sha256:[0-9a-f]{64})`).FindStringSubmatch(kubeadmJoinCommand(t))
		if m == nil {
			t.Fatal("no CA hash in kubeadm's join command")
		}
		want = m[1]
	}
	got, err := CACertHash(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("the program derives %s for the cluster CA, kubeadm %s: every join would be refused", got, want)
	}
}

// TestJoinConfigurationIsOneKubeadmAccepts: the program's JoinConfiguration names the endpoint,
// the token and the CA hash, and refuses join-token output that is not one token, without
// quoting it. With KUBEADM_BIN and KUBEADM_VERSION (tools/kubeadm/check.sh) the real kubeadm of
// that version validates it in the config API the program uses for that minor.
func TestJoinConfigurationIsOneKubeadmAccepts(t *testing.T) {
	api := "kubeadm.k8s.io/v1beta4"
	if v := os.Getenv("KUBEADM_VERSION"); v != "" {
		api = kubeadmAPIVersion(configWith(t, strings.TrimPrefix(v, "v")).Kubernetes)
	}
	got, err := JoinConfiguration(api, "10.0.1.10:6443", testToken+"\n", testCAHash)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"apiVersion: " + api + "\n", "kind: JoinConfiguration\n", "apiServerEndpoint: 10.0.1.10:6443\n", "token: " + testToken + "\n", "caCertHashes:\n      - " + testCAHash + "\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("the JoinConfiguration lacks %q:\n%s", want, got)
		}
	}
	for _, bad := range []string{"", "W1206 warning: something\n" + testToken, testToken + " --unsafe-skip-ca-verification"} {
		if _, err := JoinConfiguration(api, "10.0.1.10:6443", bad, testCAHash); err == nil || strings.Contains(err.Error(), testToken) {
			t.Errorf("join-token output %q was not refused without quoting it (err %v)", bad, err)
		}
	}
	if bin := os.Getenv("KUBEADM_BIN"); bin != "" {
		f := filepath.Join(t.TempDir(), "join.yaml")
		if err := os.WriteFile(f, []byte(got), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "config", "validate", "--config", f).CombinedOutput(); err != nil {
			t.Errorf("%s config validate refused the program's JoinConfiguration: %v\n%s", bin, err, out)
		}
	}
}

func TestParseIdentityRefusesAKeyThatIsNotItsCertificates(t *testing.T) {
	swapped := maps.Clone(testIdentity.files)
	swapped["ca.key"], swapped["etcd/ca.key"] = testIdentity.files["etcd/ca.key"], testIdentity.files["ca.key"]
	if _, err := ParseIdentity(FormatBundle(swapped)); err == nil || !strings.Contains(err.Error(), "does not belong to") {
		t.Errorf("an identity with swapped CA keys was accepted (err %v)", err)
	}
	other := newIdentityForTest()
	mixed := maps.Clone(testIdentity.files)
	mixed["sa.pub"] = other.files["sa.pub"]
	if _, err := ParseIdentity(FormatBundle(mixed)); err == nil {
		t.Error("an sa.pub of another key was accepted: tokens signed with sa.key would not verify")
	}
}

// The render reads the identity back from kubeadm-init's standard input for verify-local's etcd
// drill: the same files, and the EncryptionConfiguration apart.
func TestParseInitBundleGivesBackWhatInitBundleHolds(t *testing.T) {
	identity, encryption, err := ParseInitBundle(InitBundle(testIdentity.files, testEncryptionConfig))
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(identity, testIdentity.files) || encryption != testEncryptionConfig {
		t.Errorf("the bundle read back differs from what was bundled")
	}
	if _, _, err := ParseInitBundle(FormatBundle(testIdentity.files)); err == nil {
		t.Error("a bundle without the EncryptionConfiguration was accepted")
	}
}

// --- kubeadm-init on the master ---

func TestKubeadmInitInstallsTheClusterIdentityBeforeKubeadmRuns(t *testing.T) {
	c := kubeadmInitCase()
	// kubeadm fails unless the CA is in place when it starts (it would otherwise make its own).
	c.stubs["kubeadm"] = `cmp -s /etc/kubernetes/pki/ca.crt /var/lib/waste-coach/want-ca || { echo "no cluster CA at init" >&2; exit 1; }
` + c.stubs["kubeadm"]
	root := newRoot(t)
	root.write("/var/lib/waste-coach/want-ca", testIdentity.files["ca.crt"])
	r := root.run(testInitScript("kind: InitConfiguration\n"), c)
	if r.code != 0 {
		t.Fatalf("kubeadm init script failed:\n%s", r.describe())
	}
	for _, f := range IdentityFiles {
		got, _ := root.read(PKIDir + "/" + f)
		if got != testIdentity.files[f] {
			t.Errorf("%s/%s is not the cluster's file", PKIDir, f)
		}
		want := os.FileMode(0o644)
		if strings.HasSuffix(f, ".key") {
			want = 0o600
		}
		if m := root.mode(PKIDir + "/" + f); m != want {
			t.Errorf("%s/%s has mode %v, want %v", PKIDir, f, m, want)
		}
	}
	for _, f := range []string{"ca.key", "sa.key"} {
		body := strings.Split(strings.TrimSpace(testIdentity.files[f]), "\n")[1]
		if strings.Contains(r.output(), body) || strings.Contains(r.output(), base64.StdEncoding.EncodeToString([]byte(testIdentity.files[f]))) {
			t.Errorf("%s reached the deploy log", f)
		}
	}
}

func TestKubeadmInitLeavesAMasterWithTheClusterCAAlone(t *testing.T) {
	root := newRoot(t)
	root.write("/etc/kubernetes/admin.conf", "kind: Config\n")
	root.write(PKIDir+"/ca.crt", testIdentity.files["ca.crt"])
	root.write(PKIDir+"/ca.key", "the running key\n")
	r := root.run(testInitScript("kind: InitConfiguration\n"), kubeadmInitCase())
	if r.code != 0 || !strings.Contains(r.stdout, "already initialised with the cluster's CA") {
		t.Fatalf("an initialised master with the cluster's CA was not a no-op:\n%s", r.describe())
	}
	failIfKubeadmRan(t, r, "the master is initialised")
	if got, _ := root.read(PKIDir + "/ca.key"); got != "the running key\n" {
		t.Error("the running master's files were rewritten")
	}
}

func TestKubeadmInitRefusesAMasterRunningAnotherCA(t *testing.T) {
	root := newRoot(t)
	root.write("/etc/kubernetes/admin.conf", "kind: Config\n")
	other := newTestCA(t)
	root.write(PKIDir+"/ca.crt", other.pem)
	r := root.run(testInitScript("kind: InitConfiguration\n"), kubeadmInitCase())
	expectRefusal(t, r, "a master running another CA was accepted: a routine change would rotate the cluster's identity",
		"not the cluster CA the program holds")
	if got, _ := root.read(PKIDir + "/ca.crt"); got != other.pem {
		t.Error("the running CA was overwritten")
	}
}

func TestKubeadmInitRefusesAnIncompleteOrForeignBundle(t *testing.T) {
	noKey := maps.Clone(testIdentity.files)
	delete(noKey, "etcd/ca.key")
	withExtra := maps.Clone(testIdentity.files)
	withExtra["../admin.conf"] = "kind: Config\n"
	for name, tc := range map[string]struct{ stdin, message string }{
		"no etcd CA key": {InitBundle(noKey, testEncryptionConfig), "no etcd/ca.key on standard input"},
		"a path outside": {InitBundle(withExtra, testEncryptionConfig), "unexpected entry '../admin.conf'"},
	} {
		t.Run(name, func(t *testing.T) {
			expectInitRefusesStdin(t, tc.stdin, "kubeadm init ran without the whole identity: it would make CAs of its own", tc.message)
		})
	}
}

func TestKubeadmInitNeverOverwritesAnIdentityFileThatDiffers(t *testing.T) {
	root := newRoot(t)
	root.write(PKIDir+"/sa.key", "a key that is not the cluster's\n")
	r := root.run(testInitScript("kind: InitConfiguration\n"), kubeadmInitCase())
	expectRefusal(t, r, "an identity file that differs was overwritten", PKIDir+"/sa.key exists and is not the cluster's")
	if got, _ := root.read(PKIDir + "/sa.key"); got != "a key that is not the cluster's\n" {
		t.Error("the differing sa.key was overwritten")
	}
}

func TestKubeadmInitTreatsARunningAPIServerAsInitialised(t *testing.T) {
	root := newRoot(t)
	root.write("/etc/kubernetes/manifests/kube-apiserver.yaml", "kind: Pod\n")
	root.write(PKIDir+"/ca.crt", newTestCA(t).pem)
	r := root.run(testInitScript("kind: InitConfiguration\n"), kubeadmInitCase())
	expectRefusal(t, r, "a master with a running API server but no admin.conf was initialised again", "not the cluster CA the program holds")
}

// --- pki-read: adopting an existing master's identity ---

func TestPKIReadPrintsNothingOnANewMaster(t *testing.T) {
	r := runScript(t, PKIReadScript(), scriptCase{})
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("pki-read on a master not initialised printed %q (code %d), want nothing", r.stdout, r.code)
	}
}

func TestPKIReadPrintsAnInitialisedMastersIdentity(t *testing.T) {
	c := scriptCase{files: map[string]string{"/etc/kubernetes/admin.conf": "kind: Config\n"}}
	for f, content := range testIdentity.files {
		c.files[PKIDir+"/"+f] = content
	}
	r := runScript(t, PKIReadScript(), c)
	if r.code != 0 {
		t.Fatalf("pki-read failed:\n%s", r.describe())
	}
	got, err := ParseIdentity(r.stdout)
	if err != nil {
		t.Fatalf("pki-read printed what the program cannot read: %v", err)
	}
	if !maps.Equal(got, testIdentity.files) {
		t.Error("pki-read printed an identity other than the master's")
	}
}

func TestPKIReadSeesAMasterWithoutAdminConfAsInitialised(t *testing.T) {
	r := runScript(t, PKIReadScript(), scriptCase{files: map[string]string{PKIDir + "/ca.crt": testIdentity.files["ca.crt"]}})
	if r.code == 0 {
		t.Errorf("a master with a CA but no admin.conf read as new (nothing adopted): the program would install another CA:\n%s", r.describe())
	}
}

func TestPKIReadFailsWhenSudoFails(t *testing.T) {
	r := runScript(t, PKIReadScript(), scriptCase{stubs: map[string]string{"sudo": `exit 1`}})
	if r.code == 0 {
		t.Error("pki-read succeeded (adopting nothing) although sudo failed")
	}
}

func TestPKIReadRefusesAPartOfAnIdentity(t *testing.T) {
	c := scriptCase{files: map[string]string{"/etc/kubernetes/admin.conf": "kind: Config\n"}}
	for f, content := range testIdentity.files {
		if f != "sa.pub" {
			c.files[PKIDir+"/"+f] = content
		}
	}
	r := runScript(t, PKIReadScript(), c)
	if r.code == 0 || !strings.Contains(r.stderr, PKIDir+"/sa.pub is missing") {
		t.Errorf("pki-read adopted an identity without sa.pub:\n%s", r.describe())
	}
	// pulumi-command reports a failed step's output in its error, which reaches the deploy log.
	if r.stdout != "" {
		t.Errorf("pki-read printed part of the identity (its CA keys among it) before refusing: %d bytes", len(r.stdout))
	}
}
