// Package cluster owns everything between "four booted EC2 instances" and "a Kubernetes provider
// the workloads can use": the node preparation scripts, kubeadm init and the joins run over SSH
// as pulumi-command remote commands, the AWS cloud-controller-manager, Calico, and the
// provider itself.
package cluster

import (
	"fmt"
	"strings"
	"time"

	"github.com/pulumi/pulumi-command/sdk/go/command/local"
	"github.com/pulumi/pulumi-command/sdk/go/command/remote"
	"github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes"
	"github.com/pulumi/pulumi-random/sdk/v4/go/random"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/infra"
)

// Args are the inputs of the cluster tier.
type Args struct {
	// Config is the validated stack configuration.
	Config *config.Config
	// Nodes are the instances to bootstrap, with the SSH key they accept.
	Nodes *infra.Nodes
	// EndpointName is the control plane's public DNS name (a certificate SAN).
	EndpointName string
	// PodIdentity is the pods' issuer and roles: the tier publishes the issuer's key set, from
	// the service-account key it owns, there.
	PodIdentity *infra.PodIdentity
}

// Cluster is a bootstrapped kubeadm cluster.
type Cluster struct {
	pulumi.ResourceState

	// Kubeconfig is the deploy credential (cluster-admin through its own binding), pointing at
	// the public endpoint. A secret.
	Kubeconfig pulumi.StringOutput
	// Provider deploys to the cluster once every node is Ready, labelled and has a providerID.
	Provider *kubernetes.Provider
	// CRDProvider declares the CRDs the program took over from its charts (workloads/crds.go).
	// Unlike Provider it adopts an object that already exists: on a stack deployed before the
	// program owned them, Helm had installed those CRDs, and a plain create would fail with
	// "already exists" (a preview does not show it). Only the chart CRDs use it.
	CRDProvider *kubernetes.Provider
	// NodeNames are the Kubernetes node names by role (the instances' private DNS names).
	NodeNames map[config.Role]pulumi.StringOutput
	// EtcdSnapshotPrefix is where the cluster's etcd snapshots go in the backups bucket
	// (EtcdSnapshotPrefix), and where a new master looks for them.
	EtcdSnapshotPrefix pulumi.StringOutput
	// PodRoleARNs are the pod roles' ARNs by infra.PodRole key, known once the issuer's key set
	// (issuer.go) is published.
	PodRoleARNs map[string]pulumi.StringOutput
	// Version is the release the control plane runs, as its upgrade step reported it: the stack
	// records it (VersionOutput) for the next run's guard.
	Version pulumi.StringOutput
}

// SSH dial settings: the local wait command has already seen the port answer, so a few quick
// retries cover sshd restarts during cloud-init.
const (
	dialErrorLimit = 30
	perDialTimeout = 20
)

// UserData renders each role's preparation script; the AWS tier stores it where the instances'
// fixed bootstrap user data reads it at first boot (infra/bootstrap.go).
func UserData(cfg *config.Config) map[config.Role]string {
	out := map[config.Role]string{}
	for _, n := range cfg.Nodes {
		out[n.Role] = NodePrepareScript(cfg, n.Role)
	}
	return out
}

// New bootstraps the cluster. The graph is as parallel as correctness allows: every node waits
// for its own boot; init waits for the master; each join waits for init and its own node only,
// so the workers join in parallel; Calico and the CCM need only init.
func New(ctx *pulumi.Context, name string, args *Args, opts ...pulumi.ResourceOption) (*Cluster, error) {
	c := &Cluster{NodeNames: map[config.Role]pulumi.StringOutput{}}
	if err := ctx.RegisterComponentResource("waste-coach-infra:cluster:Cluster", name, c, opts...); err != nil {
		return nil, err
	}
	cfg, nodes := args.Config, args.Nodes
	b := &builder{ctx: ctx, parent: c, name: name, nodes: nodes, masterIP: cfg.MasterPrivateIP().String()}

	ready := map[config.Role]*remote.Command{}
	for _, n := range cfg.Nodes {
		c.NodeNames[n.Role] = nodes.Instances[n.Role].PrivateDns
		var err error
		if ready[n.Role], err = b.waitForNode(n.Role); err != nil {
			return nil, err
		}
	}

	master := config.RoleMaster
	kubeadmConfig := nodes.EndpointIP.ApplyT(func(ip string) string {
		return KubeadmConfig(cfg, KubeadmParams{PublicIP: ip, EndpointName: args.EndpointName})
	}).(pulumi.StringOutput)
	// The key that encrypts Secrets at rest: generated once, kept in the state as a secret, and
	// handed to the master on standard input, never in the script. It is part of the cluster's
	// identity: a new master restoring etcd with another key could read no Secret, and a running
	// master never takes a new one (kubeadm-init leaves an initialised master alone). Production
	// protects it like the CAs.
	secretsKey, err := random.NewRandomBytes(ctx, name+"-secrets-encryption", &random.RandomBytesArgs{
		Length: pulumi.Int(32),
	}, pulumi.Parent(c), pulumi.AdditionalSecretOutputs([]string{"base64", "hex"}), pulumi.Protect(cfg.Production))
	if err != nil {
		return nil, fmt.Errorf("secrets encryption key: %w", err)
	}
	// The cluster's identity (pki.go): the program's own, unless the master was initialised
	// before the program owned it; then the identity read from it, once in the life of the
	// stack, is kept. Losing either from the state would change the CA, so production protects
	// them as it protects the master.
	protect := pulumi.Protect(cfg.Production)
	generated, err := newIdentity(ctx, name, pulumi.Parent(c), protect)
	if err != nil {
		return nil, fmt.Errorf("cluster identity: %w", err)
	}
	pkiRead, err := b.command(master, "pki-read", commandSpec{
		create:       pulumi.String(PKIReadScript()),
		dependsOn:    []pulumi.Resource{ready[master]},
		once:         true,
		secretOutput: true,
		options:      []pulumi.ResourceOption{protect},
	})
	if err != nil {
		return nil, err
	}
	identity := pulumi.ToSecret(pulumi.All(pkiRead.Stdout, generated).ApplyT(func(v []any) (map[string]string, error) {
		return ChooseIdentity(v[0].(string), v[1].(string))
	})).(pulumi.StringMapOutput)
	caHash := identity.ApplyT(func(files map[string]string) (string, error) {
		return CACertHash(files["ca.crt"])
	}).(pulumi.StringOutput)

	// The key set of the pods' issuer, from the service-account key the cluster runs with:
	// public, though computed from the secret identity.
	jwks := pulumi.Unsecret(identity.ApplyT(func(files map[string]string) (string, error) {
		return JWKS(files["sa.pub"])
	})).(pulumi.StringOutput)
	published, err := args.PodIdentity.PublishKeys(ctx, jwks)
	if err != nil {
		return nil, fmt.Errorf("pod identities: %w", err)
	}

	// The etcd snapshots of this cluster: the CronJob writes them there, and a new master
	// restores the newest (kubeadm-init). The prefix derives from the etcd CA's public key and
	// says nothing secret.
	c.EtcdSnapshotPrefix = pulumi.Unsecret(identity.ApplyT(func(files map[string]string) (string, error) {
		return EtcdSnapshotPrefix(files["etcd/ca.crt"])
	})).(pulumi.StringOutput)

	// etcdutl on the master: kubeadm-init restores with it, and the restore runbook uses it. It
	// runs on every new master, and on the running one when the pin changes (the node
	// preparation runs only at first boot).
	etcdutl, err := b.command(master, "etcdutl", commandSpec{
		create:    pulumi.String(EtcdutlScript()),
		dependsOn: []pulumi.Resource{ready[master]},
	})
	if err != nil {
		return nil, err
	}

	initCmd, err := b.command(master, "kubeadm-init", commandSpec{
		create: pulumi.All(kubeadmConfig, c.EtcdSnapshotPrefix).ApplyT(func(v []any) string {
			return KubeadmInitScript(v[0].(string), Snapshots{
				Bucket: cfg.Backups.BucketName, Region: cfg.Region, Prefix: v[1].(string), Days: cfg.Backups.RetentionDays,
			}, cfg.MasterPrivateIP().String())
		}).(pulumi.StringOutput),
		stdin: pulumi.ToSecret(pulumi.All(identity, secretsKey.Base64).ApplyT(func(v []any) string {
			return InitBundle(v[0].(map[string]string), EncryptionConfig(v[1].(string)))
		})).(pulumi.StringOutput),
		dependsOn: []pulumi.Resource{pkiRead, etcdutl},
		// kubeadm prints a bootstrap token; the script keeps it out of stdout, and the outputs
		// are secret all the same.
		secretOutput: true,
	})
	if err != nil {
		return nil, err
	}

	// A kubernetesVersion change, on the control plane first (upgrade.go). What must not run ahead
	// of the API server's version waits for it, and so does everything that talks to the API
	// server while `kubeadm upgrade apply` restarts it: the credential, Calico, the CRDs.
	upgradeMaster, err := b.upgradeControlPlane(cfg, initCmd)
	if err != nil {
		return nil, err
	}
	c.Version = upgradeMaster.Stdout.ApplyT(RunningVersion).(pulumi.StringOutput)
	// Then the master's configuration, which may restart the API server too (reconfigure.go):
	// what waits for the upgrade waits for it.
	controlPlane, err := b.reconfigureControlPlane(kubeadmConfig, upgradeMaster)
	if err != nil {
		return nil, err
	}

	// The deploy credential, looked at again every month so that it is renewed before it
	// expires (ReadKubeconfigScript).
	kubeconfigCmd, err := b.command(master, "kubeconfig", commandSpec{
		create:       pulumi.String(ReadKubeconfigScript()),
		dependsOn:    []pulumi.Resource{controlPlane},
		triggers:     pulumi.Array{pulumi.String(CredentialRenewalPeriod(time.Now()))},
		secretOutput: true,
	})
	if err != nil {
		return nil, err
	}
	// Inside the cluster the endpoint is the master's private address; from outside it is the
	// Elastic IP, which is one of the API server certificate's SANs.
	c.Kubeconfig = pulumi.ToSecret(pulumi.All(kubeconfigCmd.Stdout, nodes.EndpointIP).ApplyT(func(v []any) string {
		return PublicKubeconfig(v[0].(string), cfg.MasterPrivateIP().String(), v[1].(string))
	})).(pulumi.StringOutput)

	// The control plane's certificates, renewed by a daily timer on the master (upgrade.go).
	if _, err := b.certRenewal(initCmd); err != nil {
		return nil, err
	}

	calico, err := b.command(master, "calico", commandSpec{
		create:    pulumi.String(CalicoScript(cfg.Kubernetes)),
		dependsOn: []pulumi.Resource{controlPlane},
	})
	if err != nil {
		return nil, err
	}

	members := []pulumi.Resource{calico}
	for _, n := range cfg.Nodes {
		if n.Role.ControlPlane() {
			continue
		}
		steps, err := b.join(n.Role, controlPlane, ready[n.Role], caHash, kubeadmAPIVersion(cfg.Kubernetes))
		if err != nil {
			return nil, err
		}
		members = append(members, steps...)
	}

	// The CCM's provider: it runs the image of the configured minor, so nothing it manages
	// changes before the control plane runs that minor (the provider waits for its upgrade step).
	bootstrap, err := kubernetes.NewProvider(ctx, name+"-bootstrap", &kubernetes.ProviderArgs{
		Kubeconfig:        c.Kubeconfig,
		ClusterIdentifier: pulumi.String(Identifier(cfg)),
	}, pulumi.Parent(c), pulumi.DependsOn([]pulumi.Resource{controlPlane}))
	if err != nil {
		return nil, fmt.Errorf("create bootstrap provider: %w", err)
	}
	ccm, err := NewCloudControllerManager(ctx, name+"-ccm", &CloudControllerManagerArgs{Config: cfg, RoleARN: published[infra.PodRoleCCM]},
		pulumi.Parent(c), pulumi.Provider(bootstrap))
	if err != nil {
		return nil, fmt.Errorf("cloud-controller-manager: %w", err)
	}
	// STS must be able to use the pods' issuer before any workload relies on it: the check
	// exchanges a token of the CCM's ServiceAccount (declared above) for the CCM's role. The
	// workloads get their roles only once it has passed, and an up it fails stops before the
	// node roles lose what the pods used to take from them (deletes run last).
	if c.PodRoleARNs, err = b.issuerCheck(cfg, jwks, published, controlPlane, ccm); err != nil {
		return nil, err
	}

	// Tied to every node, not only the master: `pulumi up --replace` of any node runs it again,
	// so the update returns only once the new node is Ready and initialised by the CCM.
	// (The master's own id is added by command.)
	everyNode := pulumi.Array{}
	for _, n := range cfg.Nodes {
		if n.Role != master {
			everyNode = append(everyNode, nodes.Instances[n.Role].ID())
		}
	}
	nodesReady, err := b.command(master, "nodes-ready", commandSpec{
		create:    pulumi.String(NodesReadyScript(len(cfg.Nodes))),
		dependsOn: append(members, ccm),
		triggers:  everyNode,
	})
	if err != nil {
		return nil, err
	}

	// The workloads wait for the whole kubelet rollout, not only for the nodes: the first
	// rollout of the pressure settings restarts each kubelet with about 10 GiB less allocatable
	// disk, and pods placed by the scheduler against a node's old allocatable while the workloads
	// (which request ephemeral storage) roll out beside it would be rejected by the restarted
	// kubelet (OutOfephemeral-storage). A dependency is no input: the provider's inputs, and so
	// every object it manages, are unchanged by it.
	// The other nodes follow the control plane's version one at a time, before the kubelet
	// rollout (which a version change does not run: its trigger is the kubelet settings' hash).
	upgraded, err := b.upgradeNodes(cfg, nodesReady)
	if err != nil {
		return nil, err
	}
	kubeletDone, err := b.kubeletRollout(cfg, initCmd, upgraded)
	if err != nil {
		return nil, err
	}

	c.Provider, err = kubernetes.NewProvider(ctx, name, &kubernetes.ProviderArgs{
		Kubeconfig:        c.Kubeconfig,
		ClusterIdentifier: pulumi.String(Identifier(cfg)),
		// Server-side apply: field ownership is explicit, and a re-run never fights another
		// manager over a field.
		EnableServerSideApply: pulumi.Bool(true),
	}, pulumi.Parent(c), pulumi.DependsOn([]pulumi.Resource{nodesReady, kubeletDone}))
	if err != nil {
		return nil, fmt.Errorf("create provider: %w", err)
	}

	c.CRDProvider, err = kubernetes.NewProvider(ctx, name+"-crds", &kubernetes.ProviderArgs{
		Kubeconfig:            c.Kubeconfig,
		ClusterIdentifier:     pulumi.String(Identifier(cfg)),
		EnableServerSideApply: pulumi.Bool(true),
		UpsertExistingObjects: pulumi.Bool(true),
	}, pulumi.Parent(c), pulumi.DependsOn([]pulumi.Resource{controlPlane}))
	if err != nil {
		return nil, fmt.Errorf("create CRD provider: %w", err)
	}

	if err := ctx.RegisterResourceOutputs(c, pulumi.Map{"kubeconfig": c.Kubeconfig}); err != nil {
		return nil, err
	}
	return c, nil
}

// Identifier names the cluster to the Kubernetes providers. It comes from plain config
// (stack and cluster name), never from the credential: a new kubeconfig, or one unknown at
// preview, is then an update of the provider instead of a replacement of every object it manages.
func Identifier(cfg *config.Config) string {
	return cfg.ClusterID()
}

// PublicKubeconfig points an admin kubeconfig at the public endpoint instead of the private one.
func PublicKubeconfig(kubeconfig, privateIP, publicIP string) string {
	return strings.ReplaceAll(kubeconfig, "https://"+privateIP+":6443", "https://"+publicIP+":6443")
}

// builder declares the tier's commands with one set of connection and secrecy settings.
type builder struct {
	ctx    *pulumi.Context
	parent pulumi.Resource
	name   string
	nodes  *infra.Nodes
	// masterIP is the in-VPC control-plane address (kubeadm's controlPlaneEndpoint).
	masterIP string
	// masterSSH waits for the master's SSH port, which every other node is reached through;
	// New waits for the master first (config.Roles order).
	masterSSH *local.Command
}

// commandSpec is one remote command.
type commandSpec struct {
	create    pulumi.StringInput
	delete    pulumi.StringInput
	stdin     pulumi.StringInput
	dependsOn []pulumi.Resource
	// triggers add to the instance id, which every command is tied to.
	triggers pulumi.Array
	// secretOutput turns logging off and stores stdout and stderr encrypted.
	secretOutput bool
	// untied leaves the command out of the instance id: it runs again only when its triggers
	// change (or its script or connection does, which a replaced node's new address is).
	untied bool
	// once runs the command only when it is created, on whichever instance holds the role then:
	// it is not tied to the instance id, and it ignores every change of its inputs (a new
	// connection, script or setting would otherwise be an update that runs it again): its output
	// is what the state must keep.
	once bool
	// options are added to the command's resource options.
	options []pulumi.ResourceOption
}

func (b *builder) connection(role config.Role) remote.ConnectionArgs {
	return Connection(b.nodes, role)
}

// Connection is the SSH connection to the node of role that every remote command uses; its
// private key is a secret. The master is reached at its Elastic IP; every other node through
// the master, at its private address. Both survive a stop and start of the instances (office
// hours, spot interruptions), while a worker's launch-time public address changes on every
// start: a connection to it would be stale in the state the next morning, and a refresh would
// change every command's connection and run it again.
func Connection(nodes *infra.Nodes, role config.Role) remote.ConnectionArgs {
	master := remote.ConnectionArgs{
		Host:           nodes.PublicIP(config.RoleMaster),
		User:           pulumi.String(nodes.SSHUser),
		PrivateKey:     nodes.SSHPrivateKey,
		DialErrorLimit: pulumi.Int(dialErrorLimit),
		PerDialTimeout: pulumi.Int(perDialTimeout),
	}
	if role.ControlPlane() {
		return master
	}
	return remote.ConnectionArgs{
		Host:           nodes.Instances[role].PrivateIp,
		User:           pulumi.String(nodes.SSHUser),
		PrivateKey:     nodes.SSHPrivateKey,
		DialErrorLimit: pulumi.Int(dialErrorLimit),
		PerDialTimeout: pulumi.Int(perDialTimeout),
		Proxy: &remote.ProxyConnectionArgs{
			Host:           master.Host,
			User:           master.User,
			PrivateKey:     master.PrivateKey,
			DialErrorLimit: master.DialErrorLimit,
			PerDialTimeout: master.PerDialTimeout,
		},
	}
}

// command runs a script on the node of role; step names it and is unique in the tier. It is tied to the node's instance id, so a
// replaced instance runs it again; every script is idempotent, so a re-run is harmless.
func (b *builder) command(role config.Role, step string, s commandSpec) (*remote.Command, error) {
	triggers := append(pulumi.Array{b.nodes.Instances[role].ID()}, s.triggers...)
	if s.once || s.untied {
		triggers = s.triggers
	}
	args := &remote.CommandArgs{
		Connection: b.connection(role),
		Create:     s.create,
		Delete:     s.delete,
		Stdin:      s.stdin,
		Triggers:   triggers,
		// The previous run's output must not be replayed into the next run's environment: it
		// may be a token or a kubeconfig.
		AddPreviousOutputInEnv: pulumi.Bool(false),
	}
	opts := append([]pulumi.ResourceOption{pulumi.Parent(b.parent), pulumi.DependsOn(s.dependsOn)}, s.options...)
	if s.once {
		opts = append(opts, pulumi.IgnoreChanges([]string{"*"}))
	}
	if s.secretOutput {
		args.Logging = remote.LoggingNone
		opts = append(opts, pulumi.AdditionalSecretOutputs([]string{"stdout", "stderr"}))
	}
	cmd, err := remote.NewCommand(b.ctx, b.name+"-"+step, args, opts...)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", step, role, err)
	}
	return cmd, nil
}

// waitForNode waits, from the deploying machine, for the node's SSH port, then on the node for
// its first-boot preparation.
func (b *builder) waitForNode(role config.Role) (*remote.Command, error) {
	inst := b.nodes.Instances[role]
	ssh, err := local.NewCommand(b.ctx, fmt.Sprintf("%s-wait-ssh-%s", b.name, role), &local.CommandArgs{
		Create:      pulumi.String(WaitSSHScript()),
		Interpreter: pulumi.StringArray{pulumi.String("/bin/bash"), pulumi.String("-c")},
		Environment: pulumi.StringMap{"NODE_HOST": b.nodes.PublicIP(role), "NODE_ID": inst.ID().ToStringOutput()},
		Triggers:    pulumi.Array{inst.ID()},
	}, pulumi.Parent(b.parent))
	if err != nil {
		return nil, fmt.Errorf("wait for ssh on %s: %w", role, err)
	}
	deps := []pulumi.Resource{ssh}
	if role.ControlPlane() {
		b.masterSSH = ssh
	} else {
		// The other nodes are reached through the master (Connection): it must answer too.
		deps = append(deps, b.masterSSH)
	}
	return b.command(role, "wait-node-"+string(role), commandSpec{
		create:    pulumi.String(WaitNodeScript()),
		dependsOn: deps,
	})
}

// join declares a worker's membership: a fresh token from the control plane, the join on the
// worker, the role label, and the node's retirement, whose delete step drains and removes the
// node. It returns the last two, which nodes-ready waits for (so a destroy drains a node only
// after the workloads are gone). controlPlane is the control plane's upgrade step: a node is
// prepared with the configured version's kubelet, which must never join an API server older
// than itself.
func (b *builder) join(role config.Role, controlPlane, ready *remote.Command, caHash pulumi.StringOutput, kubeadmAPI string) ([]pulumi.Resource, error) {
	master := config.RoleMaster
	node := b.nodes.Instances[role]
	token, err := b.command(master, "join-token-"+string(role), commandSpec{
		create:    pulumi.String(JoinTokenScript(role)),
		dependsOn: []pulumi.Resource{controlPlane, ready},
		// Created again whenever the worker's instance is: the token is minted at join time.
		triggers:     pulumi.Array{node.ID()},
		secretOutput: true,
	})
	if err != nil {
		return nil, err
	}
	endpoint := b.masterIP + ":6443"
	join, err := b.command(role, "join-"+string(role), commandSpec{
		create: pulumi.String(JoinScript(role)),
		stdin: pulumi.ToSecret(pulumi.All(token.Stdout, caHash).ApplyT(func(v []any) (string, error) {
			return JoinConfiguration(kubeadmAPI, endpoint, v[0].(string), v[1].(string))
		})).(pulumi.StringOutput),
		dependsOn: []pulumi.Resource{token},
		// A new master runs the same cluster (the program's CA): the join runs again, finds its
		// CA to be the one named and leaves the node alone. It resets a node only when the CA
		// differs, which only a deliberate CA rotation does.
		triggers: pulumi.Array{b.nodes.Instances[master].ID()},
		// kubeadm's messages on failure can quote the token; keep them out of the log.
		secretOutput: true,
	})
	if err != nil {
		return nil, err
	}
	nodeName := node.PrivateDns
	member, err := b.command(master, "member-"+string(role), commandSpec{
		create:    nodeName.ApplyT(func(n string) string { return MemberScript(role, n) }).(pulumi.StringOutput),
		dependsOn: []pulumi.Resource{join},
		triggers:  pulumi.Array{node.ID()},
	})
	if err != nil {
		return nil, err
	}
	// The node's removal, when its instance goes (a replacement of the node, a destroy): drain it
	// and delete its Node. It runs on the master but is tied to the node's instance alone
	// (untied): member-<role>, tied to the master too, is created again by a new master, and a
	// delete step there would drain and remove every node that stays (issue 24). Nothing to do on
	// create.
	retire, err := b.command(master, "retire-"+string(role), commandSpec{
		delete:    nodeName.ApplyT(func(n string) string { return MemberDeleteScript(role, n) }).(pulumi.StringOutput),
		dependsOn: []pulumi.Resource{member},
		triggers:  pulumi.Array{node.ID()},
		untied:    true,
	})
	if err != nil {
		return nil, err
	}
	return []pulumi.Resource{member, retire}, nil
}

// kubeletRollout brings the kubelet settings the program owns (KubeletPressureConfig) to a
// running cluster, where kubeadm init, which carries them to a new one, stops at "already
// initialised": first into the kubelet-config ConfigMap, then node by node, control plane first
// and the workers in config order, each waiting for the one before it to be Ready again, so a
// kubelet that does not come back stops the rollout with the rest of the cluster untouched.
//
// Every step is triggered by the settings' hash alone, not by the instance: a replaced or added
// node joins with the ConfigMap's settings already. (Its new address is a new connection, which
// runs its step again; the step then finds nothing to change.) On a new cluster the steps run
// after every node is Ready and restart no kubelet: kubeadm wrote these settings at init and
// join.
//
// It returns the last node's step, which every workload waits for (New): once it is done, every
// kubelet runs the settings.
func (b *builder) kubeletRollout(cfg *config.Config, initCmd *remote.Command, nodesReady pulumi.Resource) (*remote.Command, error) {
	trigger := pulumi.Array{pulumi.String(KubeletConfigHash())}
	prev, err := b.command(config.RoleMaster, "kubelet-configmap", commandSpec{
		create:    pulumi.String(KubeletConfigMapScript()),
		dependsOn: []pulumi.Resource{initCmd, nodesReady},
		triggers:  trigger,
		untied:    true,
	})
	if err != nil {
		return nil, err
	}
	for _, n := range cfg.Nodes {
		role := n.Role
		prev, err = b.command(role, "kubelet-config-"+string(role), commandSpec{
			create: b.nodes.Instances[role].PrivateDns.ApplyT(func(name string) string {
				return KubeletConfigScript(role, name)
			}).(pulumi.StringOutput),
			dependsOn: []pulumi.Resource{prev},
			triggers:  trigger,
			untied:    true,
		})
		if err != nil {
			return nil, err
		}
	}
	return prev, nil
}

// issuerCheck declares the check of the pods' issuer on the master (IssuerCheckScript), run again
// whenever the key set or the probe role changes, and returns the pod roles' ARNs known only once
// it has passed.
func (b *builder) issuerCheck(cfg *config.Config, jwks pulumi.StringOutput, published map[string]pulumi.StringOutput, deps ...pulumi.Resource) (map[string]pulumi.StringOutput, error) {
	probe := infra.PodRoleByKey(infra.PodRoleCCM)
	check, err := b.command(config.RoleMaster, "issuer-check", commandSpec{
		create: pulumi.All(jwks, published[probe.Key]).ApplyT(func(v []any) string {
			return IssuerCheckScript(IssuerCheck{
				Issuer: cfg.ServiceAccountIssuer(), Bucket: cfg.PodIdentity.BucketName, Region: cfg.Region,
				Discovery: infra.DiscoveryDocument(cfg.ServiceAccountIssuer()), JWKS: v[0].(string),
				Namespace: probe.Namespace, ServiceAccount: probe.ServiceAccount, RoleARN: v[1].(string),
			})
		}).(pulumi.StringOutput),
		dependsOn: deps,
		// Not tied to the master: a replaced master publishes the same key set, and a check
		// replaced with it would leave every role's ARN unknown in the preview.
		untied: true,
	})
	if err != nil {
		return nil, err
	}
	out := map[string]pulumi.StringOutput{}
	for key, arn := range published {
		out[key] = pulumi.All(arn, check.Stdout).ApplyT(func(v []any) string { return v[0].(string) }).(pulumi.StringOutput)
	}
	return out, nil
}
