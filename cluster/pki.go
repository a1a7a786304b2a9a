package cluster

// The cluster's identity: the three certificate authorities kubeadm signs every other
// certificate with, and the key pair that signs ServiceAccount tokens. The program owns them
// (generated with the tls provider, kept only as Pulumi secrets) and installs them on the master
// before `kubeadm init`, which uses CA and key files it finds instead of generating its own. A
// replaced master therefore runs the same cluster: the workers' CA check passes, and the tokens
// and client certificates issued before stay valid.
//
// A stack deployed before the program owned the identity adopts the one its master already has,
// once (pki-read): rotating it would reset every worker.

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/pulumi/pulumi-tls/sdk/v5/go/tls"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
)

// IdentityFiles are the files of the cluster's identity, by their path under kubeadm's
// certificates directory, /etc/kubernetes/pki. Every other certificate of the control plane
// (the API server's, etcd's, the kubelet client's) is derived from them by kubeadm.
var IdentityFiles = []string{
	"ca.crt", "ca.key",
	"front-proxy-ca.crt", "front-proxy-ca.key",
	"etcd/ca.crt", "etcd/ca.key",
	"sa.key", "sa.pub",
}

// PKIDir is kubeadm's certificates directory on the master.
const PKIDir = "/etc/kubernetes/pki"

// EncryptionConfigEntry names the API server's EncryptionConfiguration in the bundle handed to
// kubeadm-init on standard input.
const EncryptionConfigEntry = "encryption-config"

// CAValidityHours is the validity of the program's certificate authorities: ten years, as
// kubeadm gives its own. They are replaced only by the deliberate rotation of docs/operations.md
// ("Cluster identity"); the kubeadm-init step refuses a CA that differs from the running one.
const CAValidityHours = 10 * 365 * 24

// identityCAs are the program's certificate authorities: the bundle's file stem and the common
// name kubeadm gives its own.
var identityCAs = []struct{ stem, commonName string }{
	{"ca", "kubernetes"},
	{"front-proxy-ca", "front-proxy-ca"},
	{"etcd/ca", "etcd-ca"},
}

// newIdentity declares the program's identity (generated once, never on a routine change: every
// input is a constant) and returns it as a bundle, a secret.
func newIdentity(ctx *pulumi.Context, name string, opts ...pulumi.ResourceOption) (pulumi.StringOutput, error) {
	parts := []any{}
	for _, ca := range identityCAs {
		resName := name + "-" + strings.ReplaceAll(ca.stem, "/", "-")
		key, err := rsaKey(ctx, resName+"-key", opts...)
		if err != nil {
			return pulumi.StringOutput{}, fmt.Errorf("%s key: %w", ca.stem, err)
		}
		cert, err := tls.NewSelfSignedCert(ctx, resName, &tls.SelfSignedCertArgs{
			PrivateKeyPem:       key.PrivateKeyPem,
			Subject:             &tls.SelfSignedCertSubjectArgs{CommonName: pulumi.String(ca.commonName)},
			IsCaCertificate:     pulumi.Bool(true),
			SetSubjectKeyId:     pulumi.Bool(true),
			ValidityPeriodHours: pulumi.Int(CAValidityHours),
			AllowedUses:         pulumi.ToStringArray([]string{"cert_signing", "crl_signing", "digital_signature", "key_encipherment"}),
		}, opts...)
		if err != nil {
			return pulumi.StringOutput{}, fmt.Errorf("%s certificate: %w", ca.stem, err)
		}
		parts = append(parts, cert.CertPem, key.PrivateKeyPem)
	}
	sa, err := rsaKey(ctx, name+"-service-account-key", opts...)
	if err != nil {
		return pulumi.StringOutput{}, fmt.Errorf("service-account key: %w", err)
	}
	parts = append(parts, sa.PrivateKeyPem, sa.PublicKeyPem)
	return pulumi.ToSecret(pulumi.All(parts...).ApplyT(func(v []any) string {
		files := map[string]string{}
		for i, f := range IdentityFiles {
			files[f] = v[i].(string)
		}
		return FormatBundle(files)
	})).(pulumi.StringOutput), nil
}

// rsaKey is an RSA 2048 key, kubeadm's default. The SDK already declares its private outputs
// secret.
func rsaKey(ctx *pulumi.Context, name string, opts ...pulumi.ResourceOption) (*tls.PrivateKey, error) {
	return tls.NewPrivateKey(ctx, name, &tls.PrivateKeyArgs{Algorithm: pulumi.String("RSA"), RsaBits: pulumi.Int(2048)}, opts...)
}

// FormatBundle writes files as the scripts read them: one "<name> <base64 of the content>" line
// each, in name order.
func FormatBundle(files map[string]string) string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(files)) {
		fmt.Fprintf(&b, "%s %s\n", name, base64.StdEncoding.EncodeToString([]byte(files[name])))
	}
	return b.String()
}

// ParseIdentity reads an identity bundle and checks that it holds exactly IdentityFiles, each
// a PEM block, the certificates CAs.
func ParseIdentity(bundle string) (map[string]string, error) {
	files := map[string]string{}
	for line := range strings.Lines(bundle) {
		name, content, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || !slices.Contains(IdentityFiles, name) {
			return nil, fmt.Errorf("identity bundle: unexpected line for %q: want one of %s", name, strings.Join(IdentityFiles, ", "))
		}
		if _, dup := files[name]; dup {
			return nil, fmt.Errorf("identity bundle: %s twice", name)
		}
		b, err := base64.StdEncoding.DecodeString(content)
		if err != nil {
			return nil, fmt.Errorf("identity bundle: %s is not base64: %w", name, err)
		}
		block, _ := pem.Decode(b)
		if block == nil {
			return nil, fmt.Errorf("identity bundle: %s is not PEM", name)
		}
		if strings.HasSuffix(name, ".crt") {
			cert, err := x509.ParseCertificate(block.Bytes)
			if err != nil || !cert.IsCA {
				return nil, fmt.Errorf("identity bundle: %s is not a CA certificate (%v)", name, err)
			}
		}
		files[name] = string(b)
	}
	for _, f := range IdentityFiles {
		if _, ok := files[f]; !ok {
			return nil, fmt.Errorf("identity bundle: %s is missing", f)
		}
	}
	// Each key must be the one its certificate (or sa.pub) names: kubeadm checks neither, and a
	// swapped key would fail only when a component first signs or verifies with it.
	for _, pair := range [][2]string{{"ca.key", "ca.crt"}, {"front-proxy-ca.key", "front-proxy-ca.crt"}, {"etcd/ca.key", "etcd/ca.crt"}, {"sa.key", "sa.pub"}} {
		if err := keyMatches(files[pair[0]], files[pair[1]]); err != nil {
			return nil, fmt.Errorf("identity bundle: %s does not belong to %s: %w", pair[0], pair[1], err)
		}
	}
	return files, nil
}

// keyMatches checks that a private key PEM (PKCS#1, PKCS#8 or SEC 1) has the public key of a
// certificate or public key PEM.
func keyMatches(keyPEM, publicPEM string) error {
	kb, _ := pem.Decode([]byte(keyPEM))
	pb, _ := pem.Decode([]byte(publicPEM))
	if kb == nil || pb == nil {
		return fmt.Errorf("not PEM")
	}
	var key crypto.Signer
	if k, err := x509.ParsePKCS1PrivateKey(kb.Bytes); err == nil {
		key = k
	} else if k, err := x509.ParseECPrivateKey(kb.Bytes); err == nil {
		key = k
	} else if k, err := x509.ParsePKCS8PrivateKey(kb.Bytes); err == nil {
		signer, ok := k.(crypto.Signer)
		if !ok {
			return fmt.Errorf("unsupported private key type %T", k)
		}
		key = signer
	} else {
		return fmt.Errorf("unreadable private key")
	}
	var public any
	if pb.Type == "CERTIFICATE" {
		cert, err := x509.ParseCertificate(pb.Bytes)
		if err != nil {
			return err
		}
		public = cert.PublicKey
	} else {
		p, err := x509.ParsePKIXPublicKey(pb.Bytes)
		if err != nil {
			return err
		}
		public = p
	}
	if eq, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(public) {
		return fmt.Errorf("the public keys differ")
	}
	return nil
}

// ChooseIdentity returns the identity the cluster runs with: the one read from an existing
// master (adopted, when pki-read printed one), else the program's own (generated).
func ChooseIdentity(adopted, generated string) (map[string]string, error) {
	if strings.TrimSpace(adopted) != "" {
		files, err := ParseIdentity(adopted)
		if err != nil {
			return nil, fmt.Errorf("the identity read from the master: %w", err)
		}
		return files, nil
	}
	return ParseIdentity(generated)
}

// CACertHash is kubeadm's discovery hash of a CA certificate: "sha256:" and the hex sha256 of its
// DER SubjectPublicKeyInfo.
func CACertHash(caPEM string) (string, error) {
	block, _ := pem.Decode([]byte(caPEM))
	if block == nil {
		return "", fmt.Errorf("CA certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return "", fmt.Errorf("CA certificate: %w", err)
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// EtcdSnapshotPrefix is where the etcd snapshots of the cluster whose etcd CA is etcdCAPEM go in
// the backups bucket: the master's backup prefix, then the first 16 hex digits of the CA's
// discovery hash. A new master restores only from there (kubeadm-init), so a rebuilt cluster,
// whose new identity and encryption key could not read an old cluster's Secrets, never finds the
// old cluster's snapshots, and a replaced master of this one always finds its own.
func EtcdSnapshotPrefix(etcdCAPEM string) (string, error) {
	hash, err := CACertHash(etcdCAPEM)
	if err != nil {
		return "", fmt.Errorf("etcd CA: %w", err)
	}
	return config.BackupPrefix(config.RoleMaster) + "/" + strings.TrimPrefix(hash, "sha256:")[:16], nil
}

// bootstrapToken is the shape of a kubeadm bootstrap token ("abcdef.0123456789abcdef").
var bootstrapToken = regexp.MustCompile(`^[a-z0-9]{6}\.[a-z0-9]{16}$`)

// JoinConfiguration is a worker's kubeadm JoinConfiguration in the config API apiVersion (the
// cluster's minor's, as KubeadmConfig's): the in-VPC endpoint, the token minted for this join
// (join-token's output, which must be a bootstrap token and nothing else) and the CA hash derived
// from the cluster's own CA (never from what the master says). The join script hands it to
// kubeadm as a root-only file, so the token reaches no command line.
func JoinConfiguration(apiVersion, endpoint, token, caHash string) (string, error) {
	token = strings.TrimSpace(token)
	if !bootstrapToken.MatchString(token) {
		return "", fmt.Errorf("join-token printed something other than one bootstrap token (%d bytes; not shown: it may hold the token)", len(token))
	}
	return fmt.Sprintf(`apiVersion: %s
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: %s
    token: %s
    caCertHashes:
      - %s
`, apiVersion, endpoint, token, caHash), nil
}

// InitBundle is kubeadm-init's standard input: the identity's files and the
// EncryptionConfiguration, in one bundle.
func InitBundle(identity map[string]string, encryptionConfig string) string {
	files := map[string]string{EncryptionConfigEntry: encryptionConfig}
	for k, v := range identity {
		files[k] = v
	}
	return FormatBundle(files)
}

// ParseInitBundle reads kubeadm-init's standard input back: the identity, checked as
// ParseIdentity checks it, and the EncryptionConfiguration.
func ParseInitBundle(bundle string) (identity map[string]string, encryptionConfig string, err error) {
	var rest strings.Builder
	for line := range strings.Lines(bundle) {
		name, content, _ := strings.Cut(strings.TrimSpace(line), " ")
		if name != EncryptionConfigEntry {
			rest.WriteString(line)
			continue
		}
		b, err := base64.StdEncoding.DecodeString(content)
		if err != nil {
			return nil, "", fmt.Errorf("init bundle: %s is not base64: %w", name, err)
		}
		encryptionConfig = string(b)
	}
	if encryptionConfig == "" {
		return nil, "", fmt.Errorf("init bundle: no %s", EncryptionConfigEntry)
	}
	identity, err = ParseIdentity(rest.String())
	return identity, encryptionConfig, err
}
