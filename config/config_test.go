package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/waste-coach/infra/versions"
)

// validRaw is a complete, valid configuration in the form the CLI passes it.
func validRaw() map[string]string {
	return map[string]string{
		"aws:region":                          "ap-northeast-2",
		"waste-coach-infra:production":        "true",
		"waste-coach-infra:kubernetesVersion": "1.35.4",
		"waste-coach-infra:adminCidrs":        `["198.51.100.0/24"]`,
		"waste-coach-infra:availabilityZones": `["ap-northeast-2a","ap-northeast-2b","ap-northeast-2c"]`,
		"waste-coach-infra:dataZone":          "ap-northeast-2a",
		"waste-coach-infra:nodeImage":         "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20250610",
		"waste-coach-infra:domain":            "wastecoach.example.com",
		"waste-coach-infra:nodes": `[
			{"role":"master","instanceType":"t3.large","subnet":0,"rootVolumeGiB":80},
			{"role":"worker-1","instanceType":"t3.medium","subnet":1,"rootVolumeGiB":40},
			{"role":"worker-2","instanceType":"t3.medium","subnet":2,"rootVolumeGiB":40},
			{"role":"storage","instanceType":"t3.large","subnet":0,"rootVolumeGiB":100}]`,
		"waste-coach-infra:images": `{"auth":"ghcr.io/x/auth@sha256:abababababababababababababababababababababababababababababababab","users":"ghcr.io/x/users@sha256:abababababababababababababababababababababababababababababababab","waste":"ghcr.io/x/waste@sha256:abababababababababababababababababababababababababababababababab","celery":"ghcr.io/x/celery@sha256:abababababababababababababababababababababababababababababababab"}`,
	}
}

func parse(raw map[string]string) (*Config, error) {
	return Parse("prod", func(k string) (string, bool) { v, ok := raw[k]; return v, ok })
}

func TestParseAcceptsTheSeedConfiguration(t *testing.T) {
	c, err := parse(validRaw())
	if err != nil {
		t.Fatalf("valid configuration refused: %v", err)
	}
	if got := c.Node(RoleStorage).InstanceType; got != "t3.large" {
		t.Errorf("storage node instance type = %q, want t3.large", got)
	}
	if got := c.Uploads.BucketName; got != "prod-sesacthon-images" {
		t.Errorf("default bucket name = %q, want prod-sesacthon-images", got)
	}
	if got := c.Uploads.TransitionStorageClass; got != "GLACIER" || c.Uploads.TransitionDays != 30 {
		t.Errorf("default lifecycle = %s after %d days, want GLACIER after 30 (the design record)", got, c.Uploads.TransitionDays)
	}
	if got := c.MasterPrivateIP().String(); got != "10.0.1.10" {
		t.Errorf("master private IP = %s, want 10.0.1.10 (tenth host of subnet 0)", got)
	}
	if c.APIReplicas.Auth+c.APIReplicas.Users+c.APIReplicas.Waste != 6 {
		t.Errorf("default API replicas %+v do not add up to the 6 pods of the design", c.APIReplicas)
	}
}

// TestParseRefusesBadInput shows each refusal and that its message names the key, the bad value
// and what is allowed.
func TestParseRefusesBadInput(t *testing.T) {
	nodes := func(s string) string { return "[" + s + "]" }
	const (
		master  = `{"role":"master","instanceType":"t3.large","subnet":0,"rootVolumeGiB":80}`
		worker1 = `{"role":"worker-1","instanceType":"t3.medium","subnet":1,"rootVolumeGiB":40}`
		worker2 = `{"role":"worker-2","instanceType":"t3.medium","subnet":2,"rootVolumeGiB":40}`
		storage = `{"role":"storage","instanceType":"t3.large","subnet":0,"rootVolumeGiB":100}`
	)
	cases := []struct {
		name string
		set  map[string]string
		drop []string
		want []string // substrings of the error
	}{
		{"malformed vpc cidr", map[string]string{"waste-coach-infra:vpcCidr": "10.0.0.0/33"},
			nil, []string{"waste-coach-infra:vpcCidr", `"10.0.0.0/33"`, "IPv4 CIDR"}},
		{"vpc cidr with host bits", map[string]string{"waste-coach-infra:vpcCidr": "10.0.0.1/16"},
			nil, []string{"vpcCidr", "10.0.0.0/16"}},
		{"overlapping subnets", map[string]string{"waste-coach-infra:subnetCidrs": `["10.0.1.0/24","10.0.1.128/25","10.0.3.0/24"]`},
			nil, []string{"subnetCidrs[1]", "10.0.1.128/25", "does not overlap", "10.0.1.0/24"}},
		{"subnet outside the vpc", map[string]string{"waste-coach-infra:subnetCidrs": `["10.0.1.0/24","10.0.2.0/24","10.9.3.0/24"]`, "waste-coach-infra:vpcCidr": "10.0.0.0/16"},
			nil, []string{"subnetCidrs[2]", "10.9.3.0/24", "inside the VPC 10.0.0.0/16"}},
		{"two subnets", map[string]string{"waste-coach-infra:subnetCidrs": `["10.0.1.0/24","10.0.2.0/24"]`},
			nil, []string{"subnetCidrs", "2 subnets", "exactly 3"}},
		{"four subnets", map[string]string{"waste-coach-infra:subnetCidrs": `["10.0.1.0/24","10.0.2.0/24","10.0.3.0/24","10.0.4.0/24"]`},
			nil, []string{"subnetCidrs", "4 subnets", "exactly 3"}},
		{"role missing", map[string]string{"waste-coach-infra:nodes": nodes(master + "," + worker1 + "," + worker2)},
			nil, []string{"waste-coach-infra:nodes", `without role "storage"`, "exactly one node of each role"}},
		{"role duplicated", map[string]string{"waste-coach-infra:nodes": nodes(master + "," + worker1 + "," + worker1 + "," + worker2 + "," + storage)},
			nil, []string{"nodes[2].role", `"worker-1"`, "each role once", "nodes[1]"}},
		{"unknown role", map[string]string{"waste-coach-infra:nodes": nodes(master + "," + worker1 + "," + worker2 + "," + storage + `,{"role":"gpu","instanceType":"t3.large","subnet":0,"rootVolumeGiB":80}`)},
			nil, []string{"nodes[4].role", `"gpu"`, "one of [master worker-1 worker-2 storage]"}},
		{"unknown instance type", map[string]string{"waste-coach-infra:nodes": nodes(master + "," + strings.Replace(worker1, "t3.medium", "t3.mega", 1) + "," + worker2 + "," + storage)},
			nil, []string{"nodes[1].instanceType", `"t3.mega"`, "t3.large", "t3.medium"}},
		{"root volume too small", map[string]string{"waste-coach-infra:nodes": nodes(strings.Replace(master, `"rootVolumeGiB":80`, `"rootVolumeGiB":8`, 1) + "," + worker1 + "," + worker2 + "," + storage)},
			nil, []string{"nodes[0].rootVolumeGiB", "8", "40 to 1024 GiB for a master node"}},
		{"subnet index out of range", map[string]string{"waste-coach-infra:nodes": nodes(master + "," + worker1 + "," + strings.Replace(worker2, `"subnet":2`, `"subnet":3`, 1) + "," + storage)},
			nil, []string{"nodes[2].subnet", "3", "0, 1 or 2"}},
		{"typo in a node field", map[string]string{"waste-coach-infra:nodes": nodes(strings.Replace(master, "instanceType", "instanceTyp", 1) + "," + worker1 + "," + worker2 + "," + storage)},
			nil, []string{"waste-coach-infra:nodes", "instanceTyp"}},
		{"kubernetes version not MAJOR.MINOR[.PATCH]", map[string]string{"waste-coach-infra:kubernetesVersion": "latest"},
			nil, []string{"kubernetesVersion", `"latest"`, "MAJOR.MINOR[.PATCH]"}},
		{"kubernetes version too old", map[string]string{"waste-coach-infra:kubernetesVersion": "1.20"},
			nil, []string{"kubernetesVersion", `"1.20"`, "1.24 or newer"}},
		{"kubernetes minor without a pinned CCM", map[string]string{"waste-coach-infra:kubernetesVersion": "1.37.1"},
			nil, []string{"kubernetesVersion", `"1.37.1"`, "pinned AWS cloud-controller-manager", "1.36"}},
		{"world-open admin cidr on production", map[string]string{"waste-coach-infra:adminCidrs": `["0.0.0.0/0"]`},
			nil, []string{"adminCidrs[0]", "0.0.0.0/0", "production stack"}},
		{"no admin cidrs", map[string]string{"waste-coach-infra:adminCidrs": `[]`},
			nil, []string{"adminCidrs", "at least one CIDR"}},
		{"domain not a dns name", map[string]string{"waste-coach-infra:domain": "waste coach"},
			nil, []string{"waste-coach-infra:domain", `"waste coach"`, "DNS name"}},
		{"single-label domain", map[string]string{"waste-coach-infra:domain": "localhost"},
			nil, []string{"domain", `"localhost"`}},
		{"zero replicas", map[string]string{"waste-coach-infra:celeryReplicas": `{"ai":0,"batch":2,"api":2}`},
			nil, []string{"celeryReplicas.ai", "0", "1 to 20 replicas"}},
		{"negative api replicas", map[string]string{"waste-coach-infra:apiReplicas": `{"auth":-1,"users":2,"waste":2}`},
			nil, []string{"apiReplicas.auth", "-1", "1 to 20"}},
		{"image without a tag", map[string]string{"waste-coach-infra:images": `{"auth":"ghcr.io/x/auth","users":"ghcr.io/x/users:1","waste":"ghcr.io/x/waste:1","celery":"ghcr.io/x/celery:1"}`},
			nil, []string{"images.auth", `"ghcr.io/x/auth"`, "explicit tag or digest"}},
		{"unknown storage class", map[string]string{"waste-coach-infra:uploadsLifecycle": `{"transitionDays":30,"transitionStorageClass":"COLD","expirationDays":0}`},
			nil, []string{"uploadsLifecycle.transitionStorageClass", `"COLD"`, "GLACIER"}},
		{"admin range listed twice", map[string]string{"waste-coach-infra:adminCidrs": `["198.51.100.0/24","192.0.2.10/32","198.51.100.0/24"]`},
			nil, []string{"waste-coach-infra:adminCidrs[2]", "198.51.100.0/24", "repeats waste-coach-infra:adminCidrs[0]"}},
		{"cluster name the load balancer may not start with", map[string]string{"waste-coach-infra:clusterName": "internal-shop"},
			nil, []string{"waste-coach-infra:clusterName", `"internal-shop"`, `does not begin with "internal-"`}},
		{"standard-ia before 30 days", map[string]string{"waste-coach-infra:uploadsLifecycle": `{"transitionDays":7,"transitionStorageClass":"STANDARD_IA","expirationDays":0}`},
			nil, []string{"uploadsLifecycle.transitionDays", "7", "30 or more days for a transition to STANDARD_IA"}},
		{"onezone-ia before 30 days", map[string]string{"waste-coach-infra:uploadsLifecycle": `{"transitionDays":29,"transitionStorageClass":"ONEZONE_IA","expirationDays":0}`},
			nil, []string{"uploadsLifecycle.transitionDays", "29", "30 or more days for a transition to ONEZONE_IA"}},
		{"expiry before transition", map[string]string{"waste-coach-infra:uploadsLifecycle": `{"transitionDays":30,"transitionStorageClass":"GLACIER","expirationDays":10}`},
			nil, []string{"uploadsLifecycle.expirationDays", "10", "more than transitionDays (30)"}},
		{"bad bucket name", map[string]string{"waste-coach-infra:uploadsBucket": "Prod_Images"},
			nil, []string{"uploadsBucket", `"Prod_Images"`, "S3 bucket name"}},
		{"public key without private key", map[string]string{"waste-coach-infra:sshPublicKey": "ssh-ed25519 AAAAC3Nza op@laptop"},
			nil, []string{"sshPrivateKey", "required when sshPublicKey is set"}},
		{"not an ssh public key", map[string]string{"waste-coach-infra:sshPublicKey": "hello", "waste-coach-infra:sshPrivateKey": "x"},
			nil, []string{"sshPublicKey", `"hello"`, "OpenSSH public key"}},
		{"app origin over http", map[string]string{"waste-coach-infra:appOrigins": `["http://wastecoach.example.com"]`},
			nil, []string{"appOrigins[0]", "http://wastecoach.example.com", "https://"}},
		{"production not a boolean", map[string]string{"waste-coach-infra:production": "yes please"},
			nil, []string{"production", `"yes please"`, "true or false"}},
		{"missing region", nil, []string{"aws:region"}, []string{"aws:region", "missing", "required"}},
		{"missing domain", nil, []string{"waste-coach-infra:domain"}, []string{"waste-coach-infra:domain", "missing"}},
		{"missing nodes", nil, []string{"waste-coach-infra:nodes"}, []string{"waste-coach-infra:nodes", "missing"}},
		{"tag-only image on production", map[string]string{"waste-coach-infra:images": `{"auth":"ghcr.io/x/auth@sha256:abababababababababababababababababababababababababababababababab","users":"ghcr.io/x/users:1.0.0","waste":"ghcr.io/x/waste@sha256:abababababababababababababababababababababababababababababababab","celery":"ghcr.io/x/celery@sha256:abababababababababababababababababababababababababababababababab"}`},
			nil, []string{"images.users", `"ghcr.io/x/users:1.0.0"`, "production stack", "digest"}},
		{"missing images", nil, []string{"waste-coach-infra:images"}, []string{"waste-coach-infra:images", "missing"}},
		{"missing kubernetes version", nil, []string{"waste-coach-infra:kubernetesVersion"}, []string{"kubernetesVersion", "missing"}},
		{"production without a pinned node image", nil, []string{"waste-coach-infra:nodeImage"},
			[]string{"waste-coach-infra:nodeImage", "missing", "production stack", "AMI id"}},
		{"node image with a wildcard", map[string]string{"waste-coach-infra:nodeImage": "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"},
			nil, []string{"waste-coach-infra:nodeImage", `"ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-*"`, "no wildcards"}},
		{"missing admin cidrs", nil, []string{"waste-coach-infra:adminCidrs"}, []string{"adminCidrs", "missing"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := validRaw()
			for k, v := range tc.set {
				raw[k] = v
			}
			for _, k := range tc.drop {
				delete(raw, k)
			}
			_, err := parse(raw)
			if err == nil {
				t.Fatalf("configuration accepted; want a refusal mentioning %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestWorldOpenAdminCIDRIsAllowedOutsideProduction(t *testing.T) {
	raw := validRaw()
	raw["waste-coach-infra:production"] = "false"
	raw["waste-coach-infra:adminCidrs"] = `["0.0.0.0/0"]`
	if _, err := parse(raw); err != nil {
		t.Fatalf("a non-production stack may open admin ports (at its own risk): %v", err)
	}
}

func TestParseReportsEveryProblemAtOnce(t *testing.T) {
	raw := validRaw()
	raw["waste-coach-infra:domain"] = "bad domain"
	raw["waste-coach-infra:kubernetesVersion"] = "x"
	_, err := parse(raw)
	if err == nil || !strings.Contains(err.Error(), "domain") || !strings.Contains(err.Error(), "kubernetesVersion") {
		t.Fatalf("want both problems in one error, got %v", err)
	}
}

func TestMinorOnlyVersionTakesNewestPatch(t *testing.T) {
	raw := validRaw()
	raw["waste-coach-infra:kubernetesVersion"] = "v1.28"
	c, err := parse(raw)
	if err != nil {
		t.Fatalf("1.28 (the design record's version) must be accepted: %v", err)
	}
	if c.Kubernetes.HasPatch || c.Kubernetes.MinorString() != "1.28" {
		t.Errorf("parsed %+v, want minor 1.28 without a patch", c.Kubernetes)
	}
}

// TestProductionPinsZonesAndNarrowAdminRanges shows the production-only refusals of zones and
// admin ranges, each naming the key, the value and why.
func TestProductionPinsZonesAndNarrowAdminRanges(t *testing.T) {
	cases := []struct {
		name   string
		change map[string]string
		want   []string
	}{
		{"storage node moved out of the data zone", map[string]string{"waste-coach-infra:nodes": `[
			{"role":"master","instanceType":"t3.large","subnet":0,"rootVolumeGiB":80},
			{"role":"worker-1","instanceType":"t3.medium","subnet":1,"rootVolumeGiB":40},
			{"role":"worker-2","instanceType":"t3.medium","subnet":2,"rootVolumeGiB":40},
			{"role":"storage","instanceType":"t3.large","subnet":1,"rootVolumeGiB":100}]`},
			[]string{"nodes[storage].subnet", "ap-northeast-2b", "waste-coach-infra:dataZone", "ap-northeast-2a", "EBS volumes"}},
		{"two halves of the internet", map[string]string{"waste-coach-infra:adminCidrs": `["0.0.0.0/1","128.0.0.0/1"]`},
			[]string{"waste-coach-infra:adminCidrs[0]", "0.0.0.0/1", "/16 or narrower", "adminCidrs[1]"}},
		{"zones not pinned", map[string]string{"waste-coach-infra:availabilityZones": "", "waste-coach-infra:dataZone": ""},
			[]string{"waste-coach-infra:availabilityZones: missing", "required on a production stack", "waste-coach-infra:dataZone: missing"}},
		{"zone of another region", map[string]string{"waste-coach-infra:availabilityZones": `["us-east-1a","ap-northeast-2b","ap-northeast-2c"]`},
			[]string{"availabilityZones[0]", `"us-east-1a"`, "region ap-northeast-2"}},
		{"data zone not among the zones", map[string]string{"waste-coach-infra:dataZone": "ap-northeast-2d"},
			[]string{"waste-coach-infra:dataZone", `"ap-northeast-2d"`, "one of availabilityZones"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			raw := validRaw()
			for k, v := range c.change {
				if v == "" {
					delete(raw, k)
				} else {
					raw[k] = v
				}
			}
			_, err := parse(raw)
			if err == nil {
				t.Fatalf("accepted; want a refusal mentioning %v", c.want)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
	t.Run("dev may leave zones unpinned and use wide admin ranges", func(t *testing.T) {
		raw := validRaw()
		raw["waste-coach-infra:production"] = "false"
		raw["waste-coach-infra:adminCidrs"] = `["0.0.0.0/1"]`
		delete(raw, "waste-coach-infra:availabilityZones")
		delete(raw, "waste-coach-infra:dataZone")
		if _, err := Parse("dev", func(k string) (string, bool) { v, ok := raw[k]; return v, ok }); err != nil {
			t.Errorf("dev refused: %v", err)
		}
	})
}

// TestClusterIDIsShortAndDNSSafe shows that the cluster id, from which AWS names are derived, is
// checked: IAM name prefixes allow 38 characters.
func TestClusterIDIsShortAndDNSSafe(t *testing.T) {
	raw := validRaw()
	raw["waste-coach-infra:clusterName"] = "a-very-long-cluster-name-xyz"
	_, err := parse(raw)
	if err == nil || !strings.Contains(err.Error(), "waste-coach-infra:clusterName") || !strings.Contains(err.Error(), "prod-a-very-long-cluster-name-xyz") {
		t.Errorf("a cluster id over %d characters must be refused by key, got %v", MaxClusterIDLength, err)
	}
	c, err := parse(validRaw())
	if err != nil || c.ClusterID() != "prod-sesacthon" {
		t.Errorf("cluster id of prod = %v (%v), want prod-sesacthon", c, err)
	}
}

// TestLifecycleBoundsAreS3s shows that the uploads bucket's lifecycle rule accepts what S3
// accepts at the boundaries: STANDARD_IA at 30 days, GLACIER earlier.
func TestLifecycleBoundsAreS3s(t *testing.T) {
	for _, lc := range []string{
		`{"transitionDays":30,"transitionStorageClass":"STANDARD_IA","expirationDays":0}`,
		`{"transitionDays":1,"transitionStorageClass":"GLACIER","expirationDays":0}`,
		`{"transitionDays":1,"transitionStorageClass":"INTELLIGENT_TIERING","expirationDays":0}`,
	} {
		raw := validRaw()
		raw["waste-coach-infra:uploadsLifecycle"] = lc
		if _, err := parse(raw); err != nil {
			t.Errorf("uploads bucket lifecycle %s refused: %v", lc, err)
		}
	}
}

func TestTaggedImagesAreAllowedOutsideProduction(t *testing.T) {
	raw := validRaw()
	raw["waste-coach-infra:production"] = "false"
	raw["waste-coach-infra:images"] = `{"auth":"ghcr.io/x/auth:1.0.0","users":"ghcr.io/x/users:1.0.0","waste":"ghcr.io/x/waste:1.0.0","celery":"ghcr.io/x/celery:1.0.0"}`
	if _, err := parse(raw); err != nil {
		t.Fatalf("a dev stack may use tags: %v", err)
	}
}

// TestImagePullSecretIsValidatedWithoutRepeatingIt: a registry login is refused by the name of
// the field at fault, and no message repeats the password or user name (they are secrets and
// error messages end up in terminal logs and CI output).
func TestImagePullSecretIsValidatedWithoutRepeatingIt(t *testing.T) {
	const key = "waste-coach-infra:imagePullSecret"
	for _, c := range []struct{ value, wantKey string }{
		{`{"registry":"https://ghcr.io/org","username":"bot","password":"hunter2-token"}`, key + ".registry"},
		{`{"registry":"ghcr.io","username":"","password":"hunter2-token"}`, key + ".username"},
		{`{"registry":"ghcr.io","username":"bot:x","password":"hunter2-token"}`, key + ".username"},
		{`{"registry":"ghcr.io","username":"bot","password":""}`, key + ".password"},
		{`{"registry":"ghcr.io","username":"bot","password":"hunter2-token","email":"x"}`, key},
		{`{"registry":"quay.io","username":"bot","password":"hunter2-token"}`, key + ".registry"},
		{`ghcr.io bot hunter2-token`, key},
	} {
		raw := validRaw()
		raw[key] = c.value
		_, err := parse(raw)
		if err == nil || !strings.Contains(err.Error(), c.wantKey) {
			t.Errorf("imagePullSecret %s: want a refusal naming %s, got %v", c.value, c.wantKey, err)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), `"bot`) {
			t.Errorf("the refusal of imagePullSecret repeats the secret: %v", err)
		}
	}
	raw := validRaw()
	if c, err := parse(raw); err != nil || c.ImagePullSecret != nil {
		t.Errorf("without imagePullSecret there must be no registry login: %v, %v", c.ImagePullSecret, err)
	}
	raw[key] = `{"registry":"registry.example.com:5000","username":"bot","password":"p@ss"}`
	raw["waste-coach-infra:images"] = strings.ReplaceAll(raw["waste-coach-infra:images"], `"celery":"ghcr.io/`, `"celery":"registry.example.com:5000/`)
	c, err := parse(raw)
	if err != nil || c.ImagePullSecret == nil || c.ImagePullSecret.Registry != "registry.example.com:5000" {
		t.Fatalf("a valid login was not accepted: %v", err)
	}
	// base64("bot:p@ss") is the auth field the kubelet decodes.
	want := `{"auths":{"registry.example.com:5000":{"username":"bot","password":"p@ss","auth":"Ym90OnBAc3M="}}}`
	if got := DockerConfigJSON("registry.example.com:5000", "bot", "p@ss"); got != want {
		t.Errorf("dockerconfigjson = %s, want %s", got, want)
	}
}

// TestChartSourceFolderMustHoldEveryPinnedChart: an air-gapped deploy (or the offline engine
// run) that points chartSource at a folder learns which archive is missing before any resource
// is declared, instead of from a failed Helm release half way through `pulumi up`.
func TestChartSourceFolderMustHoldEveryPinnedChart(t *testing.T) {
	dir := t.TempDir()
	charts := versions.Charts()
	// The offline check cache's archives (../shared/charts), which the pins accept from a folder.
	archive := func(c versions.Chart) []byte {
		b, err := os.ReadFile(filepath.Join("..", "..", "shared", "charts", c.Archive()))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, c := range charts[1:] {
		if err := os.WriteFile(filepath.Join(dir, c.Archive()), archive(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	raw := validRaw()
	raw["waste-coach-infra:chartSource"] = dir
	_, err := parse(raw)
	if err == nil || !strings.Contains(err.Error(), "waste-coach-infra:chartSource") || !strings.Contains(err.Error(), charts[0].Archive()+" is missing") {
		t.Fatalf("folder without %s: got %v, want a refusal naming the key and the archive", charts[0].Archive(), err)
	}

	// An archive with other bytes than the pin (an edited chart, another build) is named with
	// its sum and the pinned one before any resource is declared.
	if err := os.WriteFile(filepath.Join(dir, charts[0].Archive()), []byte("archive"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = parse(raw)
	if err == nil || !strings.Contains(err.Error(), charts[0].Archive()+" has sha256 ") || !strings.Contains(err.Error(), "pins "+charts[0].SHA256) {
		t.Fatalf("folder with an archive that is not the pin: got %v, want a refusal naming the archive and both sums", err)
	}

	if err := os.WriteFile(filepath.Join(dir, charts[0].Archive()), archive(charts[0]), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parse(raw)
	if err != nil {
		t.Fatalf("folder with every pinned chart refused: %v", err)
	}
	if c.ChartSource.Folder != dir || c.ChartSource.Mirror != "" {
		t.Errorf("chart source = %+v, want the folder %s", c.ChartSource, dir)
	}

	raw["waste-coach-infra:chartSource"] = filepath.Join(dir, "absent")
	if _, err := parse(raw); err == nil || !strings.Contains(err.Error(), "an existing folder") {
		t.Errorf("absent folder: got %v, want a refusal", err)
	}
	raw["waste-coach-infra:chartSource"] = "https://charts.internal.example.com/helm/"
	if c, err := parse(raw); err != nil || c.ChartSource.Mirror != "https://charts.internal.example.com/helm" {
		t.Errorf("mirror URL: got %+v, %v; want the mirror without its trailing slash", c, err)
	}
}

// TestChartSourceRefusesPlainHTTP: a mirror over plain http would let anyone on the path swap
// the chart archives the program reads and Helm installs; it is refused naming the key, the
// value and what is allowed.
func TestChartSourceRefusesPlainHTTP(t *testing.T) {
	raw := validRaw()
	raw["waste-coach-infra:chartSource"] = "http://charts.internal.example.com/helm"
	_, err := parse(raw)
	if err == nil {
		t.Fatal("an http:// mirror was accepted")
	}
	for _, want := range []string{"waste-coach-infra:chartSource", `"http://charts.internal.example.com/helm"`, "https://"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestBackupRetention: backups are kept 14 days on production and 3 elsewhere unless
// backupRetentionDays says otherwise, and a retention that would keep nothing (or keep backups
// for ever) is refused naming the key.
func TestBackupRetention(t *testing.T) {
	c, err := parse(validRaw())
	if err != nil {
		t.Fatal(err)
	}
	if c.Backups.RetentionDays != 14 || c.Backups.BucketName != "prod-sesacthon-backups" {
		t.Errorf("production defaults: bucket %q kept %d days, want prod-sesacthon-backups kept 14", c.Backups.BucketName, c.Backups.RetentionDays)
	}
	raw := validRaw()
	raw["waste-coach-infra:production"] = "false"
	raw["waste-coach-infra:images"] = `{"auth":"ghcr.io/x/auth:1","users":"ghcr.io/x/users:1","waste":"ghcr.io/x/waste:1","celery":"ghcr.io/x/celery:1"}`
	if c, err := parse(raw); err != nil || c.Backups.RetentionDays != 3 {
		t.Errorf("non-production default retention = %v (err %v), want 3 days", c, err)
	}
	raw["waste-coach-infra:backupRetentionDays"] = "0" // Pulumi.yaml's default: the stack's own
	if c, err := parse(raw); err != nil || c.Backups.RetentionDays != 3 {
		t.Errorf("backupRetentionDays 0 = %v (err %v), want the non-production default, 3 days", c, err)
	}
	raw["waste-coach-infra:backupRetentionDays"] = "30"
	if c, err := parse(raw); err != nil || c.Backups.RetentionDays != 30 {
		t.Errorf("backupRetentionDays 30 not taken (err %v)", err)
	}
	for _, bad := range []struct{ key, value, want string }{
		{"backupRetentionDays", "-1", "from 1 to 365"},
		{"backupRetentionDays", "366", "from 1 to 365"},
		{"backupRetentionDays", "two weeks", "whole number of days"},
		{"backupsBucket", "Backups!", "S3 bucket name"},
		{"backupsBucket", "prod-sesacthon-images", "other than uploadsBucket"},
	} {
		raw := validRaw()
		raw["waste-coach-infra:"+bad.key] = bad.value
		_, err := parse(raw)
		if err == nil {
			t.Errorf("%s=%q accepted", bad.key, bad.value)
			continue
		}
		for _, want := range []string{"waste-coach-infra:" + bad.key, strconvQuote(bad.value), bad.want} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s=%q: error %q does not contain %q", bad.key, bad.value, err, want)
			}
		}
	}
}

func strconvQuote(s string) string { return `"` + s + `"` }

// TestProductionRunsNoImageByTagAlone: on a production stack, an image of the program's own
// objects without a digest is refused, naming it, unless versions says why it cannot have one;
// a dev stack may run it. And the program's images today are all one or the other, for every
// minor the program supports.
func TestProductionRunsNoImageByTagAlone(t *testing.T) {
	const moved = "docker.io/library/postgres:16.11-bookworm" // a bump that forgot its digest
	images := []string{versions.Postgres, "docker.io/oliver006/redis_exporter:v1.87.0", moved}
	for _, production := range []bool{true, false} {
		p := &parser{}
		p.programImagesByDigest(&Config{Production: production}, images)
		err := errors.Join(p.errs...)
		if !production {
			if err != nil {
				t.Errorf("dev stack: %v, want tags allowed", err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "waste-coach-infra:production") || !strings.Contains(err.Error(), moved+" is pinned by tag only") {
			t.Fatalf("production with %s: %v, want a refusal naming the key and the image", moved, err)
		}
		if strings.Contains(err.Error(), "postgres:16.10") || strings.Contains(err.Error(), "redis_exporter") {
			t.Errorf("production refused a pinned image or one versions explains: %v", err)
		}
	}
	for _, minor := range versions.CCMMinors() {
		if left := versions.Unpinned(versions.ProgramImages(minor)); len(left) > 0 {
			t.Errorf("Kubernetes %s: images by tag alone, unexplained: %v", minor, left)
		}
	}
	if !strings.Contains(versions.Postgres, "@sha256:") {
		t.Errorf("PostgreSQL runs as %s, want it by digest", versions.Postgres)
	}
}
