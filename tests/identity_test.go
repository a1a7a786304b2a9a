package tests

import (
	"strings"
	"testing"

	"github.com/waste-coach/infra/cluster"
	"github.com/waste-coach/infra/internal/offline"
)

// The cluster's identity belongs to the program (issue 24): three CAs and the service-account key
// pair, generated with constant inputs (no routine change can rotate them), kept as secrets,
// adopted once from a master initialised before, and installed before kubeadm init.
func TestTheClusterIdentityIsTheProgramsAndConstant(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		for _, ca := range []struct{ name, commonName string }{
			{"sesacthon-ca", "kubernetes"}, {"sesacthon-front-proxy-ca", "front-proxy-ca"}, {"sesacthon-etcd-ca", "etcd-ca"},
		} {
			cert := must(t, r, "tls:index/selfSignedCert:SelfSignedCert", ca.name)
			if str(cert, "subject", "commonName") != ca.commonName || str(cert, "isCaCertificate") != "true" {
				t.Errorf("%s: subject %q, CA %s; want the CA %q kubeadm would have made", ca.name, str(cert, "subject", "commonName"), str(cert, "isCaCertificate"), ca.commonName)
			}
			if got := str(cert, "validityPeriodHours"); got != "87600" {
				t.Errorf("%s is valid for %s hours, want ten years (87600) stated in the code", ca.name, got)
			}
			if str(cert, "earlyRenewalHours") != "" {
				t.Errorf("%s renews early: a plan near expiry would rotate the cluster's CA", ca.name)
			}
			key := must(t, r, "tls:index/privateKey:PrivateKey", ca.name+"-key")
			if str(key, "algorithm") != "RSA" || str(key, "rsaBits") != "2048" || !contains(key.AdditionalSecretOutputs, "privateKeyPem") {
				t.Errorf("%s-key: %s %s bits, secret outputs %v; want RSA 2048 with its PEM secret", ca.name, str(key, "algorithm"), str(key, "rsaBits"), key.AdditionalSecretOutputs)
			}
			if !r.DependsOn(cert, key) {
				t.Errorf("%s is not signed with its own key", ca.name)
			}
			if cert.Protect != r.Config.Production || key.Protect != r.Config.Production {
				t.Errorf("%s: protected %v (key %v), want %v: production must refuse to delete its CA", ca.name, cert.Protect, key.Protect, r.Config.Production)
			}
		}
		sa := must(t, r, "tls:index/privateKey:PrivateKey", "sesacthon-service-account-key")
		if !contains(sa.AdditionalSecretOutputs, "privateKeyPem") || sa.Protect != r.Config.Production {
			t.Errorf("the service-account key: secret outputs %v, protected %v", sa.AdditionalSecretOutputs, sa.Protect)
		}
		// A new master restoring etcd with another key could read no Secret.
		enc := must(t, r, "random:index/randomBytes:RandomBytes", "sesacthon-secrets-encryption")
		if enc.Protect != r.Config.Production {
			t.Errorf("the Secrets encryption key: protected %v, want %v: a lost key makes a restored cluster's Secrets unreadable", enc.Protect, r.Config.Production)
		}

		read := must(t, r, remoteCommand, "sesacthon-pki-read")
		if prop(read, "triggers").HasValue() && len(prop(read, "triggers").ArrayValue()) > 0 {
			t.Errorf("pki-read is tied to %v: a new master would run it again and read an empty identity", prop(read, "triggers"))
		}
		if !contains(read.IgnoreChanges, "*") {
			t.Errorf("pki-read ignores changes of %v only: any other changed input (a new master's address, the script, a setting) is an update that runs it again, on a master that may be new", read.IgnoreChanges)
		}
		if !contains(read.AdditionalSecretOutputs, "stdout") || str(read, "logging") != "none" || read.Protect != r.Config.Production {
			t.Errorf("pki-read: secret outputs %v, logging %q, protected %v: it holds an adopted CA key", read.AdditionalSecretOutputs, str(read, "logging"), read.Protect)
		}
		if str(read, "create") != cluster.PKIReadScript() {
			t.Error("pki-read does not run cluster.PKIReadScript")
		}

		initCmd := must(t, r, remoteCommand, "sesacthon-kubeadm-init")
		if !r.DependsOn(initCmd, read) {
			t.Error("kubeadm-init does not wait for pki-read: an existing master's identity could be overlooked")
		}
		if !prop(initCmd, "stdin").IsSecret() {
			t.Error("kubeadm-init receives the cluster's keys in plain text")
		}
		for _, n := range r.Config.Nodes {
			if n.Role.ControlPlane() {
				continue
			}
			join := must(t, r, remoteCommand, "sesacthon-join-"+string(n.Role))
			if !prop(join, "stdin").IsSecret() {
				t.Errorf("join-%s receives its join command in plain text", n.Role)
			}
			token := must(t, r, remoteCommand, "sesacthon-join-token-"+string(n.Role))
			if strings.Contains(str(token, "create"), "--print-join-command") {
				t.Errorf("join-token-%s prints kubeadm's join command, whose CA hash is the master's word, not the program's", n.Role)
			}
		}
	})
}

// Production protects the master and its address from Pulumi and the master from EC2 (issue 24);
// dev stays disposable.
func TestProductionProtectsTheMasterAndItsAddress(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		prod := r.Config.Production
		master := must(t, r, instanceType, "sesacthon-nodes-master")
		eip := must(t, r, "aws:ec2/eip:Eip", "sesacthon-nodes-endpoint")
		if master.Protect != prod || eip.Protect != prod {
			t.Errorf("master protected %v, Elastic IP protected %v; want %v on this stack", master.Protect, eip.Protect, prod)
		}
		wantTermination := "false"
		if prod && r.Config.Node("master").Capacity == "on-demand" {
			wantTermination = "true"
		}
		if got := str(master, "disableApiTermination"); got != wantTermination {
			t.Errorf("master disableApiTermination %q, want %q (EC2 allows it on on-demand instances only)", got, wantTermination)
		}
		for _, n := range r.Config.Nodes {
			if n.Role.ControlPlane() {
				continue
			}
			w := must(t, r, instanceType, "sesacthon-nodes-"+string(n.Role))
			if w.Protect || str(w, "disableApiTermination") != "false" {
				t.Errorf("%s is protected: a worker must stay replaceable by an ordinary up", n.Role)
			}
		}
	})
}
