package tests

import (
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/waste-coach/infra/cluster"
	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/infra"
	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/workloads"
)

// withSuffix keeps the resources whose logical name ends with suffix (one bucket's companions).
func withSuffix(rs []*mocks.Resource, suffix string) []*mocks.Resource {
	var out []*mocks.Resource
	for _, r := range rs {
		if strings.HasSuffix(r.Name, suffix) {
			out = append(out, r)
		}
	}
	return out
}

// policyDoc is an IAM or bucket policy as the program renders it.
type policyDoc struct {
	Statement []policyStatement
}

// policyStatement is one statement; the program writes Action as a list, Resource as a string or
// a list.
type policyStatement struct {
	Sid       string
	Effect    string
	Principal any
	Action    []string
	Resource  any
	Condition map[string]map[string]any
}

func parsePolicy(t *testing.T, r *mocks.Resource) policyDoc {
	t.Helper()
	var d policyDoc
	if err := json.Unmarshal([]byte(str(r, "policy")), &d); err != nil {
		t.Fatalf("%s: policy is not JSON: %v", r.Name, err)
	}
	return d
}

// iamMatch reports whether an IAM action pattern (with * and ?) matches an action; IAM compares
// actions without regard to case.
func iamMatch(pattern, value string) bool {
	return regexp.MustCompile("(?i)" + iamGlob(pattern)).MatchString(value)
}

// arnMatch reports whether an IAM resource pattern matches an ARN; IAM compares ARNs with case.
func arnMatch(pattern, arn string) bool {
	return regexp.MustCompile(iamGlob(pattern)).MatchString(arn)
}

// iamGlob is the regular expression of an IAM pattern: * any run of characters, ? one.
func iamGlob(pattern string) string {
	return "^" + strings.ReplaceAll(strings.ReplaceAll(regexp.QuoteMeta(pattern), `\*`, ".*"), `\?`, ".") + "$"
}

func resources(v any) []string {
	switch r := v.(type) {
	case string:
		return []string{r}
	case []any:
		var out []string
		for _, x := range r {
			out = append(out, x.(string))
		}
		return out
	}
	return nil
}

// TestBackupsBucketKeepsBackupsForTheRetention: the backups bucket is private, encrypted,
// versioned, protected on production, and its lifecycle keeps backups exactly the configured
// retention (14 days on prod, 3 on dev by default).
func TestBackupsBucketKeepsBackupsForTheRetention(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		of := func(typ string) []*mocks.Resource { return withSuffix(r.OfType(typ), "-backups") }
		buckets := of("aws:s3/bucketV2:BucketV2")
		if len(buckets) != 1 {
			t.Fatalf("%d backups buckets, want 1", len(buckets))
		}
		b := buckets[0]
		if got, want := str(b, "bucket"), r.Stack+"-sesacthon-backups"; got != want {
			t.Errorf("backups bucket name = %s, want %s", got, want)
		}
		prod := r.Stack == "prod"
		if b.Protect != prod || b.RetainOnDelete != prod {
			t.Errorf("backups bucket protect=%v retainOnDelete=%v, want %v on %s", b.Protect, b.RetainOnDelete, prod, r.Stack)
		}
		if got := str(b, "forceDestroy"); got != map[bool]string{true: "false", false: "true"}[prod] {
			t.Errorf("backups bucket forceDestroy = %s on %s: only a stack whose data is not protected may be emptied by destroy", got, r.Stack)
		}
		for _, typ := range []string{
			"aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "aws:s3/bucketVersioningV2:BucketVersioningV2",
			"aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
			"aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2", "aws:s3/bucketPolicy:BucketPolicy",
		} {
			rs := of(typ)
			if len(rs) != 1 {
				t.Errorf("%d %s for the backups bucket, want 1", len(rs), typ)
				continue
			}
			if rs[0].Protect != prod || rs[0].RetainOnDelete != prod {
				t.Errorf("%s of the backups bucket: protect=%v retain=%v, want %v (removing it would open or unversion the bucket)", typ, rs[0].Protect, rs[0].RetainOnDelete, prod)
			}
		}
		if v := of("aws:s3/bucketVersioningV2:BucketVersioningV2"); len(v) == 1 && str(v[0], "versioningConfiguration", "status") != "Enabled" {
			t.Errorf("backups bucket versioning is not enabled")
		}
		if pab := of("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"); len(pab) == 1 {
			for _, k := range []string{"blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"} {
				if str(pab[0], k) != "true" {
					t.Errorf("backups bucket public access block %s is not on", k)
				}
			}
		}
		if sse := of("aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2"); len(sse) == 1 &&
			str(sse[0], "rules", 0, "applyServerSideEncryptionByDefault", "sseAlgorithm") == "" {
			t.Errorf("backups bucket has no default encryption")
		}
		retention := map[string]string{"prod": "14", "dev": "3"}[r.Stack]
		if lc := of("aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2"); len(lc) == 1 {
			rules := map[string]int{}
			for i := 0; str(lc[0], "rules", i, "id") != ""; i++ {
				rules[str(lc[0], "rules", i, "id")] = i
			}
			for _, id := range []string{"expire-etcd-backups", "expire-postgres-backups"} {
				if i, ok := rules[id]; !ok || str(lc[0], "rules", i, "expiration", "days") != retention || str(lc[0], "rules", i, "status") != "Enabled" {
					t.Errorf("%s: backups expire after %q days, want %s (backupRetentionDays default)", id, str(lc[0], "rules", rules[id], "expiration", "days"), retention)
				}
			}
			if i, ok := rules["remove-expired-versions"]; !ok || str(lc[0], "rules", i, "noncurrentVersionExpiration", "noncurrentDays") != retention {
				t.Errorf("noncurrent backup versions are not kept the retention (%s days): an overwrite could remove a backup early", retention)
			}
			if _, ok := rules["abort-incomplete-uploads"]; !ok {
				t.Errorf("incomplete multipart uploads of backups are never aborted")
			}
		}
	})
}

// TestTheClusterMarkOutlivesTheBackups: the mark that says a cluster has run, which a new master
// reads before it would start the cluster empty (kubeadm-init), is not removed by the backups'
// expiry: with a retention of a day or two, or dev's nodes stopped longer than the retention,
// the snapshots expire, and a mark that expired with them would let a replaced master start an
// empty cluster under workers that still run the old one. Every backup still expires after the
// retention. The master looks for the mark where its role may list it and puts it there.
func TestTheClusterMarkOutlivesTheBackups(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		lc := must(t, r, "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2", "sesacthon-backups")
		// expiresAfter is the days after which S3 expires the current version of key: the least
		// of the enabled expiration rules whose prefix filter matches it (0 when none does).
		expiresAfter := func(key string) int {
			least := 0
			for i := 0; str(lc, "rules", i, "id") != ""; i++ {
				days, _ := strconv.Atoi(str(lc, "rules", i, "expiration", "days"))
				if str(lc, "rules", i, "status") != "Enabled" || days == 0 || !strings.HasPrefix(key, str(lc, "rules", i, "filter", "prefix")) {
					continue
				}
				if least == 0 || days < least {
					least = days
				}
			}
			return least
		}
		prefix := snapshotPrefixOf(t, r)
		mark := config.ClusterMark(prefix)
		if got := expiresAfter(mark); got != 0 {
			t.Errorf("the cluster's mark %s expires after %d days, with the backups: a master replaced after the snapshots expired would start the cluster empty", mark, got)
		}
		retention := r.Config.Backups.RetentionDays
		for _, key := range []string{prefix + "/2026/12/07/etcd-20261207T000000Z.db", "etcd/2026/12/07/etcd-20261207T000000Z.db",
			"postgres/wal/000000010000000000000001.gz", "postgres/base/20261207T000000Z/base.tar.gz.000", "postgres/dump/20261207T000000Z/wastecoach.dump"} {
			if got := expiresAfter(key); got != retention {
				t.Errorf("backup %s expires after %d days (0: never), want the retention, %d", key, got, retention)
			}
		}
		initScript := str(must(t, r, remoteCommand, "sesacthon-kubeadm-init"), "create")
		if !strings.Contains(initScript, "cluster_marker="+mark+"\n") {
			t.Errorf("kubeadm-init does not look for and put the cluster's mark at %s", mark)
		}
		bucket := "arn:aws:s3:::" + r.Config.Backups.BucketName
		role := parsePolicy(t, must(t, r, "aws:iam/rolePolicy:RolePolicy", "sesacthon-iam-master-etcd-restore"))
		if !allows(t, role, iamRequest{action: "s3:ListBucket", arn: bucket, context: map[string]string{"s3:prefix": mark}}) {
			t.Errorf("the master's role may not list %s: a new master could not find the mark", mark)
		}
		if !allows(t, role, iamRequest{action: "s3:PutObject", arn: bucket + "/" + mark}) {
			t.Errorf("the master's role may not put %s", mark)
		}
		if allows(t, role, iamRequest{action: "s3:PutObject", arn: bucket + "/" + prefix + "/2026/12/07/etcd-20261207T000000Z.db"}) {
			t.Error("the master's role may put a snapshot: it only reads them")
		}
	})
}

// snapshotPrefixOf is the stack's etcd snapshot prefix, derived from the etcd CA the program holds.
func snapshotPrefixOf(t *testing.T, r *offline.Result) string {
	t.Helper()
	etcdCA := must(t, r, "tls:index/selfSignedCert:SelfSignedCert", "sesacthon-etcd-ca").Outputs["certPem"]
	if etcdCA.IsSecret() {
		etcdCA = etcdCA.SecretValue().Element
	}
	prefix, err := cluster.EtcdSnapshotPrefix(etcdCA.StringValue())
	if err != nil {
		t.Fatal(err)
	}
	return prefix
}

// TestOnlyBackupWritersWriteAndNobodyDeletesVersions: the bucket policy denies every principal
// the deletion of an object version and every principal but the backup writers a write: the
// master's node role (it marks the cluster as having run at its first boot) and the pod roles of
// the etcd snapshot, the WAL shipper and the PostgreSQL backup jobs; no role policy allows a
// version delete on the backups bucket; and each writer may add objects under its own prefix
// only (the master only the cluster's marker, never a snapshot), while no other role, node or
// pod, may write to the bucket at all.
func TestOnlyBackupWritersWriteAndNobodyDeletesVersions(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		bucketARN := "arn:aws:s3:::" + r.Stack + "-sesacthon-backups"
		roleARN := func(name string) string {
			res := must(t, r, "aws:iam/role:Role", name)
			return res.Outputs["arn"].StringValue()
		}
		podRole := func(key string) string { return "sesacthon-pod-identity-" + key }
		writers := []string{
			roleARN("sesacthon-iam-master"),
			roleARN(podRole(infra.PodRoleEtcdBackup)),
			roleARN(podRole(infra.PodRolePostgresWAL)),
			roleARN(podRole(infra.PodRolePostgresBackup)),
		}

		pols := withSuffix(r.OfType("aws:s3/bucketPolicy:BucketPolicy"), "-backups")
		if len(pols) != 1 {
			t.Fatalf("%d backups bucket policies, want 1", len(pols))
		}
		var tls, noVersionDelete, onlyWriters bool
		for _, s := range parsePolicy(t, pols[0]).Statement {
			if s.Effect != "Deny" {
				continue
			}
			covers := slices.Contains(resources(s.Resource), bucketARN+"/*")
			switch {
			case slices.Contains(s.Action, "s3:*") && s.Condition["Bool"]["aws:SecureTransport"] == "false":
				tls = true
			case covers && slices.Contains(s.Action, "s3:DeleteObjectVersion") && len(s.Condition) == 0:
				noVersionDelete = true
			case covers && slices.Contains(s.Action, "s3:PutObject"):
				got := resources(s.Condition["ArnNotEquals"]["aws:PrincipalArn"])
				slices.Sort(got)
				want := slices.Sorted(slices.Values(writers))
				onlyWriters = slices.Equal(got, want)
				if !onlyWriters {
					t.Errorf("writes are allowed to %v, want exactly the backup writers %v", got, want)
				}
			}
		}
		if !tls || !noVersionDelete || !onlyWriters {
			t.Errorf("backups bucket policy: TLS only=%v, no version delete for anyone=%v, only the writer roles write=%v; want all", tls, noVersionDelete, onlyWriters)
		}

		// What each inline policy, of any role, may write to the backups bucket.
		wantWrites := map[string][]string{
			"sesacthon-iam-master-etcd-restore":  {bucketARN + "/" + config.MarkPrefix + "/*"},
			podRole(infra.PodRoleEtcdBackup):     {bucketARN + "/etcd/*"},
			podRole(infra.PodRolePostgresWAL):    {bucketARN + "/postgres/wal/*"},
			podRole(infra.PodRolePostgresBackup): {bucketARN + "/postgres/base/*", bucketARN + "/postgres/dump/*"},
		}
		// Keys of the bucket a pattern may name: any object, each prefix, the cluster's marker.
		probes := []string{"x", "etcd/x", config.ClusterMark("etcd/0123456789abcdef"), "postgres/x", "postgres/wal/x", "postgres/base/x", "postgres/dump/x"}
		onBucket := func(res string) bool {
			if strings.HasPrefix(res, bucketARN+"/") {
				return true
			}
			for _, k := range probes {
				if arnMatch(res, bucketARN+"/"+k) {
					return true
				}
			}
			return false
		}
		gotWrites := map[string][]string{}
		for _, rp := range r.OfType("aws:iam/rolePolicy:RolePolicy") {
			for _, s := range parsePolicy(t, rp).Statement {
				if s.Effect != "Allow" {
					continue
				}
				for _, res := range resources(s.Resource) {
					if !onBucket(res) && !arnMatch(res, bucketARN) {
						continue
					}
					for _, a := range s.Action {
						for _, forbidden := range []string{"s3:DeleteObjectVersion", "s3:DeleteObject", "s3:PutLifecycleConfiguration", "s3:PutBucketPolicy", "s3:PutBucketVersioning"} {
							if iamMatch(a, forbidden) {
								t.Errorf("role policy %s allows %s (as %s) on %s: a backup writer must not remove or unprotect backups", rp.Name, forbidden, a, res)
							}
						}
						if onBucket(res) && iamMatch(a, "s3:PutObject") && !slices.Contains(gotWrites[rp.Name], res) {
							gotWrites[rp.Name] = append(gotWrites[rp.Name], res)
						}
					}
				}
			}
		}
		for name, got := range gotWrites {
			if _, ok := wantWrites[name]; !ok {
				t.Errorf("role policy %s may write %v to the backups bucket: only the master's marker and the backup pods' roles write backups", name, got)
			}
		}
		for name, want := range wantWrites {
			if r.Named("aws:iam/rolePolicy:RolePolicy", name) == nil {
				t.Errorf("no role policy %s: a backup writer cannot write", name)
				continue
			}
			got := slices.Sorted(slices.Values(gotWrites[name]))
			if !slices.Equal(got, want) {
				t.Errorf("role policy %s may write backups to %v, want only %v", name, got, want)
			}
		}
	})
}

// TestEtcdSnapshotIsScheduledOnTheMaster: the etcd snapshot runs as a CronJob on the control
// plane (pinned to it, tolerating its taint, on its network to reach the member on loopback),
// every 15 minutes at most, never two at once, keeping failed runs to be seen; it runs the embedded
// script (the one the restore drill runs), uploads to this stack's backups bucket under the
// prefix the etcd snapshot's pod role may write, and mounts only the etcd client files, never the etcd CA key.
func TestEtcdSnapshotIsScheduledOnTheMaster(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		cj := must(t, r, "kubernetes:batch/v1:CronJob", "sesacthon-kube-system-etcd-snapshot")
		if got := str(cj, "metadata", "namespace"); got != "kube-system" {
			t.Errorf("etcd-snapshot CronJob in namespace %q, want kube-system", got)
		}
		spec := func(path ...any) string { return str(cj, append([]any{"spec"}, path...)...) }
		if gap := largestGapMinutes(t, spec("schedule")); gap > 15 {
			t.Errorf("etcd snapshot schedule %q leaves %d minutes between snapshots: the cluster state's recovery point must be 15 minutes at most", spec("schedule"), gap)
		}
		if got := time.Duration(largestGapMinutes(t, workloads.EtcdSnapshotSchedule)) * time.Minute; got != workloads.EtcdSnapshotInterval {
			t.Errorf("EtcdSnapshotSchedule runs every %s, but EtcdSnapshotInterval (the alert's window) says %s", got, workloads.EtcdSnapshotInterval)
		}
		if spec("concurrencyPolicy") != "Forbid" || spec("failedJobsHistoryLimit") == "0" || spec("failedJobsHistoryLimit") == "" {
			t.Errorf("etcd snapshot: concurrencyPolicy=%s failedJobsHistoryLimit=%s, want Forbid and failed runs kept", spec("concurrencyPolicy"), spec("failedJobsHistoryLimit"))
		}
		pod := []any{"jobTemplate", "spec", "template", "spec"}
		ps := func(path ...any) string { return spec(append(append([]any{}, pod...), path...)...) }
		if !strings.Contains(prop(cj, append([]any{"spec"}, append(pod, "nodeSelector")...)...).String(), "node-role.kubernetes.io/control-plane") ||
			ps("tolerations", 0, "key") != "node-role.kubernetes.io/control-plane" {
			t.Errorf("etcd snapshot is not pinned to the control plane: nodeSelector %s, toleration %q", prop(cj, append([]any{"spec"}, append(pod, "nodeSelector")...)...), ps("tolerations", 0, "key"))
		}
		if ps("hostNetwork") != "true" || ps("restartPolicy") != "Never" {
			t.Errorf("etcd snapshot hostNetwork=%s restartPolicy=%s, want true (the member listens on the master's loopback) and Never", ps("hostNetwork"), ps("restartPolicy"))
		}
		if !strings.HasPrefix(ps("initContainers", 0, "image"), "registry.k8s.io/etcd:3.6.6-0") {
			t.Errorf("snapshot step image = %s, want kubeadm's etcd image registry.k8s.io/etcd:3.6.6-0", ps("initContainers", 0, "image"))
		}
		env := map[string]string{}
		for i := 0; ps("containers", 0, "env", i, "name") != ""; i++ {
			env[ps("containers", 0, "env", i, "name")] = ps("containers", 0, "env", i, "value")
		}
		// The snapshots go under the cluster's own prefix, derived from the etcd CA the program
		// holds, inside the prefix the etcd snapshot's pod role may write; a new master looks there.
		etcdCA := must(t, r, "tls:index/selfSignedCert:SelfSignedCert", "sesacthon-etcd-ca").Outputs["certPem"]
		if etcdCA.IsSecret() {
			etcdCA = etcdCA.SecretValue().Element
		}
		wantPrefix, err := cluster.EtcdSnapshotPrefix(etcdCA.StringValue())
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^etcd/[0-9a-f]{16}$`).MatchString(wantPrefix) {
			t.Errorf("EtcdSnapshotPrefix = %q, want etcd/ and 16 hex digits", wantPrefix)
		}
		if env["BACKUP_BUCKET"] != r.Stack+"-sesacthon-backups" || env["BACKUP_PREFIX"] != wantPrefix {
			t.Errorf("upload goes to s3://%s/%s, want s3://%s-sesacthon-backups/%s (the cluster's prefix, inside the one the etcd snapshot's pod role may write)", env["BACKUP_BUCKET"], env["BACKUP_PREFIX"], r.Stack, wantPrefix)
		}
		initCmd := must(t, r, remoteCommand, "sesacthon-kubeadm-init")
		if !r.DependsOn(initCmd, must(t, r, remoteCommand, "sesacthon-etcdutl")) {
			t.Error("kubeadm-init does not wait for etcdutl: a new master could not restore its snapshot")
		}
		initScript := str(initCmd, "create")
		if !strings.Contains(initScript, "BACKUP_BUCKET="+r.Stack+"-sesacthon-backups\n") || !strings.Contains(initScript, `keys "`+wantPrefix+"/") {
			t.Errorf("a new master does not look for snapshots in s3://%s-sesacthon-backups/%s/, where the CronJob puts them", r.Stack, wantPrefix)
		}
		for i := range 8 {
			path := ps("volumes", i, "hostPath", "path")
			if path == "" {
				continue
			}
			if strings.HasSuffix(path, ".key") && !strings.HasSuffix(path, "healthcheck-client.key") || !strings.HasPrefix(path, "/etc/kubernetes/pki/etcd/") || ps("volumes", i, "hostPath", "type") != "File" {
				t.Errorf("etcd snapshot mounts host path %s (%s): only the CA certificate and the healthcheck client's certificate and key", path, ps("volumes", i, "hostPath", "type"))
			}
		}
		cm := must(t, r, "kubernetes:core/v1:ConfigMap", "sesacthon-kube-system-etcd-snapshot")
		if str(cm, "data", "etcd-snapshot.sh") != workloads.EtcdSnapshotScript {
			t.Errorf("the CronJob's ConfigMap does not hold the embedded etcd-snapshot.sh the drill runs")
		}
	})
}

// TestDailySnapshotsTargetTheStorageClassTag: the Data Lifecycle Manager policy snapshots, daily,
// exactly the volumes carrying the tag that every storage class of the stack puts on its volumes
// (PostgreSQL, Redis, RabbitMQ, Prometheus), keeps backupRetentionDays snapshots, and runs as a
// role that may create snapshots only of those volumes and delete only its own snapshots.
func TestDailySnapshotsTargetTheStorageClassTag(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		pol := must(t, r, "aws:dlm/lifecyclePolicy:LifecyclePolicy", "sesacthon-snapshots")
		details := func(path ...any) string { return str(pol, append([]any{"policyDetails"}, path...)...) }
		clusterID := r.Stack + "-sesacthon"
		targets := prop(pol, "policyDetails", "targetTags").ObjectValue()
		if len(targets) != 1 || details("targetTags", "waste-coach/snapshot") != clusterID {
			t.Errorf("DLM policy targets %v, want only waste-coach/snapshot=%s", targets, clusterID)
		}
		classes := r.OfType("kubernetes:storage.k8s.io/v1:StorageClass")
		if len(classes) == 0 {
			t.Fatal("no storage class")
		}
		for _, sc := range classes {
			if got := str(sc, "parameters", "tagSpecification_1"); got != "waste-coach/snapshot="+clusterID {
				t.Errorf("storage class %s tags its volumes %q, want waste-coach/snapshot=%s (the DLM policy's target): its volumes would never be snapshotted", str(sc, "metadata", "name"), got, clusterID)
			}
		}
		retention := map[string]string{"prod": "14", "dev": "3"}[r.Stack]
		if details("schedules", 0, "retainRule", "count") != retention || details("schedules", 0, "createRule", "interval") != "24" || details("schedules", 0, "createRule", "intervalUnit") != "HOURS" {
			t.Errorf("DLM schedule: every %s %s, keep %s; want daily, keep %s", details("schedules", 0, "createRule", "interval"),
				details("schedules", 0, "createRule", "intervalUnit"), details("schedules", 0, "retainRule", "count"), retention)
		}
		if details("resourceTypes", 0) != "VOLUME" || str(pol, "state") != "ENABLED" {
			t.Errorf("DLM policy targets %s, state %s; want VOLUME, ENABLED", details("resourceTypes", 0), str(pol, "state"))
		}
		rp := must(t, r, "aws:iam/rolePolicy:RolePolicy", "sesacthon-snapshots")
		for _, s := range parsePolicy(t, rp).Statement {
			for _, a := range s.Action {
				mutates := iamMatch(a, "ec2:CreateSnapshot") || iamMatch(a, "ec2:DeleteSnapshot")
				if !mutates {
					if !strings.HasPrefix(a, "ec2:Describe") && a != "ec2:CreateTags" {
						t.Errorf("DLM role may %s: it needs only to describe, snapshot, tag and expire", a)
					}
					continue
				}
				cond := s.Condition["StringEquals"]
				if cond["ec2:ResourceTag/waste-coach/snapshot"] != clusterID && cond["aws:RequestTag/waste-coach/snapshot"] != clusterID {
					t.Errorf("DLM role may %s on %v without this stack's tag: it could snapshot or delete other stacks' data", a, s.Resource)
				}
			}
		}
	})
}

// largestGapMinutes is the longest time between two runs of an hourly cron schedule: one whose
// minute field is a number, a list, or a range with a step, and whose other fields are "*".
func largestGapMinutes(t *testing.T, schedule string) int {
	t.Helper()
	fields := strings.Fields(schedule)
	if len(fields) != 5 || strings.Join(fields[1:], " ") != "* * * *" {
		t.Fatalf("schedule %q is not an hourly one this check reads", schedule)
	}
	var minutes []int
	for _, part := range strings.Split(fields[0], ",") {
		lo, hi, step := 0, 59, 1
		rng, stepText, hasStep := strings.Cut(part, "/")
		if hasStep {
			n, err := strconv.Atoi(stepText)
			if err != nil || n < 1 {
				t.Fatalf("schedule %q: bad step %q", schedule, stepText)
			}
			step = n
		}
		switch a, b, isRange := strings.Cut(rng, "-"); {
		case rng == "*":
		case isRange:
			var err1, err2 error
			lo, err1 = strconv.Atoi(a)
			hi, err2 = strconv.Atoi(b)
			if err1 != nil || err2 != nil {
				t.Fatalf("schedule %q: bad range %q", schedule, rng)
			}
		default:
			n, err := strconv.Atoi(rng)
			if err != nil {
				t.Fatalf("schedule %q: bad minute %q", schedule, rng)
			}
			lo = n
			if !hasStep {
				hi = n
			}
		}
		for m := lo; m <= hi; m += step {
			minutes = append(minutes, m)
		}
	}
	slices.Sort(minutes)
	gap := minutes[0] + 60 - minutes[len(minutes)-1]
	for i := 1; i < len(minutes); i++ {
		gap = max(gap, minutes[i]-minutes[i-1])
	}
	return gap
}

// TestBackupsAreWrittenOnce evaluates the backups bucket's policy as S3 does for its writers: an
// upload of a backup (an etcd snapshot, a WAL segment, a base backup, a dump) is refused unless it
// carries If-None-Match, with which S3 never replaces an object; the cluster's mark, which holds
// no data and is refreshed with every snapshot, may be put again. Nothing may delete a version.
func TestBackupsAreWrittenOnce(t *testing.T) {
	forEachStack(t, func(t *testing.T, r *offline.Result) {
		doc := parsePolicy(t, must(t, r, "aws:s3/bucketPolicy:BucketPolicy", "sesacthon-backups"))
		// The bucket policy only denies: a request it does not deny is up to the writer's role.
		// The rule on who writes (ArnNotEquals) is TestOnlyBackupWritersWriteAndNobodyDeletesVersions's.
		denies := func(req iamRequest) bool {
			for _, s := range doc.Statement {
				if _, writers := s.Condition["ArnNotEquals"]; writers {
					continue
				}
				if s.Effect == "Deny" && statementMatches(t, s, req) {
					return true
				}
			}
			return false
		}
		bucket := "arn:aws:s3:::" + r.Config.Backups.BucketName
		conditional := map[string]string{"s3:if-none-match": "*", "aws:PrincipalArn": "arn:aws:iam::123456789012:role/writer", "aws:SecureTransport": "true"}
		plain := map[string]string{"aws:PrincipalArn": "arn:aws:iam::123456789012:role/writer", "aws:SecureTransport": "true"}
		for _, key := range []string{"etcd/0123456789abcdef/2026/12/07/etcd-20261207T000000Z.db", "postgres/wal/000000010000000000000001.gz",
			"postgres/base/20261207T000000Z/base.tar.gz.000", "postgres/dump/20261207T000000Z/wastecoach.dump"} {
			if !denies(iamRequest{action: "s3:PutObject", arn: bucket + "/" + key, context: plain}) {
				t.Errorf("the bucket lets a writer put %s without If-None-Match: it could replace that backup", key)
			}
			if denies(iamRequest{action: "s3:PutObject", arn: bucket + "/" + key, context: conditional}) {
				t.Errorf("the bucket refuses a new backup %s put with If-None-Match", key)
			}
			if !denies(iamRequest{action: "s3:DeleteObjectVersion", arn: bucket + "/" + key, context: plain}) {
				t.Errorf("the bucket lets anyone delete a version of %s", key)
			}
		}
		if denies(iamRequest{action: "s3:PutObject", arn: bucket + "/" + config.ClusterMark("etcd/0123456789abcdef"), context: plain}) {
			t.Error("the bucket refuses to put the cluster's mark again: every kubeadm-init puts it")
		}
	})
}
