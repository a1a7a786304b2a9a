package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// testIssuer is a published issuer, its JWKS built as the program builds it (kid: the
// base64url SHA-256 of the PKIX public key, as the API server names its key), and a signer.
type testIssuer struct {
	key  *rsa.PrivateKey
	kid  string
	docs *issuerDocuments
	want trustCondition
}

func newTestIssuer(t *testing.T) *testIssuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	kid := base64.RawURLEncoding.EncodeToString(sum[:])
	const host = "test-oidc.s3.ap-northeast-2.amazonaws.com"
	docs := &issuerDocuments{}
	docs.Discovery.Issuer = "https://" + host
	docs.Discovery.JWKSURI = "https://" + host + "/openid/v1/jwks"
	docs.JWKS.Keys = []jsonWebKey{{
		Kty: "RSA", Alg: "RS256", Use: "sig", Kid: kid,
		N: base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
		E: base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
	}}
	return &testIssuer{key: key, kid: kid, docs: docs, want: trustCondition{
		host: host, sub: "system:serviceaccount:app:uploads", aud: "sts.amazonaws.com",
	}}
}

// claims are a token's claims as the API server writes them.
func (ti *testIssuer) claims(now time.Time) map[string]any {
	return map[string]any{
		"iss": ti.docs.Discovery.Issuer, "sub": ti.want.sub, "aud": []string{ti.want.aud},
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"kubernetes.io": map[string]any{"namespace": "app", "serviceaccount": map[string]any{"name": "uploads"}},
	}
}

func (ti *testIssuer) sign(t *testing.T, header, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	signed := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	digest := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, ti.key, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestVerifyAsSTS(t *testing.T) {
	ti := newTestIssuer(t)
	now := time.Now()
	header := map[string]any{"alg": "RS256", "kid": ti.kid}
	good := ti.sign(t, header, ti.claims(now))
	got, err := verifyAsSTS(good, ti.docs, ti.want, now.Add(time.Second))
	if err != nil {
		t.Fatalf("a good token is refused: %v", err)
	}
	if got.kid != ti.kid || got.iss != ti.docs.Discovery.Issuer || !slices.Equal(got.aud, []string{ti.want.aud}) {
		t.Errorf("verified token %+v", got)
	}
	// A single-string aud is a JWT's other form of the claim.
	single := ti.claims(now)
	single["aud"] = ti.want.aud
	if _, err := verifyAsSTS(ti.sign(t, header, single), ti.docs, ti.want, now); err != nil {
		t.Errorf("a token with aud as a string is refused: %v", err)
	}

	with := func(key string, value any) string {
		c := ti.claims(now)
		if value == nil {
			delete(c, key)
		} else {
			c[key] = value
		}
		return ti.sign(t, header, c)
	}
	otherIssuer := newTestIssuer(t)
	goodParts := strings.Split(good, ".")
	sig, _ := base64.RawURLEncoding.DecodeString(goodParts[2])
	sig[len(sig)/2] ^= 1
	tamperedSig := goodParts[0] + "." + goodParts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)
	forgedClaims, _ := json.Marshal(map[string]any{"iss": ti.docs.Discovery.Issuer, "sub": "system:serviceaccount:app:other", "aud": []string{ti.want.aud}, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	swapped := goodParts[0] + "." + base64.RawURLEncoding.EncodeToString(forgedClaims) + "." + goodParts[2]

	badDiscovery := *ti.docs
	badDiscovery.Discovery.JWKSURI = ti.docs.Discovery.Issuer + "/keys"
	otherHost := ti.want
	otherHost.host = "other-oidc.s3.ap-northeast-2.amazonaws.com"

	for _, tc := range []struct {
		name  string
		token string
		docs  *issuerDocuments
		want  trustCondition
		err   string
	}{
		{"tampered signature", tamperedSig, ti.docs, ti.want, "signature does not verify"},
		{"claims swapped under a good signature", swapped, ti.docs, ti.want, "signature does not verify"},
		{"signed by another key under the published kid", otherIssuer.sign(t, header, ti.claims(now)), ti.docs, ti.want, "signature does not verify"},
		{"kid not published", otherIssuer.sign(t, map[string]any{"alg": "RS256", "kid": otherIssuer.kid}, ti.claims(now)), ti.docs, ti.want, "not in the published JWKS"},
		{"no kid", ti.sign(t, map[string]any{"alg": "RS256"}, ti.claims(now)), ti.docs, ti.want, "not in the published JWKS"},
		{"alg none", ti.sign(t, map[string]any{"alg": "none", "kid": ti.kid}, ti.claims(now)), ti.docs, ti.want, "want RS256"},
		{"iss of another issuer", with("iss", "https://kubernetes.default.svc.cluster.local"), ti.docs, ti.want, "is not the discovery document's issuer"},
		{"iss with a trailing slash", with("iss", ti.docs.Discovery.Issuer+"/"), ti.docs, ti.want, "is not the discovery document's issuer"},
		{"trust policy of another host", good, ti.docs, otherHost, "is not the trust policy's issuer"},
		{"jwks_uri elsewhere", good, &badDiscovery, ti.want, "jwks_uri"},
		{"aud of the API server", with("aud", []string{"https://kubernetes.default.svc.cluster.local"}), ti.docs, ti.want, "does not contain"},
		{"no aud", with("aud", nil), ti.docs, ti.want, "aud"},
		{"sub of another ServiceAccount", with("sub", "system:serviceaccount:app:other"), ti.docs, ti.want, "is not the trust policy's"},
		{"expired", with("exp", now.Add(-time.Minute).Unix()), ti.docs, ti.want, "expired"},
		{"exp a day ahead", with("exp", now.Add(24*time.Hour).Unix()), ti.docs, ti.want, "more than the"},
		{"no exp", with("exp", nil), ti.docs, ti.want, "no exp"},
		{"nbf in the future", with("nbf", now.Add(10*time.Minute).Unix()), ti.docs, ti.want, "nbf"},
		{"iat in the future", with("iat", now.Add(10*time.Minute).Unix()), ti.docs, ti.want, "iat"},
		{"not a JWT", "abc.def", ti.docs, ti.want, "not a signed JWT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := verifyAsSTS(tc.token, tc.docs, tc.want, now.Add(time.Second))
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("got %v, want an error containing %q", err, tc.err)
			}
			if isAud := strings.HasPrefix(tc.name, "aud") || tc.name == "no aud"; isAud != errors.Is(err, errAudience) {
				t.Errorf("errors.Is(err, errAudience) = %v for %v", !isAud, err)
			}
		})
	}
}

func TestReadTrustPolicyAndServiceAccountArgs(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("trust/r.json", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/h.example"},"Action":["sts:AssumeRoleWithWebIdentity"],"Condition":{"StringEquals":{"h.example:aud":"sts.amazonaws.com","h.example:sub":"system:serviceaccount:ns:sa"}}}]}`)
	c, err := readTrustPolicy(filepath.Join(dir, "trust/r.json"))
	if err != nil || c != (trustCondition{host: "h.example", sub: "system:serviceaccount:ns:sa", aud: "sts.amazonaws.com"}) {
		t.Errorf("readTrustPolicy = %+v, %v", c, err)
	}
	write("trust/mixed.json", `{"Statement":[{"Effect":"Allow","Principal":{"Federated":"x"},"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"a.example:aud":"sts.amazonaws.com","b.example:sub":"system:serviceaccount:ns:sa"}}}]}`)
	if _, err := readTrustPolicy(filepath.Join(dir, "trust/mixed.json")); err == nil {
		t.Error("a sub and an aud of two hosts are accepted")
	}

	write("kubeadm/init.yaml", `apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
apiServer:
  extraArgs:
    - name: encryption-provider-config
      value: "/etc/kubernetes/encryption/config.yaml"
    - name: service-account-issuer
      value: "https://h.example"
    - name: service-account-issuer
      value: "https://kubernetes.default.svc.cluster.local"
    - name: service-account-jwks-uri
      value: "https://h.example/openid/v1/jwks"
    - name: api-audiences
      value: "https://kubernetes.default.svc.cluster.local"
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
`)
	write("kubeadm/other.yaml", "apiVersion: v1\nkind: EncryptionConfiguration\n")
	args, source, err := renderedServiceAccountArgs(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"--service-account-issuer=https://h.example",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-jwks-uri=https://h.example/openid/v1/jwks",
		"--api-audiences=https://kubernetes.default.svc.cluster.local",
	}
	if !slices.Equal(args, want) || filepath.Base(source) != "init.yaml" {
		t.Errorf("renderedServiceAccountArgs = %q from %s, want %q", args, source, want)
	}
}
