package workloads

import (
	"fmt"

	corev1 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/core/v1"
	"github.com/pulumi/pulumi-random/sdk/v4/go/random"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Secrets are the generated credentials of the platform. Each is a Pulumi secret: encrypted in
// the state, never printed, and handed to pods only through Kubernetes Secrets.
type Secrets struct {
	pulumi.ResourceState

	// PostgresPassword is the superuser's, which only the server's first initialisation uses
	// (its POSTGRES_PASSWORD; the roles take it away afterwards: postgres_roles.go);
	// PostgresApp, PostgresBackup and PostgresMonitor are the clients' roles'.
	PostgresPassword pulumi.StringOutput
	PostgresApp      pulumi.StringOutput
	PostgresBackup   pulumi.StringOutput
	PostgresMonitor  pulumi.StringOutput
	RedisPassword    pulumi.StringOutput
	RabbitAdmin      pulumi.StringOutput
	RabbitApp        pulumi.StringOutput
	ErlangCookie     pulumi.StringOutput
	GrafanaAdmin     pulumi.StringOutput
}

// secretsArgs are the inputs of the generated credentials.
type secretsArgs struct {
	// tierArgs name the passwords.
	tierArgs
}

// Names of the users and Kubernetes Secrets.
const (
	postgresUser     = "wastecoach"
	postgresDatabase = "wastecoach"
	rabbitAdminUser  = "admin"
	rabbitAppUser    = "wastecoach"
	postgresSecret   = "postgres"
	redisSecret      = "redis"
	rabbitSecret     = "rabbitmq"
	appSecret        = "app-secrets"
	grafanaSecret    = "grafana-admin"
	// RegistryPullSecret is the login to the application images' private registry, in the app
	// namespace, declared only when imagePullSecret is configured.
	RegistryPullSecret = "registry-pull"
)

func (s *scope) password(name string, length int) (pulumi.StringOutput, error) {
	p, err := random.NewRandomPassword(s.ctx, s.resourceName("secret", name), &random.RandomPasswordArgs{
		Length: pulumi.Int(length),
		// Letters and digits only: the passwords are embedded in connection URLs.
		Special: pulumi.Bool(false),
	}, append(s.parented(), pulumi.AdditionalSecretOutputs([]string{"result"}))...)
	if err != nil {
		return pulumi.StringOutput{}, fmt.Errorf("password %s: %w", name, err)
	}
	return pulumi.ToSecret(p.Result).(pulumi.StringOutput), nil
}

// newSecrets generates the passwords. The Kubernetes Secrets that carry them are declared
// with the workloads that read them.
func newSecrets(ctx *pulumi.Context, name string, args *secretsArgs, opts ...pulumi.ResourceOption) (*Secrets, error) {
	c := &Secrets{}
	return c, component(ctx, args.tierArgs, "Secrets", name, c, opts, func(s *scope) error {
		var err error
		for _, p := range []struct {
			name   string
			length int
			out    *pulumi.StringOutput
		}{
			{"postgres", 32, &c.PostgresPassword},
			{"postgres-app", 32, &c.PostgresApp},
			{"postgres-backup", 32, &c.PostgresBackup},
			{"postgres-monitor", 32, &c.PostgresMonitor},
			{"redis", 32, &c.RedisPassword},
			{"rabbitmq-admin", 32, &c.RabbitAdmin},
			{"rabbitmq-app", 32, &c.RabbitApp},
			{"erlang-cookie", 48, &c.ErlangCookie},
			{"grafana-admin", 24, &c.GrafanaAdmin},
		} {
			if *p.out, err = s.password(p.name, p.length); err != nil {
				return err
			}
		}
		return nil
	})
}

// secret declares a Kubernetes Secret whose data stays a Pulumi secret, after deps. The
// workloads that read it depend on it, so their pods never start without it.
func (s *scope) secret(namespace, name string, data pulumi.StringMapInput, deps ...pulumi.Resource) (*corev1.Secret, error) {
	return s.typedSecret(namespace, name, "Opaque", data, deps...)
}

// registryPullSecret declares the kubernetes.io/dockerconfigjson Secret the kubelet pulls the
// application images with, when imagePullSecret is configured; nil otherwise.
func (s *scope) registryPullSecret() (*corev1.Secret, error) {
	login := s.cfg.ImagePullSecret
	if login == nil {
		return nil, nil
	}
	return s.typedSecret(NamespaceApp, RegistryPullSecret, "kubernetes.io/dockerconfigjson",
		pulumi.StringMap{".dockerconfigjson": login.DockerConfigJSON})
}

func (s *scope) typedSecret(namespace, name, typ string, data pulumi.StringMapInput, deps ...pulumi.Resource) (*corev1.Secret, error) {
	sec, err := corev1.NewSecret(s.ctx, s.resourceName(namespace, name), &corev1.SecretArgs{
		Metadata:   meta(name, namespace, labels(name, "credentials")),
		Type:       pulumi.String(typ),
		StringData: pulumi.ToSecret(data).(pulumi.StringMapOutput),
	}, s.opts(namespace, deps...)...)
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", namespace, name, err)
	}
	return sec, nil
}
