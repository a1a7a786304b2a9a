package cluster

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The master's daily certificate renewal, run against a model of its control plane: the static
// pod manifests are real files; crictl lists a component as running while its manifest is in
// /etc/kubernetes/manifests (the kubelet's behaviour), unless $STUB_STATE/stuck names it; kubeadm
// lists the certificates' seconds left from $STUB_STATE/expiry and a renewal sets them to a year.

var certManifests = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}

func certStubs() map[string]string {
	return map[string]string{
		"kubeadm": `
case "$*" in
  "certs check-expiration -o jsonpath={range .certificates[*]}"*) cat "$STUB_STATE/expiry" ;;
  "certs check-expiration -o jsonpath={.certificates[?(@.name==\"apiserver\")].expirationDate}") echo 2027-12-06T18:00:00Z ;;
  "certs renew all") sed -i 's/ [^ ]* false false$/ 3.1536e+07 false false/' "$STUB_STATE/expiry" ;;
  *) echo "unexpected kubeadm $*" >&2; exit 1 ;;
esac`,
		"crictl": `
name=""; prev=""; for a in "$@"; do [ "$prev" = --name ] && name=$a; prev=$a; done
c=${name#^}; c=${c%$}
if [ -e "/etc/kubernetes/manifests/$c.yaml" ] && ! grep -qx "$c" "$STUB_STATE/stuck" 2> /dev/null; then echo "0123456789ab"; fi`,
		"curl": `case "$*" in *livez*) exit 0 ;; *) exit 1 ;; esac`,
	}
}

// certExpiry is kubeadm's list with the API server's certificate at days left and the others at
// 300 days; an externally managed and a missing certificate are never due. The seconds are
// printed as kubeadm's jsonpath prints them: its object goes through a JSON map, so they are
// float64 in Go's shortest form (5.0976e+06).
func certExpiry(apiserverDays int) string {
	secs := func(days int) string { return strconv.FormatFloat(float64(days*24*3600), 'g', -1, 64) }
	return fmt.Sprintf("apiserver %s false false\napiserver-kubelet-client %s false false\netcd-server %s false false\nfront-proxy-client 100 true false\nsuper-admin.conf 0 false true\n",
		secs(apiserverDays), secs(300), secs(300))
}

func certRoot(t *testing.T, apiserverDays int) *scratchRoot {
	t.Helper()
	root := newRoot(t)
	for _, c := range certManifests {
		root.write("/etc/kubernetes/manifests/"+c+".yaml", "kind: Pod\nmetadata:\n  name: "+c+"\n")
	}
	root.stubState(t, "expiry", certExpiry(apiserverDays))
	return root
}

// TestCertificatesAreRenewedAt60DaysAndTheControlPlaneRestartedInTurn: with 59 days left on one
// certificate the timer's run renews them all and restarts etcd, the API server, the
// controller-manager and the scheduler one after another, each stopped and running again before
// the next; every manifest is back at the end. With 61 days left it renews and restarts nothing,
// and an externally managed or missing certificate never triggers a renewal.
func TestCertificatesAreRenewedAt60DaysAndTheControlPlaneRestartedInTurn(t *testing.T) {
	root := certRoot(t, 61)
	r := root.run(RenewCertsScript(), scriptCase{stubs: certStubs()})
	if r.code != 0 || len(r.called("kubeadm", "certs", "renew")) != 0 || len(r.called("crictl")) != 0 {
		t.Fatalf("with 61 days left something was renewed or restarted:\n%s", r.describe())
	}

	root = certRoot(t, 59)
	r = root.run(RenewCertsScript(), scriptCase{stubs: certStubs()})
	if r.code != 0 {
		t.Fatalf("the renewal failed:\n%s", r.describe())
	}
	renew := r.index("kubeadm", "certs", "renew", "all")
	if renew < 0 || !strings.Contains(r.stdout, "less than 60 days left on: apiserver") {
		t.Fatalf("59 days left on the API server's certificate did not renew it:\n%s", r.describe())
	}
	prev := renew
	for _, c := range certManifests {
		at := -1
		for i, call := range r.calls {
			if call[0] == "crictl" && i > prev && strings.Contains(call.String(), "--name ^"+c+"$") {
				at = i
				break
			}
		}
		if at < 0 {
			t.Fatalf("%s was not restarted after the renewal, in turn:\n%s", c, r.describe())
		}
		prev = at
		if !strings.Contains(r.stdout, c+" restarted with the renewed certificates") {
			t.Errorf("%s is not reported restarted:\n%s", c, r.stdout)
		}
		if _, ok := root.read("/etc/kubernetes/manifests/" + c + ".yaml"); !ok {
			t.Errorf("the manifest of %s is not back in /etc/kubernetes/manifests", c)
		}
	}
	again := root.run(RenewCertsScript(), scriptCase{stubs: certStubs()})
	if again.code != 0 || len(again.called("kubeadm", "certs", "renew")) != 0 {
		t.Errorf("the run after a renewal renewed again:\n%s", again.describe())
	}
}

// TestARenewalNeverLeavesAComponentOut: a component that does not come back fails the run with its
// name, its manifest back in place; a manifest a cut-short run left out is put back first thing.
func TestARenewalNeverLeavesAComponentOut(t *testing.T) {
	root := certRoot(t, 10)
	root.stubState(t, "stuck", "kube-controller-manager\n")
	r := root.run(RenewCertsScript(), scriptCase{stubs: certStubs()})
	if r.code == 0 || !strings.Contains(r.stdout, "kube-controller-manager is not running 120 s after its restart") {
		t.Fatalf("a component that did not come back passed:\n%s", r.describe())
	}
	for _, c := range certManifests {
		if _, ok := root.read("/etc/kubernetes/manifests/" + c + ".yaml"); !ok {
			t.Errorf("the manifest of %s was left out of /etc/kubernetes/manifests after the failure", c)
		}
	}
	if strings.Contains(r.stdout, "kube-scheduler restarted") {
		t.Error("the scheduler was restarted after the controller-manager failed")
	}
	// The certificates on disk are renewed now, yet the restarts are owed: the next run does them.
	if err := os.Remove(root.path("/var/lib/waste-coach/cert-restarts-owed")); err == nil {
		root.write("/var/lib/waste-coach/cert-restarts-owed", "2026-12-06T18:00:00Z\n")
	} else {
		t.Fatalf("the failed run left no mark of the restarts it owes: %v", err)
	}
	root.stubState(t, "stuck", "")
	next := root.run(RenewCertsScript(), scriptCase{stubs: certStubs()})
	if next.code != 0 || len(next.called("kubeadm", "certs", "renew")) != 0 || !strings.Contains(next.stdout, "kube-scheduler restarted with the renewed certificates") {
		t.Fatalf("the next run did not do the owed restarts (without renewing again):\n%s", next.describe())
	}
	if _, ok := root.read("/var/lib/waste-coach/cert-restarts-owed"); ok {
		t.Error("the mark stays after every restart passed")
	}

	root = certRoot(t, 300)
	root.write("/etc/kubernetes/waste-coach/restarting/kube-apiserver.yaml", "kind: Pod\nmetadata:\n  name: kube-apiserver\n")
	if err := os.Remove(root.path("/etc/kubernetes/manifests/kube-apiserver.yaml")); err != nil {
		t.Fatal(err)
	}
	r = root.run(RenewCertsScript(), scriptCase{stubs: certStubs()})
	if r.code != 0 || !strings.Contains(r.stdout, "put kube-apiserver.yaml back") {
		t.Fatalf("a manifest left out by a cut-short run was not put back:\n%s", r.describe())
	}
	if _, ok := root.read("/etc/kubernetes/manifests/kube-apiserver.yaml"); !ok {
		t.Error("the API server's manifest is still out")
	}
}

// TestTheRenewalTimerIsInstalledOnTheMaster: the installation writes the renewal program as
// rendered, a oneshot service running it and a persistent daily timer, and enables the timer.
func TestTheRenewalTimerIsInstalledOnTheMaster(t *testing.T) {
	root := newRoot(t)
	r := root.run(CertRenewalScript(), scriptCase{})
	if r.code != 0 {
		t.Fatalf("the installation failed:\n%s", r.describe())
	}
	if got, _ := root.read(CertRenewalProgram); got != RenewCertsScript() || root.mode(CertRenewalProgram) != 0o755 {
		t.Errorf("%s is not the renewal program, executable", CertRenewalProgram)
	}
	service, _ := root.read("/etc/systemd/system/" + CertRenewalService)
	timer, _ := root.read("/etc/systemd/system/" + CertRenewalTimer)
	if !strings.Contains(service, "ExecStart="+CertRenewalProgram+"\n") || !strings.Contains(service, "Type=oneshot") {
		t.Errorf("the service does not run the program once:\n%s", service)
	}
	if !strings.Contains(timer, "OnCalendar="+CertRenewalCalendar+"\n") || !strings.Contains(timer, "Persistent=true") || !strings.Contains(timer, "OnBootSec=") {
		t.Errorf("the timer is not daily and persistent:\n%s", timer)
	}
	if r.index("systemctl", "enable", "--now", CertRenewalTimer) < 0 || r.index("systemctl", "daemon-reload") > r.index("systemctl", "enable", "--now", CertRenewalTimer) {
		t.Errorf("the timer is not enabled after a daemon-reload:\n%s", r.describe())
	}
}
