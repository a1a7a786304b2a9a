package tests

import (
	"maps"
	"strings"
	"testing"

	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/internal/stackfile"
)

// prodWith returns prod's configuration with some keys changed (an empty value removes the key).
func prodWith(t *testing.T, change map[string]string, secrets ...string) *stackfile.Config {
	t.Helper()
	sc, err := stackfile.Read("..", "prod")
	if err != nil {
		t.Fatal(err)
	}
	out := &stackfile.Config{Values: maps.Clone(sc.Values), Secrets: append(sc.Secrets, secrets...)}
	for k, v := range change {
		if v == "" {
			delete(out.Values, k)
		} else {
			out.Values[k] = v
		}
	}
	return out
}

func TestBadConfigDeclaresNothing(t *testing.T) {
	r, err := offline.RunConfig("prod", prodWith(t, map[string]string{"waste-coach-infra:adminCidrs": `["0.0.0.0/0"]`}))
	if err == nil || !strings.Contains(err.Error(), "waste-coach-infra:adminCidrs[0]") {
		t.Fatalf("a world-open admin CIDR on prod must be refused by name, got %v", err)
	}
	if len(r.Resources) != 0 {
		t.Errorf("%d resources were declared before the configuration was refused", len(r.Resources))
	}
}

func TestOperatorSuppliedSSHKey(t *testing.T) {
	const pub = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOperatorKey operator@example"
	t.Run("secret private key is used, no key is generated", func(t *testing.T) {
		r, err := offline.RunConfig("prod", prodWith(t, map[string]string{
			"waste-coach-infra:sshPublicKey":  pub,
			"waste-coach-infra:sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----\noperator\n-----END OPENSSH PRIVATE KEY-----\n",
		}, "waste-coach-infra:sshPrivateKey"))
		if err != nil {
			t.Fatal(err)
		}
		if key := r.Named("tls:index/privateKey:PrivateKey", "sesacthon-nodes-ssh"); key != nil {
			t.Error("an SSH key was generated although the operator supplied one")
		}
		if kp := r.OfType("aws:ec2/keyPair:KeyPair"); len(kp) != 1 || str(kp[0], "publicKey") != pub {
			t.Errorf("the key pair does not carry the operator's public key")
		}
		for _, c := range r.OfType(remoteCommand) {
			if !prop(c, "connection").IsSecret() || !strings.Contains(prop(c, "connection").SecretValue().Element.String(), "operator") {
				t.Errorf("%s does not log in with the operator's private key, as a secret", c.Name)
				break
			}
		}
	})
	t.Run("plain-text private key is refused", func(t *testing.T) {
		_, err := offline.RunConfig("prod", prodWith(t, map[string]string{
			"waste-coach-infra:sshPublicKey":  pub,
			"waste-coach-infra:sshPrivateKey": "not-a-secret",
		}))
		if err == nil || !strings.Contains(err.Error(), "sshPrivateKey") || !strings.Contains(err.Error(), "secret") {
			t.Fatalf("a private key in plain text must be refused, got %v", err)
		}
	})
}
