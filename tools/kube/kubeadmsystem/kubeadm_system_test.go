// Package kubeadmsystem proves the kubeadm objects that chartfit's network policy check reads
// (tools/charts/cmd/chartfit/kubeadm-system.yaml) against kubeadm's own manifests, at the
// kubeadm version this module builds (k8s.io/kubernetes in go.mod).
package kubeadmsystem

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"text/template"

	"k8s.io/kubernetes/cmd/kubeadm/app/phases/addons/dns"
	"k8s.io/kubernetes/cmd/kubeadm/app/phases/addons/proxy"
	"sigs.k8s.io/yaml"
)

// systemFile is chartfit's copy of kubeadm's kube-system objects, reduced to what it reads.
const systemFile = "../../charts/cmd/chartfit/kubeadm-system.yaml"

// upstream renders kubeadm's manifest templates with stand-in values for what the check does
// not read (image, replicas, addresses).
func upstream(t *testing.T) map[string]map[string]any {
	t.Helper()
	data := map[string]any{
		"DeploymentName": "coredns", "Replicas": 2, "Image": "image", "ControlPlaneTaintKey": "node-role.kubernetes.io/control-plane",
		"DNSIP": "10.96.0.10", "DNSDomain": "cluster.local", "ProxyConfigMap": "kube-proxy", "ProxyConfigMapKey": "config.conf",
	}
	out := map[string]map[string]any{}
	for _, manifest := range []string{dns.CoreDNSService, dns.CoreDNSDeployment, proxy.KubeProxyDaemonSet19} {
		var b bytes.Buffer
		if err := template.Must(template.New("m").Parse(manifest)).Execute(&b, data); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b.Bytes(), &m); err != nil {
			t.Fatal(err)
		}
		out[key(m)] = m
	}
	return out
}

func key(m map[string]any) string {
	md, _ := m["metadata"].(map[string]any)
	return fmt.Sprintf("%v %v/%v", m["kind"], md["namespace"], md["name"])
}

// Every field of chartfit's copy is kubeadm's, every list (containers, ports) as long as
// kubeadm's, and each pod template's labels and network are kubeadm's exactly: a port kubeadm
// adds, or CoreDNS moving to the host's network, fails here until the copy and the policies
// follow (workloads/netpol_system.go).
func TestChartfitsKubeadmObjectsAreKubeadms(t *testing.T) {
	b, err := os.ReadFile(systemFile)
	if err != nil {
		t.Fatal(err)
	}
	want := upstream(t)
	seen := 0
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var copied map[string]any
		if err := yaml.Unmarshal([]byte(doc), &copied); err != nil {
			t.Fatal(err)
		}
		if len(copied) == 0 {
			continue
		}
		k := key(copied)
		real, ok := want[k]
		if !ok {
			t.Errorf("%s: kubeadm declares no such object", k)
			continue
		}
		seen++
		for _, diff := range subset(copied, real, k) {
			t.Error(diff)
		}
		if copied["kind"] == "Service" {
			continue
		}
		for _, path := range [][]string{{"spec", "template", "metadata", "labels"}, {"spec", "template", "spec", "hostNetwork"}, {"spec", "template", "spec", "dnsPolicy"}} {
			if c, r := at(copied, path...), at(real, path...); !reflect.DeepEqual(c, r) {
				t.Errorf("%s %s: chartfit's copy has %v, kubeadm %v", k, strings.Join(path, "."), c, r)
			}
		}
	}
	if seen != len(want) {
		t.Errorf("chartfit's copy has %d of kubeadm's %d objects", seen, len(want))
	}
}

// CoreDNS's flows (workloads/netpol_system.go) follow from kubeadm's Corefile: it forwards to the
// node's resolv.conf and serves its metrics on 9153.
func TestKubeadmsCorefileForwardsToTheNodesResolvers(t *testing.T) {
	for _, want := range []string{"forward . /etc/resolv.conf", "prometheus :9153", "kubernetes {{ .DNSDomain }}"} {
		if !strings.Contains(dns.CoreDNSConfigMap, want) {
			t.Errorf("kubeadm's Corefile no longer has %q: CoreDNS's NetworkPolicy must be checked again", want)
		}
	}
}

// subset lists where copied is not part of real: a map key missing or different, a list of
// another length.
func subset(copied, real any, path string) []string {
	switch c := copied.(type) {
	case map[string]any:
		r, ok := real.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: chartfit's copy has an object, kubeadm %v", path, real)}
		}
		var out []string
		for k, v := range c {
			rv, ok := r[k]
			if !ok {
				out = append(out, fmt.Sprintf("%s.%s: kubeadm has no such field", path, k))
				continue
			}
			out = append(out, subset(v, rv, path+"."+k)...)
		}
		return out
	case []any:
		r, ok := real.([]any)
		if !ok || len(r) != len(c) {
			return []string{fmt.Sprintf("%s: chartfit's copy has %d entries, kubeadm %v", path, len(c), real)}
		}
		var out []string
		for i := range c {
			out = append(out, subset(c[i], r[i], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	}
	if fmt.Sprint(copied) != fmt.Sprint(real) {
		return []string{fmt.Sprintf("%s: chartfit's copy has %v, kubeadm %v", path, copied, real)}
	}
	return nil
}

func at(m map[string]any, path ...string) any {
	var v any = m
	for _, p := range path {
		mm, _ := v.(map[string]any)
		v = mm[p]
	}
	return v
}
