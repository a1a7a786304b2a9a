// Package cost estimates what a stack costs per month from what the program declares for it
// (instances, volumes, public addresses, the load balancer, DNS, storage) and stated usage
// assumptions, priced from one table of the region's unit prices.
package cost

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/waste-coach/infra/config"
)

// Assumptions are the usage figures the program cannot know; each is stated in the report.
type Assumptions struct {
	// ALBLCUs is the average number of load balancer capacity units in use.
	ALBLCUs float64
	// Route53MillionQueries is the non-alias DNS queries per month, in millions.
	Route53MillionQueries float64
	// UploadsStandardGB and UploadsArchivedGB are the uploads kept in S3 before and after the
	// lifecycle transition.
	UploadsStandardGB, UploadsArchivedGB float64
	// TransferOutGB is data sent to the internet per month.
	TransferOutGB float64
	// BackupGBPerDay is what the scheduled backups add to the backups bucket each day: the etcd
	// snapshot, PostgreSQL's compressed base backup and write-ahead log, and its dump.
	BackupGBPerDay float64
	// SnapshotUsedFraction is the share of the persistent volumes holding data (an EBS snapshot
	// stores used blocks only); SnapshotDailyChangeFraction the share rewritten each day (each
	// daily snapshot after the first stores the changed blocks).
	SnapshotUsedFraction, SnapshotDailyChangeFraction float64
	// LogGBPerDay is what Fluent Bit ships to CloudWatch Logs per day of running nodes;
	// LogStoredFraction the share of it CloudWatch bills as stored (it stores compressed).
	LogGBPerDay, LogStoredFraction float64
	// ALBLogGBPerDay is what the ALB's access logs add a day (compressed, about 100 bytes a
	// request: a million requests a day).
	ALBLogGBPerDay float64
	// SurplusCPUShare is how much of each vCPU an unlimited-mode burstable node uses above its
	// baseline on average once its earned credits are spent, which EC2 bills as surplus credits.
	SurplusCPUShare float64
}

// DefaultAssumptions are a small production service's: one LCU on average (25 new connections/s
// or 1 GB/h of traffic), a million queries, 20 GB of recent uploads and 100 GB archived, 50 GB
// out per month.
//
// Backups: 5 GB a day (a 5 GB database compresses to about 1.5 GB per base backup, 1 GB of
// gzip-compressed write-ahead log a day with a segment at least every 240 s, a 0.5 GB dump, and
// 96 etcd snapshots a day, one every 15 minutes, of about 20 MB each: 2 GB), kept the
// retention and then as noncurrent versions the retention again (infra/backups.go), so 2 ×
// retention days of it are stored. EBS snapshots: 30% of the volumes in use, 2% rewritten a day.
//
// CPU credits: an unlimited node is assumed to run 5% of a vCPU above its baseline on average
// (rollouts, backups and bursts of traffic that outlast its earned credits); a node in standard
// mode is never billed for credits, it is held at its baseline instead. The worst case, a node
// busy around the clock, is (100% - baseline) of every vCPU: for a t3.medium 1.6 vCPU × 730 h
// × 0.05 USD, about 58 USD a month.
//
// Logs: 1 GB a day of running nodes. Eleven application pods at INFO logging a line per request
// and per task (a few hundred bytes, with the Kubernetes metadata Fluent Bit adds), the data
// services, the controllers and four kubelets: about 10 lines a second on average, 1 KB each
// with metadata. Stored at 15% of that (CloudWatch bills storage compressed; text log lines
// compress 6-10 times).
var DefaultAssumptions = Assumptions{ALBLCUs: 1, Route53MillionQueries: 1, UploadsStandardGB: 20, UploadsArchivedGB: 100, TransferOutGB: 50,
	BackupGBPerDay: 5, SnapshotUsedFraction: 0.3, SnapshotDailyChangeFraction: 0.02,
	LogGBPerDay: 1, LogStoredFraction: 0.15, ALBLogGBPerDay: 0.1, SurplusCPUShare: 0.05}

// Item is one line of the estimate.
type Item struct {
	Name     string
	Quantity float64
	Unit     string
	UnitUSD  float64
	// Monthly is Quantity × UnitUSD (× hours for hourly prices), rounded to the cent.
	Monthly float64
}

// Estimate is a stack's monthly cost.
type Estimate struct {
	Items []Item
	Total float64
}

// Footprint is what the program declares that AWS bills for, in the units prices are given in.
type Footprint struct {
	// Instances counts on-demand instances by type; SpotInstances the spot ones.
	Instances, SpotInstances map[string]int
	// UnlimitedVCPUs are the vCPUs of the burstable nodes in unlimited credit mode, which may be
	// billed for surplus credits (config Node.CPUCredits).
	UnlimitedVCPUs int
	// RunningHours is how long the instances run in a month: HoursPerMonth around the clock,
	// fewer with office hours. A stopped instance bills its volumes but neither its hours nor its
	// launch-time public address.
	RunningHours float64
	// RootGB and VolumeGB are the nodes' root volumes and the clusters' persistent volumes.
	RootGB, VolumeGB int
	// NodePublicIPs are the nodes' launch-time public addresses, released (and not billed) while
	// an instance is stopped; ElasticIPs the master's Elastic IP, billed every hour whether its
	// instance runs or not.
	NodePublicIPs, ElasticIPs int
	// ALBs is the number of load balancers; ALBZones the zones each spans (one address each).
	ALBs, ALBZones int
	// HostedZones is the Route53 zones the stack uses.
	HostedZones int
	// ArchiveClass is the uploads bucket's transition storage class.
	ArchiveClass string
	// BackupRetentionDays is how long backups and EBS snapshots are kept; 0 means no backups.
	BackupRetentionDays int
	// LogRetentionDays is how long the log group keeps events; 0 means no log group.
	LogRetentionDays int
	// ALBLogDays is how long the ALB's access logs are kept; 0 without them.
	ALBLogDays int
}

// FootprintOf derives the footprint from a stack's configuration and the volumes its workloads
// claim, exactly as the program declares them.
func FootprintOf(cfg *config.Config, volumeGB int) Footprint {
	f := Footprint{Instances: map[string]int{}, SpotInstances: map[string]int{}, RunningHours: HoursPerMonth,
		VolumeGB: volumeGB, NodePublicIPs: len(cfg.Nodes) - 1, ElasticIPs: 1,
		ALBs: 1, ALBZones: len(cfg.SubnetCIDRs), HostedZones: 1, ArchiveClass: cfg.Uploads.TransitionStorageClass,
		BackupRetentionDays: cfg.Backups.RetentionDays, LogRetentionDays: cfg.Logs.RetentionDays}
	if cfg.Logs.ALBAccessLogs {
		f.ALBLogDays = cfg.Logs.RetentionDays
	}
	for _, n := range cfg.Nodes {
		if n.Capacity == config.Spot {
			f.SpotInstances[n.InstanceType]++
		} else {
			f.Instances[n.InstanceType]++
		}
		f.RootGB += n.RootVolumeGiB
		if n.CPUCredits == config.CreditsUnlimited {
			f.UnlimitedVCPUs += config.InstanceTypes[n.InstanceType].VCPU
		}
	}
	if cfg.OfficeHours != nil {
		f.RunningHours = RunningHoursPerMonth(cfg.OfficeHours.HoursPerWeek())
	}
	return f
}

// RunningHoursPerMonth turns hours a week into hours in AWS's 730-hour month.
func RunningHoursPerMonth(perWeek float64) float64 {
	return math.Round(perWeek*HoursPerMonth/hoursPerWeek*10) / 10
}

const hoursPerWeek = 7 * 24

// OnDemandAroundTheClock is the same footprint bought on demand and never stopped: what the
// stack would cost without spot capacity and office hours.
func (f Footprint) OnDemandAroundTheClock() Footprint {
	g := f.AroundTheClock()
	g.Instances, g.SpotInstances = maps.Clone(f.Instances), map[string]int{}
	for t, n := range f.SpotInstances {
		g.Instances[t] += n
	}
	return g
}

// AroundTheClock is the same footprint never stopped.
func (f Footprint) AroundTheClock() Footprint {
	f.RunningHours = HoursPerMonth
	return f
}

// Compute prices a footprint under assumptions with a price table. A price missing from the
// table is an error: an estimate never silently leaves something out.
func Compute(f Footprint, a Assumptions, prices map[string]Price) (*Estimate, error) {
	e := &Estimate{}
	var missing []string
	// hours is 0 for a monthly price, else the hours an hourly price is paid for.
	add := func(name, key string, qty, hours float64) {
		p, ok := prices[key]
		if !ok {
			missing = append(missing, key)
			return
		}
		monthly := qty * p.USD
		unit := p.Unit
		if hours > 0 {
			monthly *= hours
			unit += fmt.Sprintf(" × %g h", hours)
		}
		monthly = math.Round(monthly*100) / 100
		e.Items = append(e.Items, Item{Name: name, Quantity: qty, Unit: unit, UnitUSD: p.USD, Monthly: monthly})
		e.Total += monthly
	}
	running := f.RunningHours
	if running <= 0 || running > HoursPerMonth {
		return nil, fmt.Errorf("running hours %g: want more than 0 and at most %d", running, HoursPerMonth)
	}
	for _, t := range slices.Sorted(maps.Keys(f.Instances)) {
		add("EC2 "+t+", on-demand", "ec2:"+t, float64(f.Instances[t]), running)
	}
	for _, t := range slices.Sorted(maps.Keys(f.SpotInstances)) {
		add("EC2 "+t+", spot", "ec2spot:"+t, float64(f.SpotInstances[t]), running)
	}
	if f.UnlimitedVCPUs > 0 {
		add(fmt.Sprintf("CPU surplus credits (%.0f%% of %d vCPUs)", a.SurplusCPUShare*100, f.UnlimitedVCPUs),
			"ec2:surplus-credit", float64(f.UnlimitedVCPUs)*a.SurplusCPUShare, running)
	}
	add("EBS gp3, node roots", "ebs:gp3", float64(f.RootGB), 0)
	add("EBS gp3, persistent volumes", "ebs:gp3", float64(f.VolumeGB), 0)
	add("Public IPv4, nodes (while running)", "ipv4:public", float64(f.NodePublicIPs), running)
	add("Public IPv4, Elastic IP (always)", "ipv4:public", float64(f.ElasticIPs), HoursPerMonth)
	add("Public IPv4, ALB (one per zone)", "ipv4:public", float64(f.ALBs*f.ALBZones), HoursPerMonth)
	add("ALB", "alb:hour", float64(f.ALBs), HoursPerMonth)
	add(fmt.Sprintf("ALB capacity units (assumed %.1f)", a.ALBLCUs), "alb:lcu", a.ALBLCUs*float64(f.ALBs), HoursPerMonth)
	add("Route53 hosted zone", "route53:zone", float64(f.HostedZones), 0)
	add("Route53 queries (assumed, millions)", "route53:query", a.Route53MillionQueries, 0)
	add("S3 uploads, recent (assumed GB)", "s3:standard", a.UploadsStandardGB, 0)
	add("S3 uploads, archived (assumed GB)", archiveKey(f.ArchiveClass), a.UploadsArchivedGB, 0)
	add("Data transfer out (assumed GB)", "transfer:out", a.TransferOutGB, 0)
	add("ACM certificate", "acm:public", 1, 0)
	if days := float64(f.BackupRetentionDays); days > 0 {
		add(fmt.Sprintf("S3 backups (assumed %.1f GB/day × 2 × %d days)", a.BackupGBPerDay, f.BackupRetentionDays), "s3:standard", a.BackupGBPerDay*2*days, 0)
		add(fmt.Sprintf("EBS snapshots (assumed %.0f%% used + %.0f%%/day × %d)", a.SnapshotUsedFraction*100, a.SnapshotDailyChangeFraction*100, f.BackupRetentionDays),
			"ebs:snapshot", float64(f.VolumeGB)*(a.SnapshotUsedFraction+a.SnapshotDailyChangeFraction*days), 0)
	}
	if days := float64(f.LogRetentionDays); days > 0 {
		// Logs are written only while the nodes run; what is kept is the retention's worth of
		// days at the same share of running time, compressed.
		ingested := math.Round(a.LogGBPerDay*running/24*10) / 10
		add(fmt.Sprintf("CloudWatch Logs ingestion (assumed %.1f GB/running day)", a.LogGBPerDay), "logs:ingest", ingested, 0)
		kept := a.LogGBPerDay * running / HoursPerMonth * days * a.LogStoredFraction
		add(fmt.Sprintf("CloudWatch Logs storage (retention, %.0f%% compressed)", a.LogStoredFraction*100), "logs:store", math.Round(kept*100)/100, 0)
	}
	if days := float64(f.ALBLogDays); days > 0 {
		// The ALB serves around the clock, office hours or not.
		add(fmt.Sprintf("S3 ALB access logs (assumed %.1f GB/day × %d days)", a.ALBLogGBPerDay, f.ALBLogDays), "s3:standard", math.Round(a.ALBLogGBPerDay*days*100)/100, 0)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("no price for %s", strings.Join(missing, ", "))
	}
	e.Total = math.Round(e.Total*100) / 100
	return e, nil
}

func archiveKey(class string) string {
	return "s3:" + strings.ReplaceAll(strings.ToLower(class), "_", "-")
}

// Table renders the estimate.
func (e *Estimate) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-40s %9s %-26s %10s %10s\n", "ITEM", "QUANTITY", "UNIT", "UNIT USD", "MONTHLY")
	for _, it := range e.Items {
		fmt.Fprintf(&b, "%-40s %9.1f %-26s %10.4f %10.2f\n", it.Name, it.Quantity, it.Unit, it.UnitUSD, it.Monthly)
	}
	fmt.Fprintf(&b, "%-40s %9s %-26s %10s %10.2f\n", "TOTAL (USD per month)", "", "", "", e.Total)
	return b.String()
}
