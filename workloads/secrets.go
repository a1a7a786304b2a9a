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
	PostgresPassword pulumi.StringOutput
	RedisPassword    pulumi.StringOutput
	RabbitAdmin      pulumi.StringOutput
	RabbitApp        pulumi.StringOutput
	ErlangCookie     pulumi.StringOutput
	GrafanaAdmin     pulumi.StringOutput

	// grafana is the Secret the monitoring chart reads the admin login from.
	grafana *corev1.Secret
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

func (b *builder) password(name string, length int) (pulumi.StringOutput, error) {
	p, err := random.NewRandomPassword(b.ctx, b.resourceName("secret", name), &random.RandomPasswordArgs{
		Length: pulumi.Int(length),
		// Letters and digits only: the passwords are embedded in connection URLs.
		Special: pulumi.Bool(false),
	}, pulumi.Parent(b.parent), pulumi.AdditionalSecretOutputs([]string{"result"}))
	if err != nil {
		return pulumi.StringOutput{}, fmt.Errorf("password %s: %w", name, err)
	}
	return pulumi.ToSecret(p.Result).(pulumi.StringOutput), nil
}

func (b *builder) secrets() (*Secrets, error) {
	s := &Secrets{}
	var err error
	for _, p := range []struct {
		name   string
		length int
		out    *pulumi.StringOutput
	}{
		{"postgres", 32, &s.PostgresPassword},
		{"redis", 32, &s.RedisPassword},
		{"rabbitmq-admin", 32, &s.RabbitAdmin},
		{"rabbitmq-app", 32, &s.RabbitApp},
		{"erlang-cookie", 48, &s.ErlangCookie},
		{"grafana-admin", 24, &s.GrafanaAdmin},
	} {
		if *p.out, err = b.password(p.name, p.length); err != nil {
			return nil, err
		}
	}
	if s.grafana, err = b.secret(NamespaceMonitoring, grafanaSecret, pulumi.StringMap{
		"admin-user": pulumi.String("admin"), "admin-password": s.GrafanaAdmin,
	}); err != nil {
		return nil, err
	}
	return s, nil
}

// secret declares a Kubernetes Secret whose data stays a Pulumi secret. The workloads that read
// it depend on it, so their pods never start without it.
func (b *builder) secret(namespace, name string, data pulumi.StringMapInput) (*corev1.Secret, error) {
	return b.typedSecret(namespace, name, "Opaque", data)
}

// registryPullSecret declares the kubernetes.io/dockerconfigjson Secret the kubelet pulls the
// application images with, when imagePullSecret is configured; nil otherwise.
func (b *builder) registryPullSecret() (*corev1.Secret, error) {
	login := b.cfg.ImagePullSecret
	if login == nil {
		return nil, nil
	}
	return b.typedSecret(NamespaceApp, RegistryPullSecret, "kubernetes.io/dockerconfigjson",
		pulumi.StringMap{".dockerconfigjson": login.DockerConfigJSON})
}

func (b *builder) typedSecret(namespace, name, typ string, data pulumi.StringMapInput) (*corev1.Secret, error) {
	sec, err := corev1.NewSecret(b.ctx, b.resourceName(namespace, name), &corev1.SecretArgs{
		Metadata:   meta(name, namespace, labels(name, "credentials")),
		Type:       pulumi.String(typ),
		StringData: pulumi.ToSecret(data).(pulumi.StringMapOutput),
	}, b.opts(namespace)...)
	if err != nil {
		return nil, fmt.Errorf("secret %s/%s: %w", namespace, name, err)
	}
	return sec, nil
}
