package citrust

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"
)

// Project is this program's Pulumi project name: its configuration keys are waste-coach-ci:<key>.
const Project = "waste-coach-ci"

// InfraProject is the project whose stacks the roles deploy and preview (the repository's root
// Pulumi.yaml); its state objects are named after it.
const InfraProject = "waste-coach-infra"

// DeployBranch is the only branch whose deploy workflow may assume a deploy role.
const DeployBranch = "main"

// Config is this program's configuration, validated.
type Config struct {
	Region string
	// Owner and Name of the GitHub repository, as GitHub spells them (the sub claim is compared
	// with case).
	Owner, Name string
	// OwnerID and RepositoryID are the numeric ids GitHub puts in the repo claim of a repository
	// with immutable subject claims; empty for one without.
	OwnerID, RepositoryID string
	// Stacks are the infra stacks (dev, prod), each with the cluster id that prefixes its AWS
	// names (<stack>-<clusterName>, as the infra program derives it).
	Stacks []Stack
	// StateBucket holds every infra stack's Pulumi state (the self-managed S3 backend).
	StateBucket string
	// GitHubProviderARN names an IAM OIDC provider for GitHub's tokens that the account already
	// has (an account has at most one per issuer URL); empty: this program creates it.
	GitHubProviderARN string
}

// Stack is one infra stack the CI deploys.
type Stack struct {
	Name      string
	ClusterID string
	// Production marks a stack whose buckets are kept on destroy: its deploy role deletes no
	// object.
	Production bool
}

// Repository is owner/name.
func (c *Config) Repository() string { return c.Owner + "/" + c.Name }

var (
	repoPattern   = regexp.MustCompile(`^[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}$`)
	stackPattern  = regexp.MustCompile(`^[a-z][a-z0-9-]{0,15}$`)
	bucketPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$`)
	idsPattern    = regexp.MustCompile(`^([0-9]{1,20})/([0-9]{1,20})$`)
	oidcARN       = regexp.MustCompile(`^arn:aws:iam::[0-9]{12}:oidc-provider/token\.actions\.githubusercontent\.com$`)
)

// Load reads and validates the stack's configuration; every error names the key, the value and
// what is allowed, before any resource is declared.
func Load(ctx *pulumi.Context) (*Config, error) {
	c := config.New(ctx, Project)
	aws := config.New(ctx, "aws")
	stacks, production := []string{"dev", "prod"}, []string{"prod"}
	for key, list := range map[string]*[]string{"stacks": &stacks, "productionStacks": &production} {
		if raw := c.Get(key); raw != "" {
			if err := json.Unmarshal([]byte(raw), list); err != nil {
				return nil, fmt.Errorf("%s:%s is %s: want a list of stack names, such as [dev, prod]", Project, key, raw)
			}
		}
	}
	return Parse(Raw{
		Region:            aws.Get("region"),
		Repository:        c.Get("repository"),
		Stacks:            stacks,
		ClusterName:       c.Get("clusterName"),
		StateBucket:       c.Get("stateBucket"),
		GitHubProviderARN: c.Get("githubOidcProvider"),
		RepositoryIDs:     c.Get("repositoryIds"),
		Production:        production,
	})
}

// Raw is the configuration as written.
type Raw struct {
	Region, Repository, ClusterName, StateBucket, GitHubProviderARN, RepositoryIDs string
	Stacks, Production                                                             []string
}

// Parse validates raw configuration.
func Parse(r Raw) (*Config, error) {
	key := func(k string) string { return Project + ":" + k }
	if r.Region == "" {
		return nil, fmt.Errorf("aws:region is required: the region of the infra stacks (ap-northeast-2)")
	}
	if !repoPattern.MatchString(r.Repository) {
		return nil, fmt.Errorf("%s is %q: want the GitHub repository as owner/name, spelled as GitHub shows it", key("repository"), r.Repository)
	}
	owner, name, _ := strings.Cut(r.Repository, "/")
	c := &Config{Region: r.Region, Owner: owner, Name: name, StateBucket: r.StateBucket, GitHubProviderARN: r.GitHubProviderARN}
	if r.RepositoryIDs != "" {
		ids := idsPattern.FindStringSubmatch(r.RepositoryIDs)
		if ids == nil {
			return nil, fmt.Errorf("%s is %q: want <owner id>/<repository id>, the numbers GitHub puts in the repo claim of a repository with immutable subject claims (repo:%s@<owner id>/%s@<repository id>), or nothing", key("repositoryIds"), r.RepositoryIDs, owner, name)
		}
		c.OwnerID, c.RepositoryID = ids[1], ids[2]
	}
	clusterName := r.ClusterName
	if clusterName == "" {
		clusterName = "sesacthon"
	}
	if len(r.Stacks) == 0 {
		return nil, fmt.Errorf("%s is empty: list the infra stacks CI deploys, such as [dev, prod]", key("stacks"))
	}
	for _, s := range r.Stacks {
		if !stackPattern.MatchString(s) {
			return nil, fmt.Errorf("%s has %q: a stack name is lower-case letters, digits and dashes, starting with a letter, at most 16", key("stacks"), s)
		}
		if slices.ContainsFunc(c.Stacks, func(o Stack) bool { return o.Name == s }) {
			return nil, fmt.Errorf("%s lists %q twice", key("stacks"), s)
		}
		c.Stacks = append(c.Stacks, Stack{Name: s, ClusterID: s + "-" + clusterName, Production: slices.Contains(r.Production, s)})
	}
	for _, p := range r.Production {
		if !slices.Contains(r.Stacks, p) {
			return nil, fmt.Errorf("%s lists %q, which is not in %s %v", key("productionStacks"), p, key("stacks"), r.Stacks)
		}
	}
	if !bucketPattern.MatchString(r.StateBucket) || strings.Contains(r.StateBucket, "--") {
		return nil, fmt.Errorf("%s is %q: want an S3 bucket name (3-63 lower-case letters, digits and dashes; no dots) for the infra stacks' state", key("stateBucket"), r.StateBucket)
	}
	for _, s := range c.Stacks {
		if strings.HasPrefix(r.StateBucket, s.ClusterID+"-") {
			return nil, fmt.Errorf("%s is %q: it may not start with %s-, the names stack %s's deploy role manages", key("stateBucket"), r.StateBucket, s.ClusterID, s.Name)
		}
	}
	if r.GitHubProviderARN != "" && !oidcARN.MatchString(r.GitHubProviderARN) {
		return nil, fmt.Errorf("%s is %q: want the ARN of the account's IAM OIDC provider for token.actions.githubusercontent.com, or nothing to create it", key("githubOidcProvider"), r.GitHubProviderARN)
	}
	return c, nil
}
