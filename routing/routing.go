// Package routing owns the one table both tiers read for the load balancer: which path goes to
// which Service, on which fixed NodePort, checked at which health path, and whether only the
// operators' networks may use it. The AWS tier builds the target groups and listener rules from
// it; the workloads tier gives the Services (and the charts' Services) those NodePorts and binds
// each target group to its Service. Declaring the ports here, once, is what lets the AWS tier
// create the ALB before the cluster exists.
package routing

import "fmt"

// Namespaces the routed Services live in (the workloads tier creates them).
const (
	NamespaceApp        = "app"
	NamespaceArgoCD     = "argocd"
	NamespaceMonitoring = "monitoring"
)

// Route is one path of the ALB and the Service behind it.
type Route struct {
	// Name is short and unique: it goes into target group names (32 characters at most).
	Name string
	// Path is the path prefix as the spec writes it ("/" is the default backend).
	Path string
	// Namespace and Service name the Kubernetes Service the route's target group is bound to.
	Namespace, Service string
	// ServicePort is the Service's port (what the TargetGroupBinding refers to).
	ServicePort int
	// NodePort is the fixed node port of the Service, the target group's port.
	NodePort int
	// HealthPath is what the target group's health check requests.
	HealthPath string
	// AdminOnly routes answer only requests from the stack's adminCidrs.
	AdminOnly bool
	// Priority is the listener priority of the route's rule (an admin-only route's further
	// allow rules and its 403 take the next ones, up to Priority+PrioritySpan-1). It is fixed
	// per route, never derived from the route's place in the list: the ALB refuses two rules
	// with one priority even for a moment, and Pulumi changes a priority in place before it
	// deletes a removed rule, so numbering by position would fail any up that adds or removes
	// a route before the last.
	Priority int
}

// PrioritySpan is how many listener priorities each route owns from its Priority on.
const PrioritySpan = 100

// NodePortMin and NodePortMax bound Kubernetes' default NodePort range (kube-apiserver
// --service-node-port-range 30000-32767); the node security group opens it to the ALB only.
const (
	NodePortMin = 30000
	NodePortMax = 32767
)

// Routes are the ALB's paths in the order the listener evaluates them (ARCHITECTURE.md section
// 3): the operator tools first, then the API, then / as the default backend in the last span of
// priorities an ALB accepts (up to 50000). The NodePorts and priorities are fixed here so that
// the target groups can be created before any Service exists; the routes are 1000 apart, so a
// new route fits between any two with a priority of its own and moves no other. A route's Name
// names its target group, rule and binding resources: renaming one replaces them, and the new
// rule cannot take the priority the old one holds until the end of the up.
func Routes() []Route {
	return []Route{
		{Name: "argocd", Path: "/argocd", Namespace: NamespaceArgoCD, Service: "argocd-server", ServicePort: 80, NodePort: 30080, HealthPath: "/argocd/", AdminOnly: true, Priority: 1000},
		{Name: "grafana", Path: "/grafana", Namespace: NamespaceMonitoring, Service: "kube-prometheus-stack-grafana", ServicePort: 80, NodePort: 30081, HealthPath: "/grafana/api/health", AdminOnly: true, Priority: 2000},
		{Name: "auth", Path: "/api/v1/auth", Namespace: NamespaceApp, Service: "auth", ServicePort: 80, NodePort: 30082, HealthPath: "/health", Priority: 3000},
		{Name: "users", Path: "/api/v1/users", Namespace: NamespaceApp, Service: "users", ServicePort: 80, NodePort: 30083, HealthPath: "/health", Priority: 4000},
		{Name: "waste", Path: "/api/v1/waste", Namespace: NamespaceApp, Service: "waste", ServicePort: 80, NodePort: 30084, HealthPath: "/health", Priority: 5000},
		{Name: "default", Path: "/", Namespace: NamespaceApp, Service: "default-backend", ServicePort: 80, NodePort: 30085, HealthPath: "/", Priority: 49900},
	}
}

// For returns the route of a Service; the Services and the routes are declared together, so a
// missing one is a programming error.
func For(service string) Route {
	for _, r := range Routes() {
		if r.Service == service {
			return r
		}
	}
	panic(fmt.Sprintf("routing: no route to Service %q", service))
}

// PathPatterns are the ALB path-pattern values of a route prefix, matching what a Kubernetes
// Ingress path of type Prefix matched: the path itself and everything below it.
func (r Route) PathPatterns() []string {
	if r.Path == "/" {
		return []string{"/*"}
	}
	return []string{r.Path, r.Path + "/*"}
}

// Hostnames point at the ALB, relative to the domain ("" is the apex).
var Hostnames = []string{"", "www", "api", "argocd", "grafana"}
