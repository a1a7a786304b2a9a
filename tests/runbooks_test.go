package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/workloads"
)

// operationsDoc is docs/operations.md, the runbooks an operator follows.
func operationsDoc(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// docSection is the part of doc under heading (a whole line: "## Destroy", "### NodeMissing") up
// to the next heading of its level or above ("## " ends a "### " section too).
func docSection(t *testing.T, doc, heading string) string {
	t.Helper()
	start := strings.Index(doc, "\n"+heading+"\n")
	if start < 0 {
		t.Fatalf("docs/operations.md has no %q section", heading)
	}
	section := doc[start+1:]
	ends := []string{"\n## "}
	if strings.HasPrefix(heading, "### ") {
		ends = append(ends, "\n### ")
	}
	cut := len(section)
	for _, end := range ends {
		if i := strings.Index(section[len(heading):], end); i >= 0 && len(heading)+i+1 < cut {
			cut = len(heading) + i + 1
		}
	}
	return section[:cut]
}

// TestRestoreVolumeRunbookSuspendsFirstAndKeepsTheClaimTags: the base backup mounts PostgreSQL's
// claim, so the backup CronJobs are suspended before the workload is scaled down and its claim
// deleted, and resumed only at the end; the restored volume carries the snapshot's tags (the
// claim's name, which the next restore searches by, the stack's snapshot tag, the cluster tag
// the EBS driver needs), without DLM's aws: tags, which CreateVolume refuses.
func TestRestoreVolumeRunbookSuspendsFirstAndKeepsTheClaimTags(t *testing.T) {
	section := docSection(t, operationsDoc(t), "## Restoring a volume from its snapshot")
	suspend := strings.Index(section, `-p '{"spec":{"suspend":true}}'`)
	scale := strings.Index(section, "--replicas=0")
	deleteClaim := strings.Index(section, "delete its claim")
	create := strings.Index(section, "aws ec2 create-volume")
	resume := strings.LastIndex(section, `-p '{"spec":{"suspend":false}}'`)
	switch {
	case suspend < 0:
		t.Error("the restore-volume runbook never suspends the backup CronJobs with a command")
	case scale < 0 || deleteClaim < 0:
		t.Error("the restore-volume runbook no longer scales the workload down and deletes its claim")
	case suspend > scale || suspend > deleteClaim:
		t.Error("the restore-volume runbook suspends the backup CronJobs after scaling down or deleting the claim: a base backup can hold or read the claim meanwhile")
	}
	for _, cronJob := range []string{workloads.PostgresBaseBackupName, workloads.PostgresDumpName} {
		if suspend >= 0 && !strings.Contains(section[max(0, suspend-80):suspend], cronJob) {
			t.Errorf("the restore-volume runbook's suspend command does not name CronJob %s", cronJob)
		}
	}
	if resume < 0 || resume < create || resume < strings.LastIndex(section, "--replicas=1") {
		t.Error("the restore-volume runbook does not resume the backup CronJobs as its last step, after the volume is back")
	}
	for _, want := range []string{
		"--query 'Snapshots[0].Tags[?!starts_with(Key, `aws:`)]'",
		`--tag-specifications "[{\"ResourceType\":\"volume\",\"Tags\":$tags}]"`,
		"kubernetes.io/created-for/pvc/name",
		config.SnapshotTagKey,
		"kubernetes.io/cluster/<stack>-<clusterName>",
	} {
		if !strings.Contains(section, want) {
			t.Errorf("the restore-volume runbook lacks %q: the restored volume must keep the snapshot's tags", want)
		}
	}
	if strings.Contains(section, "Tags=[{Key=") {
		t.Error("the restore-volume runbook still lists the new volume's tags by hand instead of copying the snapshot's")
	}
}

// TestPITRRunbookOffersNoEBSSnapshotPath: the script's recover step refuses a data directory
// without a base backup's backup_label, which a volume restored from an EBS snapshot never has,
// so the runbook must not offer that path; and it says how to pick a target time that the
// shipped WAL reaches, and what happens otherwise.
func TestPITRRunbookOffersNoEBSSnapshotPath(t *testing.T) {
	section := docSection(t, operationsDoc(t), "## PostgreSQL: restore to a point in time")
	if !regexp.MustCompile(`\[ -f "\$\{dir\}/pgdata/backup_label" \] \|\|`).MatchString(workloads.PostgresBackupScript) ||
		!strings.Contains(workloads.PostgresBackupScript, "pgdata holds no base backup") {
		t.Fatal("postgres-backup.sh's recover step no longer refuses a data directory without backup_label: revisit the PITR runbook")
	}
	for _, banned := range []string{"restore the latest snapshot", "recover from there"} {
		if strings.Contains(section, banned) {
			t.Errorf("the PITR runbook offers %q, which recover refuses (no backup_label)", banned)
		}
	}
	for _, want := range []string{
		"pgdata holds no base backup",
		"aws s3 ls s3://<backupsBucket>/postgres/wal/",
		"pg_switch_wal()",
		"recovery ended before configured recovery target was reached",
	} {
		if !strings.Contains(section, want) {
			t.Errorf("the PITR runbook lacks %q: pick T before the newest shipped segment, and say what a later T does", want)
		}
	}
}

// TestNoRunbookUpdatesAScheduleWithoutReadingItFirst: UpdateSchedule resets every field the call
// leaves out (the time zone to UTC, the target's input), so every update-schedule in the docs
// writes back a schedule read with get-schedule, as a whole document.
func TestNoRunbookUpdatesAScheduleWithoutReadingItFirst(t *testing.T) {
	docs, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, path := range append(docs, "../README.md") {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		doc := string(b)
		for i := 0; ; {
			at := strings.Index(doc[i:], "aws scheduler update-schedule")
			if at < 0 {
				break
			}
			at += i
			n++
			line := doc[at:]
			if end := strings.IndexByte(line, '\n'); end >= 0 {
				line = line[:end]
			}
			sectionStart := strings.LastIndex(doc[:at], "\n## ")
			if !strings.Contains(doc[sectionStart+1:at], "aws scheduler get-schedule") {
				t.Errorf("%s: %q is not preceded by get-schedule in its section: it resets every field it does not pass", path, line)
			}
			if !strings.Contains(line, "--cli-input-json") || strings.Contains(line, "--state") {
				t.Errorf("%s: %q does not write back the whole schedule (--cli-input-json)", path, line)
			}
			i = at + 1
		}
	}
	if n == 0 {
		t.Error("no runbook says how to disable an office-hours schedule for an evening")
	}
}

// TestInterruptedUpRunbookGivesItsCommands: an up cut short leaves the S3 backend's lock,
// pending operations, Helm releases in pending-* and remote commands half run; the runbook
// gives the command for each, with the lock path of this project.
func TestInterruptedUpRunbookGivesItsCommands(t *testing.T) {
	section := docSection(t, operationsDoc(t), "## Recovering an interrupted `pulumi up`")
	project, err := os.ReadFile("../Pulumi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile(`(?m)^name: *(\S+)`).FindStringSubmatch(string(project))
	if name == nil {
		t.Fatal("Pulumi.yaml names no project")
	}
	for _, want := range []string{
		"pulumi cancel --stack <stack>",
		".pulumi/locks/organization/" + name[1] + "/<stack>/",
		"pulumi refresh --clear-pending-creates",
		"--import-pending-creates <urn> --import-pending-creates <id>",
		"pulumi stack export --file",
		"pulumi stack import --file",
		"helm -n <ns> history <release>",
		"helm -n <ns> rollback <release>",
		"pending-install", "pending-upgrade",
		"sudo kubeadm reset -f",
		"/var/log/waste-coach/kubeadm-init.log",
		"/etc/kubernetes/waste-coach/etcd-restored",
	} {
		if !strings.Contains(section, want) {
			t.Errorf("the interrupted-up runbook lacks %q", want)
		}
	}
	for _, ns := range []string{workloads.NamespaceSystem, workloads.NamespaceArgoCD, workloads.NamespaceKEDA, workloads.NamespaceLogging, workloads.NamespaceMonitoring} {
		if !strings.Contains(section, "`"+ns+"`") {
			t.Errorf("the interrupted-up runbook names no Helm release of namespace %s", ns)
		}
	}
}

// TestResizeRunbooksMatchThePrograms: rootVolumeGiB grows in place (no replacement) and the
// filesystem needs growing after it; an instance type change stops and starts the node in
// place, one node per up (on spot it replaces the node, as a capacity change does); a data
// claim grows through the program, never by a patch the program
// would not know.
func TestResizeRunbooksMatchThePrograms(t *testing.T) {
	doc := operationsDoc(t)
	if s := docSection(t, doc, "### NodeRootDiskFilling"); strings.Contains(s, "a replacement") {
		t.Error("NodeRootDiskFilling says raising rootVolumeGiB is a replacement; it is an in-place ModifyVolume")
	}
	root := docSection(t, doc, "## Growing a node's root volume")
	for _, want := range []string{"sudo growpart /dev/nvme0n1 1", "sudo resize2fs /dev/nvme0n1p1", "six hours", "refused"} {
		if !strings.Contains(root, want) {
			t.Errorf("the root-volume runbook lacks %q", want)
		}
	}
	itype := docSection(t, doc, "## Changing a node's instance type")
	for _, want := range []string{"pulumi up --target", "kubectl drain <node> --ignore-daemonsets --delete-emptydir-data --disable-eviction", "kubectl uncordon <node>", "Moving a node between spot and on-demand"} {
		if !strings.Contains(itype, want) {
			t.Errorf("the instance-type runbook lacks %q", want)
		}
	}
	filling := docSection(t, doc, "### PlatformVolumeFilling")
	if strings.Contains(filling, "kubectl -n data patch pvc") {
		t.Error("PlatformVolumeFilling patches a data claim by hand; the program owns those claims and grows them")
	}
	for _, want := range []string{"postgresStorageGiB", "rabbitStorageGiB", "redisStorageGiB", "kubectl -n monitoring patch pvc"} {
		if !strings.Contains(filling, want) {
			t.Errorf("PlatformVolumeFilling lacks %q", want)
		}
	}
}
