package infra

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ssm"
	"github.com/pulumi/pulumi-tls/sdk/v5/go/tls"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
)

// NodesArgs are the inputs of the EC2 nodes.
type NodesArgs struct {
	// Config is the validated stack configuration.
	Config *config.Config
	// Subnets are the public subnets, in config order.
	Subnets []*ec2.Subnet
	// SecurityGroups are the node and control-plane groups.
	SecurityGroups *SecurityGroups
	// Profiles are the instance profiles by role.
	Profiles map[config.Role]*iam.InstanceProfile
	// UserData is the preparation script by role, stored in SSM and run by the fixed bootstrap
	// that is the instances' actual user data (bootstrap.go).
	UserData map[config.Role]string
	// DeleteAfter are the resources the nodes need until they are deleted: the subnets' internet
	// routes, the security-group rules (SSH and the API from the deploying machine) and the
	// roles' policies (the controllers' permissions). Every instance and the Elastic IP depend on
	// them, and so, through the instances, does every remote command and Kubernetes provider:
	// `pulumi destroy` then removes them last instead of in its first wave.
	DeleteAfter []pulumi.Resource
	// Live are the stack's instances EC2 still has (LiveNodes); none on a new stack.
	Live []LiveNode
}

// Nodes holds the four instances, the SSH key they accept and the control plane's Elastic IP.
type Nodes struct {
	pulumi.ResourceState

	// Instances are keyed by role.
	Instances map[config.Role]*ec2.Instance
	// EndpointIP is the master's Elastic IP: the public control-plane endpoint.
	EndpointIP    pulumi.StringOutput
	masterAddress pulumi.StringOutput
	// SSHUser is the login user of the Ubuntu AMI.
	SSHUser string
	// SSHPrivateKey logs in to every node. A secret.
	SSHPrivateKey pulumi.StringOutput
}

// KeyPairName is the EC2 key pair every node of the stack is launched with.
func KeyPairName(cfg *config.Config) string { return cfg.ClusterID() + "-ssh" }

// nodeImages resolves config nodeImage to the AMI each node boots.
//
// A pinned image is every node's: an AMI id as given, or the exact name of a Canonical image by
// lookup (one image per name and region, so the answer does not move). Unset (dev stacks only;
// config refuses it on production), each node keeps the image its instance was launched from
// (live, read by LiveNodes), and only a node the stack does not run (a new stack, a node
// terminated) boots the newest Ubuntu 24.04 image. So a new Canonical image never replaces a
// running node, the master above all, on an ordinary merge; moving to it is a change an operator
// makes (set nodeImage).
func nodeImages(ctx *pulumi.Context, cfg *config.Config, live []LiveNode, parent pulumi.Resource) (map[config.Role]string, error) {
	images := map[config.Role]string{}
	if cfg.NodeImage != "" {
		ami := cfg.NodeImage
		if !strings.HasPrefix(ami, "ami-") {
			var err error
			if ami, err = lookupImage(ctx, cfg.NodeImage, false, parent); err != nil {
				return nil, err
			}
		}
		for _, node := range cfg.Nodes {
			images[node.Role] = ami
		}
		return images, nil
	}
	running, err := runningImages(cfg, live)
	if err != nil {
		return nil, err
	}
	if err := warnOfGoneImages(ctx, cfg, running, parent); err != nil {
		return nil, err
	}
	newest := ""
	for _, node := range cfg.Nodes {
		if ami, ok := running[node.Role]; ok {
			images[node.Role] = ami
			continue
		}
		if newest == "" {
			if newest, err = lookupImage(ctx, UbuntuAMIName, true, parent); err != nil {
				return nil, err
			}
		}
		images[node.Role] = newest
	}
	return images, nil
}

// GoneImages are the images of running, by role, that EC2 no longer finds: their owner
// deregistered them (Canonical withdraws old images). The node runs on, but its replacement would
// fail at launch. One lookup per distinct image.
func GoneImages(ctx *pulumi.Context, running map[config.Role]string, parent pulumi.Resource) map[config.Role]string {
	gone := map[config.Role]string{}
	found := map[string]bool{}
	for _, role := range slices.Sorted(maps.Keys(running)) {
		ami := running[role]
		ok, seen := found[ami]
		if !seen {
			_, err := ec2.LookupAmi(ctx, &ec2.LookupAmiArgs{
				IncludeDeprecated: pulumi.BoolRef(true),
				Filters:           []ec2.GetAmiFilter{{Name: "image-id", Values: []string{ami}}},
			}, pulumi.Parent(parent))
			// The provider answers "Your query returned no results" for an image that is gone; any
			// other failure reads the same here, which costs only a warning.
			ok, found[ami] = err == nil, err == nil
		}
		if !ok {
			gone[role] = ami
		}
	}
	return gone
}

// warnOfGoneImages warns, for each node that keeps an image EC2 no longer finds, that replacing
// it needs nodeImage first.
func warnOfGoneImages(ctx *pulumi.Context, cfg *config.Config, running map[config.Role]string, parent pulumi.Resource) error {
	gone := GoneImages(ctx, running, parent)
	for _, role := range slices.Sorted(maps.Keys(gone)) {
		if err := ctx.Log.Warn(fmt.Sprintf("the %s node of stack %s keeps the image it was launched from, %s (nodeImage is unset), "+
			"which EC2 no longer finds (deregistered by its owner): the node runs on, but a replacement of it would fail at "+
			"launch, on the master after the old one is gone. Set nodeImage to a current image before replacing it "+
			"(docs/operations.md, \"The node image\")", role, cfg.Stack, gone[role]), nil); err != nil {
			return err
		}
	}
	return nil
}

// lookupImage finds a Canonical image by name: the newest of a pattern, or one exact name.
func lookupImage(ctx *pulumi.Context, name string, mostRecent bool, parent pulumi.Resource) (string, error) {
	ami, err := ec2.LookupAmi(ctx, &ec2.LookupAmiArgs{
		Owners:     []string{canonicalOwner},
		MostRecent: pulumi.BoolRef(mostRecent),
		// A pinned image stays usable after Canonical deprecates it.
		IncludeDeprecated: pulumi.BoolRef(!mostRecent),
		Filters: []ec2.GetAmiFilter{
			{Name: "name", Values: []string{name}},
			{Name: "architecture", Values: []string{"x86_64"}},
			{Name: "virtualization-type", Values: []string{"hvm"}},
		},
	}, pulumi.Parent(parent))
	if err != nil {
		return "", fmt.Errorf("look up node image %q (config nodeImage): %w", name, err)
	}
	return ami.Id, nil
}

// liveInstanceStates are the EC2 states of an instance the stack still has: dev's nodes are
// stopped outside office hours and must keep their image all the same.
var liveInstanceStates = []string{"pending", "running", "stopping", "stopped"}

// LiveNode is an instance of the stack that EC2 still has, as LiveNodes read it.
type LiveNode struct {
	// ID is the instance id; Role its Role tag.
	ID   string
	Role config.Role
	// Image is the AMI it was launched from.
	Image string
	// RootGiB is the size of its root volume now (0 if EC2 reported no root device).
	RootGiB int
	// InstanceType is its EC2 instance type now; Spot whether it runs on spot capacity (its
	// instance lifecycle), so how it is bought now.
	InstanceType string
	Spot         bool
}

// LiveNodes looks up the stack's instances (tagged with its cluster tag) in any state but shutting
// down or terminated, in order of instance id: one list, then, only if it finds any, a list of
// those on spot capacity and one lookup per instance. Called once, before anything is declared;
// the images the nodes keep (nodeImages), the root volumes that cannot shrink
// (CheckCreateTimeSettings) and the nodes a capacity change moves (CheckCapacityChanges) are all
// read from it. A new stack has none.
func LiveNodes(ctx *pulumi.Context, cfg *config.Config) ([]LiveNode, error) {
	owned := ec2.GetInstancesFilter{Name: "tag:" + ClusterTag(cfg), Values: []string{"owned"}}
	res, err := ec2.GetInstances(ctx, &ec2.GetInstancesArgs{Filters: []ec2.GetInstancesFilter{owned}, InstanceStateNames: liveInstanceStates})
	if err != nil {
		return nil, fmt.Errorf("look up the nodes of %s: %w", cfg.ClusterID(), err)
	}
	if len(res.Ids) == 0 {
		return nil, nil
	}
	// The instance lookup does not say how an instance is bought; DescribeInstances' filter
	// instance-lifecycle (spot | scheduled | capacity-block; absent on demand) does.
	spot, err := ec2.GetInstances(ctx, &ec2.GetInstancesArgs{
		Filters:            []ec2.GetInstancesFilter{owned, {Name: "instance-lifecycle", Values: []string{"spot"}}},
		InstanceStateNames: liveInstanceStates,
	})
	if err != nil {
		return nil, fmt.Errorf("look up the spot nodes of %s: %w", cfg.ClusterID(), err)
	}
	var live []LiveNode
	for _, id := range slices.Sorted(slices.Values(res.Ids)) {
		inst, err := ec2.LookupInstance(ctx, &ec2.LookupInstanceArgs{InstanceId: pulumi.StringRef(id)})
		if err != nil {
			return nil, fmt.Errorf("look up node %s of %s: %w", id, cfg.ClusterID(), err)
		}
		if !slices.Contains(liveInstanceStates, inst.InstanceState) {
			continue // terminated since the list was taken
		}
		node := LiveNode{ID: id, Role: config.Role(inst.Tags["Role"]), Image: inst.Ami,
			InstanceType: inst.InstanceType, Spot: slices.Contains(spot.Ids, id)}
		if len(inst.RootBlockDevices) > 0 {
			node.RootGiB = inst.RootBlockDevices[0].VolumeSize
		}
		live = append(live, node)
	}
	return live, nil
}

// runningImages are the AMIs the stack's live instances were launched from, by their Role tag.
// Two instances of one role with different images (a stray relaunched by a spot request the
// provider failed to cancel, or an up stopped between launching a replacement and terminating
// the old node) are refused: which one the stack's state holds cannot be told from here, and a
// wrong guess would replace a node.
func runningImages(cfg *config.Config, live []LiveNode) (map[config.Role]string, error) {
	images, seen := map[config.Role]string{}, map[config.Role]string{}
	for _, inst := range live {
		role := inst.Role
		if prev, ok := images[role]; ok && prev != inst.Image {
			return nil, fmt.Errorf("instances %s (%s) and %s (%s) of stack %s both carry Role=%s and run different images, so the "+
				"image that node keeps cannot be told (config nodeImage is unset): terminate the one the stack does not "+
				"manage (`pulumi stack export` holds the managed instance ids), or set nodeImage", seen[role], prev, inst.ID, inst.Image, cfg.Stack, role)
		}
		images[role], seen[role] = inst.Image, inst.ID
	}
	return images, nil
}

// Canonical's AWS account, the owner of the official Ubuntu AMIs.
const canonicalOwner = "099720109477"

// UbuntuAMIName matches Ubuntu 24.04 LTS (noble) amd64 server images on gp3.
const UbuntuAMIName = "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"

// MetadataHopLimit is 1: IMDSv2's answers reach the host and nothing a network hop further, so
// no pod in its own network namespace gets the node role's credentials (a pod on the host's
// network, kube-system only, is the host). Pods that call AWS have roles of their own
// (podidentity.go).
const MetadataHopLimit = 1

// NewNodes declares the key pair, the instances and the control plane's Elastic IP.
func NewNodes(ctx *pulumi.Context, name string, args *NodesArgs, opts ...pulumi.ResourceOption) (*Nodes, error) {
	n := &Nodes{Instances: map[config.Role]*ec2.Instance{}, SSHUser: "ubuntu"}
	if err := ctx.RegisterComponentResource("waste-coach-infra:infra:Nodes", name, n, opts...); err != nil {
		return nil, err
	}
	cfg := args.Config
	parent := pulumi.Parent(n)

	publicKey := pulumi.String(cfg.SSHPublicKey).ToStringOutput()
	n.SSHPrivateKey = cfg.SSHPrivateKey
	if cfg.SSHPublicKey == "" {
		key, err := tls.NewPrivateKey(ctx, name+"-ssh", &tls.PrivateKeyArgs{Algorithm: pulumi.String("ED25519")},
			parent, pulumi.AdditionalSecretOutputs([]string{"privateKeyOpenssh", "privateKeyPem", "privateKeyPemPkcs8"}))
		if err != nil {
			return nil, fmt.Errorf("generate ssh key: %w", err)
		}
		publicKey = key.PublicKeyOpenssh
		n.SSHPrivateKey = pulumi.ToSecret(key.PrivateKeyOpenssh).(pulumi.StringOutput)
	}
	// The key pair has one fixed name for the life of the stack, and the instances name it as
	// plain text rather than through the key pair's output. Rotating the key replaces the key
	// pair under the same name (deleted first, since names are unique), so no instance input
	// changes and no node is replaced; a node launched later gets the current key. Running
	// nodes read the key only at first boot: rotation there is authorized_keys
	// (docs/operations.md).
	keyName := KeyPairName(cfg)
	keyPair, err := ec2.NewKeyPair(ctx, name+"-ssh", &ec2.KeyPairArgs{
		KeyName:   pulumi.String(keyName),
		PublicKey: publicKey,
		Tags:      tags(cfg, cfg.ClusterName+"-ssh", nil),
	}, parent, pulumi.DeleteBeforeReplace(true))
	if err != nil {
		return nil, fmt.Errorf("create key pair: %w", err)
	}

	images, err := nodeImages(ctx, cfg, args.Live, n)
	if err != nil {
		return nil, err
	}

	// The master's fixed address is in a subnet other nodes share. An explicit reservation takes
	// it out of EC2's automatic assignment: only a launch that asks for the address gets it, so a
	// node launched while the master is being replaced cannot take it.
	masterIP, err := ec2.NewSubnetCidrReservation(ctx, name+"-master-ip", &ec2.SubnetCidrReservationArgs{
		SubnetId:        args.Subnets[cfg.Node(config.RoleMaster).Subnet].ID(),
		CidrBlock:       pulumi.String(MasterIPReservation(cfg)),
		ReservationType: pulumi.String("explicit"),
		Description:     pulumi.String("control-plane address of " + cfg.ClusterID()),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("reserve the master's address: %w", err)
	}
	// Every instance launches after the reservation and its key pair exist (and is deleted
	// before them).
	instanceDeps := append([]pulumi.Resource{masterIP, keyPair}, args.DeleteAfter...)

	for _, node := range cfg.Nodes {
		groups := pulumi.StringArray{args.SecurityGroups.Nodes.ID()}
		var privateIP pulumi.StringPtrInput
		if node.Role.ControlPlane() {
			groups = append(groups, args.SecurityGroups.ControlPlane.ID())
			privateIP = pulumi.String(cfg.MasterPrivateIP().String())
		}
		nodeName := fmt.Sprintf("%s-%s-%s", cfg.ClusterName, cfg.Stack, node.Role)
		// The preparation script, read by the node's fixed bootstrap at first boot (bootstrap.go).
		paramName := PreparationParameterName(cfg, node.Role)
		preparation, err := ssm.NewParameter(ctx, fmt.Sprintf("%s-%s-prepare", name, node.Role), &ssm.ParameterArgs{
			Name:          pulumi.String(paramName),
			Type:          pulumi.String("String"),
			Tier:          pulumi.String("Standard"),
			InsecureValue: pulumi.String(PreparationParameterValue(args.UserData[node.Role])),
			Description:   pulumi.String(fmt.Sprintf("node preparation of %s (gzip, base64), read at first boot", nodeName)),
			Tags:          tags(cfg, nodeName+"-prepare", nil),
		}, parent)
		if err != nil {
			return nil, fmt.Errorf("store preparation of %s: %w", node.Role, err)
		}
		// The master is the cluster's etcd: on production it is protected twice, from Pulumi
		// (protect: no up can replace or delete it) and from EC2 (termination protection, which
		// EC2 allows on on-demand instances only). Its replacement is a deliberate procedure
		// (docs/operations.md, Replacing the master).
		master := node.Role.ControlPlane()
		guard := cfg.Production && master
		// Set on every instance, false included: the provider keeps an unset value as it is, so
		// a master that stops being protected would otherwise stay protected in EC2.
		terminationProtection := pulumi.Bool(guard && node.Capacity == config.OnDemand)
		inst, err := ec2.NewInstance(ctx, fmt.Sprintf("%s-%s", name, node.Role), &ec2.InstanceArgs{
			Ami:                 pulumi.String(images[node.Role]),
			InstanceType:        pulumi.String(node.InstanceType),
			SubnetId:            args.Subnets[node.Subnet].ID(),
			PrivateIp:           privateIP,
			VpcSecurityGroupIds: groups,
			IamInstanceProfile:  args.Profiles[node.Role].Name,
			KeyName:             pulumi.String(keyName),
			// On-demand, or a persistent spot request that stops on interruption (officehours.go).
			InstanceMarketOptions: marketOptions(node),
			// Set on every burstable node rather than left to EC2's default (capacity.go).
			CreditSpecification:   creditSpecification(node),
			UserData:              pulumi.String(BootstrapScript(paramName)),
			DisableApiTermination: terminationProtection,
			MetadataOptions: &ec2.InstanceMetadataOptionsArgs{
				HttpEndpoint:            pulumi.String("enabled"),
				HttpTokens:              pulumi.String("required"),
				HttpPutResponseHopLimit: pulumi.Int(MetadataHopLimit),
			},
			RootBlockDevice: &ec2.InstanceRootBlockDeviceArgs{
				VolumeType:          pulumi.String("gp3"),
				VolumeSize:          pulumi.Int(node.RootVolumeGiB),
				Encrypted:           pulumi.Bool(true),
				DeleteOnTermination: pulumi.Bool(true),
				Tags:                tags(cfg, nodeName+"-root", nil),
			},
			Tags: tags(cfg, nodeName, map[string]string{
				"Role":          string(node.Role),
				ClusterTag(cfg): "owned",
			}),
		}, parent, pulumi.DependsOn(append([]pulumi.Resource{preparation}, instanceDeps...)),
			// No ignoreChanges: Pulumi would carry the ignored old values into a replacement.
			// The image, the user data and the key name are instead inputs that change only when
			// an operator means a new node: the image is pinned or the one the node runs
			// (nodeImages), the user data is a fixed bootstrap, the key name is fixed (above).
			// The master's fixed private address cannot be held by two instances at once.
			pulumi.DeleteBeforeReplace(master), pulumi.Protect(guard),
			// A change of how the node is bought, which the provider would not apply
			// (capacity.go), replaces it.
			pulumi.ReplacementTrigger(pulumi.String(CapacityTrigger(node))))
		if err != nil {
			return nil, fmt.Errorf("create instance %s: %w", node.Role, err)
		}
		n.Instances[node.Role] = inst
		if _, err := spotRequestCanceller(ctx, name, cfg, node.Role, inst, parent); err != nil {
			return nil, err
		}
	}

	// The endpoint address is in the API server's certificate and every kubeconfig: protected on
	// production like the master.
	eip, err := ec2.NewEip(ctx, name+"-endpoint", &ec2.EipArgs{
		Domain: pulumi.String("vpc"),
		Tags:   tags(cfg, cfg.ClusterName+"-"+cfg.Stack+"-endpoint", nil),
	}, parent, pulumi.DependsOn(args.DeleteAfter), pulumi.Protect(cfg.Production))
	if err != nil {
		return nil, fmt.Errorf("create control-plane eip: %w", err)
	}
	assoc, err := ec2.NewEipAssociation(ctx, name+"-endpoint", &ec2.EipAssociationArgs{
		AllocationId: eip.AllocationId,
		InstanceId:   n.Instances[config.RoleMaster].ID(),
	}, parent)
	if err != nil {
		return nil, fmt.Errorf("associate control-plane eip: %w", err)
	}
	// The certificate SANs need the address as soon as it is allocated; an SSH connection to it
	// must wait until it points at the master.
	n.EndpointIP = eip.PublicIp
	n.masterAddress = assoc.PublicIp

	if err := ctx.RegisterResourceOutputs(n, pulumi.Map{"endpointIp": n.EndpointIP}); err != nil {
		return nil, err
	}
	return n, nil
}

// MasterIPReservation is the subnet CIDR reservation that holds the master's fixed private
// address: that one address, as a /32.
func MasterIPReservation(cfg *config.Config) string { return cfg.MasterPrivateIP().String() + "/32" }

// PublicIP returns the address remote commands connect to: the Elastic IP for the master (its
// launch address is released when the EIP is associated), the launch address for the others.
func (n *Nodes) PublicIP(role config.Role) pulumi.StringOutput {
	if role.ControlPlane() {
		return n.masterAddress
	}
	return n.Instances[role].PublicIp
}
