// The application images and the login to their registry: each image pinned by tag, or by
// digest on production, and the registry login that must serve at least one of them (keys
// images and imagePullSecret).

package config

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/versions"
)

// Images are the application's container images (repository:tag or repository@digest).
type Images struct {
	// Auth is the auth FastAPI service.
	Auth string `json:"auth"`
	// Users is the users FastAPI service.
	Users string `json:"users"`
	// Waste is the waste FastAPI service.
	Waste string `json:"waste"`
	// Celery runs every Celery worker pool and beat.
	Celery string `json:"celery"`
}

var imageRE = regexp.MustCompile(`^[a-z0-9]+([._/-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$`)

// images reads the application images: each with an explicit tag or digest, and on a production
// stack a digest.
func (p *parser) images(c *Config) {
	key := qualify("images")
	if p.object("images", &c.Images, true) {
		for _, img := range []struct{ name, ref string }{
			{"auth", c.Images.Auth}, {"users", c.Images.Users}, {"waste", c.Images.Waste}, {"celery", c.Images.Celery},
		} {
			if !imageRE.MatchString(img.ref) {
				p.fail(key+"."+img.name, strconv.Quote(img.ref), "an image reference with an explicit tag or digest, such as ghcr.io/org/app:1.2.3 (never a floating default)")
			} else if c.Production && !strings.Contains(img.ref, "@sha256:") {
				// A tag can be moved to other content; a digest cannot.
				p.fail(key+"."+img.name, strconv.Quote(img.ref), "on a production stack, an image pinned by digest, such as ghcr.io/org/app@sha256:<64 hex> (dev stacks may use tags)")
			}
		}
	}
}

// programImages checks the program's images for the stack's Kubernetes minor (see
// programImagesByDigest).
func (p *parser) programImages(c *Config) {
	p.programImagesByDigest(c, versions.ProgramImages(c.Kubernetes.MinorString()))
}

// programImagesByDigest refuses, on a production stack, an image of the program's own objects
// (versions.ProgramImages for the stack's Kubernetes minor) that carries no digest and has no
// reason in versions' tagOnly list: a tag can be moved to other content, a digest cannot. The
// charts' images are checked by chartfit, which renders them.
func (p *parser) programImagesByDigest(c *Config, images []string) {
	if !c.Production {
		return
	}
	for _, img := range versions.Unpinned(images) {
		p.fail(qualify("production"), "true", fmt.Sprintf(
			"every image pinned by digest on a production stack: %s is pinned by tag only (pin its digest in versions/images.go, or give the reason it cannot be in tagOnly there)", img))
	}
}

// PullSecret is the login the kubelet uses to pull the application images from a private
// registry, from the stack's imagePullSecret key.
type PullSecret struct {
	// Registry is the registry's host[:port], as it appears in the image references.
	Registry string
	// DockerConfigJSON is the .dockerconfigjson document holding the login, a Pulumi secret.
	DockerConfigJSON pulumi.StringOutput
}

// registryRE is a registry host with an optional port: no scheme, no path, no image name.
var registryRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:[0-9]{1,5})?$`)

// pullSecret reads imagePullSecret, {registry, username, password}. The value is a secret: no
// message ever repeats it, only the registry host and the names of the fields at fault.
func (p *parser) pullSecret(c *Config) {
	key := qualify("imagePullSecret")
	v, ok := p.raw("imagePullSecret", false)
	if !ok {
		return
	}
	const shape = `an object {"registry": "<host[:port]>", "username": "...", "password": "..."}`
	var login struct {
		Registry string `json:"registry"`
		Username string `json:"username"`
		Password string `json:"password"`
	}
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&login); err != nil {
		// The decoder's message may quote the value; say only where it failed.
		why := "not a JSON object"
		if f, found := strings.CutPrefix(err.Error(), "json: unknown field "); found {
			why = "unknown field " + f
		}
		p.fail(key, "(secret value, "+why+")", shape)
		return
	}
	bad := len(p.errs)
	if !registryRE.MatchString(login.Registry) {
		p.fail(key+".registry", strconv.Quote(login.Registry), "the registry host of the application images, with an optional port and no scheme or path, such as ghcr.io or registry.example.com:5000")
	}
	if login.Username == "" || strings.Contains(login.Username, ":") {
		p.fail(key+".username", "(secret value)", "a non-empty user name without a colon (the registry login is user:password)")
	}
	if login.Password == "" {
		p.fail(key+".password", "(secret value)", "a non-empty password or access token")
	}
	if len(p.errs) > bad {
		return
	}
	// The kubelet offers a login only to images whose reference starts with its registry host.
	images := []string{c.Images.Auth, c.Images.Users, c.Images.Waste, c.Images.Celery}
	if !slices.ContainsFunc(images, func(img string) bool { return strings.HasPrefix(img, login.Registry+"/") }) {
		p.fail(key+".registry", strconv.Quote(login.Registry), fmt.Sprintf(
			"the registry host that starts at least one of the images %v (the kubelet uses a login only for images of its registry)", images))
		return
	}
	c.ImagePullSecret = &PullSecret{
		Registry:         login.Registry,
		DockerConfigJSON: pulumi.ToSecret(pulumi.String(DockerConfigJSON(login.Registry, login.Username, login.Password))).(pulumi.StringOutput),
	}
}

// checkImagePullSecret refuses an imagePullSecret, read by Parse, that is not a Pulumi secret.
func checkImagePullSecret(ctx *pulumi.Context, cfg *Config) error {
	if key := Project + ":imagePullSecret"; cfg.ImagePullSecret != nil && !ctx.IsConfigSecret(key) {
		return &Error{Key: key, Value: "(plain text)", Allowed: "a secret: set it with `pulumi config set --secret imagePullSecret '{\"registry\":...,\"username\":...,\"password\":...}'`"}
	}
	return nil
}

// DockerConfigJSON returns the .dockerconfigjson document of a registry login, the shape the
// kubelet reads from a kubernetes.io/dockerconfigjson Secret.
func DockerConfigJSON(registry, username, password string) string {
	type auth struct {
		Username string `json:"username"`
		Password string `json:"password"`
		Auth     string `json:"auth"`
	}
	doc, err := json.Marshal(map[string]map[string]auth{"auths": {registry: {
		Username: username, Password: password,
		Auth: base64.StdEncoding.EncodeToString([]byte(username + ":" + password)),
	}}})
	if err != nil {
		panic(fmt.Sprintf("config: encode a registry login: %v", err)) // strings always encode
	}
	return string(doc)
}
