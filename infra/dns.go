package infra

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/acm"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/lb"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/route53"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/routing"
)

// DNSArgs are the inputs of DNS and TLS.
type DNSArgs struct {
	// Config is the validated stack configuration (the domain).
	Config *config.Config
	// EndpointIP is the control plane's Elastic IP.
	EndpointIP pulumi.StringOutput
}

// DNS holds the looked-up hosted zone, the validated wildcard certificate, the control plane's
// DNS name and, once the ALB is declared, the alias records that point the domain at it.
type DNS struct {
	pulumi.ResourceState

	// ZoneID is the existing public hosted zone of the domain.
	ZoneID string
	// CertificateARN is the validated certificate for the apex and *.apex: it is only known once
	// validation has succeeded, so an ALB never gets a pending certificate.
	CertificateARN pulumi.StringOutput
	// EndpointName is the control plane's public DNS name, k8s.<domain>.
	EndpointName string
}

// EndpointName returns the control plane's public DNS name for a domain.
func EndpointName(cfg *config.Config) string { return "k8s." + cfg.Domain }

// NewDNS looks up the zone and declares the certificate, its one validation record and the
// control plane's A record.
func NewDNS(ctx *pulumi.Context, name string, args *DNSArgs, opts ...pulumi.ResourceOption) (*DNS, error) {
	d := &DNS{EndpointName: EndpointName(args.Config)}
	if err := ctx.RegisterComponentResource("waste-coach-infra:infra:DNS", name, d, opts...); err != nil {
		return nil, err
	}
	cfg := args.Config
	parent := pulumi.Parent(d)

	zone, err := route53.LookupZone(ctx, &route53.LookupZoneArgs{
		Name:        pulumi.StringRef(cfg.Domain),
		PrivateZone: pulumi.BoolRef(false),
	}, pulumi.Parent(d))
	if err != nil {
		return nil, fmt.Errorf("look up hosted zone %s (it must exist before the first deploy): %w", cfg.Domain, err)
	}
	d.ZoneID = zone.ZoneId

	cert, err := acm.NewCertificate(ctx, name+"-cert", &acm.CertificateArgs{
		DomainName:              pulumi.String(cfg.Domain),
		SubjectAlternativeNames: pulumi.StringArray{pulumi.String("*." + cfg.Domain)},
		ValidationMethod:        pulumi.String("DNS"),
		Tags:                    tags(cfg, cfg.Domain, nil),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("create certificate: %w", err)
	}

	// The apex and the wildcard are validated by the same CNAME, so ACM lists it twice: declare it
	// once (two declarations would fight over one record).
	dvo := cert.DomainValidationOptions.Index(pulumi.Int(0))
	record, err := route53.NewRecord(ctx, name+"-cert-validation", &route53.RecordArgs{
		ZoneId:         pulumi.String(zone.ZoneId),
		Name:           dvo.ResourceRecordName().Elem(),
		Type:           dvo.ResourceRecordType().Elem(),
		Records:        pulumi.StringArray{dvo.ResourceRecordValue().Elem()},
		Ttl:            pulumi.Int(300),
		AllowOverwrite: pulumi.Bool(true),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("create certificate validation record: %w", err)
	}
	validation, err := acm.NewCertificateValidation(ctx, name+"-cert", &acm.CertificateValidationArgs{
		CertificateArn:        cert.Arn,
		ValidationRecordFqdns: pulumi.StringArray{record.Fqdn},
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("validate certificate: %w", err)
	}
	d.CertificateARN = validation.CertificateArn

	if _, err := route53.NewRecord(ctx, name+"-endpoint", &route53.RecordArgs{
		ZoneId:  pulumi.String(zone.ZoneId),
		Name:    pulumi.String(d.EndpointName),
		Type:    pulumi.String("A"),
		Records: pulumi.StringArray{args.EndpointIP},
		Ttl:     pulumi.Int(300),
	}, parent); err != nil {
		return nil, fmt.Errorf("create control-plane record: %w", err)
	}

	if err := ctx.RegisterResourceOutputs(d, pulumi.Map{"certificateArn": d.CertificateARN}); err != nil {
		return nil, err
	}
	return d, nil
}

// AliasToALB points the apex and each of routing.Hostnames at the load balancer with alias A
// records. They take the ALB's name and zone from the ALB resource itself, so they exist as
// soon as the ALB does, long before the cluster.
func (d *DNS) AliasToALB(ctx *pulumi.Context, name string, cfg *config.Config, alb *lb.LoadBalancer) error {
	for _, h := range routing.Hostnames {
		fqdn, label := cfg.Domain, "apex"
		if h != "" {
			fqdn, label = h+"."+cfg.Domain, h
		}
		if _, err := route53.NewRecord(ctx, name+"-alias-"+label, &route53.RecordArgs{
			ZoneId: pulumi.String(d.ZoneID),
			Name:   pulumi.String(fqdn),
			Type:   pulumi.String("A"),
			Aliases: route53.RecordAliasArray{route53.RecordAliasArgs{
				Name:                 alb.DnsName,
				ZoneId:               alb.ZoneId,
				EvaluateTargetHealth: pulumi.Bool(true),
			}},
		}, pulumi.Parent(d), pulumi.Aliases([]pulumi.Alias{{URN: pulumi.URN(workloadsAliasRecordURN(ctx.Stack(), ctx.Project(), cfg.ClusterName, label))}})); err != nil {
			return fmt.Errorf("create alias record %s: %w", fqdn, err)
		}
	}
	return nil
}

// workloadsAliasRecordURN is the URN an alias record had before the program declared the ALB:
// the workloads tier declared it, as "<clusterName>-dns-<label>", a child of its component
// (waste-coach-infra:workloads:Workloads "<clusterName>", itself a child of the stack). The
// record carries it as an alias, so on the first up of a stack deployed then the engine updates
// the record in place (its alias now targets the program's ALB) instead of creating a second
// record for the same name, which Route53 refuses ("already exists"), and deleting the old one.
func workloadsAliasRecordURN(stack, project, clusterName, label string) string {
	return fmt.Sprintf("urn:pulumi:%s::%s::waste-coach-infra:workloads:Workloads$aws:route53/record:Record::%s-dns-%s",
		stack, project, clusterName, label)
}
