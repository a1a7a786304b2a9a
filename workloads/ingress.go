package workloads

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/elb"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/route53"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	networkingv1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/networking/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// IngressGroup is the ALB ingress group: every Ingress in it shares one load balancer.
const IngressGroup = "waste-coach"

// Route is one path of the ALB, in the order the ALB evaluates them.
type Route struct {
	Namespace, Path, Service string
	Port                     int
	// HealthPath is what the ALB's target group checks.
	HealthPath string
}

// Routes are the ALB's paths: the operator tools first, then the API, then / as the default.
func Routes() []Route {
	return []Route{
		{NamespaceArgoCD, "/argocd", "argocd-server", 80, "/argocd/"},
		{NamespaceMonitoring, "/grafana", "kube-prometheus-stack-grafana", 80, "/grafana/api/health"},
		{NamespaceApp, "/api/v1/auth", "auth", 80, healthPath},
		{NamespaceApp, "/api/v1/users", "users", 80, healthPath},
		{NamespaceApp, "/api/v1/waste", "waste", 80, healthPath},
		{NamespaceApp, "/", defaultBackend, 80, "/"},
	}
}

// Hostnames that point at the ALB, relative to the domain ("" is the apex).
var Hostnames = []string{"", "www", "api", "argocd", "grafana"}

// ingress declares one Ingress per namespace in the one ingress group. Only the application's
// Ingress is awaited, because its status carries the ALB's hostname for DNS; the others skip the
// await so that `pulumi up` never waits on them. Each depends on the load balancer controller, so
// `pulumi destroy` deletes the ingresses (and the controller deletes the ALB and its security
// groups) before the controller itself goes.
func (b *builder) ingress(addons *Addons, certificateARN pulumi.StringInput) (pulumi.StringOutput, error) {
	listen, _ := json.Marshal([]map[string]int{{"HTTP": 80}, {"HTTPS": 443}})
	byNamespace := map[string][]Route{}
	for _, r := range Routes() {
		byNamespace[r.Namespace] = append(byNamespace[r.Namespace], r)
	}
	order := map[string]int{NamespaceArgoCD: 10, NamespaceMonitoring: 20, NamespaceApp: 100}
	var hostname pulumi.StringOutput
	for _, ns := range slices.Sorted(maps.Keys(byNamespace)) {
		routes := byNamespace[ns]
		paths := networkingv1.HTTPIngressPathArray{}
		for _, r := range routes {
			paths = append(paths, networkingv1.HTTPIngressPathArgs{
				Path: pulumi.String(r.Path), PathType: pulumi.String("Prefix"),
				Backend: networkingv1.IngressBackendArgs{Service: &networkingv1.IngressServiceBackendArgs{
					Name: pulumi.String(r.Service), Port: &networkingv1.ServiceBackendPortArgs{Number: pulumi.Int(r.Port)},
				}},
			})
		}
		annotations := pulumi.StringMap{
			"alb.ingress.kubernetes.io/group.name":      pulumi.String(IngressGroup),
			"alb.ingress.kubernetes.io/group.order":     pulumi.Sprintf("%d", order[ns]),
			"alb.ingress.kubernetes.io/scheme":          pulumi.String("internet-facing"),
			"alb.ingress.kubernetes.io/target-type":     pulumi.String("instance"),
			"alb.ingress.kubernetes.io/listen-ports":    pulumi.String(string(listen)),
			"alb.ingress.kubernetes.io/ssl-redirect":    pulumi.String("443"),
			"alb.ingress.kubernetes.io/certificate-arn": certificateARN,
			"alb.ingress.kubernetes.io/ssl-policy":      pulumi.String("ELBSecurityPolicy-TLS13-1-2-2021-06"),
		}
		if len(routes) == 1 {
			annotations["alb.ingress.kubernetes.io/healthcheck-path"] = pulumi.String(routes[0].HealthPath)
		}
		if ns == NamespaceApp {
			annotations["pulumi.com/timeoutSeconds"] = pulumi.String("900")
		} else {
			annotations["pulumi.com/skipAwait"] = pulumi.String("true")
		}
		// Only the controller: an ALB rule whose Service a chart has not created yet is retried
		// by the controller, so the ingresses need not wait for Argo CD or monitoring.
		deps := []pulumi.Resource{addons.LoadBalancerController}
		ing, err := networkingv1.NewIngress(b.ctx, b.resourceName(ns, "ingress"), &networkingv1.IngressArgs{
			Metadata: &metav1.ObjectMetaArgs{
				Name: pulumi.String(IngressGroup), Namespace: pulumi.String(ns),
				Labels: labels(IngressGroup, "ingress"), Annotations: annotations,
			},
			Spec: &networkingv1.IngressSpecArgs{
				IngressClassName: pulumi.String("alb"),
				Rules:            networkingv1.IngressRuleArray{networkingv1.IngressRuleArgs{Http: &networkingv1.HTTPIngressRuleValueArgs{Paths: paths}}},
			},
		}, b.opts(ns, deps...)...)
		if err != nil {
			return pulumi.StringOutput{}, fmt.Errorf("ingress %s: %w", ns, err)
		}
		if ns == NamespaceApp {
			hostname = ing.Status.LoadBalancer().Ingress().Index(pulumi.Int(0)).Hostname().Elem()
		}
	}
	return hostname, nil
}

// dns points the domain's names at the ALB with alias records.
func (b *builder) dns(zoneID string, albHostname pulumi.StringOutput) error {
	albZone, err := elb.GetHostedZoneId(b.ctx, &elb.GetHostedZoneIdArgs{Region: pulumi.StringRef(b.cfg.Region)}, pulumi.Parent(b.parent))
	if err != nil {
		return fmt.Errorf("look up the ALB hosted zone of %s: %w", b.cfg.Region, err)
	}
	for _, h := range Hostnames {
		name, label := b.cfg.Domain, "apex"
		if h != "" {
			name, label = h+"."+b.cfg.Domain, h
		}
		if _, err := route53.NewRecord(b.ctx, b.resourceName("dns", label), &route53.RecordArgs{
			ZoneId: pulumi.String(zoneID),
			Name:   pulumi.String(name),
			Type:   pulumi.String("A"),
			Aliases: route53.RecordAliasArray{route53.RecordAliasArgs{
				Name:                 albHostname,
				ZoneId:               pulumi.String(albZone.Id),
				EvaluateTargetHealth: pulumi.Bool(true),
			}},
		}, pulumi.Parent(b.parent)); err != nil {
			return fmt.Errorf("record %s: %w", name, err)
		}
	}
	return nil
}
