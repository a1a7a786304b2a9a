package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki is the certificate authority and the keys the control plane needs.
type pki struct {
	dir                           string
	caCert, serverCert, serverKey string
	adminCert, adminKey           string
	saKey, saPub                  string
	// program says the CA and the service-account key pair are the program's (the render's
	// kubeadm/identity), not made for the run.
	program bool
}

// identityDir is where a render holds the cluster identity kubeadm-init installs on the master
// (internal/render.IdentityDir), under kubeadm's names.
const identityDir = "kubeadm/identity"

// newPKI makes a serving certificate for 127.0.0.1 and a cluster-admin client certificate, signed
// by the cluster CA, and names the service-account key pair. With the program's identity in
// identity (a render's kubeadm/identity: ca.crt, ca.key, sa.key, sa.pub), the CA and the key pair
// are those, as on the master; with identity "", a CA and a key pair are generated for the run.
// Nothing made here outlives the run.
func newPKI(dir, identity string) (*pki, error) {
	p := &pki{dir: dir}
	now := time.Now()
	var ca *x509.Certificate
	var caKey crypto.Signer
	var err error
	if identity != "" {
		if ca, caKey, err = loadCA(filepath.Join(identity, "ca.crt"), filepath.Join(identity, "ca.key")); err != nil {
			return nil, fmt.Errorf("the program's cluster CA: %w", err)
		}
		p.caCert, p.saKey, p.saPub, p.program = filepath.Join(identity, "ca.crt"), filepath.Join(identity, "sa.key"), filepath.Join(identity, "sa.pub"), true
	} else {
		generated, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		caTmpl := &x509.Certificate{
			SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "verify-local-ca"},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, IsCA: true, BasicConstraintsValid: true,
		}
		caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &generated.PublicKey, generated)
		if err != nil {
			return nil, err
		}
		ca, _ = x509.ParseCertificate(caDER)
		caKey = generated
		if p.caCert, err = p.write("ca.crt", "CERTIFICATE", caDER); err != nil {
			return nil, err
		}
		if p.saKey, p.saPub, err = p.newServiceAccountKey("sa"); err != nil {
			return nil, err
		}
	}
	issue := func(name string, serial int64, tmpl *x509.Certificate) (string, string, error) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return "", "", err
		}
		tmpl.SerialNumber, tmpl.NotBefore, tmpl.NotAfter = big.NewInt(serial), now.Add(-time.Hour), now.Add(24*time.Hour)
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			return "", "", err
		}
		keyDER, _ := x509.MarshalECPrivateKey(key)
		c, err := p.write(name+".crt", "CERTIFICATE", der)
		if err != nil {
			return "", "", err
		}
		k, err := p.write(name+".key", "EC PRIVATE KEY", keyDER)
		return c, k, err
	}
	if p.serverCert, p.serverKey, err = issue("apiserver", 2, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return nil, err
	}
	if p.adminCert, p.adminKey, err = issue("admin", 3, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "verify-local-admin", Organization: []string{"system:masters"}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil, err
	}
	return p, nil
}

// newServiceAccountKey writes a fresh service-account signing key pair as <stem>.key and
// <stem>.pub.
func (p *pki) newServiceAccountKey(stem string) (private, public string, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	pubDER, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if private, err = p.write(stem+".key", "EC PRIVATE KEY", keyDER); err != nil {
		return "", "", err
	}
	public, err = p.write(stem+".pub", "PUBLIC KEY", pubDER)
	return private, public, err
}

// loadCA reads a CA certificate and its private key (PKCS#1, PKCS#8 or SEC 1 PEM, as the tls
// provider and kubeadm write them), and checks that they belong together.
func loadCA(certFile, keyFile string) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return nil, nil, fmt.Errorf("%s is not PEM", certFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", certFile, err)
	}
	if !cert.IsCA {
		return nil, nil, fmt.Errorf("%s is not a CA certificate", certFile)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, err
	}
	if block, _ = pem.Decode(keyPEM); block == nil {
		return nil, nil, fmt.Errorf("%s is not PEM", keyFile)
	}
	var key any
	switch block.Type {
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", keyFile, err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, fmt.Errorf("%s holds no signing key", keyFile)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, nil, fmt.Errorf("%s is not the key of %s", keyFile, certFile)
	}
	return cert, signer, nil
}

func (p *pki) write(name, typ string, der []byte) (string, error) {
	path := filepath.Join(p.dir, name)
	return path, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// freePort asks the kernel for an unused port on the loopback address.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}
