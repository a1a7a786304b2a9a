package cluster

// The service-account issuer's key set. STS verifies a pod's token the way any OpenID Connect
// relying party does: it reads <issuer>/.well-known/openid-configuration, follows its jwks_uri,
// and checks the token's signature with the key its header names. The program computes the key
// set from the service-account key it owns (pki.go), as the API server itself would serve it
// (k8s.io/kubernetes pkg/serviceaccount/openidmetadata.go); the AWS tier publishes it beside the
// discovery document (infra/podidentity.go).

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"

	"github.com/waste-coach/infra/infra"
)

// JWKS is the key set of the issuer: the public half of the service-account key (sa.pub, a PKIX
// PEM), with the key id the API server writes in every token's header.
func JWKS(publicKeyPEM string) (string, error) {
	block, _ := pem.Decode([]byte(publicKeyPEM))
	if block == nil {
		return "", fmt.Errorf("service-account public key: not PEM")
	}
	public, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("service-account public key: %w", err)
	}
	key, ok := public.(*rsa.PublicKey)
	if !ok {
		return "", fmt.Errorf("service-account public key: %T, want RSA (the key the program generates)", public)
	}
	kid, err := ServiceAccountKeyID(key)
	if err != nil {
		return "", err
	}
	b64 := base64.RawURLEncoding.EncodeToString
	return mustJSON(map[string]any{"keys": []map[string]string{{
		"use": "sig", "kty": "RSA", "alg": "RS256", "kid": kid,
		"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}}), nil
}

// ServiceAccountKeyID is the key id the API server gives a public key: the unpadded base64url
// of the SHA-256 of its PKIX DER encoding (pkg/serviceaccount/jwt.go keyIDFromPublicKey).
func ServiceAccountKeyID(key *rsa.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return "", fmt.Errorf("service-account public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // strings and slices of strings only: cannot fail
	}
	return string(b)
}

// IssuerCheck is what the issuer check needs: the issuer, its bucket and documents as published,
// and the role it exchanges a token for.
type IssuerCheck struct {
	Issuer, Bucket, Region, Discovery, JWKS string
	// Namespace, ServiceAccount and RoleARN are the pod role whose token is exchanged.
	Namespace, ServiceAccount, RoleARN string
}

// IssuerCheckScript proves on the master that STS can use the pods' issuer (issuer-check.sh.tmpl).
// The documents are public and the role's ARN no secret; the token the script asks for never
// leaves the master.
func IssuerCheckScript(c IssuerCheck) string {
	for _, v := range []string{c.Issuer, c.Bucket, c.Region, c.Discovery, c.JWKS, c.Namespace, c.ServiceAccount, c.RoleARN} {
		if strings.Contains(v, "'") {
			panic("issuer check: a single quote in " + v) // JSON of base64url values, names and an ARN: never
		}
	}
	return render("issuer-check", struct {
		IssuerCheck
		DiscoveryPath, JWKSPath, Audience string
	}{c, infra.DiscoveryPath, infra.JWKSPath, infra.STSAudience})
}
