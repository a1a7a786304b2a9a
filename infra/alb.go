package infra

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/lb"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/s3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/routing"
)

// LoadBalancerArgs are the inputs of the application load balancer.
type LoadBalancerArgs struct {
	// Config is the validated stack configuration (stack name, admin ranges).
	Config *config.Config
	// VPCID is the VPC of the target groups.
	VPCID pulumi.IDOutput
	// SubnetIDs are the three public subnets the ALB spans.
	SubnetIDs pulumi.StringArrayInput
	// SecurityGroupID is the ALB's own group (80/443 in, NodePorts out).
	SecurityGroupID pulumi.IDOutput
	// CertificateARN is the validated certificate of the HTTPS listener: only known once
	// validation succeeded, so the listener never serves a pending certificate.
	CertificateARN pulumi.StringOutput
	// AccountARN is any ARN of the stack's account: the access logs go under its number.
	AccountARN pulumi.StringOutput
}

// LoadBalancer is the stack's one internet-facing ALB: an HTTP listener that redirects to
// HTTPS, an HTTPS listener with the routes of routing.Routes as listener rules, and one
// instance target group per routed Service on its fixed NodePort. It depends on the network
// only, so it is created beside the nodes; the load balancer controller in the cluster only
// registers the nodes in the target groups (TargetGroupBinding).
type LoadBalancer struct {
	pulumi.ResourceState

	// ALB is the load balancer; its DNS name and zone are what the alias records point at.
	ALB *lb.LoadBalancer
	// HTTPS is the TLS listener the routes hang off.
	HTTPS *lb.Listener
	// TargetGroups are keyed by route name (routing.Route.Name).
	TargetGroups map[string]*lb.TargetGroup
	// AccessLogs is the access logs' bucket; nil without albAccessLogs.
	AccessLogs *s3.BucketV2
}

// TLSPolicy is the HTTPS listener's security policy: TLS 1.3, and TLS 1.2 with forward-secret
// ciphers for older clients.
const TLSPolicy = "ELBSecurityPolicy-TLS13-1-2-2021-06"

// ALBIdleTimeoutSeconds is how long the ALB keeps an idle connection, to clients and to targets.
const ALBIdleTimeoutSeconds = 60

// maxELBName is the longest name AWS accepts for a load balancer or a target group.
const maxELBName = 32

// sourceIPsPerRule keeps a rule within the ALB's limit of five condition values per rule: two
// path patterns plus at most three source ranges.
const sourceIPsPerRule = 3

// ELBName derives an AWS load balancer or target group name from parts, unique per stack when
// the stack is one of the parts. A name over 32 characters keeps a readable head and ends with a
// hash of the whole, so it stays unique and does not change between runs.
func ELBName(parts ...string) string {
	full := strings.Join(parts, "-")
	if len(full) <= maxELBName {
		return full
	}
	sum := sha256.Sum256([]byte(full))
	tail := hex.EncodeToString(sum[:])[:8]
	head := strings.TrimRight(full[:maxELBName-len(tail)-1], "-")
	return head + "-" + tail
}

// TargetGroupName is the name of a route's target group. The NodePort is part of it: a port
// change replaces the group, and the replacement must not collide with the old one's name.
func TargetGroupName(component, stack string, r routing.Route) string {
	return ELBName(component, stack, r.Name, strconv.Itoa(r.NodePort))
}

// ListenerRule is one rule of the HTTPS listener, computed from the routes and the admin
// ranges before anything is declared, so tests can check the order and the conditions.
type ListenerRule struct {
	// Name distinguishes the rule's resource name.
	Name string
	// Priority orders the rules: the lowest matching one wins.
	Priority int
	// Paths are the path-pattern values; SourceIPs, when set, the source-ip values.
	Paths, SourceIPs []string
	// Route is where a forward rule sends the request; nil for a fixed 403.
	Route *routing.Route
}

// ListenerRules are the HTTPS listener's rules for routes, in priority order. Each route's
// rules take priorities from its own fixed routing.Route.Priority, so that a route added or
// removed renumbers no other rule. An admin-only route forwards only requests from adminCidrs
// (in rules of at most three ranges each) and answers 403 to everyone else, so that a stranger
// learns that the tool exists but cannot reach its login page; falling through to the default
// backend instead would serve a misleading page under /argocd.
func ListenerRules(cfg *config.Config, routes []routing.Route) []ListenerRule {
	admin := prefixes(cfg.AdminCIDRs)
	var rules []ListenerRule
	for _, r := range routes {
		if !r.AdminOnly {
			rules = append(rules, ListenerRule{Name: r.Name, Priority: r.Priority, Paths: r.PathPatterns(), Route: &r})
			continue
		}
		for j, chunk := range slices.Collect(slices.Chunk(admin, sourceIPsPerRule)) {
			name := r.Name
			if j > 0 {
				name = fmt.Sprintf("%s-%d", r.Name, j)
			}
			rules = append(rules, ListenerRule{Name: name, Priority: r.Priority + j, Paths: r.PathPatterns(), SourceIPs: chunk, Route: &r})
		}
		rules = append(rules, ListenerRule{Name: r.Name + "-deny", Priority: r.Priority + routing.PrioritySpan - 1, Paths: r.PathPatterns()})
	}
	return rules
}

// NewLoadBalancer declares the ALB, its target groups, listeners and rules.
func NewLoadBalancer(ctx *pulumi.Context, name string, args *LoadBalancerArgs, opts ...pulumi.ResourceOption) (*LoadBalancer, error) {
	l := &LoadBalancer{TargetGroups: map[string]*lb.TargetGroup{}}
	if err := ctx.RegisterComponentResource("waste-coach-infra:infra:LoadBalancer", name, l, opts...); err != nil {
		return nil, err
	}
	cfg := args.Config
	parent := pulumi.Parent(l)
	var err error

	albName := ELBName(name, cfg.Stack)
	// The setting is always declared, off too: the provider ignores a removed access_logs block
	// (the ALB would go on writing to a bucket the stack no longer has).
	accessLogs := &lb.LoadBalancerAccessLogsArgs{Bucket: pulumi.String(cfg.Logs.ALBLogsBucket), Enabled: pulumi.Bool(false)}
	var logsReady []pulumi.Resource
	if cfg.Logs.ALBAccessLogs {
		bucket, policy, err := newALBLogs(ctx, name+"-access-logs", cfg, args.AccountARN, parent)
		if err != nil {
			return nil, fmt.Errorf("access logs: %w", err)
		}
		l.AccessLogs = bucket
		accessLogs = &lb.LoadBalancerAccessLogsArgs{Bucket: bucket.Bucket, Enabled: pulumi.Bool(true)}
		logsReady = append(logsReady, policy)
	}
	l.ALB, err = lb.NewLoadBalancer(ctx, name, &lb.LoadBalancerArgs{
		Name:             pulumi.String(albName),
		LoadBalancerType: pulumi.String("application"),
		Internal:         pulumi.Bool(false),
		IpAddressType:    pulumi.String("ipv4"),
		Subnets:          args.SubnetIDs,
		SecurityGroups:   pulumi.StringArray{args.SecurityGroupID.ToStringOutput()},
		// Requests with header names the ALB cannot parse are dropped, not passed to the apps.
		DropInvalidHeaderFields: pulumi.Bool(true),
		// AWS's default, written down because the backends depend on it: a backend must keep
		// an idle connection open longer than this, or the ALB may send a request on one the
		// backend has just closed and answer 502 (ALB guide, "Connection idle timeout"). The
		// default backend's nginx keeps 65 s; the application images' contract (README) asks
		// the API servers for more than 60 s. Raising this would break that contract.
		IdleTimeout: pulumi.Int(ALBIdleTimeoutSeconds),
		AccessLogs:  accessLogs,
		Tags:        tags(cfg, albName, nil),
	}, parent, pulumi.DependsOn(logsReady),
		// Its name is fixed per stack and AWS refuses a second load balancer of that name, so a
		// replacement (a forced one, or a change of name, scheme or type) deletes the old ALB
		// first; its listeners and rules go with it, and its target groups are freed for the
		// new one (a target group serves one load balancer).
		pulumi.DeleteBeforeReplace(true))
	if err != nil {
		return nil, fmt.Errorf("create load balancer: %w", err)
	}

	for _, r := range routing.Routes() {
		tgName := TargetGroupName(name, cfg.Stack, r)
		tg, err := lb.NewTargetGroup(ctx, name+"-"+r.Name, &lb.TargetGroupArgs{
			Name:       pulumi.String(tgName),
			TargetType: pulumi.String("instance"),
			Protocol:   pulumi.String("HTTP"),
			Port:       pulumi.Int(r.NodePort),
			VpcId:      args.VPCID,
			HealthCheck: &lb.TargetGroupHealthCheckArgs{
				Enabled:  pulumi.Bool(true),
				Protocol: pulumi.String("HTTP"),
				Path:     pulumi.String(r.HealthPath),
				Port:     pulumi.String("traffic-port"),
				Matcher:  pulumi.String("200"),
				// A node that stops answering leaves the group after 20 s instead of the
				// provider's default 90 s (3 checks 30 s apart), and a replaced node serves
				// after two good checks.
				Interval:           pulumi.Int(10),
				Timeout:            pulumi.Int(5),
				HealthyThreshold:   pulumi.Int(2),
				UnhealthyThreshold: pulumi.Int(2),
			},
			// The Services keep the client address (externalTrafficPolicy Local); a short
			// drain is enough for API requests.
			DeregistrationDelay: pulumi.Int(30),
			// The cluster tag is what the load balancer controller's role is scoped by
			// (LoadBalancerControllerPolicy).
			Tags: tags(cfg, tgName, map[string]string{"Route": r.Path, "Service": r.Namespace + "/" + r.Service, ClusterTag(cfg): "owned"}),
		}, parent)
		if err != nil {
			return nil, fmt.Errorf("create target group %s: %w", r.Name, err)
		}
		l.TargetGroups[r.Name] = tg
	}

	if _, err := lb.NewListener(ctx, name+"-http", &lb.ListenerArgs{
		LoadBalancerArn: l.ALB.Arn,
		Port:            pulumi.Int(portHTTP),
		Protocol:        pulumi.String("HTTP"),
		DefaultActions: lb.ListenerDefaultActionArray{lb.ListenerDefaultActionArgs{
			Type: pulumi.String("redirect"),
			Redirect: &lb.ListenerDefaultActionRedirectArgs{
				Protocol: pulumi.String("HTTPS"), Port: pulumi.String(strconv.Itoa(portHTTPS)), StatusCode: pulumi.String("HTTP_301"),
			},
		}},
		Tags: tags(cfg, albName+"-http", nil),
	}, parent); err != nil {
		return nil, fmt.Errorf("create http listener: %w", err)
	}
	l.HTTPS, err = lb.NewListener(ctx, name+"-https", &lb.ListenerArgs{
		LoadBalancerArn: l.ALB.Arn,
		Port:            pulumi.Int(portHTTPS),
		Protocol:        pulumi.String("HTTPS"),
		SslPolicy:       pulumi.String(TLSPolicy),
		CertificateArn:  args.CertificateARN,
		// What no rule matches; with the "/*" default-backend rule that is nothing today.
		DefaultActions: lb.ListenerDefaultActionArray{lb.ListenerDefaultActionArgs{
			Type: pulumi.String("fixed-response"),
			FixedResponse: &lb.ListenerDefaultActionFixedResponseArgs{
				ContentType: pulumi.String("text/plain"), StatusCode: pulumi.String("404"), MessageBody: pulumi.String("not found"),
			},
		}},
		Tags: tags(cfg, albName+"-https", nil),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("create https listener: %w", err)
	}

	for _, rule := range ListenerRules(cfg, routing.Routes()) {
		conditions := lb.ListenerRuleConditionArray{lb.ListenerRuleConditionArgs{
			PathPattern: &lb.ListenerRuleConditionPathPatternArgs{Values: pulumi.ToStringArray(rule.Paths)},
		}}
		if len(rule.SourceIPs) > 0 {
			conditions = append(conditions, lb.ListenerRuleConditionArgs{
				SourceIp: &lb.ListenerRuleConditionSourceIpArgs{Values: pulumi.ToStringArray(rule.SourceIPs)},
			})
		}
		action := lb.ListenerRuleActionArgs{
			Type: pulumi.String("fixed-response"),
			FixedResponse: &lb.ListenerRuleActionFixedResponseArgs{
				ContentType: pulumi.String("text/plain"), StatusCode: pulumi.String("403"),
				MessageBody: pulumi.String("forbidden: this path is served to the operators' networks (adminCidrs) only"),
			},
		}
		if rule.Route != nil {
			action = lb.ListenerRuleActionArgs{Type: pulumi.String("forward"), TargetGroupArn: l.TargetGroups[rule.Route.Name].Arn}
		}
		if _, err := lb.NewListenerRule(ctx, name+"-rule-"+rule.Name, &lb.ListenerRuleArgs{
			ListenerArn: l.HTTPS.Arn,
			Priority:    pulumi.Int(rule.Priority),
			Conditions:  conditions,
			Actions:     lb.ListenerRuleActionArray{action},
			Tags:        tags(cfg, albName+"-"+rule.Name, nil),
		}, parent); err != nil {
			return nil, fmt.Errorf("create listener rule %s: %w", rule.Name, err)
		}
	}

	if err := ctx.RegisterResourceOutputs(l, pulumi.Map{"dnsName": l.ALB.DnsName, "arn": l.ALB.Arn}); err != nil {
		return nil, err
	}
	return l, nil
}

// TargetGroupARNs returns each route's target group ARN, keyed by route name.
func (l *LoadBalancer) TargetGroupARNs() map[string]pulumi.StringOutput {
	out := map[string]pulumi.StringOutput{}
	for name, tg := range l.TargetGroups {
		out[name] = tg.Arn
	}
	return out
}
