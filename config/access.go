// How operators get in: the SSH key the program's remote commands and operators log in to the
// nodes with, and the identity provider operators sign in to Argo CD through (keys sshPublicKey,
// sshPrivateKey, argocdSso and argocdSsoClientSecret). The admin ranges are in network.go.

package config

import (
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

var sshPublicKey = regexp.MustCompile(`^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/=]+( .*)?$`)

// ssh reads the operator's public key; its private key, required with it, is read by Load.
func (p *parser) ssh(c *Config) {
	c.SSHPublicKey = strings.TrimSpace(p.str("sshPublicKey", "", false))
	if c.SSHPublicKey == "" {
		return
	}
	if !sshPublicKey.MatchString(c.SSHPublicKey) {
		p.fail(qualify("sshPublicKey"), strconv.Quote(c.SSHPublicKey), "an OpenSSH public key line (ssh-ed25519 AAAA...), or unset to let the program generate a key")
	}
	if _, ok := p.raw("sshPrivateKey", false); !ok {
		p.fail(qualify("sshPrivateKey"), "", "it is required when sshPublicKey is set: the remote commands log in with it (set it with --secret)")
	}
}

// loadSSHPrivateKey reads sshPrivateKey, required by Parse with sshPublicKey and accepted only
// as a Pulumi secret.
func loadSSHPrivateKey(ctx *pulumi.Context, cfg *Config) error {
	if cfg.SSHPublicKey == "" {
		return nil
	}
	key := Project + ":sshPrivateKey"
	if !ctx.IsConfigSecret(key) {
		return &Error{Key: key, Value: "(plain text)", Allowed: "a secret: set it with `pulumi config set --secret sshPrivateKey`"}
	}
	raw, _ := ctx.GetConfig(key)
	cfg.SSHPrivateKey = pulumi.ToSecret(pulumi.String(raw)).(pulumi.StringOutput)
	return nil
}

// ArgoCDSSO is an OpenID Connect provider for Argo CD (argocdSso, argocdSsoClientSecret). With
// it the built-in admin account is disabled: the members of AdminGroup administer Argo CD.
type ArgoCDSSO struct {
	// Issuer is the provider's https issuer URL.
	Issuer string `json:"issuer"`
	// ClientID is Argo CD's client at the provider.
	ClientID string `json:"clientId"`
	// AdminGroup is the provider's group (from the groups claim) whose members get role:admin.
	AdminGroup string `json:"adminGroup"`
	// ClientSecret is the client's secret (a Pulumi secret), set by Load.
	ClientSecret pulumi.StringOutput `json:"-"`
}

// argoCDSSO reads argocdSso, {issuer, clientId, adminGroup}; its client secret is a key of its
// own so that only the secret part is encrypted in the stack file.
func (p *parser) argoCDSSO(c *Config) {
	var sso ArgoCDSSO
	if !p.object("argocdSso", &sso, false) {
		return
	}
	key := qualify("argocdSso")
	if u, err := url.Parse(sso.Issuer); err != nil || u.Scheme != "https" || u.Host == "" {
		p.fail(key+".issuer", strconv.Quote(sso.Issuer), "the identity provider's https issuer URL, such as https://accounts.google.com")
	}
	if strings.TrimSpace(sso.ClientID) == "" {
		p.fail(key+".clientId", strconv.Quote(sso.ClientID), "Argo CD's client id at the provider")
	}
	if strings.TrimSpace(sso.AdminGroup) == "" || strings.ContainsAny(sso.AdminGroup, ",\n") {
		p.fail(key+".adminGroup", strconv.Quote(sso.AdminGroup), "the provider group whose members administer Argo CD (no commas or newlines): the built-in admin is disabled")
	}
	c.ArgoCDSSO = &sso
}

// loadArgoCDSSOClientSecret reads argocdSsoClientSecret, required with argocdSso and only as a
// Pulumi secret.
func loadArgoCDSSOClientSecret(ctx *pulumi.Context, cfg *Config) error {
	if cfg.ArgoCDSSO == nil {
		return nil
	}
	key := Project + ":argocdSsoClientSecret"
	raw, ok := ctx.GetConfig(key)
	switch {
	case !ok || raw == "":
		return &Error{Key: key, Allowed: "required with argocdSso: set it with `pulumi config set --secret argocdSsoClientSecret`"}
	case !ctx.IsConfigSecret(key):
		return &Error{Key: key, Value: "(plain text)", Allowed: "a secret: set it with `pulumi config set --secret argocdSsoClientSecret`"}
	}
	cfg.ArgoCDSSO.ClientSecret = pulumi.ToSecret(pulumi.String(raw)).(pulumi.StringOutput)
	return nil
}
