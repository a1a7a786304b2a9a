package tests

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"github.com/waste-coach/infra/infra"
	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/routing"
)

const (
	typeALB      = "aws:lb/loadBalancer:LoadBalancer"
	typeTG       = "aws:lb/targetGroup:TargetGroup"
	typeListener = "aws:lb/listener:Listener"
	typeRule     = "aws:lb/listenerRule:ListenerRule"
	typeTGB      = "kubernetes:elbv2.k8s.aws/v1beta1:TargetGroupBinding"
)

func TestALBIsInternetFacingInItsOwnGroupWithRedirectAndTLS13(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		albs := r.OfType(typeALB)
		if len(albs) != 1 {
			t.Fatalf("%d load balancers, want the stack's one ALB", len(albs))
		}
		alb := albs[0]
		if str(alb, "internal") != "false" || str(alb, "loadBalancerType") != "application" {
			t.Errorf("ALB internal=%s type=%s, want an internet-facing application load balancer", str(alb, "internal"), str(alb, "loadBalancerType"))
		}
		if n := len(prop(alb, "subnets").ArrayValue()); n != 3 {
			t.Errorf("ALB spans %d subnets, want the three public subnets", n)
		}
		if !r.DependsOn(alb, must(t, r, "aws:ec2/securityGroup:SecurityGroup", "sesacthon-sg-alb")) {
			t.Errorf("ALB is not in its own security group sesacthon-sg-alb")
		}
		listeners := map[string]*mocks.Resource{}
		for _, l := range r.OfType(typeListener) {
			listeners[str(l, "port")] = l
		}
		http, https := listeners["80"], listeners["443"]
		if http == nil || https == nil {
			t.Fatalf("listeners on ports %v, want 80 and 443", listeners)
		}
		if str(http, "defaultActions", 0, "type") != "redirect" || str(http, "defaultActions", 0, "redirect", "protocol") != "HTTPS" ||
			str(http, "defaultActions", 0, "redirect", "port") != "443" || str(http, "defaultActions", 0, "redirect", "statusCode") != "HTTP_301" {
			t.Errorf("port 80 does not redirect to HTTPS 443 permanently: %v", prop(http, "defaultActions"))
		}
		if str(https, "protocol") != "HTTPS" || str(https, "sslPolicy") != "ELBSecurityPolicy-TLS13-1-2-2021-06" {
			t.Errorf("port 443 listener protocol=%s policy=%s, want HTTPS with the TLS 1.3 policy", str(https, "protocol"), str(https, "sslPolicy"))
		}
		// The validated certificate, not the bare one: the listener must wait for validation.
		if !r.DependsOn(https, r.OfType("aws:acm/certificateValidation:CertificateValidation")[0]) || !strings.HasPrefix(str(https, "certificateArn"), "arn:aws:acm:") {
			t.Errorf("HTTPS listener certificate %q is not the validated certificate", str(https, "certificateArn"))
		}
	})
}

func TestALBSecurityGroupOpensOnlyWebPortsAndReachesOnlyNodePorts(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		nodes := must(t, r, "aws:ec2/securityGroup:SecurityGroup", "sesacthon-sg-nodes")
		var ports []string
		for _, rule := range r.OfType("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule") {
			if strings.HasPrefix(rule.Name, "sesacthon-sg-alb-") {
				ports = append(ports, str(rule, "fromPort")+"-"+str(rule, "toPort")+" from "+str(rule, "cidrIpv4"))
			}
		}
		slices.Sort(ports)
		if want := []string{"443-443 from 0.0.0.0/0", "80-80 from 0.0.0.0/0"}; !slices.Equal(ports, want) {
			t.Errorf("ALB ingress %v, want %v", ports, want)
		}
		var egress []string
		for _, rule := range r.OfType("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule") {
			if !strings.HasPrefix(rule.Name, "sesacthon-sg-alb-") {
				continue
			}
			egress = append(egress, rule.Name)
			if str(rule, "cidrIpv4") != "" || !r.DependsOn(rule, nodes) || str(rule, "fromPort") != "30000" || str(rule, "toPort") != "32767" {
				t.Errorf("ALB egress %s goes to %q ports %s-%s; it may reach only the nodes' group on the NodePort range",
					rule.Name, str(rule, "cidrIpv4"), str(rule, "fromPort"), str(rule, "toPort"))
			}
		}
		if len(egress) != 1 {
			t.Errorf("ALB egress rules %v, want exactly the one to the NodePorts", egress)
		}
	})
}

func TestOneInstanceTargetGroupPerRoutedServiceOnItsNodePort(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		tgs := r.OfType(typeTG)
		if len(tgs) != len(routing.Routes()) {
			t.Fatalf("%d target groups, want one per route (%d)", len(tgs), len(routing.Routes()))
		}
		for _, route := range routing.Routes() {
			tg := must(t, r, typeTG, "sesacthon-alb-"+route.Name)
			if str(tg, "targetType") != "instance" || str(tg, "protocol") != "HTTP" {
				t.Errorf("target group %s: type %s protocol %s, want instance targets over HTTP (pod IPs are not routable)", route.Name, str(tg, "targetType"), str(tg, "protocol"))
			}
			if got := str(tg, "port"); got != fmt.Sprint(route.NodePort) {
				t.Errorf("target group %s port %s, want the Service's NodePort %d", route.Name, got, route.NodePort)
			}
			if got := str(tg, "healthCheck", "path"); got != route.HealthPath {
				t.Errorf("target group %s health check %s, want %s", route.Name, got, route.HealthPath)
			}
			if len(str(tg, "name")) > 32 {
				t.Errorf("target group name %q is longer than AWS's 32 characters", str(tg, "name"))
			}
		}
		// The Services the groups point at are NodePort Services on exactly those ports.
		for _, route := range routing.Routes() {
			if route.Namespace != routing.NamespaceApp {
				continue // chart Services: their NodePort is in the chart values, checked below
			}
			svc := objects(r, "Service")[route.Namespace+"/"+route.Service]
			if at(svc, "spec", "type") != "NodePort" || fmt.Sprint(at(svc, "spec", "ports", 0, "nodePort")) != fmt.Sprint(route.NodePort) {
				t.Errorf("Service %s/%s is not a NodePort Service on %d: %v", route.Namespace, route.Service, route.NodePort, at(svc, "spec"))
			}
		}
		values := map[string]string{}
		for _, rel := range r.OfType("kubernetes:helm.sh/v3:Release") {
			values[str(rel, "name")] = str(rel, "values", "server", "service", "nodePortHttp") + str(rel, "values", "grafana", "service", "nodePort")
		}
		if values["argo-cd"] != fmt.Sprint(routing.For("argocd-server").NodePort) || values["kube-prometheus-stack"] != fmt.Sprint(routing.For("kube-prometheus-stack-grafana").NodePort) {
			t.Errorf("chart NodePorts argo-cd=%s grafana=%s do not match the routes' target groups", values["argo-cd"], values["kube-prometheus-stack"])
		}
	})
}

func TestListenerRulesAreTheSpecRoutesInOrderWithAdminToolsRestricted(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		rules := r.OfType(typeRule)
		slices.SortFunc(rules, func(a, b *mocks.Resource) int {
			return int(prop(a, "priority").NumberValue() - prop(b, "priority").NumberValue())
		})
		admin := fmt.Sprint(prefixes(r))
		var forwards []string
		for _, rule := range rules {
			paths := fmt.Sprint(prop(rule, "conditions", 0, "pathPattern", "values").Mappable())
			sources := prop(rule, "conditions", 1, "sourceIp", "values")
			action := str(rule, "actions", 0, "type")
			switch {
			case action == "forward":
				forwards = append(forwards, paths)
				admins := strings.Contains(paths, "/argocd") || strings.Contains(paths, "/grafana")
				if admins && fmt.Sprint(sources.Mappable()) != admin {
					t.Errorf("rule %s forwards %s from %v; the admin tools must be limited to adminCidrs %s", rule.Name, paths, sources.Mappable(), admin)
				}
				if !admins && !sources.IsNull() {
					t.Errorf("rule %s limits the public route %s by source", rule.Name, paths)
				}
			case action == "fixed-response" && str(rule, "actions", 0, "fixedResponse", "statusCode") == "403":
				if !strings.Contains(paths, "/argocd") && !strings.Contains(paths, "/grafana") {
					t.Errorf("rule %s refuses the public path %s", rule.Name, paths)
				}
			default:
				t.Errorf("rule %s has an unexpected action %s", rule.Name, action)
			}
		}
		want := []string{"[/argocd /argocd/*]", "[/grafana /grafana/*]", "[/api/v1/auth /api/v1/auth/*]", "[/api/v1/users /api/v1/users/*]", "[/api/v1/waste /api/v1/waste/*]", "[/*]"}
		if !slices.Equal(forwards, want) {
			t.Errorf("forward rules in priority order %v, want the spec's routes %v", forwards, want)
		}
		// Each restricted route's 403 comes after its allow rule and before the next route.
		prio := map[string]float64{}
		for _, rule := range rules {
			prio[rule.Name] = prop(rule, "priority").NumberValue()
		}
		for _, tool := range []string{"argocd", "grafana"} {
			allow, deny := prio["sesacthon-alb-rule-"+tool], prio["sesacthon-alb-rule-"+tool+"-deny"]
			if deny == 0 || deny <= allow || deny >= prio["sesacthon-alb-rule-auth"] {
				t.Errorf("%s: allow at %v, 403 at %v; the 403 must follow the allow rule and precede the API routes", tool, allow, deny)
			}
		}
		https := r.Named(typeListener, "sesacthon-alb-https")
		if str(https, "defaultActions", 0, "type") != "fixed-response" || str(https, "defaultActions", 0, "fixedResponse", "statusCode") != "404" {
			t.Errorf("HTTPS default action %v, want a fixed 404 for what no rule matches", prop(https, "defaultActions"))
		}
	})
}

func prefixes(r *offline.Result) []string {
	var out []string
	for _, p := range r.Config.AdminCIDRs {
		out = append(out, p.String())
	}
	return out
}

// TestRulesKeepTheirRoutesFixedPriorities: the ALB refuses a priority that another rule holds,
// and Pulumi updates a rule's priority in place before it deletes a removed rule, so an up that
// removes a route (or adds one before the last) fails if the other rules move. Each declared rule
// has its route's own priority (the 403 the last of the route's span), and removing or inserting
// a route changes no other rule's.
func TestRulesKeepTheirRoutesFixedPriorities(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		for _, route := range routing.Routes() {
			rule := must(t, r, typeRule, "sesacthon-alb-rule-"+route.Name)
			if got := int(prop(rule, "priority").NumberValue()); got != route.Priority {
				t.Errorf("rule %s at priority %d, want its route's fixed %d", rule.Name, got, route.Priority)
			}
			if route.AdminOnly {
				deny := must(t, r, typeRule, "sesacthon-alb-rule-"+route.Name+"-deny")
				if got, want := int(prop(deny, "priority").NumberValue()), route.Priority+routing.PrioritySpan-1; got != want {
					t.Errorf("rule %s at priority %d, want the last of its route's span, %d", deny.Name, got, want)
				}
			}
		}
	})

	r := run(t, "prod")
	priorities := func(routes []routing.Route) map[string]int {
		out := map[string]int{}
		for _, rule := range infra.ListenerRules(r.Config, routes) {
			out[rule.Name] = rule.Priority
		}
		return out
	}
	ruleOf := func(rule string, route routing.Route) bool {
		return rule == route.Name || strings.HasPrefix(rule, route.Name+"-")
	}
	all := priorities(routing.Routes())
	for i, removed := range routing.Routes() {
		got := priorities(slices.Delete(slices.Clone(routing.Routes()), i, i+1))
		for name, p := range all {
			q, kept := got[name]
			switch {
			case ruleOf(name, removed) && kept:
				t.Errorf("without route %s, its rule %s is still declared", removed.Name, name)
			case !ruleOf(name, removed) && q != p:
				t.Errorf("without route %s, rule %s moves from priority %d to %d", removed.Name, name, p, q)
			}
		}
	}
	auth := slices.IndexFunc(routing.Routes(), func(x routing.Route) bool { return x.Name == "auth" })
	extra := routing.Route{Name: "extra", Path: "/api/v1/extra", Namespace: routing.NamespaceApp, Service: "extra",
		ServicePort: 80, NodePort: 30099, HealthPath: "/health", Priority: routing.For("auth").Priority + 500}
	got := priorities(slices.Insert(slices.Clone(routing.Routes()), auth+1, extra))
	for name, p := range all {
		if got[name] != p {
			t.Errorf("with a route inserted after auth, rule %s moves from priority %d to %d", name, p, got[name])
		}
	}
	if got["extra"] != extra.Priority {
		t.Errorf("the inserted route's rule is at %d, want its own %d", got["extra"], extra.Priority)
	}
}

func TestManyAdminRangesAreSplitWithinTheRuleConditionLimit(t *testing.T) {
	r := run(t, "prod")
	cfg := *r.Config
	cfg.AdminCIDRs = append(slices.Clone(cfg.AdminCIDRs), cfg.AdminCIDRs...)
	cfg.AdminCIDRs = append(cfg.AdminCIDRs, cfg.AdminCIDRs[0]) // five ranges
	seen := map[int]bool{}
	allowed := 0
	for _, rule := range infra.ListenerRules(&cfg, routing.Routes()) {
		if seen[rule.Priority] {
			t.Errorf("two rules share priority %d", rule.Priority)
		}
		seen[rule.Priority] = true
		if n := len(rule.Paths) + len(rule.SourceIPs); n > 5 {
			t.Errorf("rule %s has %d condition values; the ALB accepts 5", rule.Name, n)
		}
		if rule.Route != nil && rule.Route.Name == "argocd" {
			allowed += len(rule.SourceIPs)
		}
	}
	if allowed != 5 {
		t.Errorf("Argo CD is allowed from %d ranges, want all 5", allowed)
	}
}

func TestALBAndTargetGroupNamesFitAndDifferPerStack(t *testing.T) {
	names := map[string]string{}
	for _, s := range stacks {
		r := run(t, s)
		for _, res := range append(r.OfType(typeALB), r.OfType(typeTG)...) {
			n := str(res, "name")
			if len(n) > 32 || n == "" {
				t.Errorf("%s %s: name %q is empty or longer than 32 characters", s, res.Name, n)
			}
			if other, dup := names[n]; dup {
				t.Errorf("name %q is used by %s and by %s: prod and dev would collide in one account", n, other, s+"/"+res.Name)
			}
			names[n] = s + "/" + res.Name
		}
	}
	// The longest cluster name config accepts still yields valid, distinct names.
	long := strings.Repeat("c", 32) + "-alb"
	a, b := infra.TargetGroupName(long, "prod", routing.For("auth")), infra.TargetGroupName(long, "dev", routing.For("auth"))
	if len(a) > 32 || len(b) > 32 || a == b || strings.HasSuffix(a, "-") {
		t.Errorf("long names %q and %q: want at most 32 characters and different per stack", a, b)
	}
}

func TestEveryTargetGroupHasABindingToItsService(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		tgbs := objects(r, "TargetGroupBinding")
		if len(tgbs) != len(routing.Routes()) {
			t.Errorf("%d bindings, want one per target group (%d)", len(tgbs), len(routing.Routes()))
		}
		for _, route := range routing.Routes() {
			tgb := tgbs[route.Namespace+"/"+route.Service]
			tg := must(t, r, typeTG, "sesacthon-alb-"+route.Name)
			if at(tgb, "spec", "serviceRef", "name") != route.Service || fmt.Sprint(at(tgb, "spec", "serviceRef", "port")) != fmt.Sprint(route.ServicePort) {
				t.Errorf("binding %s/%s refers to %v, want Service %s port %d", route.Namespace, route.Service, at(tgb, "spec", "serviceRef"), route.Service, route.ServicePort)
			}
			if arn := tg.Outputs["arn"].StringValue(); at(tgb, "spec", "targetType") != "instance" || fmt.Sprint(at(tgb, "spec", "targetGroupARN")) != arn {
				t.Errorf("binding %s/%s targets %v (%v), want instance targets in %s", route.Namespace, route.Service, at(tgb, "spec", "targetGroupARN"), at(tgb, "spec", "targetType"), arn)
			}
		}
		if n := len(r.OfType("kubernetes:networking.k8s.io/v1:Ingress")); n != 0 {
			t.Errorf("%d Ingress objects: the program declares the ALB, an Ingress would make the controller create a second one", n)
		}
	})
}

// TestBindingsRegisterOnlyNodesThatServeTheirRoute: a Service with traffic policy Local answers
// on its NodePort only on the node that runs its pods. The controller registers every node but
// the control plane unless the binding selects nodes, and the others would then fail the health
// check for good: an UnHealthyHostCount that is never zero, and an ALB that, once the one good
// node fails, fails open to nodes that drop the traffic. So each Local route's binding selects
// exactly its pods' node; a Cluster route would be reachable through any node and select none
// (none is left: Grafana moved off the master, which the controller never registers).
func TestBindingsRegisterOnlyNodesThatServeTheirRoute(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		tgbs, services, deployments := objects(r, "TargetGroupBinding"), objects(r, "Service"), objects(r, "Deployment")
		values := map[string]*mocks.Resource{}
		for _, rel := range r.OfType("kubernetes:helm.sh/v3:Release") {
			values[str(rel, "name")] = rel
		}
		for _, route := range routing.Routes() {
			key := route.Namespace + "/" + route.Service
			var policy string
			var podNodes any
			switch route.Name {
			case "argocd":
				argo := values["argo-cd"]
				policy = str(argo, "values", "server", "service", "externalTrafficPolicy")
				podNodes = prop(argo, "values", "global", "nodeSelector").Mappable()
			case "grafana":
				policy = str(values["kube-prometheus-stack"], "values", "grafana", "service", "externalTrafficPolicy")
				podNodes = prop(values["kube-prometheus-stack"], "values", "grafana", "nodeSelector").Mappable()
			default:
				policy = fmt.Sprint(at(services[key], "spec", "externalTrafficPolicy"))
				podNodes = at(deployments[key], "spec", "template", "spec", "nodeSelector")
			}
			selected := at(tgbs[key], "spec", "nodeSelector", "matchLabels")
			if policy != "Local" {
				if selected != nil {
					t.Errorf("binding %s selects nodes %v, but its Service (policy %q) answers on every node", key, selected, policy)
				}
				continue
			}
			if podNodes == nil || fmt.Sprint(selected) != fmt.Sprint(podNodes) {
				t.Errorf("binding %s registers nodes %v; its Local Service answers only on its pods' node %v", key, selected, podNodes)
			}
		}
	})
}

func TestAliasRecordsTargetTheALBResource(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		alb := r.OfType(typeALB)[0]
		var names []string
		for _, rec := range r.OfType("aws:route53/record:Record") {
			if !prop(rec, "aliases").IsArray() {
				continue
			}
			names = append(names, str(rec, "name"))
			if str(rec, "aliases", 0, "name") != alb.Outputs["dnsName"].StringValue() || str(rec, "aliases", 0, "zoneId") != alb.Outputs["zoneId"].StringValue() || !r.DependsOn(rec, alb) {
				t.Errorf("alias %s points at %s in zone %s, not at the ALB resource", str(rec, "name"), str(rec, "aliases", 0, "name"), str(rec, "aliases", 0, "zoneId"))
			}
		}
		slices.Sort(names)
		d := r.Config.Domain
		want := []string{d, "www." + d, "api." + d, "argocd." + d, "grafana." + d}
		if slices.Sort(want); !slices.Equal(names, want) {
			t.Errorf("alias records %v, want %v", names, want)
		}
	})
}

// TestNothingOfTheClusterIsOnTheALBsPath keeps the ALB and its records creatable beside the
// nodes: if any of them waited for a Kubernetes object or a cluster step, the deploy would again
// serialise the ALB after the cluster.
func TestNothingOfTheClusterIsOnTheALBsPath(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		byURN := map[string]*mocks.Resource{}
		for _, res := range r.Resources {
			byURN[res.URN] = res
		}
		for _, typ := range []string{typeALB, typeTG, typeListener, typeRule, "aws:route53/record:Record"} {
			for _, start := range r.OfType(typ) {
				seen := map[string]bool{}
				var walk func(res *mocks.Resource)
				walk = func(res *mocks.Resource) {
					deps := slices.Clone(res.Dependencies)
					if res.Provider != "" {
						deps = append(deps, res.Provider)
					}
					for _, urn := range deps {
						if seen[urn] {
							continue
						}
						seen[urn] = true
						dep := byURN[urn]
						if dep == nil {
							continue
						}
						parentType := string(resource.URN(dep.Parent).Type())
						if strings.HasPrefix(dep.Type, "kubernetes:") || strings.HasPrefix(dep.Type, "command:") ||
							strings.HasSuffix(parentType, ":Workloads") || strings.HasSuffix(parentType, ":Cluster") {
							t.Errorf("%s %s waits for %s %s of the cluster or workloads tier", start.Type, start.Name, dep.Type, dep.Name)
						}
						walk(dep)
					}
				}
				walk(start)
			}
		}
	})
}

// TestLoadBalancerControllerMayOnlyMoveThisStacksTargets: the load balancer controller's pod role
// may register and deregister nodes in every target group of its own stack's ALB, as AWS names
// them (the ARN AWS returns), including a group the program is replacing under a new name; and
// never in the other stack's groups in the same account. Every Allow statement of the role's
// policy counts, each action on its own.
func TestLoadBalancerControllerMayOnlyMoveThisStacksTargets(t *testing.T) {
	actions := []string{"elasticloadbalancing:RegisterTargets", "elasticloadbalancing:DeregisterTargets"}
	statements := map[string]policyDoc{}
	groups := map[string][]*mocks.Resource{}
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		doc := parsePolicy(t, must(t, r, "aws:iam/rolePolicy:RolePolicy", "sesacthon-pod-identity-"+infra.PodRoleLoadBalancer))
		for _, s := range doc.Statement {
			for _, a := range actions {
				if s.Effect == "Allow" && slices.Contains(s.Action, a) && len(s.Condition) == 0 {
					t.Errorf("the controller may %s in %v without a condition: any target group of the account", a, s.Resource)
				}
			}
		}
		statements[r.Stack], groups[r.Stack] = doc, r.OfType(typeTG)
		if len(groups[r.Stack]) != len(routing.Routes()) {
			t.Fatalf("%d target groups, want one per route (%d)", len(groups[r.Stack]), len(routing.Routes()))
		}
	})
	for stack, doc := range statements {
		for _, a := range actions {
			for _, tg := range groups[stack] {
				arn, tags := tg.Outputs["arn"].StringValue(), tagsOf(tg)
				if !allows(t, doc, iamRequest{action: a, arn: arn, resourceTags: tags}) {
					t.Errorf("%s: the controller may not %s in its own group %s (%s)", stack, a, str(tg, "name"), arn)
				}
				// The same group under another name (a NodePort changed): the binding being
				// deleted must still deregister from it.
				renamed := strings.Replace(arn, "/"+str(tg, "name")+"/", "/"+str(tg, "name")+"-old/", 1)
				if !allows(t, doc, iamRequest{action: a, arn: renamed, resourceTags: tags}) {
					t.Errorf("%s: the controller may not %s in %s once it is renamed (%s)", stack, a, str(tg, "name"), renamed)
				}
			}
			other := map[string]string{"prod": "dev", "dev": "prod"}[stack]
			for _, tg := range groups[other] {
				if allows(t, doc, iamRequest{action: a, arn: tg.Outputs["arn"].StringValue(), resourceTags: tagsOf(tg)}) {
					t.Errorf("%s's controller may %s in %s's group %s", stack, a, other, str(tg, "name"))
				}
			}
		}
	}
}

// iamRequest is one call as IAM authorises it: an action on one resource, with that resource's
// tags, the tags the call puts on what it creates, and the call's other condition keys.
type iamRequest struct {
	action, arn  string
	resourceTags map[string]string // aws:ResourceTag/<key>, and the service's own <service>:ResourceTag/<key>
	requestTags  map[string]string // aws:RequestTag/<key>
	context      map[string]string // any other key, such as ec2:CreateAction
}

// allows decides a request as IAM does with one identity policy: an explicit Deny wins, else an
// Allow whose action, resource and every condition match. Actions match without regard to case,
// ARNs with it. The conditions it knows are StringEquals, StringLike and Bool (a key the request
// does not carry never matches), and Null; it fails the test on any other operator, so that no
// condition is silently taken as met.
func allows(t *testing.T, doc policyDoc, req iamRequest) bool {
	t.Helper()
	allowed := false
	for _, s := range doc.Statement {
		if !statementMatches(t, s, req) {
			continue
		}
		if s.Effect == "Deny" {
			return false
		}
		allowed = allowed || s.Effect == "Allow"
	}
	return allowed
}

func statementMatches(t *testing.T, s policyStatement, req iamRequest) bool {
	t.Helper()
	if !slices.ContainsFunc(s.Action, func(p string) bool { return iamMatch(p, req.action) }) ||
		!slices.ContainsFunc(resources(s.Resource), func(p string) bool { return arnMatch(p, req.arn) }) {
		return false
	}
	for op, keys := range s.Condition {
		for key, want := range keys {
			got, ok := conditionValue(req, key)
			var match func(pattern string) bool
			switch op {
			case "StringEquals":
				match = func(v string) bool { return v == got }
			case "Bool":
				match = func(v string) bool { return strings.EqualFold(v, got) }
			case "StringLike": // with case, as ARNs compare
				match = func(p string) bool { return arnMatch(p, got) }
			case "Null": // "true": the request does not carry the key
				if !slices.Contains(resources(want), strconv.FormatBool(!ok)) {
					return false
				}
				continue
			default:
				t.Fatalf("condition %s on %s: the test evaluates only StringEquals, StringLike, Bool and Null", op, key)
			}
			if !ok || !slices.ContainsFunc(resources(want), match) {
				return false
			}
		}
	}
	return true
}

// conditionValue is the value a request carries for a condition key; key names compare without
// regard to case, as IAM compares them.
func conditionValue(req iamRequest, key string) (string, bool) {
	lower := strings.ToLower(key)
	for _, tags := range []struct {
		prefixes []string
		values   map[string]string
	}{
		{[]string{"aws:resourcetag/", "ec2:resourcetag/"}, req.resourceTags},
		{[]string{"aws:requesttag/"}, req.requestTags},
	} {
		for _, prefix := range tags.prefixes {
			if strings.HasPrefix(lower, prefix) {
				for k, v := range tags.values {
					if strings.EqualFold(k, key[len(prefix):]) {
						return v, true
					}
				}
				return "", false
			}
		}
	}
	for k, v := range req.context {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

func tagsOf(r *mocks.Resource) map[string]string {
	out := map[string]string{}
	if v := prop(r, "tags"); v.IsObject() {
		for k, t := range v.ObjectValue() {
			out[string(k)] = t.StringValue()
		}
	}
	return out
}
