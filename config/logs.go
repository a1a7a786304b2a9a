// Logs: the stack's CloudWatch Logs group and how long it keeps events (key logRetentionDays).

package config

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Logs configures the stack's CloudWatch Logs group, where Fluent Bit ships every container's
// and every kubelet's logs (key logRetentionDays).
type Logs struct {
	// GroupName is the log group's name, /waste-coach/<cluster id>: one per stack.
	GroupName string
	// RetentionDays is how long CloudWatch keeps a log event, and S3 the ALB's access logs.
	RetentionDays int
	// ALBAccessLogs sends the ALB's access logs to ALBLogsBucket (albAccessLogs).
	ALBAccessLogs bool
	// ALBLogsBucket is the bucket of the ALB's access logs (albLogsBucket).
	ALBLogsBucket string
}

// LogRetentionDays are the retention periods CloudWatch Logs accepts (PutRetentionPolicy).
var LogRetentionDays = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

// DefaultLogRetentionDays is how long logs are kept when logRetentionDays is not set: a month on
// a production stack (an incident is usually looked into within weeks), a week elsewhere.
func DefaultLogRetentionDays(production bool) int {
	if production {
		return 30
	}
	return 7
}

// logs reads logRetentionDays and the ALB's access logs (albAccessLogs, albLogsBucket); the log
// group is named after the cluster id.
func (p *parser) logs(c *Config) {
	c.Logs.GroupName = "/waste-coach/" + c.ClusterID()
	c.Logs.RetentionDays = DefaultLogRetentionDays(c.Production)
	c.Logs.ALBAccessLogs = p.boolean("albAccessLogs", false)
	if name, ok := p.bucket("albLogsBucket", c.ClusterID()+"-alb-logs"); ok {
		c.Logs.ALBLogsBucket = name
		if slices.Contains([]string{c.Uploads.BucketName, c.Backups.BucketName, c.PodIdentity.BucketName}, name) {
			p.fail(qualify("albLogsBucket"), strconv.Quote(name), "a bucket of its own, other than uploadsBucket, backupsBucket and podIdentityBucket")
		}
	}
	v, ok := p.raw("logRetentionDays", false)
	if !ok {
		return
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err == nil && n == 0 {
		// Pulumi.yaml's default: the project file cannot say "30 on production, 7 elsewhere".
		return
	}
	if err != nil || !slices.Contains(LogRetentionDays, n) {
		allowed := make([]string, len(LogRetentionDays))
		for i, d := range LogRetentionDays {
			allowed[i] = strconv.Itoa(d)
		}
		p.fail(qualify("logRetentionDays"), strconv.Quote(v), fmt.Sprintf("one of the periods CloudWatch Logs keeps events for, in days: %s (or 0 for the default: %d on a production stack, %d elsewhere)",
			strings.Join(allowed, ", "), DefaultLogRetentionDays(true), DefaultLogRetentionDays(false)))
		return
	}
	c.Logs.RetentionDays = n
}
