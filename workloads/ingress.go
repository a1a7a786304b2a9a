package workloads

import (
	"fmt"

	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/apiextensions"
	metav1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/meta/v1"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/routing"
)

// TargetGroupBindingSpec is the part of the load balancer controller's TargetGroupBinding
// (elbv2.k8s.aws/v1beta1, CRD of chart 1.14.0) this platform sets. Every field the controller's
// admission webhook would otherwise fill in from AWS is set explicitly: the webhook refuses an
// update that drops one of them (targetType, ipAddressType and vpcID are immutable).
type TargetGroupBindingSpec struct {
	// ServiceName and ServicePort name the NodePort Service whose nodes are registered.
	ServiceName string
	ServicePort int
	// TargetGroupARN is the target group the AWS tier declared for the route.
	TargetGroupARN pulumi.StringInput
	// VPCID is the target group's VPC.
	VPCID pulumi.StringInput
	// NodeSelector, when set, limits the registered nodes to those it selects: the node that
	// runs a Local Service's pods. Without it the controller registers every node but the
	// control plane, and the ones without the pods fail the health check for good.
	NodeSelector map[string]string
}

func (s TargetGroupBindingSpec) args() kubernetes.UntypedArgs {
	spec := pulumi.Map{
		"serviceRef":          pulumi.Map{"name": pulumi.String(s.ServiceName), "port": pulumi.Int(s.ServicePort)},
		"targetGroupARN":      s.TargetGroupARN,
		"targetType":          pulumi.String("instance"),
		"ipAddressType":       pulumi.String("ipv4"),
		"targetGroupProtocol": pulumi.String("HTTP"),
		"vpcID":               s.VPCID,
	}
	if len(s.NodeSelector) > 0 {
		spec["nodeSelector"] = pulumi.Map{"matchLabels": pulumi.ToStringMap(s.NodeSelector)}
	}
	return kubernetes.UntypedArgs{"spec": spec}
}

// Routing binds the ALB's target groups to their Services.
type Routing struct {
	pulumi.ResourceState
}

// routingArgs are the inputs of the routes' bindings.
type routingArgs struct {
	// tierArgs name the resources.
	tierArgs
	// TargetGroupARNs are the ALB's target groups by route name, declared by the AWS tier.
	TargetGroupARNs map[string]pulumi.StringOutput
	// VPCID is the target groups' VPC.
	VPCID pulumi.StringInput
	// LoadBalancerController registers the nodes; every binding waits for it, so that a
	// destroy deletes the bindings while it still runs.
	LoadBalancerController pulumi.Resource
	// Served is how each route's Service answers, by route name, as the components that
	// declare the Services report it: a route without an entry has no Service.
	Served map[string]Served
}

// newRouting binds each route's target group to its Service: the load balancer
// controller registers the nodes on the Service's NodePort and follows replaced nodes. Each
// binding depends on the controller, so `pulumi destroy` deletes the bindings (the controller
// removes its finalizer and deregisters the nodes) before the controller goes; the ALB itself is
// a Pulumi resource of the AWS tier and is deleted by Pulumi.
func newRouting(ctx *pulumi.Context, name string, args *routingArgs, opts ...pulumi.ResourceOption) (*Routing, error) {
	c := &Routing{}
	return c, component(ctx, args.tierArgs, "Routing", name, c, opts, func(s *scope) error {
		return s.targetGroupBindings(args)
	})
}

// targetGroupBindings declares one binding per route of routing.Routes.
func (s *scope) targetGroupBindings(args *routingArgs) error {
	for _, r := range routing.Routes() {
		arn, ok := args.TargetGroupARNs[r.Name]
		if !ok {
			return fmt.Errorf("no target group for route %s", r.Name)
		}
		spec := TargetGroupBindingSpec{ServiceName: r.Service, ServicePort: r.ServicePort, TargetGroupARN: arn, VPCID: args.VPCID}
		how, ok := args.Served[r.Name]
		switch {
		case !ok:
			return fmt.Errorf("route %s: no Service %s/%s is declared for it", r.Name, r.Namespace, r.Service)
		case how.Local && how.Role.ControlPlane():
			// The controller never registers a control-plane node: the group would stay empty.
			return fmt.Errorf("route %s: a Service with traffic policy Local on the control plane cannot be registered", r.Name)
		case how.Local:
			spec.NodeSelector = NodeSelector(how.Role)
		}
		deps := []pulumi.Resource{args.LoadBalancerController}
		opts := append(s.opts(r.Namespace, deps...),
			// The ARN is immutable in a binding: a replaced target group means a new binding.
			pulumi.ReplaceOnChanges([]string{"spec.targetGroupARN"}), pulumi.DeleteBeforeReplace(true))
		if _, err := apiextensions.NewCustomResource(s.ctx, s.resourceName(r.Namespace, r.Name+"-tgb"), &apiextensions.CustomResourceArgs{
			ApiVersion:  pulumi.String("elbv2.k8s.aws/v1beta1"),
			Kind:        pulumi.String("TargetGroupBinding"),
			Metadata:    &metav1.ObjectMetaArgs{Name: pulumi.String(r.Service), Namespace: pulumi.String(r.Namespace), Labels: labels(r.Service, "routing")},
			OtherFields: spec.args(),
		}, opts...); err != nil {
			return fmt.Errorf("target group binding %s: %w", r.Name, err)
		}
	}
	return nil
}
