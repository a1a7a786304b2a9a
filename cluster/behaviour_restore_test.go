package cluster

// Behaviour tests of a new master's restore (kubeadm-init): a new cluster starts empty; a master
// that replaces one restores the newest etcd snapshot of its cluster before kubeadm starts etcd,
// and registers its own Node; nothing is ever restored over data; a failure to read the bucket
// never reads as "no snapshot".

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/waste-coach/infra/config"
)

// testSnapshots is where the test master looks for snapshots.
var testSnapshots = Snapshots{Bucket: "prod-sesacthon-backups", Region: "ap-northeast-2", Prefix: "etcd/0123456789abcdef", Days: 7}

const (
	testMasterIP = "10.0.1.10"
	// testMasterHost is the hostname as the instance may report it; kubeadm lowercases it.
	testMasterHost = "IP-10-0-1-10.ap-northeast-2.compute.internal"
	testMasterNode = "ip-10-0-1-10.ap-northeast-2.compute.internal"
	testInstance   = "i-0new0000000000000"
	testSecret     = "instance-role-secret-key"
)

// testMark is the test cluster's mark, which says it has run (config.ClusterMark).
var testMark = config.ClusterMark(testSnapshots.Prefix)

// testInitScript is kubeadm-init for the test master.
func testInitScript(kubeadmConfig string) string {
	return KubeadmInitScript(kubeadmConfig, testSnapshots, testMasterIP)
}

// emptyListing is ListObjectsV2's answer for a prefix without keys.
const emptyListing = `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><KeyCount>0</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>`

// listing is ListObjectsV2's answer with these keys, in S3's (ascending) order.
func listing(keys ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><IsTruncated>false</IsTruncated>`)
	for _, k := range keys {
		b.WriteString("<Contents><Key>" + k + "</Key><Size>20480</Size><StorageClass>STANDARD</StorageClass></Contents>")
	}
	b.WriteString("</ListBucketResult>")
	return b.String()
}

// snapshotKey is the key of a snapshot taken back days ago at hhmmss (UTC), where the CronJob
// puts it.
func snapshotKey(back int, hhmmss string) string {
	d := time.Now().UTC().AddDate(0, 0, -back)
	return testSnapshots.Prefix + "/" + d.Format("2006/01/02") + "/etcd-" + d.Format("20060102") + "T" + hhmmss + "Z.db"
}

// restoreCase is a new master's kubeadm-init with stand-ins for the machine, IMDS and S3. The
// n-th listing request answers $STUB_STATE/listing-n (emptyListing when there is none); a
// download writes the key's name into the file; `kubectl get node` prints $STUB_STATE/provider.
// etcdutl's restore makes the member folder its data directory needs.
func restoreCase() scriptCase {
	c := kubeadmInitCase()
	c.stubs["hostname"] = `echo ` + testMasterHost
	c.stubs["curl"] = `case " $* " in *" -K - "*) cat > "${STUB_STATE}/curl-config" ;; esac
case "$*" in
  *api/token*) echo imds-token ;;
  *meta-data/instance-id*) echo ` + testInstance + ` ;;
  *security-credentials/instance-role*) echo '{"Code":"Success","AccessKeyId":"ASIAEXAMPLE","SecretAccessKey":"` + testSecret + `","Token":"session"}' ;;
  *security-credentials/*) echo instance-role ;;
  *list-type=2*)
    n=$(( $(cat "${STUB_STATE}/lists" 2> /dev/null || echo 0) + 1 ))
    echo "${n}" > "${STUB_STATE}/lists"
    [ ! -e "${STUB_STATE}/list-fails" ] || { echo "curl: (22) The requested URL returned error: 403" >&2; exit 22; }
    if [ -e "${STUB_STATE}/listing-${n}" ]; then cat "${STUB_STATE}/listing-${n}"; else echo '` + emptyListing + `'; fi ;;
  *)
    out="" url=""
    while [ $# -gt 0 ]; do
      case "$1" in -o) out=$2; shift ;; http*) url=$1 ;; esac
      shift
    done
    if [ -n "${out}" ]; then echo "snapshot ${url##*amazonaws.com/}" > "${out}"; fi ;;
esac`
	c.stubs["etcdutl"] = `if [ "$1 $2" = "snapshot restore" ]; then
  snapshot=$3
  while [ $# -gt 0 ]; do
    [ "$1" != --data-dir ] || { mkdir -p "$2/member/snap" && cp "${snapshot}" "$2/member/snap/db"; }
    shift
  done
fi`
	c.stubs["kubectl"] = `case "$*" in *"get node"*"jsonpath"*) cat "${STUB_STATE}/provider" 2> /dev/null ;; esac; exit 0`
	return c
}

// restoreRoot is a scratch master whose bucket answers the listings given, in request order.
func restoreRoot(t *testing.T, listings ...string) *scratchRoot {
	t.Helper()
	root := newRoot(t)
	for i, l := range listings {
		root.stubState(t, "listing-"+strconv.Itoa(i+1), l)
	}
	return root
}

// stubState writes a file the stand-ins read.
func (s *scratchRoot) stubState(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(s.dir, "state", name), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// listedDays are the days the run's listing requests asked for, in order.
func listedDays(t *testing.T, r scriptResult) []time.Time {
	t.Helper()
	want := regexp.MustCompile(`^https://prod-sesacthon-backups\.s3\.ap-northeast-2\.amazonaws\.com/\?list-type=2&prefix=etcd%2F0123456789abcdef%2F(\d{4})%2F(\d{2})%2F(\d{2})%2F$`)
	var days []time.Time
	for _, c := range r.called("curl") {
		url := c[len(c)-1]
		if !strings.Contains(url, "list-type=2") || strings.HasSuffix(url, "prefix="+strings.ReplaceAll(testMark, "/", "%2F")) {
			continue // the cluster's marker is looked for after the days
		}
		m := want.FindStringSubmatch(url)
		if m == nil {
			t.Fatalf("a listing asked for %s, want one day's folder under s3://prod-sesacthon-backups/etcd/0123456789abcdef/", url)
		}
		d, err := time.Parse("2006-01-02", m[1]+"-"+m[2]+"-"+m[3])
		if err != nil {
			t.Fatal(err)
		}
		days = append(days, d)
	}
	return days
}

func TestNewClusterStartsEmptyAfterLookingBackOverTheRetention(t *testing.T) {
	root := restoreRoot(t)
	r := root.run(testInitScript("kind: InitConfiguration\n"), restoreCase())
	if r.code != 0 {
		t.Fatalf("a new cluster's init failed:\n%s", r.describe())
	}
	days := listedDays(t, r)
	if len(days) != testSnapshots.Days+1 {
		t.Fatalf("%d day folders listed, want today and the %d days before (the retention):\n%s", len(days), testSnapshots.Days, r.describe())
	}
	for i := 1; i < len(days); i++ {
		if days[i-1].Sub(days[i]) != 24*time.Hour {
			t.Errorf("listing %d asked for %s after %s: the days must go back one at a time", i+1, days[i].Format(time.DateOnly), days[i-1].Format(time.DateOnly))
		}
	}
	if today := time.Now().UTC().Truncate(24 * time.Hour); days[0].Sub(today).Abs() > 24*time.Hour {
		t.Errorf("the first listing asked for %s, want today (%s)", days[0].Format(time.DateOnly), today.Format(time.DateOnly))
	}
	if len(r.called("etcdutl")) > 0 {
		t.Errorf("etcdutl ran on a cluster without snapshots:\n%s", r.describe())
	}
	if inits := r.called("kubeadm", "init"); len(inits) != 1 || slices.Contains(inits[0], "--ignore-preflight-errors=DirAvailable--var-lib-etcd") {
		t.Errorf("want one plain kubeadm init (etcd's data directory checked by preflight), got %v", inits)
	}
	if !strings.Contains(r.stdout, "the cluster starts empty") {
		t.Errorf("the deploy log does not say the cluster starts empty:\n%s", r.describe())
	}
	if _, ok := root.read(EtcdRestoreMarker); ok {
		t.Errorf("%s written though nothing was restored", EtcdRestoreMarker)
	}
}

func TestReplacedMasterRestoresTheNewestSnapshotBeforeKubeadm(t *testing.T) {
	older, newest := snapshotKey(1, "100400"), snapshotKey(1, "234900")
	// Today's folder is empty (just past midnight), the day before has two snapshots and an
	// object that is no snapshot.
	root := restoreRoot(t, emptyListing, listing(older, newest, snapshotKey(1, "235000")+".txt"))
	root.stubState(t, "provider", "aws:///ap-northeast-2a/i-0old0000000000000")
	r := root.run(testInitScript("kind: InitConfiguration\n"), restoreCase())
	if r.code != 0 {
		t.Fatalf("a replaced master's init failed:\n%s", r.describe())
	}
	if days := listedDays(t, r); len(days) != 2 {
		t.Errorf("%d day folders listed, want 2: the search stops at the first day that has a snapshot", len(days))
	}
	wantDownload := "https://prod-sesacthon-backups.s3.ap-northeast-2.amazonaws.com/" + newest
	var downloaded bool
	for _, c := range r.called("curl") {
		downloaded = downloaded || c[len(c)-1] == wantDownload
	}
	if !downloaded {
		t.Errorf("the newest snapshot %s was not downloaded:\n%s", newest, r.describe())
	}
	restore := r.called("etcdutl", "snapshot", "restore")
	if len(restore) != 1 {
		t.Fatalf("want one etcdutl snapshot restore, got %v\n%s", restore, r.describe())
	}
	args := strings.Join(restore[0], " ")
	for _, want := range []string{
		"--data-dir /var/lib/etcd.restoring",
		"--name " + testMasterNode,
		"--initial-cluster " + testMasterNode + "=https://" + testMasterIP + ":2380",
		"--initial-advertise-peer-urls https://" + testMasterIP + ":2380",
		"--bump-revision 1000000000", "--mark-compacted",
	} {
		if !strings.Contains(args, want) {
			t.Errorf("the restore lacks %q (kubeadm's etcd member is named after the node and peers on the master's address; the revision must jump past what watchers saw): %s", want, args)
		}
	}
	status, restoreAt := r.index("etcdutl", "snapshot", "status"), r.index("etcdutl", "snapshot", "restore")
	initAt := r.index("kubeadm", "init")
	if status < 0 || status > restoreAt {
		t.Errorf("the snapshot's hash was not checked (etcdutl snapshot status) before the restore:\n%s", r.describe())
	}
	if restoreAt > initAt {
		t.Errorf("kubeadm init ran before the restore: etcd would start empty:\n%s", r.describe())
	}
	if db, ok := root.read("/var/lib/etcd/member/snap/db"); !ok || !strings.Contains(db, newest) {
		t.Errorf("etcd's data directory does not hold the newest snapshot's data: %q", db)
	}
	if m := root.mode("/var/lib/etcd"); m != 0o700 {
		t.Errorf("/var/lib/etcd has mode %v, want 0700", m)
	}
	if marker, _ := root.read(EtcdRestoreMarker); strings.TrimSpace(marker) != "s3://prod-sesacthon-backups/"+newest {
		t.Errorf("%s reads %q, want the snapshot's address", EtcdRestoreMarker, marker)
	}
	if !strings.Contains(r.stdout, "etcd restored from s3://prod-sesacthon-backups/"+newest) {
		t.Errorf("the deploy log does not name the snapshot used:\n%s", r.describe())
	}
	inits := r.called("kubeadm", "init")
	if len(inits) < 1 || !slices.Contains(inits[0], "--ignore-preflight-errors=DirAvailable--var-lib-etcd") {
		t.Errorf("kubeadm init without leave to start on the restored data directory: %v", inits)
	}
	// The old instance's Node goes, the kubelet registers this one, kubeadm marks it again.
	del, restart := r.index("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "delete", "node", testMasterNode), r.index("systemctl", "restart", "kubelet")
	mark := r.index("kubeadm", "init", "phase", "mark-control-plane")
	if del < 0 || restart < del || mark < restart {
		t.Errorf("want the old instance's Node deleted, then the kubelet restarted, then the control plane marked again:\n%s", r.describe())
	}
	if strings.Contains(r.output(), testSecret) || anyCallMentions(r.calls, testSecret) {
		t.Errorf("the instance role's secret key reached a command line or the deploy log:\n%s", r.describe())
	}
	if cfg, _ := os.ReadFile(filepath.Join(root.dir, "state", "curl-config")); !strings.Contains(string(cfg), testSecret) {
		t.Errorf("curl was not given the credentials on standard input: %q", cfg)
	}
}

func TestRestoredNodeOfThisInstanceIsKept(t *testing.T) {
	root := restoreRoot(t, listing(snapshotKey(0, "000000")))
	root.stubState(t, "provider", "aws:///ap-northeast-2a/"+testInstance)
	r := root.run(testInitScript("kind: InitConfiguration\n"), restoreCase())
	if r.code != 0 {
		t.Fatalf("init failed:\n%s", r.describe())
	}
	if got := r.called("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "delete"); len(got) > 0 {
		t.Errorf("the Node of this very instance was deleted: %v", got)
	}
}

func TestRestoreNeverWritesOverEtcdData(t *testing.T) {
	root := restoreRoot(t, listing(snapshotKey(0, "000000")))
	root.write("/var/lib/etcd/member/snap/db", "a live member's data")
	r := root.run(testInitScript("kind: InitConfiguration\n"), restoreCase())
	expectRefusal(t, r, "init went on over etcd data it had not restored itself", "holds data that this script did not restore")
	if len(r.called("etcdutl")) > 0 {
		t.Errorf("etcdutl ran over existing data:\n%s", r.describe())
	}
	if db, _ := root.read("/var/lib/etcd/member/snap/db"); db != "a live member's data" {
		t.Errorf("the existing data changed: %q", db)
	}
}

func TestRerunAfterAFailedInitKeepsWhatItRestored(t *testing.T) {
	root := restoreRoot(t, listing(snapshotKey(0, "000000")))
	failing := restoreCase()
	failing.stubs["kubeadm"] = `echo "error execution phase wait-control-plane"; exit 1`
	if r := root.run(testInitScript("kind: InitConfiguration\n"), failing); r.code == 0 {
		t.Fatalf("a failed kubeadm init passed:\n%s", r.describe())
	}
	r := root.run(testInitScript("kind: InitConfiguration\n"), restoreCase())
	if r.code != 0 {
		t.Fatalf("the second run failed:\n%s", r.describe())
	}
	if len(r.called("etcdutl")) > 0 || len(listedDays(t, r)) > 0 {
		t.Errorf("the second run looked for or restored a snapshot again over the first run's restore:\n%s", r.describe())
	}
	if inits := r.called("kubeadm", "init"); len(inits) < 1 || !slices.Contains(inits[0], "--ignore-preflight-errors=DirAvailable--var-lib-etcd") {
		t.Errorf("the second run's kubeadm init does not start on the restored data: %v", inits)
	}
}

// TestARestoreMarkerWithoutDataIsRefused: a kubeadm reset after a failed restored init empties
// etcd's data directory and leaves the marker; the next run must not start an empty control plane
// under the workers on the marker's word, and must say how to restore again.
func TestARestoreMarkerWithoutDataIsRefused(t *testing.T) {
	root := restoreRoot(t, listing(snapshotKey(0, "000000")))
	root.write(EtcdRestoreMarker, "s3://prod-sesacthon-backups/etcd/old.db\n")
	r := root.run(testInitScript("kind: InitConfiguration\n"), restoreCase())
	expectRefusal(t, r, "init started an empty control plane on a restore marker without data", "holds no etcd data")
	if !strings.Contains(r.stderr, "sudo rm "+EtcdRestoreMarker) {
		t.Errorf("the refusal does not say how to restore again (sudo rm %s):\n%s", EtcdRestoreMarker, r.describe())
	}
	if len(r.called("kubeadm", "init")) > 0 {
		t.Errorf("kubeadm init ran:\n%s", r.describe())
	}
}

func TestRestoreFailuresFailTheStepBeforeKubeadm(t *testing.T) {
	for name, tc := range map[string]struct {
		setup func(*scratchRoot)
		stubs map[string]string
		why   string
	}{
		"the bucket cannot be listed": {
			setup: func(s *scratchRoot) { s.stubState(t, "list-fails", "") },
			why:   "a listing that failed read as 'no snapshot': the master would start an empty cluster beside workers of the old one",
		},
		"the snapshot is corrupt": {
			setup: func(s *scratchRoot) {
				s.stubState(t, "listing-1", listing(snapshotKey(0, "000000")))
			},
			stubs: map[string]string{"etcdutl": `[ "$1 $2" != "snapshot status" ] || { echo "snapshot file integrity check failed" >&2; exit 1; }`},
			why:   "a snapshot that fails its hash check was restored",
		},
		"the listing does not fit one page": {
			setup: func(s *scratchRoot) {
				s.stubState(t, "listing-1", strings.Replace(listing(snapshotKey(0, "000000")), "<IsTruncated>false", "<IsTruncated>true", 1))
			},
			why: "a truncated listing was read as complete: the newest snapshot may be on the next page",
		},
	} {
		t.Run(name, func(t *testing.T) {
			root := newRoot(t)
			tc.setup(root)
			c := restoreCase()
			for k, v := range tc.stubs {
				c.stubs[k] = v
			}
			r := root.run(testInitScript("kind: InitConfiguration\n"), c)
			expectRefusal(t, r, tc.why, "")
			if _, ok := root.read("/var/lib/etcd/member/snap/db"); ok {
				t.Errorf("etcd's data directory was written:\n%s", r.describe())
			}
		})
	}
}

// markerPuts are the run's uploads of the object that says the cluster has run.
func markerPuts(r scriptResult) []call {
	var puts []call
	for _, c := range r.called("curl") {
		if slices.Contains(c, "-T") && c[len(c)-1] == "https://prod-sesacthon-backups.s3.ap-northeast-2.amazonaws.com/"+testMark {
			puts = append(puts, c)
		}
	}
	return puts
}

func TestAClusterThatHasRunIsNeverStartedEmpty(t *testing.T) {
	// No snapshot on any day of the retention, but the cluster's marker is there (the ninth
	// listing, after today and the seven days before).
	listings := make([]string, testSnapshots.Days+2)
	for i := range listings {
		listings[i] = emptyListing
	}
	listings[testSnapshots.Days+1] = listing(testMark)
	r := restoreRoot(t, listings...).run(testInitScript("kind: InitConfiguration\n"), restoreCase())
	expectRefusal(t, r, "a master of a cluster that has run started it empty: workers, the state and the data volumes describe a cluster it no longer has",
		"refusing to start it empty")
	for _, want := range []string{
		"aws s3 rm s3://prod-sesacthon-backups/" + testMark + ") to start the cluster empty on purpose",         // the deliberate way
		"aws s3api list-object-versions --bucket prod-sesacthon-backups --prefix " + testSnapshots.Prefix + "/", // the expired snapshots
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the refusal does not say %q:\n%s", want, r.describe())
		}
	}
}

func TestEveryInitMarksTheClusterAsHavingRun(t *testing.T) {
	root := restoreRoot(t)
	r := root.run(testInitScript("kind: InitConfiguration\n"), restoreCase())
	if r.code != 0 || len(markerPuts(r)) != 1 {
		t.Fatalf("a new cluster's init put the marker %d times (exit %d), want once:\n%s", len(markerPuts(r)), r.code, r.describe())
	}
	if put := slices.IndexFunc(r.calls, func(c call) bool { return slices.Equal(c, markerPuts(r)[0]) }); put < r.index("kubeadm", "init") {
		t.Errorf("the marker was put before kubeadm init succeeded:\n%s", r.describe())
	}
	// An existing master (the first up with this release) marks its cluster too.
	root.write("/etc/kubernetes/admin.conf", "kind: Config\n")
	again := root.run(testInitScript("kind: InitConfiguration\n"), restoreCase())
	if again.code != 0 || len(markerPuts(again)) != 1 {
		t.Errorf("an initialised master did not mark its cluster (exit %d):\n%s", again.code, again.describe())
	}
	failIfKubeadmRan(t, again, "the control plane is initialised")
}

func TestOnlyTheCronJobsSnapshotsOfThePastCount(t *testing.T) {
	good := snapshotKey(0, "000000")
	day := good[:strings.LastIndex(good, "/")+1]
	forged := []string{
		day + "etcd-99999999T999999Z.db", // sorts last, dated no day
		day + "etcd-" + time.Now().UTC().AddDate(0, 0, 1).Format("20060102") + "T000000Z.db", // another day's name
		day + "etcd-" + time.Now().UTC().Format("20060102") + "T235959Z.db.db",               // not the CronJob's name
	}
	root := restoreRoot(t, listing(append([]string{good}, forged...)...))
	r := root.run(testInitScript("kind: InitConfiguration\n"), restoreCase())
	if r.code != 0 {
		t.Fatalf("init failed:\n%s", r.describe())
	}
	if marker, _ := root.read(EtcdRestoreMarker); strings.TrimSpace(marker) != "s3://prod-sesacthon-backups/"+good {
		t.Errorf("restored from %q, want the one snapshot named and dated as the CronJob names them, %s", marker, good)
	}
}

func TestARerunRepairsTheNodeOfAnEarlierRestore(t *testing.T) {
	root := restoreRoot(t, listing(snapshotKey(0, "000000")))
	root.stubState(t, "provider", "aws:///ap-northeast-2a/i-0old0000000000000")
	failing := restoreCase()
	// kubeadm init succeeds (admin.conf written), then the Node's repair fails.
	failing.stubs["systemctl"] = `exit 1`
	if r := root.run(testInitScript("kind: InitConfiguration\n"), failing); r.code == 0 {
		t.Fatalf("a failed kubelet restart passed:\n%s", r.describe())
	}
	r := root.run(testInitScript("kind: InitConfiguration\n"), restoreCase())
	if r.code != 0 {
		t.Fatalf("the rerun failed:\n%s", r.describe())
	}
	failIfKubeadmInitRan(t, r)
	if r.index("systemctl", "restart", "kubelet") < 0 || r.index("kubeadm", "init", "phase", "mark-control-plane") < 0 {
		t.Errorf("the rerun on the initialised master left the old instance's Node in place:\n%s", r.describe())
	}
}

// failIfKubeadmInitRan fails when a run initialised the control plane (phases run alone do not count).
func failIfKubeadmInitRan(t *testing.T, r scriptResult) {
	t.Helper()
	for _, c := range r.called("kubeadm", "init") {
		if len(c) < 3 || c[2] != "phase" {
			t.Errorf("kubeadm init ran again on an initialised master: %v", c)
		}
	}
}

// anyCallMentions says whether any recorded command line holds s.
func anyCallMentions(calls []call, s string) bool {
	for _, c := range calls {
		if strings.Contains(c.String(), s) {
			return true
		}
	}
	return false
}

// finishPhases are the kubeadm init phases a run finishes an earlier, failed init with, in
// kubeadm's order: those after the control plane's start.
var finishPhases = [][]string{
	{"upload-config", "all"}, {"mark-control-plane"}, {"bootstrap-token"}, {"kubelet-finalize", "all"}, {"addon", "all"},
}

// expectFinished checks that a run finished an earlier init: it waited for the API server, then
// ran finishPhases in order with the configuration the failed init used, never `kubeadm init`
// itself, and removed the pending mark.
func expectFinished(t *testing.T, root *scratchRoot, r scriptResult) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("the run after a failed init failed:\n%s", r.describe())
	}
	failIfKubeadmInitRan(t, r)
	last := r.index("kubectl", "--kubeconfig", "/etc/kubernetes/admin.conf", "get", "--raw", "/readyz")
	if last < 0 {
		t.Errorf("the run did not wait for the API server:\n%s", r.describe())
	}
	for _, p := range finishPhases {
		want := append(append([]string{"kubeadm", "init", "phase"}, p...), "--config", "/etc/kubernetes/waste-coach/kubeadm-init.yaml")
		at := slices.IndexFunc(r.calls[last+1:], func(c call) bool { return slices.Equal(c, want) })
		if at < 0 {
			t.Fatalf("no kubeadm init phase %s after the API server was ready and the phases before it:\n%s", strings.Join(p, " "), r.describe())
		}
		last += 1 + at
	}
	if _, ok := root.read(InitPendingMarker); ok {
		t.Errorf("%s is still there after the init was finished", InitPendingMarker)
	}
}

// TestAnInitThatFailedAfterAdminConfIsFinished: kubeadm writes admin.conf (its kubeconfig phase)
// before it waits for the control plane and uploads its configuration, the join discovery's
// cluster-info, CoreDNS and kube-proxy. An init that failed after it left a master that the next
// run took for initialised ("nothing to do"): every join then failed on discovery. The next run
// now runs the phases the failed init had not reached, and the one after it has nothing to do.
func TestAnInitThatFailedAfterAdminConfIsFinished(t *testing.T) {
	root := restoreRoot(t)
	failing := restoreCase()
	failing.stubs["kubeadm"] = `mkdir -p /etc/kubernetes && echo "kind: Config" > /etc/kubernetes/admin.conf
echo "error execution phase wait-control-plane: couldn't initialize a Kubernetes cluster"; exit 1`
	if r := root.run(testInitScript("kind: InitConfiguration\n"), failing); r.code == 0 {
		t.Fatalf("a failed kubeadm init passed:\n%s", r.describe())
	}
	if _, ok := root.read(InitPendingMarker); !ok {
		t.Fatalf("a failed kubeadm init left no %s", InitPendingMarker)
	}
	r := root.run(testInitScript("kind: InitConfiguration\n"), restoreCase())
	expectFinished(t, root, r)
	if got := r.called("systemctl"); len(got) > 0 {
		t.Errorf("a master that restored nothing had its kubelet restarted: %v", got)
	}
	if len(markerPuts(r)) != 1 {
		t.Errorf("the finished cluster was not marked as having run:\n%s", r.describe())
	}
	again := root.run(testInitScript("kind: InitConfiguration\n"), restoreCase())
	if again.code != 0 || !strings.Contains(again.stdout, "nothing to do") {
		t.Errorf("the run after the finished init did not find it done:\n%s", again.describe())
	}
	if got := again.called("kubeadm"); len(got) > 0 {
		t.Errorf("kubeadm ran again on a finished init: %v", got)
	}
}

// TestARestoredInitThatFailedOnItsNodeIsFinishedAfterTheNodeIsRepaired: kubeadm 1.28's
// upload-config annotates the master's Node and waits two minutes for it; after a restore the
// cloud-controller-manager may have deleted it (it names the old instance). The next run repairs
// the Node first, then runs the phases the init had not reached.
func TestARestoredInitThatFailedOnItsNodeIsFinishedAfterTheNodeIsRepaired(t *testing.T) {
	root := restoreRoot(t, listing(snapshotKey(0, "000000")))
	failing := restoreCase()
	failing.stubs["kubeadm"] = `mkdir -p /etc/kubernetes && echo "kind: Config" > /etc/kubernetes/admin.conf
echo "error execution phase upload-config/kubelet: Error writing Crisocket information for the control-plane node: nodes \"` + testMasterNode + `\" not found"; exit 1`
	if r := root.run(testInitScript("kind: InitConfiguration\n"), failing); r.code == 0 {
		t.Fatalf("a failed kubeadm init passed:\n%s", r.describe())
	}
	r := root.run(testInitScript("kind: InitConfiguration\n"), restoreCase()) // the Node is gone: no providerID
	expectFinished(t, root, r)
	restart, upload := r.index("systemctl", "restart", "kubelet"), r.index("kubeadm", "init", "phase", "upload-config")
	if restart < 0 || upload < restart {
		t.Errorf("the phases ran before the master's Node was registered again (1.28's upload-config needs it):\n%s", r.describe())
	}
	if len(r.called("etcdutl")) > 0 {
		t.Errorf("the run restored etcd again over the first run's restore:\n%s", r.describe())
	}
}

func TestAFailedInitWhoseAPIServerNeverStartsIsNotCalledDone(t *testing.T) {
	root := restoreRoot(t)
	failing := restoreCase()
	failing.stubs["kubeadm"] = `mkdir -p /etc/kubernetes && echo "kind: Config" > /etc/kubernetes/admin.conf; exit 1`
	if r := root.run(testInitScript("kind: InitConfiguration\n"), failing); r.code == 0 {
		t.Fatalf("a failed kubeadm init passed:\n%s", r.describe())
	}
	down := restoreCase()
	down.stubs["kubectl"] = `echo "The connection to the server 10.0.1.10:6443 was refused" >&2; exit 1`
	r := root.run(testInitScript("kind: InitConfiguration\n"), down)
	expectRefusal(t, r, "a master whose control plane never started was called initialised", "is not ready after 300 s")
	if _, ok := root.read(InitPendingMarker); !ok {
		t.Errorf("%s was removed though the init was not finished", InitPendingMarker)
	}
	if len(markerPuts(r)) != 0 {
		t.Errorf("a cluster that never started was marked as having run:\n%s", r.describe())
	}
}
