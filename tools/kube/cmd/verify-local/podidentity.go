package main

// Pod identities: the API server signs service-account tokens for the stack's public issuer, and
// STS accepts a pod's token for a role only if it verifies against what the program publishes
// (the issuer's discovery document and JWKS) and matches the role's trust policy. This file runs
// the API server with the rendered kubeadm configuration's service-account flags and checks
// tokens the real API server issues against the rendered documents only, as STS would.

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// issuerDir is where a render writes the pods' service-account issuer (internal/render.IssuerDir):
// the two published documents under their bucket keys, and each pod role's trust policy under
// trust/.
const issuerDir = "issuer"

// The issuer's documents under issuerDir, at the paths the API server serves its own.
const (
	discoveryPath = ".well-known/openid-configuration"
	jwksPath      = "/openid/v1/jwks"
)

// defaultServiceAccountIssuer is kubeadm's issuer when none is set, and this control plane's when
// the render publishes none.
const defaultServiceAccountIssuer = "https://kubernetes.default.svc.cluster.local"

// serviceAccountFlags are the API server flags taken from the rendered kubeadm configuration. The
// key files are not among them: the control plane runs with its pki's (the program's identity
// when rendered), at paths of this machine, not the master's.
var serviceAccountFlags = []string{
	"service-account-issuer", "service-account-jwks-uri", "api-audiences",
	"service-account-max-token-expiration", "service-account-extend-token-expiration",
}

// renderedServiceAccountArgs reads the API server's service-account flags from the rendered
// kubeadm configuration (the ClusterConfiguration document among kubeadm/*.yaml), in their order,
// repeated flags kept, as "--name=value".
func renderedServiceAccountArgs(dir string) (args []string, source string, err error) {
	if args, source, err = renderedAPIServerArgs(dir, serviceAccountFlags); err != nil {
		return nil, "", err
	}
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--service-account-issuer=") }) {
		return nil, "", fmt.Errorf("%s: the render publishes an issuer (%s/%s) but its ClusterConfiguration sets no service-account-issuer", source, issuerDir, discoveryPath)
	}
	return args, source, nil
}

// renderedAPIServerArgs reads the API server flags named in names from the rendered kubeadm
// configuration (the one ClusterConfiguration document among kubeadm/*.yaml), in their order,
// repeated flags kept, as "--name=value", and the file it read them from.
func renderedAPIServerArgs(dir string, names []string) (args []string, source string, err error) {
	files, _ := filepath.Glob(filepath.Join(dir, "kubeadm", "*.yaml"))
	found := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, "", err
		}
		reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
		for {
			doc, err := reader.Read()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, "", fmt.Errorf("%s: %w", f, err)
			}
			var cfg struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				APIServer  struct {
					ExtraArgs json.RawMessage `json:"extraArgs"`
				} `json:"apiServer"`
			}
			if err := yaml.Unmarshal(doc, &cfg); err != nil {
				return nil, "", fmt.Errorf("%s: %w", f, err)
			}
			if cfg.Kind != "ClusterConfiguration" {
				continue
			}
			found++
			source = f
			extra, err := extraArgs(cfg.APIServer.ExtraArgs)
			if err != nil {
				return nil, "", fmt.Errorf("%s: %s apiServer.extraArgs: %w", f, cfg.APIVersion, err)
			}
			for _, a := range extra {
				if slices.Contains(names, a[0]) {
					args = append(args, "--"+a[0]+"="+a[1])
				}
			}
		}
	}
	if found != 1 {
		return nil, "", fmt.Errorf("%d ClusterConfiguration documents in %s/kubeadm/*.yaml, want 1", found, dir)
	}
	return args, source, nil
}

// extraArgs reads kubeadm's extraArgs: v1beta4's list of {name, value} in its order, or
// v1beta3's map (one value per flag) in name order.
func extraArgs(raw json.RawMessage) ([][2]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var list []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	if err := json.Unmarshal(raw, &list); err == nil {
		out := make([][2]string, 0, len(list))
		for _, a := range list {
			out = append(out, [2]string{a.Name, a.Value})
		}
		return out, nil
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("neither a list of {name, value} nor a map: %w", err)
	}
	out := make([][2]string, 0, len(m))
	for k, v := range m {
		out = append(out, [2]string{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i][0] < out[j][0] })
	return out, nil
}

// issuerDocuments are the issuer's two published documents, as the render writes them.
type issuerDocuments struct {
	Discovery struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	JWKS struct {
		Keys []jsonWebKey `json:"keys"`
	}
}

// jsonWebKey is one key of a JWKS (RFC 7517), the fields an RSA signing key has.
type jsonWebKey struct {
	Kty string `json:"kty"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Kid string `json:"kid"`
	N   string `json:"n"`
	E   string `json:"e"`
}

func loadIssuerDocuments(dir string) (*issuerDocuments, error) {
	docs := &issuerDocuments{}
	for path, out := range map[string]any{discoveryPath: &docs.Discovery, strings.TrimPrefix(jwksPath, "/"): &docs.JWKS} {
		b, err := os.ReadFile(filepath.Join(dir, issuerDir, path))
		if err != nil {
			return nil, err
		}
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("%s/%s: %w", issuerDir, path, err)
		}
	}
	return docs, nil
}

// trustCondition is what a pod role's trust policy requires of a web identity token: the
// conditions "<host>:sub" and "<host>:aud", where host is the issuer without "https://".
type trustCondition struct {
	host, sub, aud string
}

// readTrustPolicy reads a rendered trust policy: one statement allowing
// sts:AssumeRoleWithWebIdentity to a federated principal, on a StringEquals of sub and aud.
func readTrustPolicy(path string) (trustCondition, error) {
	var doc struct {
		Statement []struct {
			Effect    string `json:"Effect"`
			Principal struct {
				Federated string `json:"Federated"`
			} `json:"Principal"`
			Action    json.RawMessage `json:"Action"`
			Condition struct {
				StringEquals map[string]string `json:"StringEquals"`
			} `json:"Condition"`
		} `json:"Statement"`
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return trustCondition{}, err
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return trustCondition{}, err
	}
	if len(doc.Statement) == 0 {
		return trustCondition{}, errors.New("no statement")
	}
	s := doc.Statement[0]
	var actions []string
	if err := json.Unmarshal(s.Action, &actions); err != nil {
		var one string
		if json.Unmarshal(s.Action, &one) != nil {
			return trustCondition{}, fmt.Errorf("statement 0: Action is neither a string nor a list: %s", s.Action)
		}
		actions = []string{one}
	}
	if s.Effect != "Allow" || s.Principal.Federated == "" || !slices.Contains(actions, "sts:AssumeRoleWithWebIdentity") {
		return trustCondition{}, fmt.Errorf("statement 0 does not allow sts:AssumeRoleWithWebIdentity to a federated principal (Effect %q, Federated %q, Action %q)", s.Effect, s.Principal.Federated, actions)
	}
	var c trustCondition
	subHost, audHost := "", ""
	for key, value := range s.Condition.StringEquals {
		if host, ok := strings.CutSuffix(key, ":sub"); ok {
			subHost, c.sub = host, value
		} else if host, ok := strings.CutSuffix(key, ":aud"); ok {
			audHost, c.aud = host, value
		}
	}
	if c.sub == "" || c.aud == "" || subHost != audHost {
		return trustCondition{}, fmt.Errorf("statement 0: StringEquals needs <issuer host>:sub and <issuer host>:aud of one host, has %v", s.Condition.StringEquals)
	}
	c.host = subHost
	return c, nil
}

// errAudience is a token refused for its audience (wrapped: errors.Is tells it from the others).
var errAudience = errors.New("audience")

// tokenLifetime is what the check requests, as the pods' projected volumes do
// (infra.WebIdentityTokenSeconds); clockSlack is what the checks of times allow.
const (
	tokenLifetime = 3600 * time.Second
	clockSlack    = 60 * time.Second
)

// verifiedToken is what a verified token says.
type verifiedToken struct {
	kid, iss, sub string
	aud           []string
	iat, exp      time.Time
}

// verifyAsSTS verifies a JWT as STS's AssumeRoleWithWebIdentity does for a role whose trust policy
// requires want, with only the issuer's published documents: the header's kid names a key of the
// JWKS, and the RS256 signature verifies with it; iss is the discovery document's issuer, byte for
// byte, and the trust condition's host; the discovery document's jwks_uri is the issuer's JWKS;
// aud contains the condition's audience and sub is its subject; the token is current (nbf and iat
// not in the future, exp in the future and at most tokenLifetime ahead).
func verifyAsSTS(token string, docs *issuerDocuments, want trustCondition, now time.Time) (verifiedToken, error) {
	var v verifiedToken
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return v, fmt.Errorf("not a signed JWT (%d parts)", len(parts))
	}
	segment := func(name, s string) ([]byte, error) {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("JWT %s: %w", name, err)
		}
		return b, nil
	}
	headerJSON, err := segment("header", parts[0])
	if err != nil {
		return v, err
	}
	var header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(headerJSON, &header); err != nil {
		return v, fmt.Errorf("JWT header: %w", err)
	}
	if header.Alg != "RS256" {
		return v, fmt.Errorf("JWT alg %q, want RS256", header.Alg)
	}
	v.kid = header.Kid
	var key *jsonWebKey
	for i := range docs.JWKS.Keys {
		if k := &docs.JWKS.Keys[i]; k.Kid == header.Kid && header.Kid != "" {
			if key != nil {
				return v, fmt.Errorf("kid %q names two keys of the JWKS", header.Kid)
			}
			key = k
		}
	}
	if key == nil {
		kids := make([]string, 0, len(docs.JWKS.Keys))
		for _, k := range docs.JWKS.Keys {
			kids = append(kids, k.Kid)
		}
		return v, fmt.Errorf("the token's kid %q is not in the published JWKS (kids %q)", header.Kid, kids)
	}
	pub, err := key.rsaPublicKey()
	if err != nil {
		return v, err
	}
	signature, err := segment("signature", parts[2])
	if err != nil {
		return v, err
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], signature); err != nil {
		return v, fmt.Errorf("RS256 signature does not verify with the published key %q: %w", key.Kid, err)
	}

	claimsJSON, err := segment("claims", parts[1])
	if err != nil {
		return v, err
	}
	var claims struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Exp *json.Number    `json:"exp"`
		Nbf *json.Number    `json:"nbf"`
		Iat *json.Number    `json:"iat"`
	}
	if err := json.Unmarshal(claimsJSON, &claims); err != nil {
		return v, fmt.Errorf("JWT claims: %w", err)
	}
	v.iss, v.sub = claims.Iss, claims.Sub
	if claims.Iss != docs.Discovery.Issuer {
		return v, fmt.Errorf("iss %q is not the discovery document's issuer %q", claims.Iss, docs.Discovery.Issuer)
	}
	if claims.Iss != "https://"+want.host {
		return v, fmt.Errorf("iss %q is not the trust policy's issuer https://%s", claims.Iss, want.host)
	}
	if docs.Discovery.JWKSURI != docs.Discovery.Issuer+jwksPath {
		return v, fmt.Errorf("the discovery document's jwks_uri %q is not %q, where the JWKS is published", docs.Discovery.JWKSURI, docs.Discovery.Issuer+jwksPath)
	}
	if err := json.Unmarshal(claims.Aud, &v.aud); err != nil {
		var one string
		if json.Unmarshal(claims.Aud, &one) != nil {
			return v, fmt.Errorf("%w: aud is neither a string nor a list: %s", errAudience, claims.Aud)
		}
		v.aud = []string{one}
	}
	if !slices.Contains(v.aud, want.aud) {
		return v, fmt.Errorf("%w: aud %q does not contain %q", errAudience, v.aud, want.aud)
	}
	if claims.Sub != want.sub {
		return v, fmt.Errorf("sub %q is not the trust policy's %q", claims.Sub, want.sub)
	}
	at := func(name string, n *json.Number) (time.Time, error) {
		if n == nil {
			return time.Time{}, fmt.Errorf("no %s", name)
		}
		f, err := n.Float64()
		if err != nil {
			return time.Time{}, fmt.Errorf("%s %q: %w", name, n.String(), err)
		}
		return time.Unix(0, 0).Add(time.Duration(f * float64(time.Second))), nil
	}
	if v.exp, err = at("exp", claims.Exp); err != nil {
		return v, err
	}
	if !v.exp.After(now) {
		return v, fmt.Errorf("expired at %s (now %s)", v.exp.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if ahead := v.exp.Sub(now); ahead > tokenLifetime+clockSlack {
		return v, fmt.Errorf("exp is %s ahead, more than the %s requested", ahead.Round(time.Second), tokenLifetime)
	}
	if claims.Nbf != nil {
		nbf, err := at("nbf", claims.Nbf)
		if err != nil {
			return v, err
		}
		if nbf.After(now.Add(clockSlack)) {
			return v, fmt.Errorf("nbf %s is in the future (now %s)", nbf.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
		}
	}
	if v.iat, err = at("iat", claims.Iat); err != nil {
		return v, err
	}
	if v.iat.After(now.Add(clockSlack)) {
		return v, fmt.Errorf("iat %s is in the future (now %s)", v.iat.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	return v, nil
}

// rsaPublicKey is the JWK's RSA public key, if it is one for RS256 signatures.
func (k *jsonWebKey) rsaPublicKey() (*rsa.PublicKey, error) {
	if k.Kty != "RSA" || (k.Alg != "" && k.Alg != "RS256") || (k.Use != "" && k.Use != "sig") {
		return nil, fmt.Errorf("published key %q is kty %q alg %q use %q, want an RSA RS256 signing key", k.Kid, k.Kty, k.Alg, k.Use)
	}
	n, err1 := base64.RawURLEncoding.DecodeString(k.N)
	e, err2 := base64.RawURLEncoding.DecodeString(k.E)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("published key %q: %w", k.Kid, err)
	}
	exponent := new(big.Int).SetBytes(e)
	if !exponent.IsInt64() || exponent.Int64() < 3 || exponent.Int64() > 1<<31-1 {
		return nil, fmt.Errorf("published key %q: exponent %s out of range", k.Kid, exponent)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(exponent.Int64())}
	if pub.N.BitLen() < 2048 {
		return nil, fmt.Errorf("published key %q: %d-bit modulus, STS wants 2048 or more", k.Kid, pub.N.BitLen())
	}
	return pub, nil
}

// checkPodIdentity proves, for every pod role's trust policy the render writes, that a token the
// API server issues to the role's ServiceAccount for the trusted audience is one STS accepts: it
// is verified against the rendered discovery document and JWKS only (not the API server's keys),
// and the trust policy's conditions. As a control, a token of the default audience must be
// refused for its audience. Runs after the objects are applied and the pods placed: the
// ServiceAccounts the render declares are there; those a chart declares, and their namespaces,
// are created here.
func (v *verifier) checkPodIdentity(ctx context.Context) {
	if !fileExists(filepath.Join(v.dir, issuerDir, discoveryPath)) {
		fmt.Printf("pod identity: not checked (no rendered %s/%s)\n", issuerDir, discoveryPath)
		return
	}
	docs, err := loadIssuerDocuments(v.dir)
	if err != nil {
		v.fail("pod identity: the rendered issuer documents: %v", err)
		return
	}
	files, _ := filepath.Glob(filepath.Join(v.dir, issuerDir, "trust", "*.json"))
	if len(files) == 0 {
		v.fail("pod identity: the render publishes an issuer but no trust policy (%s/trust/*.json)", issuerDir)
		return
	}
	fmt.Printf("pod identity: tokens from the TokenRequest API, verified as STS would against the rendered %s/%s and JWKS only (issuer %s, %d key(s)):\n",
		issuerDir, discoveryPath, docs.Discovery.Issuer, len(docs.JWKS.Keys))
	for _, f := range files {
		role := strings.TrimSuffix(filepath.Base(f), ".json")
		line, err := v.checkRoleToken(ctx, docs, f)
		if err != nil {
			fmt.Printf("  %s: FAIL %v\n", role, err)
			v.fail("pod identity %s: %v", role, err)
			continue
		}
		fmt.Printf("  %s: %s\n", role, line)
	}
}

// checkRoleToken checks one role's trust policy and returns what it proved.
func (v *verifier) checkRoleToken(ctx context.Context, docs *issuerDocuments, file string) (string, error) {
	want, err := readTrustPolicy(file)
	if err != nil {
		return "", fmt.Errorf("trust policy: %w", err)
	}
	parts := strings.Split(want.sub, ":")
	if len(parts) != 4 || parts[0] != "system" || parts[1] != "serviceaccount" || parts[2] == "" || parts[3] == "" {
		return "", fmt.Errorf("trust policy: sub %q is not system:serviceaccount:<namespace>:<name>", want.sub)
	}
	ns, name := parts[2], parts[3]
	client := v.cp.client
	if _, err := client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		if _, err := client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("create namespace %s: %w", ns, err)
		}
	} else if err != nil {
		return "", fmt.Errorf("namespace %s: %w", ns, err)
	}
	origin := "ServiceAccount from the applied objects"
	if !slices.ContainsFunc(v.applied, func(o appliedObject) bool {
		return o.resource.Resource == "serviceaccounts" && o.namespace == ns && o.name == name
	}) {
		origin = "ServiceAccount not among the applied objects (a chart's): created here"
	}
	accounts := client.CoreV1().ServiceAccounts(ns)
	if _, err := accounts.Get(ctx, name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		if _, err := accounts.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return "", fmt.Errorf("create ServiceAccount %s/%s: %w", ns, name, err)
		}
	} else if err != nil {
		return "", fmt.Errorf("ServiceAccount %s/%s: %w", ns, name, err)
	}
	seconds := int64(tokenLifetime / time.Second)
	request := func(audiences []string) (string, error) {
		tr, err := accounts.CreateToken(ctx, name, &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			Audiences: audiences, ExpirationSeconds: &seconds,
		}}, metav1.CreateOptions{})
		if err != nil {
			return "", fmt.Errorf("TokenRequest for %s/%s (audiences %q): %w", ns, name, audiences, err)
		}
		return tr.Status.Token, nil
	}
	token, err := request([]string{want.aud})
	if err != nil {
		return "", err
	}
	got, err := verifyAsSTS(token, docs, want, time.Now())
	if err != nil {
		return "", fmt.Errorf("%s: the token for audience %q would be refused by STS: %w", want.sub, want.aud, err)
	}
	// The control: the same check must refuse a token of the API server's default audience.
	other, err := request(nil)
	if err != nil {
		return "", err
	}
	control, err := verifyAsSTS(other, docs, want, time.Now())
	switch {
	case err == nil:
		return "", fmt.Errorf("control: a token of the default audience %q was accepted for %q: the check cannot fail", control.aud, want.aud)
	case !errors.Is(err, errAudience):
		return "", fmt.Errorf("control: a token of the default audience was refused, but not for its audience: %w", err)
	}
	return fmt.Sprintf("OK %s (%s): kid %s in the JWKS, RS256 signature, iss %s, aud %q, sub, exp in %s; control: a default-audience token is refused (aud %q)",
		want.sub, origin, got.kid, got.iss, got.aud, got.exp.Sub(got.iat).Round(time.Second), control.aud), nil
}
