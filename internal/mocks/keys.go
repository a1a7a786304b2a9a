package mocks

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"sync"
	"time"
)

// The tls provider's keys and certificates are fabricated as real PEM, so that the program's own
// code that reads them (the cluster CA's discovery hash, cluster/pki.go) runs under the mocks as
// it does for real. One RSA key serves every RSA key of a run: generating a key per resource
// would only slow the tests down.
var mockRSA = sync.OnceValues(func() (*rsa.PrivateKey, error) { return rsa.GenerateKey(rand.Reader, 2048) })

// FabricatedKey is the private key PEM the mocks give every RSA key of this process: a test can
// tell a fabricated key from anything else.
func FabricatedKey() (string, error) {
	private, _, err := rsaKeyPEM()
	return private, err
}

// rsaKeyPEM returns the mock key as the provider's privateKeyPem (PKCS#1) and publicKeyPem
// (PKIX).
func rsaKeyPEM() (private, public string, err error) {
	key, err := mockRSA()
	if err != nil {
		return "", "", err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return "", "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})), nil
}

// selfSignedPEM is a self-signed certificate for commonName, a CA when isCA, signed with the mock
// key and valid for validityHours from a fixed start.
func selfSignedPEM(commonName string, isCA bool, validityHours int) (string, error) {
	key, err := mockRSA()
	if err != nil {
		return "", err
	}
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             start,
		NotAfter:              start.Add(time.Duration(validityHours) * time.Hour),
		IsCA:                  isCA,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", fmt.Errorf("mock certificate %q: %w", commonName, err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), nil
}
