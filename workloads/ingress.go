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

// targetGroupBindings binds each route's target group to its Service: the load balancer
// controller registers the nodes on the Service's NodePort and follows replaced nodes. Each
// binding depends on the controller, so `pulumi destroy` deletes the bindings (the controller
// removes its finalizer and deregisters the nodes) before the controller goes; the ALB itself is
// a Pulumi resource of the AWS tier and is deleted by Pulumi.
func (b *builder) targetGroupBindings(addons *Addons, targetGroupARNs map[string]pulumi.StringOutput, vpcID pulumi.StringInput) error {
	for _, r := range routing.Routes() {
		arn, ok := targetGroupARNs[r.Name]
		if !ok {
			return fmt.Errorf("no target group for route %s", r.Name)
		}
		spec := TargetGroupBindingSpec{ServiceName: r.Service, ServicePort: r.ServicePort, TargetGroupARN: arn, VPCID: vpcID}
		how, ok := b.served[r.Name]
		switch {
		case !ok:
			return fmt.Errorf("route %s: no Service %s/%s is declared for it", r.Name, r.Namespace, r.Service)
		case how.local && how.role.ControlPlane():
			// The controller never registers a control-plane node: the group would stay empty.
			return fmt.Errorf("route %s: a Service with traffic policy Local on the control plane cannot be registered", r.Name)
		case how.local:
			spec.NodeSelector = NodeSelector(how.role)
		}
		deps := []pulumi.Resource{addons.LoadBalancerController}
		opts := append(b.opts(r.Namespace, deps...),
			// The ARN is immutable in a binding: a replaced target group means a new binding.
			pulumi.ReplaceOnChanges([]string{"spec.targetGroupARN"}), pulumi.DeleteBeforeReplace(true))
		if _, err := apiextensions.NewCustomResource(b.ctx, b.resourceName(r.Namespace, r.Name+"-tgb"), &apiextensions.CustomResourceArgs{
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
