package standin

import (
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// rules say how a provider plans a change of a resource's inputs: which changes replace it,
// and which removals it ignores. Every other change is an update in place.
type rules struct {
	// forceNew are the inputs whose change replaces the resource (ForceNew, or RequiresReplace,
	// in the Terraform schema). "a.b" is field b of block a (an object, or every element of a
	// list): only a change there replaces, reported as a change of a.
	forceNew []string
	// keep are the Optional+Computed inputs: removed from the program, the provider keeps the
	// value it has and plans nothing for them.
	keep []string
	// when adds the replacements the provider decides from the values (a CustomizeDiff).
	when func(olds, news resource.PropertyMap) []string
	// everyInput: any changed input replaces the resource.
	everyInput bool
}

// generatedRules: the tls and random providers replace a key, bytes or a password on any change
// of its inputs (every input of tls_private_key, random_bytes and random_password is ForceNew or
// RequiresReplace upstream); nothing about them changes in place.
var generatedRules = rules{everyInput: true}

// commandRules: a changed trigger replaces a command, as the command provider does.
var commandRules = rules{forceNew: []string{"triggers"}}

// awsRules answers for every aws type the program declares, as pulumi-aws 6.83.4 plans a change.
// pulumi-aws bridges terraform-provider-aws 5.100.0; its schemas were read, file by file (the
// path beside each row), at upstream commit 1a5174b137bb of 2024-04-17 (5.46.0 in development):
// the 5.100.0 tag could not be fetched here. Pulumi names are the camelCase of Terraform's, a
// list block named in the plural (ebs_block_device: ebsBlockDevices), as in the 6.83.4 Go SDK.
//
// pulumi-aws auto-names `name` (and a bucket's `bucket`): an input removed from the program gets
// a fresh random name, not the old one, so those are never in keep; a changed name replaces
// wherever Terraform's is ForceNew. (ssm Parameter and iam User take an optional name in the
// 6.83.4 SDK although Terraform requires one: pulumi-aws's auto-naming.)
//
// A type missing here makes Diff fail: add its row rather than let it diff as an update.
var awsRules = map[string]rules{
	"aws:acm/certificate:Certificate": { // internal/service/acm/certificate.go
		forceNew: []string{"certificateAuthorityArn", "domainName", "keyAlgorithm", "subjectAlternativeNames", "validationMethod", "validationOptions"},
		keep:     []string{"domainName", "keyAlgorithm", "options", "subjectAlternativeNames", "validationMethod"},
	},
	"aws:acm/certificateValidation:CertificateValidation": { // internal/service/acm/certificate_validation.go
		forceNew: []string{"certificateArn", "validationRecordFqdns"},
	},
	"aws:cloudwatch/logGroup:LogGroup": { // internal/service/logs/group.go
		forceNew: []string{"logGroupClass", "name", "namePrefix"},
		keep:     []string{"logGroupClass", "namePrefix"},
	},
	"aws:dlm/lifecyclePolicy:LifecyclePolicy": { // internal/service/dlm/lifecycle_policy.go
		forceNew: []string{"policyDetails.schedules.copyTags"},
	},
	"aws:ec2/eip:Eip": { // internal/service/ec2/ec2_eip.go
		forceNew: []string{"address", "domain", "ipamPoolId", "networkBorderGroup", "publicIpv4Pool", "vpc"},
		keep:     []string{"domain", "instance", "ipamPoolId", "networkBorderGroup", "networkInterface", "publicIpv4Pool", "vpc"},
	},
	"aws:ec2/eipAssociation:EipAssociation": { // internal/service/ec2/ec2_eip_association.go
		forceNew: []string{"allocationId", "allowReassociation", "instanceId", "networkInterfaceId", "privateIpAddress", "publicIp"},
		keep:     []string{"allocationId", "instanceId", "networkInterfaceId", "privateIpAddress", "publicIp"},
	},
	"aws:ec2/instance:Instance": { // internal/service/ec2/ec2_instance.go
		forceNew: []string{"ami", "associatePublicIpAddress", "availabilityZone", "cpuCoreCount", "cpuOptions", "cpuThreadsPerCore",
			"ebsBlockDevices.deleteOnTermination", "ebsBlockDevices.deviceName", "ebsBlockDevices.encrypted", "ebsBlockDevices.iops",
			"ebsBlockDevices.kmsKeyId", "ebsBlockDevices.snapshotId", "ebsBlockDevices.throughput", "ebsBlockDevices.volumeSize",
			"ebsBlockDevices.volumeType", "ebsOptimized", "enclaveOptions", "ephemeralBlockDevices", "hibernation", "hostId",
			"instanceMarketOptions", "ipv6AddressCount", "ipv6Addresses", "keyName", "launchTemplate", "networkInterfaces", "placementGroup",
			"placementPartitionNumber", "privateDnsNameOptions", "privateIp", "rootBlockDevice.encrypted", "rootBlockDevice.kmsKeyId",
			"securityGroups", "subnetId", "tenancy"},
		keep: []string{"ami", "associatePublicIpAddress", "availabilityZone", "capacityReservationSpecification", "cpuCoreCount",
			"cpuOptions", "cpuThreadsPerCore", "disableApiStop", "disableApiTermination", "ebsBlockDevices", "ebsOptimized",
			"enclaveOptions", "ephemeralBlockDevices", "hostId", "hostResourceGroupArn", "iamInstanceProfile",
			"instanceInitiatedShutdownBehavior", "instanceMarketOptions", "instanceType", "ipv6AddressCount", "ipv6Addresses",
			"keyName", "maintenanceOptions", "metadataOptions", "monitoring", "networkInterfaces", "placementGroup",
			"placementPartitionNumber", "privateDnsNameOptions", "privateIp", "rootBlockDevice", "secondaryPrivateIps",
			"securityGroups", "subnetId", "tenancy", "userData", "userDataBase64", "vpcSecurityGroupIds"},
		// Its CustomizeDiff also replaces on an instance type of another CPU architecture (none
		// of config.InstanceTypes differ) and on a launch template version the instance is not
		// running (the program uses none); both need AWS to answer.
		when: func(olds, news resource.PropertyMap) []string {
			if v := unwrap(news["userDataReplaceOnChange"]); v.IsBool() && v.BoolValue() {
				return changedOf(olds, news, "userData", "userDataBase64")
			}
			return nil
		},
	},
	"aws:ec2/internetGateway:InternetGateway": { // internal/service/ec2/vpc_internet_gateway.go
		keep: []string{"vpcId"},
	},
	"aws:ec2/keyPair:KeyPair": { // internal/service/ec2/ec2_key_pair.go
		forceNew: []string{"keyName", "keyNamePrefix", "publicKey"},
		keep:     []string{"keyName", "keyNamePrefix"},
	},
	"aws:ec2/routeTable:RouteTable": { // internal/service/ec2/vpc_route_table.go
		forceNew: []string{"vpcId"},
		keep:     []string{"propagatingVgws", "routes"},
	},
	"aws:ec2/routeTableAssociation:RouteTableAssociation": { // internal/service/ec2/vpc_route_table_association.go
		forceNew: []string{"gatewayId", "subnetId"},
	},
	"aws:ec2/securityGroup:SecurityGroup": { // internal/service/ec2/vpc_security_group.go
		forceNew: []string{"description", "name", "namePrefix", "vpcId"},
		keep:     []string{"egress", "ingress", "namePrefix", "vpcId"},
	},
	"aws:ec2/subnet:Subnet": { // internal/service/ec2/vpc_subnet.go
		forceNew: []string{"availabilityZone", "availabilityZoneId", "cidrBlock", "ipv6Native", "outpostArn", "vpcId"},
		keep:     []string{"availabilityZone", "availabilityZoneId", "privateDnsHostnameTypeOnLaunch"},
	},
	"aws:ec2/subnetCidrReservation:SubnetCidrReservation": { // internal/service/ec2/vpc_subnet_cidr_reservation.go
		forceNew: []string{"cidrBlock", "description", "reservationType", "subnetId"},
	},
	"aws:ec2/vpc:Vpc": { // internal/service/ec2/vpc_.go
		forceNew: []string{"cidrBlock", "ipv4IpamPoolId", "ipv4NetmaskLength"},
		keep:     []string{"cidrBlock", "enableDnsHostnames", "enableNetworkAddressUsageMetrics", "ipv6CidrBlock", "ipv6CidrBlockNetworkBorderGroup"},
		// CustomizeDiff: a tenancy changes in place only from dedicated to default.
		when: func(olds, news resource.PropertyMap) []string {
			tenancy := func(m resource.PropertyMap) string {
				if v := unwrap(m["instanceTenancy"]); v.IsString() {
					return v.StringValue()
				}
				return "default"
			}
			if o, n := tenancy(olds), tenancy(news); o != n && (o != "dedicated" || n != "default") {
				return []string{"instanceTenancy"}
			}
			return nil
		},
	},
	"aws:iam/accessKey:AccessKey": { // internal/service/iam/access_key.go
		forceNew: []string{"pgpKey", "user"},
	},
	"aws:iam/instanceProfile:InstanceProfile": { // internal/service/iam/instance_profile.go
		forceNew: []string{"name", "namePrefix", "path"},
		keep:     []string{"namePrefix"},
	},
	// Added with pod identities, from the provider's documentation and the 6.83.4 Go SDK rather
	// than the schema file (not read here): a new URL replaces the provider; the client ids and
	// thumbprints change in place, and thumbprints are computed when not given.
	"aws:iam/openIdConnectProvider:OpenIdConnectProvider": { // internal/service/iam/openid_connect_provider.go
		forceNew: []string{"url"},
		keep:     []string{"thumbprintLists"},
	},
	"aws:iam/role:Role": { // internal/service/iam/role.go
		forceNew: []string{"name", "namePrefix", "path"},
		keep:     []string{"inlinePolicies", "managedPolicyArns", "namePrefix"},
	},
	"aws:iam/rolePolicy:RolePolicy": { // internal/service/iam/role_policy.go
		forceNew: []string{"name", "namePrefix", "role"},
		keep:     []string{"namePrefix"},
	},
	"aws:iam/rolePolicyAttachment:RolePolicyAttachment": { // internal/service/iam/role_policy_attachment.go
		forceNew: []string{"policyArn", "role"},
	},
	"aws:iam/user:User": { // internal/service/iam/user.go: a new name renames the user in place
	},
	"aws:iam/userPolicy:UserPolicy": { // internal/service/iam/user_policy.go
		forceNew: []string{"name", "namePrefix", "user"},
		keep:     []string{"namePrefix"},
	},
	"aws:lb/listener:Listener": { // internal/service/elbv2/listener.go
		forceNew: []string{"loadBalancerArn"},
		keep:     []string{"mutualAuthentication", "protocol", "sslPolicy"},
	},
	"aws:lb/listenerRule:ListenerRule": { // internal/service/elbv2/listener_rule.go
		forceNew: []string{"listenerArn"},
		keep:     []string{"priority"},
	},
	// Its CustomizeDiff also replaces a network load balancer that loses a subnet or all its
	// security groups, and an application one that loses a subnet mapping; the program's is an
	// application load balancer given subnets, which change in place.
	"aws:lb/loadBalancer:LoadBalancer": { // internal/service/elbv2/load_balancer.go
		forceNew: []string{"customerOwnedIpv4Pool", "internal", "loadBalancerType", "name", "namePrefix"},
		keep:     []string{"enforceSecurityGroupInboundRulesOnPrivateLinkTraffic", "internal", "ipAddressType", "namePrefix", "securityGroups", "subnetMappings", "subnets"},
	},
	"aws:lb/targetGroup:TargetGroup": { // internal/service/elbv2/target_group.go
		forceNew: []string{"ipAddressType", "name", "namePrefix", "port", "protocol", "protocolVersion", "targetType", "vpcId"},
		keep: []string{"connectionTermination", "healthCheck", "ipAddressType", "loadBalancingAlgorithmType", "loadBalancingAnomalyMitigation",
			"loadBalancingCrossZoneEnabled", "namePrefix", "preserveClientIp", "protocolVersion", "stickiness", "targetFailovers", "targetGroupHealth", "targetHealthStates"},
	},
	"aws:route53/record:Record": { // internal/service/route53/record.go
		forceNew: []string{"name", "zoneId"},
		keep:     []string{"allowOverwrite"},
	},
	"aws:s3/bucketCorsConfigurationV2:BucketCorsConfigurationV2": { // internal/service/s3/bucket_cors_configuration.go
		forceNew: []string{"bucket", "expectedBucketOwner"},
	},
	"aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2": { // internal/service/s3/bucket_lifecycle_configuration.go
		forceNew: []string{"bucket", "expectedBucketOwner"},
	},
	// Added with pod identities, as above (not read in the schema file): an object is replaced
	// for another bucket or key, and its content changes in place; the storage and encryption
	// settings S3 fills in are kept.
	"aws:s3/bucketObjectv2:BucketObjectv2": { // internal/service/s3/object.go
		forceNew: []string{"bucket", "key"},
		keep:     []string{"acl", "bucketKeyEnabled", "contentType", "etag", "kmsKeyId", "serverSideEncryption", "storageClass"},
	},
	"aws:s3/bucketOwnershipControls:BucketOwnershipControls": { // internal/service/s3/bucket_ownership_controls.go
		forceNew: []string{"bucket"},
	},
	"aws:s3/bucketPolicy:BucketPolicy": { // internal/service/s3/bucket_policy.go
		forceNew: []string{"bucket"},
	},
	"aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": { // internal/service/s3/bucket_public_access_block.go
		forceNew: []string{"bucket"},
	},
	"aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2": { // internal/service/s3/bucket_server_side_encryption_configuration.go
		forceNew: []string{"bucket", "expectedBucketOwner"},
	},
	"aws:s3/bucketV2:BucketV2": { // internal/service/s3/bucket.go
		forceNew: []string{"bucket", "bucketPrefix", "objectLockConfiguration.objectLockEnabled", "objectLockEnabled"},
		keep: []string{"accelerationStatus", "acl", "bucketPrefix", "corsRules", "grants", "lifecycleRules", "loggings", "objectLockConfiguration",
			"objectLockEnabled", "policy", "replicationConfigurations", "requestPayer", "serverSideEncryptionConfigurations", "versionings", "websites"},
	},
	"aws:s3/bucketVersioningV2:BucketVersioningV2": { // internal/service/s3/bucket_versioning.go
		forceNew: []string{"bucket", "expectedBucketOwner"},
	},
	"aws:scheduler/schedule:Schedule": { // internal/service/scheduler/schedule.go
		forceNew: []string{"groupName", "name", "namePrefix"},
		keep:     []string{"groupName", "namePrefix"},
	},
	"aws:scheduler/scheduleGroup:ScheduleGroup": { // internal/service/scheduler/schedule_group.go
		forceNew: []string{"name", "namePrefix"},
		keep:     []string{"namePrefix"},
	},
	"aws:ssm/parameter:Parameter": { // internal/service/ssm/parameter.go
		forceNew: []string{"dataType", "name"},
		keep:     []string{"arn", "dataType", "insecureValue", "keyId", "tier", "value"},
		// CustomizeDiff: an advanced parameter cannot become a standard one in place.
		when: func(olds, news resource.PropertyMap) []string {
			if o, n := unwrap(olds["tier"]), unwrap(news["tier"]); o.IsString() && n.IsString() && o.StringValue() == "Advanced" && n.StringValue() == "Standard" {
				return []string{"tier"}
			}
			return nil
		},
	},
	"aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule": { // internal/service/ec2/vpc_security_group_egress_rule.go (its schema: ..._ingress_rule.go)
		forceNew: []string{"securityGroupId"},
		when:     ruleSourceKind,
	},
	"aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule": { // internal/service/ec2/vpc_security_group_ingress_rule.go
		forceNew: []string{"securityGroupId"},
		when:     ruleSourceKind,
	},
}

// ruleSourceKind: a security group rule's ModifyPlan replaces it when its source changes kind
// (an IPv4 range, an IPv6 range, a prefix list or a security group).
func ruleSourceKind(olds, news resource.PropertyMap) []string {
	kind := func(m resource.PropertyMap) string {
		for _, k := range []resource.PropertyKey{"cidrIpv4", "cidrIpv6", "prefixListId", "referencedSecurityGroupId"} {
			if m[k].HasValue() {
				return string(k)
			}
		}
		return ""
	}
	if o, n := kind(olds), kind(news); o != n {
		return slices.DeleteFunc([]string{o, n}, func(k string) bool { return k == "" })
	}
	return nil
}

// replaces returns the changed inputs whose change replaces the resource, sorted.
func (r rules) replaces(olds, news resource.PropertyMap, changed []string) []string {
	if r.everyInput {
		return slices.Clone(changed)
	}
	var out []string
	for _, p := range r.forceNew {
		path := strings.Split(p, ".")
		if slices.Contains(changed, path[0]) && !at(olds[resource.PropertyKey(path[0])], path[1:]).DeepEquals(at(news[resource.PropertyKey(path[0])], path[1:])) {
			out = append(out, path[0])
		}
	}
	if r.when != nil {
		for _, k := range r.when(olds, news) {
			if slices.Contains(changed, k) {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// at is the value at a path inside v: a list yields the list of its elements' values.
func at(v resource.PropertyValue, path []string) resource.PropertyValue {
	v = unwrap(v)
	switch {
	case len(path) == 0:
		return v
	case v.IsObject():
		return at(v.ObjectValue()[resource.PropertyKey(path[0])], path[1:])
	case v.IsArray():
		var out []resource.PropertyValue
		for _, e := range v.ArrayValue() {
			out = append(out, at(e, path))
		}
		return resource.NewArrayProperty(out)
	}
	return v
}

func unwrap(v resource.PropertyValue) resource.PropertyValue {
	for v.IsSecret() {
		v = v.SecretValue().Element
	}
	return v
}

// changedOf returns the keys among ks whose values differ.
func changedOf(olds, news resource.PropertyMap, ks ...string) []string {
	var out []string
	for _, k := range ks {
		if !olds[resource.PropertyKey(k)].DeepEquals(news[resource.PropertyKey(k)]) {
			out = append(out, k)
		}
	}
	return out
}
