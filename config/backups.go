// Backups: the bucket the scheduled backups go to, what each node role writes there, the tag that
// puts a volume under the snapshot policy, and how long backups are kept (keys backupsBucket and
// backupRetentionDays).

package config

import (
	"fmt"
	"strconv"
	"strings"
)

// Backups configures where the scheduled backups go (etcd snapshots, PostgreSQL base backups,
// write-ahead log and dumps) and how long they, and the EBS snapshots, are kept.
type Backups struct {
	// BucketName is the backups bucket's globally unique name.
	BucketName string
	// RetentionDays is how many days a backup is kept: S3 lifecycle expires older objects and
	// the Data Lifecycle Manager policy keeps this many daily EBS snapshots.
	RetentionDays int
}

// BackupPrefix is where a node role's backups go in the backups bucket: the master snapshots
// etcd, the storage node backs up PostgreSQL. Other roles write no backups ("").
func BackupPrefix(r Role) string {
	switch r {
	case RoleMaster:
		return "etcd"
	case RoleStorage:
		return "postgres"
	}
	return ""
}

// MarkPrefix is where the clusters' marks go in the backups bucket, outside every backup prefix:
// a mark (<MarkPrefix>/<cluster>, ClusterMark) says that the cluster with that identity has run,
// and so has state that a new master must restore rather than start empty. The backups' expiry
// covers the backup prefixes only, so a mark stays while its cluster's snapshots expire: after
// a stop, or a retention of a day or two, longer than the snapshots last.
const MarkPrefix = "clusters"

// ClusterMark is the key of the mark of the cluster whose etcd snapshots go under
// snapshotPrefix (<BackupPrefix(RoleMaster)>/<cluster>): <MarkPrefix>/<cluster>.
func ClusterMark(snapshotPrefix string) string {
	return MarkPrefix + "/" + strings.TrimPrefix(snapshotPrefix, BackupPrefix(RoleMaster)+"/")
}

// SnapshotTagKey is the tag the storage classes put on every EBS volume they create, valued
// with the stack's cluster id; the stack's Data Lifecycle Manager policy snapshots the volumes
// that carry it with its value, and no other stack's.
const SnapshotTagKey = "waste-coach/snapshot"

// Backup retention bounds: a day at least (the schedules are daily); at most a year, beyond
// which a backup is an archive and belongs elsewhere.
const (
	minBackupRetentionDays = 1
	maxBackupRetentionDays = 365
)

// DefaultBackupRetentionDays is how long backups are kept when backupRetentionDays is not set:
// two weeks on a production stack, three days elsewhere.
func DefaultBackupRetentionDays(production bool) int {
	if production {
		return 14
	}
	return 3
}

// backups reads the backups bucket's name, by default derived from the cluster id and never the
// uploads bucket, and the retention, by default DefaultBackupRetentionDays.
func (p *parser) backups(c *Config) {
	var ok bool
	c.Backups.BucketName, ok = p.bucket("backupsBucket", c.ClusterID()+"-backups")
	if ok && c.Backups.BucketName == c.Uploads.BucketName {
		p.fail(qualify("backupsBucket"), strconv.Quote(c.Backups.BucketName), "a bucket other than uploadsBucket: backups are kept apart from what they back up")
	}
	c.Backups.RetentionDays = DefaultBackupRetentionDays(c.Production)
	if v, ok := p.raw("backupRetentionDays", false); ok {
		// 0 is Pulumi.yaml's default: the project file cannot say "14 on production, 3
		// elsewhere", and a key it declares without a default is required in every stack.
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || (n != 0 && (n < minBackupRetentionDays || n > maxBackupRetentionDays)) {
			p.fail(qualify("backupRetentionDays"), strconv.Quote(v), fmt.Sprintf("a whole number of days from %d to %d, or 0 for the default (%d on a production stack, %d elsewhere)",
				minBackupRetentionDays, maxBackupRetentionDays, DefaultBackupRetentionDays(true), DefaultBackupRetentionDays(false)))
		} else if n != 0 {
			c.Backups.RetentionDays = n
		}
	}
}
