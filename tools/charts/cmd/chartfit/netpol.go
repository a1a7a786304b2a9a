package main

import (
	_ "embed"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The network policy check holds every pod of kube-system that NetworkPolicies govern (not on
// the host's network) to a policy of its own, and every port that someone must reach to an
// ingress rule admitting that someone. The pods are the charts' rendered ones, the program's
// own (out/<stack>/manifests) and kubeadm's (kubeadm-system.yaml); the policies are the
// program's (out/<stack>/manifests). Who reaches a port is read from the rendered objects:
//   - a Service behind an APIService or a webhook: the API server, from the master's address
//     or, for a pod on another node, its VXLAN tunnel address (anywhere in the pod network);
//   - a Service a ServiceMonitor selects, or a pod a PodMonitor selects: the Prometheus pods
//     the operator makes of each Prometheus resource;
//   - kubeadm's kube-dns Service on 53: every pod of every namespace, and the nodes;
//   - any other Service: someone this check cannot name, so some ingress rule must admit the
//     port, and the report says from whom.
//
// A probe's port needs no rule: the kubelet probes from the pod's own node, which Calico does
// not police (felix/rules/static.go, filterOutputChain: "We don't currently police host ->
// endpoint according to the endpoint's ingress policy"). A port nobody reaches may stay closed.
// Egress is not checked here: what a pod calls is not in its manifest (the program's tests
// check the flows it declares, tests/kube_system_netpol_test.go).

//go:embed kubeadm-system.yaml
var kubeadmSystem string

// systemNamespace is the namespace whose pods this check holds to a policy of their own.
const systemNamespace = "kube-system"

// clusterDNSService is kubeadm's Service of the cluster's DNS, which every pod asks.
const clusterDNSService = "kube-dns"

// clusterNetwork is what the check needs of the cluster's addresses, from the render's kubeadm
// configuration: the API server's address and the pod network.
type clusterNetwork struct {
	master netip.Addr
	pods   netip.Prefix
}

// source is who sends traffic to a port: addresses (each of which must be admitted), the pods
// of a namespace with given labels, or every pod of every namespace.
type source struct {
	what     string
	addrs    []netip.Prefix
	pod      *podIdentity
	everyPod bool
}

type podIdentity struct {
	namespace string
	labels    map[string]string
}

// reach is a port of a pod that a source must reach, and through what (a Service, a monitor).
type reach struct {
	port containerPort
	from source
	via  string
	// unnamed: the source is someone this check cannot name; any ingress rule for the port does.
	unnamed bool
}

type containerPort struct {
	container, name, protocol string
	number                    int
}

func (p containerPort) String() string { return fmt.Sprintf("%d/%s", p.number, p.protocol) }

// systemPod is a pod template in kube-system: who makes it, its labels, network and containers.
type systemPod struct {
	owner, kind, name string
	labels            map[string]string
	hostNetwork       bool
	spec              map[string]any
}

// netPolicy is one of the program's NetworkPolicies, as rendered.
type netPolicy struct {
	namespace, name string
	spec            map[string]any
}

func (p netPolicy) selector() (map[string]string, bool) {
	sel := dig(p.spec, "podSelector")
	_, exprs := sel["matchExpressions"]
	return strMap(sel["matchLabels"]), !exprs
}

func (p netPolicy) has(policyType string) bool {
	return slices.Contains(strs(p.spec["policyTypes"]), policyType)
}

// selects reports whether the policy selects a pod with these labels; a selector with
// expressions is refused by the check before this is asked.
func (p netPolicy) selects(labels map[string]string) bool {
	sel, _ := p.selector()
	return subset(sel, labels)
}

// own reports a policy that names its pods (a non-empty selector), not the namespace's default.
func (p netPolicy) own() bool {
	sel, _ := p.selector()
	return len(sel) > 0
}

// networkPolicyCheck runs the check on a render's folder. A folder without manifests (the
// tests' releases-only folders) is skipped, saying so.
func networkPolicyCheck(dir string, rendered []*Rendered, w *strings.Builder) ([]Finding, error) {
	if _, err := os.Stat(filepath.Join(dir, "manifests")); err != nil {
		fmt.Fprintf(w, "network policies: %s has no manifests folder, so no policy to check the pods against: check skipped\n\n", dir)
		return nil, nil
	}
	network, err := readClusterNetwork(dir)
	if err != nil {
		return nil, err
	}
	program, err := programObjects(dir)
	if err != nil {
		return nil, err
	}
	kubeadm, err := parseManifests(kubeadmSystem, nil)
	if err != nil {
		return nil, fmt.Errorf("kubeadm-system.yaml: %w", err)
	}
	return checkSystemPolicies(rendered, program, kubeadm, network, w), nil
}

// readClusterNetwork reads the master's address and the pod network from the render's kubeadm
// configuration (out/<stack>/kubeadm/<cluster>-kubeadm-init.yaml).
func readClusterNetwork(dir string) (clusterNetwork, error) {
	files, err := filepath.Glob(filepath.Join(dir, "kubeadm", "*-kubeadm-init.yaml"))
	if err != nil || len(files) != 1 {
		return clusterNetwork{}, fmt.Errorf("want one kubeadm configuration in %s/kubeadm (cmd/render writes it), found %v", dir, files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		return clusterNetwork{}, err
	}
	objs, err := parseManifests(string(b), nil)
	if err != nil {
		return clusterNetwork{}, fmt.Errorf("%s: %w", files[0], err)
	}
	var n clusterNetwork
	for _, o := range objs {
		switch o.Map["kind"] {
		case "InitConfiguration":
			n.master, err = netip.ParseAddr(str(dig(o.Map, "localAPIEndpoint"), "advertiseAddress"))
		case "ClusterConfiguration":
			n.pods, err = netip.ParsePrefix(str(dig(o.Map, "networking"), "podSubnet"))
		}
		if err != nil {
			return clusterNetwork{}, fmt.Errorf("%s: %w", files[0], err)
		}
	}
	if !n.master.IsValid() || !n.pods.IsValid() {
		return clusterNetwork{}, fmt.Errorf("%s gives no advertiseAddress or no podSubnet", files[0])
	}
	return n, nil
}

// programObjects reads every Kubernetes object the program declares (out/<stack>/manifests).
func programObjects(dir string) ([]Object, error) {
	files, err := filepath.Glob(filepath.Join(dir, "manifests", "*.yaml"))
	if err != nil {
		return nil, err
	}
	var out []Object
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		objs, err := parseManifests(string(b), nil)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, objs...)
	}
	return out, nil
}

// owned is a rendered or declared object, with who makes it and the namespace it lands in.
type owned struct {
	owner, namespace string
	obj              map[string]any
}

func checkSystemPolicies(rendered []*Rendered, program, kubeadm []Object, network clusterNetwork, w *strings.Builder) []Finding {
	var all []owned
	for _, r := range rendered {
		for _, o := range r.Objects {
			if slices.Contains(o.Hook, "test") {
				continue
			}
			ns := str(dig(o.Map, "metadata"), "namespace")
			if ns == "" {
				ns = r.Release.Namespace
			}
			all = append(all, owned{"release " + r.Release.Name, ns, o.Map})
		}
	}
	for _, o := range program {
		all = append(all, owned{"the program", str(dig(o.Map, "metadata"), "namespace"), o.Map})
	}
	for _, o := range kubeadm {
		all = append(all, owned{"kubeadm", str(dig(o.Map, "metadata"), "namespace"), o.Map})
	}

	var out []Finding
	var policies []netPolicy
	for _, o := range program {
		if o.Map["kind"] == "NetworkPolicy" && str(dig(o.Map, "metadata"), "namespace") == systemNamespace {
			p := netPolicy{systemNamespace, str(dig(o.Map, "metadata"), "name"), dig(o.Map, "spec")}
			if _, ok := p.selector(); !ok {
				out = append(out, Finding{Problem: fmt.Sprintf("NetworkPolicy %s/%s selects pods with matchExpressions, which this check cannot evaluate", p.namespace, p.name)})
				continue
			}
			policies = append(policies, p)
		}
	}
	fmt.Fprintf(w, "network policies of %s (%d; egress is the program's tests' to check):\n", systemNamespace, len(policies))
	if !slices.ContainsFunc(policies, func(p netPolicy) bool {
		return !p.own() && p.has("Ingress") && p.has("Egress") && len(list(p.spec, "ingress")) == 0 && len(list(p.spec, "egress")) == 0
	}) {
		out = append(out, Finding{Problem: fmt.Sprintf("namespace %s has no default-deny NetworkPolicy (every pod, Ingress and Egress, no rule)", systemNamespace)})
	}
	prometheus := prometheusPods(all)
	for _, p := range systemPods(all) {
		if p.hostNetwork {
			fmt.Fprintf(w, "  %-36s %-30s on the host's network, which NetworkPolicies do not govern\n", p.kind+" "+p.name, p.owner)
			continue
		}
		var names []string
		ingress, egress := false, false
		for _, pol := range policies {
			if pol.own() && pol.selects(p.labels) {
				names = append(names, pol.name)
				ingress, egress = ingress || pol.has("Ingress"), egress || pol.has("Egress")
			}
		}
		where := Finding{Pod: p.kind + " " + p.name + " (" + p.owner + ")"}
		if release, ok := strings.CutPrefix(p.owner, "release "); ok {
			where = Finding{Release: release, Pod: p.kind + " " + p.name}
		}
		switch {
		case len(names) == 0:
			out = append(out, with(where, fmt.Sprintf("no NetworkPolicy of its own in %s selects this pod (labels %v): list what reaches it and what it reaches in workloads/netpol_system.go", systemNamespace, p.labels)))
		case !ingress || !egress:
			out = append(out, with(where, fmt.Sprintf("its NetworkPolicies (%s) do not cover both directions: Ingress %v, Egress %v", strings.Join(names, ", "), ingress, egress)))
		}
		fmt.Fprintf(w, "  %-36s %-30s policies %s\n", p.kind+" "+p.name, p.owner, orNone(names))
		reaches, probes, unresolved := reachesOf(p, all, prometheus, network)
		for _, u := range unresolved {
			out = append(out, with(where, u))
		}
		reached := map[containerPort]bool{}
		for _, r := range reaches {
			reached[r.port] = true
			ok := admitted(policies, p, r, network)
			verdict := "admitted"
			if !ok {
				verdict = "NOT ADMITTED"
				who := r.from.what
				if r.unnamed {
					who = "anyone (" + r.from.what + ")"
				}
				out = append(out, with(where, fmt.Sprintf("port %s of container %s is reached by %s through %s, but no ingress rule of a NetworkPolicy selecting the pod admits it", r.port, r.port.container, who, r.via)))
			}
			fmt.Fprintf(w, "      %-9s from %s, through %s: %s\n", r.port, r.from.what, r.via, verdict)
		}
		for _, c := range containerPorts(p.spec) {
			switch {
			case reached[c]:
			case slices.Contains(probes, c):
				fmt.Fprintf(w, "      %-9s the kubelet's probe, from the pod's own node (not policed)\n", c)
			default:
				fmt.Fprintf(w, "      %-9s reached by nobody here: may stay closed\n", c)
			}
		}
	}
	fmt.Fprintln(w)
	return out
}

func with(f Finding, problem string) Finding {
	f.Problem = problem
	return f
}

// systemPods are the pod templates of kube-system, in the order they were read.
func systemPods(all []owned) []systemPod {
	var out []systemPod
	for _, o := range all {
		if o.namespace != systemNamespace {
			continue
		}
		kind := str(o.obj, "kind")
		var tpl map[string]any
		switch kind {
		case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job":
			tpl = dig(o.obj, "spec", "template")
		case "CronJob":
			tpl = dig(o.obj, "spec", "jobTemplate", "spec", "template")
		case "Pod":
			tpl = o.obj
		default:
			continue
		}
		spec := dig(tpl, "spec")
		host, _ := spec["hostNetwork"].(bool)
		out = append(out, systemPod{owner: o.owner, kind: kind, name: str(dig(o.obj, "metadata"), "name"),
			labels: strMap(dig(tpl, "metadata")["labels"]), hostNetwork: host, spec: spec})
	}
	return out
}

// prometheusPods are the pods the Prometheus operator makes of each Prometheus resource: its
// selector labels (prometheus-operator v0.86.2 pkg/prometheus/server/operator.go,
// makeSelectorLabels, and the shard label of statefulset.go) and spec.podMetadata's labels.
func prometheusPods(all []owned) []podIdentity {
	var out []podIdentity
	for _, o := range all {
		if str(o.obj, "kind") != "Prometheus" {
			continue
		}
		name := str(dig(o.obj, "metadata"), "name")
		labels := strMap(dig(o.obj, "spec", "podMetadata")["labels"])
		for k, v := range map[string]string{
			"app.kubernetes.io/managed-by": "prometheus-operator", "app.kubernetes.io/name": "prometheus",
			"app.kubernetes.io/instance": name, "operator.prometheus.io/name": name, "prometheus": name,
			"operator.prometheus.io/shard": "0",
		} {
			labels[k] = v
		}
		out = append(out, podIdentity{o.namespace, labels})
	}
	return out
}

func containerPorts(spec map[string]any) []containerPort {
	var out []containerPort
	for _, c := range append(list(spec, "containers"), list(spec, "initContainers")...) {
		for _, p := range list(c, "ports") {
			proto := str(p, "protocol")
			if proto == "" {
				proto = "TCP"
			}
			out = append(out, containerPort{container: str(c, "name"), name: str(p, "name"), protocol: proto, number: intOr(p["containerPort"], 0)})
		}
	}
	return out
}

// resolvePort finds the container port a Service's targetPort, a monitor's port or a probe's
// port names: a number (declared or not: a probe may use an undeclared one) or a port's name.
func resolvePort(spec map[string]any, target any, protocol string) (containerPort, bool) {
	ports := containerPorts(spec)
	if name, ok := target.(string); ok {
		for _, p := range ports {
			if p.name == name && p.protocol == protocol {
				return p, true
			}
		}
		return containerPort{}, false
	}
	n := intOr(target, 0)
	if n == 0 {
		return containerPort{}, false
	}
	for _, p := range ports {
		if p.number == n && p.protocol == protocol {
			return p, true
		}
	}
	return containerPort{number: n, protocol: protocol}, true
}

// reachesOf lists who reaches which port of the pod, the ports its probes use, and what could
// not be resolved (a Service's target port the pod does not have, a selector with expressions).
func reachesOf(p systemPod, all []owned, prometheus []podIdentity, network clusterNetwork) (reaches []reach, probes []containerPort, unresolved []string) {
	apiServer := source{what: "the API server (the master's address or its tunnel address)",
		addrs: []netip.Prefix{netip.PrefixFrom(network.master, 32), network.pods}}
	for _, c := range append(list(p.spec, "containers"), list(p.spec, "initContainers")...) {
		for _, probe := range []string{"livenessProbe", "readinessProbe", "startupProbe"} {
			for _, handler := range []string{"httpGet", "tcpSocket", "grpc"} {
				if h := dig(c, probe, handler); len(h) > 0 {
					if port, ok := resolvePort(p.spec, h["port"], "TCP"); ok {
						probes = append(probes, port)
					}
				}
			}
		}
	}
	// callers maps "namespace/service" to who calls it and through what.
	type caller struct {
		from source
		via  string
		port int
	}
	callers := map[string][]caller{}
	for _, o := range all {
		kind, name := str(o.obj, "kind"), str(dig(o.obj, "metadata"), "name")
		switch kind {
		case "APIService":
			svc := dig(o.obj, "spec", "service")
			if len(svc) > 0 {
				callers[str(svc, "namespace")+"/"+str(svc, "name")] = append(callers[str(svc, "namespace")+"/"+str(svc, "name")],
					caller{apiServer, "APIService " + name, intOr(svc["port"], 443)})
			}
		case "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration":
			for _, wh := range list(o.obj, "webhooks") {
				svc := dig(wh, "clientConfig", "service")
				if len(svc) > 0 {
					key := str(svc, "namespace") + "/" + str(svc, "name")
					callers[key] = append(callers[key], caller{apiServer, kind + " " + name + " (" + str(wh, "name") + ")", intOr(svc["port"], 443)})
				}
			}
		}
	}
	for _, svc := range all {
		if str(svc.obj, "kind") != "Service" || svc.namespace != systemNamespace {
			continue
		}
		sel := strMap(dig(svc.obj, "spec")["selector"])
		if len(sel) == 0 || !subset(sel, p.labels) {
			continue
		}
		name := str(dig(svc.obj, "metadata"), "name")
		for _, sp := range list(dig(svc.obj, "spec"), "ports") {
			proto := str(sp, "protocol")
			if proto == "" {
				proto = "TCP"
			}
			target := sp["targetPort"]
			if target == nil {
				target = sp["port"]
			}
			port, ok := resolvePort(p.spec, target, proto)
			if !ok {
				unresolved = append(unresolved, fmt.Sprintf("Service %s/%s sends port %v to target port %v, which the pod does not declare", systemNamespace, name, sp["port"], target))
				continue
			}
			via := "Service " + name
			named := false
			for _, c := range callers[systemNamespace+"/"+name] {
				if c.port == intOr(sp["port"], 0) {
					reaches, named = append(reaches, reach{port, c.from, c.via + " -> " + via, false}), true
				}
			}
			if name == clusterDNSService && svc.owner == "kubeadm" && port.number == 53 {
				reaches = append(reaches,
					reach{port, source{what: "every pod of every namespace", everyPod: true}, "the cluster's DNS, " + via, false},
					reach{port, source{what: "the nodes (pods on the host's network; the master's address or its tunnel address)",
						addrs: []netip.Prefix{netip.PrefixFrom(network.master, 32), network.pods}}, "the cluster's DNS, " + via, false})
				named = true
			}
			for _, sm := range all {
				if str(sm.obj, "kind") != "ServiceMonitor" || !monitors(sm, systemNamespace) {
					continue
				}
				smSel := dig(sm.obj, "spec", "selector")
				if _, exprs := smSel["matchExpressions"]; exprs {
					unresolved = append(unresolved, fmt.Sprintf("ServiceMonitor %s/%s selects Services with matchExpressions, which this check cannot evaluate", sm.namespace, str(dig(sm.obj, "metadata"), "name")))
					continue
				}
				if !subset(strMap(smSel["matchLabels"]), strMap(dig(svc.obj, "metadata")["labels"])) {
					continue
				}
				for _, ep := range list(dig(sm.obj, "spec"), "endpoints") {
					if (ep["port"] != nil && ep["port"] == sp["name"]) || (ep["targetPort"] != nil && fmt.Sprint(ep["targetPort"]) == fmt.Sprint(target)) {
						for _, prom := range prometheus {
							reaches, named = append(reaches, reach{port, source{what: "Prometheus " + prom.namespace + "/" + prom.labels["prometheus"], pod: &prom},
								"ServiceMonitor " + sm.namespace + "/" + str(dig(sm.obj, "metadata"), "name") + " -> " + via, false}), true
						}
					}
				}
			}
			if !named {
				reaches = append(reaches, reach{port, source{what: "whoever uses it"}, via, true})
			}
		}
	}
	for _, pm := range all {
		if str(pm.obj, "kind") != "PodMonitor" || !monitors(pm, systemNamespace) {
			continue
		}
		if !subset(strMap(dig(pm.obj, "spec", "selector")["matchLabels"]), p.labels) {
			continue
		}
		for _, ep := range list(dig(pm.obj, "spec"), "podMetricsEndpoints") {
			target := ep["port"]
			if target == nil {
				target = ep["portNumber"]
			}
			port, ok := resolvePort(p.spec, target, "TCP")
			if !ok {
				unresolved = append(unresolved, fmt.Sprintf("PodMonitor %s/%s scrapes port %v, which the pod does not declare", pm.namespace, str(dig(pm.obj, "metadata"), "name"), target))
				continue
			}
			for _, prom := range prometheus {
				reaches = append(reaches, reach{port, source{what: "Prometheus " + prom.namespace + "/" + prom.labels["prometheus"], pod: &prom},
					"PodMonitor " + pm.namespace + "/" + str(dig(pm.obj, "metadata"), "name"), false})
			}
		}
	}
	return reaches, probes, unresolved
}

// monitors reports whether a ServiceMonitor or PodMonitor looks at namespace ns: its
// namespaceSelector's any or matchNames, or its own namespace when it has none.
func monitors(m owned, ns string) bool {
	sel := dig(m.obj, "spec", "namespaceSelector")
	if all, _ := sel["any"].(bool); all {
		return true
	}
	if names := strs(sel["matchNames"]); len(names) > 0 {
		return slices.Contains(names, ns)
	}
	return m.namespace == ns
}

// admitted reports whether an ingress rule of a policy selecting the pod admits the source on
// the port.
func admitted(policies []netPolicy, p systemPod, r reach, network clusterNetwork) bool {
	for _, pol := range policies {
		if !pol.has("Ingress") || !pol.selects(p.labels) {
			continue
		}
		for _, rule := range list(pol.spec, "ingress") {
			if !portAdmitted(rule["ports"], r.port) {
				continue
			}
			if r.unnamed || peersAdmit(pol.namespace, rule["from"], r.from, network) {
				return true
			}
		}
	}
	return false
}

// portAdmitted reports whether a rule's ports (none: every port) take the container port, by
// number, range or name.
func portAdmitted(raw any, port containerPort) bool {
	ports, _ := raw.([]any)
	if len(ports) == 0 {
		return true
	}
	for _, e := range ports {
		m, _ := e.(map[string]any)
		proto := str(m, "protocol")
		if proto == "" {
			proto = "TCP"
		}
		if proto != port.protocol {
			continue
		}
		switch v := m["port"].(type) {
		case nil:
			return true
		case string:
			if v == port.name {
				return true
			}
		default:
			from := intOr(v, -1)
			if to := intOr(m["endPort"], from); port.number >= from && port.number <= to {
				return true
			}
		}
	}
	return false
}

// peersAdmit reports whether a rule's peers (none: everyone) admit every address of the source,
// or its pods. A pod's own address is somewhere in the pod network, so an address block admits
// pods only when it holds the whole pod network.
func peersAdmit(policyNS string, raw any, s source, network clusterNetwork) bool {
	peers, _ := raw.([]any)
	if len(peers) == 0 {
		return true
	}
	blockHolds := func(peer map[string]any, want netip.Prefix) bool {
		block := dig(peer, "ipBlock")
		cidr, err := netip.ParsePrefix(str(block, "cidr"))
		if err != nil || cidr.Bits() > want.Bits() || !cidr.Contains(want.Addr()) {
			return false
		}
		for _, e := range strs(block["except"]) {
			if ex, err := netip.ParsePrefix(e); err == nil && ex.Overlaps(want) {
				return false
			}
		}
		return true
	}
	anyPeer := func(f func(map[string]any) bool) bool {
		for _, e := range peers {
			if m, ok := e.(map[string]any); ok && f(m) {
				return true
			}
		}
		return false
	}
	switch {
	case len(s.addrs) > 0:
		for _, a := range s.addrs {
			if !anyPeer(func(m map[string]any) bool { return blockHolds(m, a) }) {
				return false
			}
		}
		return true
	case s.everyPod:
		return anyPeer(func(m map[string]any) bool {
			if len(dig(m, "ipBlock")) > 0 {
				return blockHolds(m, network.pods)
			}
			ns, hasNS := m["namespaceSelector"].(map[string]any)
			pods, hasPods := m["podSelector"].(map[string]any)
			return hasNS && len(ns) == 0 && (!hasPods || len(pods) == 0)
		})
	case s.pod != nil:
		return anyPeer(func(m map[string]any) bool {
			if len(dig(m, "ipBlock")) > 0 {
				return blockHolds(m, network.pods)
			}
			if ns, ok := m["namespaceSelector"].(map[string]any); ok {
				if _, exprs := ns["matchExpressions"]; exprs || !subset(strMap(ns["matchLabels"]), map[string]string{"kubernetes.io/metadata.name": s.pod.namespace}) {
					return false
				}
			} else if s.pod.namespace != policyNS {
				return false
			}
			if pods, ok := m["podSelector"].(map[string]any); ok {
				if _, exprs := pods["matchExpressions"]; exprs || !subset(strMap(pods["matchLabels"]), s.pod.labels) {
					return false
				}
			}
			return true
		})
	}
	return false
}

// subset reports whether every label of sel is among labels.
func subset(sel, labels map[string]string) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}
