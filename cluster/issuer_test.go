package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"

	"github.com/waste-coach/infra/infra"
)

func publicPEM(t *testing.T, key any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// TestJWKSIsTheServiceAccountKeyAsTheAPIServerNamesIt: STS finds the key that verifies a pod's
// token by the kid in the token's header, which the API server derives from the public key
// (sha256 of its PKIX DER, unpadded base64url). A key set with another kid, or other numbers,
// would make every AssumeRoleWithWebIdentity fail. Only the RSA key the program generates is
// accepted; anything else is refused rather than published wrong.
func TestJWKSIsTheServiceAccountKeyAsTheAPIServerNamesIt(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := JWKS(publicPEM(t, &key.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal([]byte(doc), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("key set %s: %v, want one key", doc, err)
	}
	k := set.Keys[0]
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	sum := sha256.Sum256(der)
	if want := base64.RawURLEncoding.EncodeToString(sum[:]); k["kid"] != want {
		t.Errorf("kid %q, want the API server's %q", k["kid"], want)
	}
	if k["kty"] != "RSA" || k["alg"] != "RS256" || k["use"] != "sig" {
		t.Errorf("key %v, want kty RSA, alg RS256, use sig", k)
	}
	n, errN := base64.RawURLEncoding.DecodeString(k["n"])
	e, errE := base64.RawURLEncoding.DecodeString(k["e"])
	if errN != nil || errE != nil || new(big.Int).SetBytes(n).Cmp(key.N) != 0 || new(big.Int).SetBytes(e).Int64() != int64(key.E) {
		t.Errorf("n and e (%v, %v) are not the key's modulus and exponent", errN, errE)
	}

	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := JWKS(publicPEM(t, &ec.PublicKey)); err == nil || !strings.Contains(err.Error(), "want RSA") {
		t.Errorf("an EC key: %v, want a refusal naming RSA", err)
	}
	if _, err := JWKS("not a key"); err == nil {
		t.Error("a key set was made of text that is not PEM")
	}
}

// TestTheAPIServerSignsForThePublicIssuer: the master's API server signs every token for the
// stack's public issuer (the first --service-account-issuer), still accepts the tokens of
// kubeadm's default issuer (the second), names the published JWKS, and keeps the audiences of
// every in-cluster token; a v1beta3 configuration (a map) can carry only the public issuer.
func TestTheAPIServerSignsForThePublicIssuer(t *testing.T) {
	cfg := prodConfig(t)
	issuer := cfg.ServiceAccountIssuer()
	got := KubeadmConfig(cfg, KubeadmParams{PublicIP: "198.51.100.10", EndpointName: "k8s.wastecoach.example.com"})
	want := `    - name: service-account-issuer
      value: "` + issuer + `"
    - name: service-account-issuer
      value: "https://kubernetes.default.svc.cluster.local"
    - name: service-account-jwks-uri
      value: "` + issuer + infra.JWKSPath + `"
    - name: api-audiences
      value: "https://kubernetes.default.svc.cluster.local"
`
	if !strings.Contains(got, want) {
		t.Errorf("the API server's flags lack, in this order:\n%s\nin:\n%s", want, got)
	}
	old := KubeadmConfig(configWith(t, "1.30.14"), KubeadmParams{PublicIP: "198.51.100.10", EndpointName: "k8s.wastecoach.example.com"})
	if strings.Count(old, "service-account-issuer:") != 1 || !strings.Contains(old, `service-account-issuer: "`+issuer+`"`) {
		t.Errorf("the v1beta3 configuration does not give the public issuer exactly once:\n%s", old)
	}
}
