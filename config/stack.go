// Stack-wide options: whether the stack is production, the cluster name and the cluster id that
// AWS names derive from, the AWS region, the Kubernetes version every node installs, and where
// the Helm charts come from (keys production, clusterName, aws:region, kubernetesVersion and
// chartSource).

package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/waste-coach/infra/versions"
)

// Environment is the short environment name used in resource names: the stack name.
func (c *Config) Environment() string { return c.Stack }

// ClusterID identifies this stack's cluster inside the AWS account: "<stack>-<clusterName>",
// for example prod-sesacthon. Two stacks of one account may share a clusterName; they never share
// a ClusterID. Every AWS name that is unique per account or region (IAM roles and instance
// profiles, the key pair, security groups, the default uploads bucket) is derived from it, and so
// are the kubernetes.io/cluster tag, the cloud-controller-manager's --cluster-name and the load
// balancer controller's clusterName. The ALB and its target groups are named by the program
// (infra.ELBName), from the clusterName and the stack.
func (c *Config) ClusterID() string { return c.Stack + "-" + c.ClusterName }

// MaxClusterIDLength keeps the longest name prefix derived from ClusterID,
// "<cluster id>-worker-1-", within IAM's 38-character limit on role and instance-profile name
// prefixes.
const MaxClusterIDLength = 28

// elbReservedPrefix is the prefix that Elastic Load Balancing refuses at the start of a load
// balancer's name.
const elbReservedPrefix = "internal-"

var (
	clusterNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{1,30}[a-z0-9]$`)
	clusterIDRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*[a-z0-9]$`)
)

// stack reads production, clusterName and the region, which later steps build on: production
// tightens their checks, their default names derive from the cluster id, and the zones must be
// the region's.
func (p *parser) stack(c *Config) {
	c.Production = p.boolean("production", false)
	c.ClusterName = p.str("clusterName", "sesacthon", false)
	if !clusterNameRE.MatchString(c.ClusterName) {
		p.fail(qualify("clusterName"), strconv.Quote(c.ClusterName), "3-32 lower-case letters, digits and dashes, starting with a letter")
	} else if strings.HasPrefix(c.ClusterName, elbReservedPrefix) {
		// The ALB and its target groups are named "<clusterName>-...": Elastic Load Balancing
		// refuses a load balancer name that begins with "internal-", and it would only fail at
		// create time, half way through a first deploy.
		p.fail(qualify("clusterName"), strconv.Quote(c.ClusterName), fmt.Sprintf(
			"a name that does not begin with %q: the load balancer is named after it, and AWS reserves that prefix",
			elbReservedPrefix))
	} else if id := c.ClusterID(); !clusterIDRE.MatchString(id) || len(id) > MaxClusterIDLength {
		p.fail(qualify("clusterName"), strconv.Quote(c.ClusterName), fmt.Sprintf(
			"a name that, after the stack name, makes a cluster id (%q here) of at most %d lower-case letters, digits and dashes: AWS names and tags are derived from it",
			id, MaxClusterIDLength))
	}
	c.Region = p.str("aws:region", "", true)
}

// KubeVersion is a Kubernetes release, MAJOR.MINOR with an optional PATCH.
type KubeVersion struct {
	// Major, Minor and Patch are the release's numbers; Patch is 0 when HasPatch is false.
	Major, Minor, Patch int
	// HasPatch is false when only MAJOR.MINOR was given: nodes then take the newest patch.
	HasPatch bool
}

// MinorString returns "1.35", the form of the pkgs.k8s.io repository path.
func (v KubeVersion) MinorString() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// String returns the version as configured: "1.35" or "1.35.4".
func (v KubeVersion) String() string {
	if v.HasPatch {
		return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	}
	return v.MinorString()
}

// ParseKubeVersion reads "1.35" or "1.35.4" (a leading "v" allowed); false when s is neither.
func ParseKubeVersion(s string) (KubeVersion, bool) {
	m := kubeVersionRE.FindStringSubmatch(strings.TrimPrefix(s, "v"))
	if m == nil {
		return KubeVersion{}, false
	}
	var v KubeVersion
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	if m[3] != "" {
		v.Patch, _ = strconv.Atoi(m[3])
		v.HasPatch = true
	}
	return v, true
}

// oldestKubeMinor is the oldest minor pkgs.k8s.io serves; the legacy apt repository is gone.
const oldestKubeMinor = 24

var kubeVersionRE = regexp.MustCompile(`^(\d+)\.(\d+)(?:\.(\d+))?$`)

// kubernetes reads kubernetesVersion: a minor that pkgs.k8s.io serves and that has a pinned
// cloud-controller-manager.
func (p *parser) kubernetes(c *Config) {
	key := qualify("kubernetesVersion")
	v := strings.TrimPrefix(p.str("kubernetesVersion", "", true), "v")
	if v == "" {
		return
	}
	parsed, ok := ParseKubeVersion(v)
	if !ok {
		p.fail(key, strconv.Quote(v), "MAJOR.MINOR[.PATCH], for example 1.35 or 1.35.4")
		return
	}
	c.Kubernetes = parsed
	if c.Kubernetes.Major != 1 || c.Kubernetes.Minor < oldestKubeMinor {
		p.fail(key, strconv.Quote(v), fmt.Sprintf("1.%d or newer (older minors are not served by pkgs.k8s.io)", oldestKubeMinor))
		return
	}
	if _, ok := versions.CCMImage(c.Kubernetes.MinorString()); !ok {
		p.fail(key, strconv.Quote(v), fmt.Sprintf("a minor with a pinned AWS cloud-controller-manager release: %s (see versions/versions.go)", strings.Join(versions.CCMMinors(), ", ")))
	}
}

// ChartSource says where Helm charts are fetched from; the zero value is the public repositories.
type ChartSource struct {
	// Mirror is a Helm repository URL serving every pinned chart, or "".
	Mirror string
	// Folder is a local folder of chart archives, or "".
	Folder string
}

// chartSource reads chartSource: a Helm repository mirror URL, or a folder of chart archives
// that must hold every pinned chart, checked here so that a missing one is named before any
// resource is declared instead of failing a release half way through a deploy.
func (p *parser) chartSource(c *Config) {
	v := p.str("chartSource", "", false)
	if v == "" {
		return
	}
	key := qualify("chartSource")
	if u, err := url.Parse(v); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		switch {
		case u.Scheme == "http":
			// Anyone on the path could hand the program and Helm other archives, and Helm does
			// not check a repository's digests: only TLS ties the charts to the mirror.
			p.fail(key, strconv.Quote(v), "an https:// Helm repository URL (plain http is refused: the chart archives would travel unauthenticated), or a folder of chart archives")
			return
		case u.Host == "":
			p.fail(key, strconv.Quote(v), "a Helm repository URL with a host, or a folder of chart archives")
			return
		}
		c.ChartSource.Mirror = strings.TrimSuffix(v, "/")
		return
	}
	info, err := os.Stat(v)
	if err != nil || !info.IsDir() {
		p.fail(key, strconv.Quote(v), "an existing folder of chart archives, or an https:// Helm repository URL")
		return
	}
	for _, chart := range versions.Charts() {
		b, err := os.ReadFile(filepath.Join(v, chart.Archive()))
		if err != nil {
			p.fail(key, strconv.Quote(v), fmt.Sprintf("a folder holding every pinned chart; %s is missing", chart.Archive()))
			continue
		}
		if sum := sha256.Sum256(b); !chart.Accepts(hex.EncodeToString(sum[:]), true) {
			p.fail(key, strconv.Quote(v), fmt.Sprintf("a folder of the pinned chart archives; %s has sha256 %x, versions/versions.go pins %s (the published archive, as `helm pull` writes it)",
				chart.Archive(), sum, chart.SHA256))
		}
	}
	abs, err := filepath.Abs(v)
	if err != nil {
		p.fail(key, strconv.Quote(v), err.Error())
		return
	}
	c.ChartSource.Folder = abs
}
