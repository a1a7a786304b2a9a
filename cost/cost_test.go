package cost

import (
	"math"
	"strings"
	"testing"

	"github.com/waste-coach/infra/config"
)

// fixturePrices is a small price table with round figures, one price per item Compute bills.
func fixturePrices() map[string]Price {
	return map[string]Price{
		"ec2:t3.medium": {0.05, "instance-hour", "fixture"}, "ebs:gp3": {0.1, "GB-month", "fixture"},
		"ipv4:public": {0.005, "address-hour", "fixture"}, "alb:hour": {0.02, "ALB-hour", "fixture"},
		"alb:lcu": {0.01, "LCU-hour", "fixture"}, "route53:zone": {0.5, "zone", "fixture"},
		"route53:query": {0.4, "million", "fixture"}, "s3:standard": {0.02, "GB-month", "fixture"},
		"s3:glacier": {0.004, "GB-month", "fixture"}, "transfer:out": {0.1, "GB", "fixture"}, "acm:public": {0, "cert", "fixture"},
	}
}

func TestComputeArithmetic(t *testing.T) {
	prices := fixturePrices()
	f := Footprint{Instances: map[string]int{"t3.medium": 2}, RunningHours: HoursPerMonth, RootGB: 100, VolumeGB: 50, NodePublicIPs: 1, ElasticIPs: 1, ALBs: 1, ALBZones: 3, HostedZones: 1, ArchiveClass: "GLACIER"}
	a := Assumptions{ALBLCUs: 2, Route53MillionQueries: 1, UploadsStandardGB: 10, UploadsArchivedGB: 100, TransferOutGB: 10}
	e, err := Compute(f, a, prices)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"EC2 t3.medium, on-demand":           73.00, // 2 × 0.05 × 730
		"EBS gp3, node roots":                10.00,
		"EBS gp3, persistent volumes":        5.00,
		"Public IPv4, nodes (while running)": 3.65, // 1 × 0.005 × 730
		"Public IPv4, Elastic IP (always)":   3.65,
		"Public IPv4, ALB (one per zone)":    10.95,
		"ALB":                                14.60,
		"ALB capacity units (assumed 2.0)":   14.60,
		"Route53 hosted zone":                0.50,
		"S3 uploads, archived (assumed GB)":  0.40,
		"Data transfer out (assumed GB)":     1.00,
	}
	for _, it := range e.Items {
		if w, ok := want[it.Name]; ok && it.Monthly != w {
			t.Errorf("%s = %.2f, want %.2f", it.Name, it.Monthly, w)
		}
	}
	if e.Total != 137.95 {
		t.Errorf("total = %.2f, want 137.95\n%s", e.Total, e.Table())
	}
}

func TestComputeRefusesAMissingPrice(t *testing.T) {
	f := Footprint{Instances: map[string]int{"t3.nano": 1}, RunningHours: HoursPerMonth, ArchiveClass: "GLACIER"}
	if _, err := Compute(f, DefaultAssumptions, Seoul); err == nil || !strings.Contains(err.Error(), "ec2:t3.nano") {
		t.Fatalf("an instance type without a price must fail the estimate, got %v", err)
	}
}

func TestEveryConfigurableChoiceHasAPrice(t *testing.T) {
	for it := range config.InstanceTypes {
		if _, ok := Seoul["ec2:"+it]; !ok {
			t.Errorf("instance type %s is allowed by the config but has no price", it)
		}
		if _, ok := Seoul["ec2spot:"+it]; !ok {
			t.Errorf("instance type %s may be spot (config capacity) but has no spot price", it)
		}
	}
	for _, class := range config.TransitionClasses {
		if _, ok := Seoul[archiveKey(class)]; !ok {
			t.Errorf("no price for archive class %s", class)
		}
	}
}

// TestOfficeHoursAndSpotPriceWhatStopsAndNothingElse checks what a stopped night saves: the
// instances' hours and their launch-time addresses, at the spot price for spot nodes; the
// volumes, the Elastic IP (billed whether its instance runs or not) and the ALB bill the whole
// month.
func TestOfficeHoursAndSpotPriceWhatStopsAndNothingElse(t *testing.T) {
	prices := map[string]Price{
		"ec2:t3.large": {0.1, "instance-hour", "fixture"}, "ec2spot:t3.medium": {0.02, "instance-hour", "fixture"},
		"ebs:gp3": {0.1, "GB-month", "fixture"}, "ipv4:public": {0.005, "address-hour", "fixture"},
		"alb:hour": {0.02, "ALB-hour", "fixture"}, "alb:lcu": {0.01, "LCU-hour", "fixture"},
		"route53:zone": {0.5, "zone", "fixture"}, "route53:query": {0.4, "million", "fixture"},
		"s3:standard": {0.02, "GB-month", "fixture"}, "s3:glacier": {0.004, "GB-month", "fixture"},
		"transfer:out": {0.1, "GB", "fixture"}, "acm:public": {0, "cert", "fixture"},
	}
	f := Footprint{Instances: map[string]int{"t3.large": 1}, SpotInstances: map[string]int{"t3.medium": 3},
		RunningHours: 200, RootGB: 100, VolumeGB: 50, NodePublicIPs: 3, ElasticIPs: 1, ALBs: 1, ALBZones: 3, HostedZones: 1, ArchiveClass: "GLACIER"}
	e, err := Compute(f, Assumptions{ALBLCUs: 1}, prices)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"EC2 t3.large, on-demand":            20.00, // 1 × 0.1 × 200 h
		"EC2 t3.medium, spot":                12.00, // 3 × 0.02 × 200 h
		"EBS gp3, node roots":                10.00, // billed while stopped
		"Public IPv4, nodes (while running)": 3.00,  // 3 × 0.005 × 200 h: released while stopped
		"Public IPv4, Elastic IP (always)":   3.65,  // 1 × 0.005 × 730 h
		"Public IPv4, ALB (one per zone)":    10.95,
		"ALB":                                14.60,
	}
	got := map[string]float64{}
	for _, it := range e.Items {
		got[it.Name] = it.Monthly
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s = %.2f, want %.2f\n%s", name, got[name], w, e.Table())
		}
	}
	// The saving is priced against the on-demand price of the spot nodes' type, which the
	// fixture lacks: SavingsOf must say so rather than guess.
	if _, err := SavingsOf(f, Assumptions{ALBLCUs: 1}, prices); err == nil || !strings.Contains(err.Error(), "ec2:t3.medium") {
		t.Errorf("savings without an on-demand price for the spot type: got %v, want an error naming ec2:t3.medium", err)
	}
}

func TestSavingsSplitsSpotFromOfficeHours(t *testing.T) {
	f := Footprint{Instances: map[string]int{}, SpotInstances: map[string]int{"t3.medium": 2}, RunningHours: 365,
		RootGB: 100, NodePublicIPs: 1, ElasticIPs: 1, ALBs: 1, ALBZones: 3, HostedZones: 1, ArchiveClass: "GLACIER"}
	s, err := SavingsOf(f, DefaultAssumptions, Seoul)
	if err != nil {
		t.Fatal(err)
	}
	od, spot := Seoul["ec2:t3.medium"].USD, Seoul["ec2spot:t3.medium"].USD
	wantSpot := math.Round(2*(od-spot)*HoursPerMonth*100) / 100
	// Half the month stopped: half the spot hours and half the node address.
	wantHours := math.Round((2*spot*365+Seoul["ipv4:public"].USD*365)*100) / 100
	if math.Abs(s.Spot-wantSpot) > 0.011 || math.Abs(s.OfficeHours-wantHours) > 0.011 {
		t.Errorf("savings spot %.2f, office hours %.2f; want %.2f and %.2f", s.Spot, s.OfficeHours, wantSpot, wantHours)
	}
	if math.Abs(s.Without-s.Spot-s.OfficeHours-s.With) > 0.011 {
		t.Errorf("%.2f - %.2f - %.2f != %.2f", s.Without, s.Spot, s.OfficeHours, s.With)
	}
}

func TestRunningHoursFollowTheSchedule(t *testing.T) {
	weekdays := config.OfficeHours{TimeZone: "Asia/Seoul", Days: []string{"MON", "TUE", "WED", "THU", "FRI"}, Start: "09:00", Stop: "20:00"}
	if got := RunningHoursPerMonth(weekdays.HoursPerWeek()); got != 239 {
		t.Errorf("weekdays 09:00-20:00 run %g h a month, want 239 (55 h a week × 730/168)", got)
	}
	if got := RunningHoursPerMonth(7 * 24); got != HoursPerMonth {
		t.Errorf("every hour of the week runs %g h a month, want %d", got, HoursPerMonth)
	}
}

// TestBackupsArePriced: a stack that keeps backups pays for the bucket's stored backups and the
// EBS snapshots, and both grow with the retention.
func TestBackupsArePriced(t *testing.T) {
	f := Footprint{Instances: map[string]int{"t3.medium": 1}, RunningHours: HoursPerMonth, VolumeGB: 100, ALBs: 1, ALBZones: 3, HostedZones: 1, ArchiveClass: "GLACIER", BackupRetentionDays: 14}
	a := DefaultAssumptions
	e, err := Compute(f, a, Seoul)
	if err != nil {
		t.Fatal(err)
	}
	var s3, snap float64
	for _, it := range e.Items {
		switch {
		case strings.HasPrefix(it.Name, "S3 backups"):
			s3 = it.Quantity
		case strings.HasPrefix(it.Name, "EBS snapshots"):
			snap = it.Quantity
		}
	}
	if s3 != 5*2*14 {
		t.Errorf("S3 backups stored = %.1f GB, want 140 (5 GB/day kept 14 days, then 14 days as noncurrent versions)", s3)
	}
	if snap < 57.9 || snap > 58.1 {
		t.Errorf("EBS snapshots stored = %.1f GB, want 58 (100 GB × (30%% used + 2%%/day × 14))", snap)
	}
	f.BackupRetentionDays = 0
	e, _ = Compute(f, a, Seoul)
	if strings.Contains(e.Table(), "backups") {
		t.Errorf("a footprint without backups is billed for backups:\n%s", e.Table())
	}
}

// TestUnlimitedCreditsAreCounted: a burstable node in unlimited mode may be billed for surplus
// credits, one in standard mode never is (it is held at its baseline), so the estimate prices the
// assumed surplus of the unlimited nodes' vCPUs and nothing for the standard ones.
func TestUnlimitedCreditsAreCounted(t *testing.T) {
	cfg := &config.Config{Nodes: []config.Node{
		{Role: config.RoleMaster, InstanceType: "t3.large", Capacity: config.OnDemand, CPUCredits: config.CreditsUnlimited},
		{Role: config.RoleWorker1, InstanceType: "t3.xlarge", Capacity: config.OnDemand, CPUCredits: config.CreditsUnlimited},
		{Role: config.RoleWorker2, InstanceType: "t3.medium", Capacity: config.Spot, CPUCredits: config.CreditsStandard},
		{Role: config.RoleStorage, InstanceType: "m6i.large", Capacity: config.OnDemand},
	}, Uploads: config.Uploads{TransitionStorageClass: "GLACIER"}}
	f := FootprintOf(cfg, 0)
	if f.UnlimitedVCPUs != 6 {
		t.Fatalf("unlimited vCPUs = %d, want 6 (t3.large 2 + t3.xlarge 4; the standard t3.medium and the m6i have none)", f.UnlimitedVCPUs)
	}
	e, err := Compute(f, DefaultAssumptions, Seoul)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, it := range e.Items {
		if strings.HasPrefix(it.Name, "CPU surplus credits") {
			found = true
			// 6 vCPUs × 5% × 730 h × 0.05 USD
			if want := 10.95; it.Monthly != want {
				t.Errorf("%s = %.2f, want %.2f\n%s", it.Name, it.Monthly, want, e.Table())
			}
		}
	}
	if !found {
		t.Errorf("no surplus-credit line for 6 unlimited vCPUs:\n%s", e.Table())
	}
	for i := range cfg.Nodes {
		if cfg.Nodes[i].CPUCredits == config.CreditsUnlimited {
			cfg.Nodes[i].CPUCredits = config.CreditsStandard
		}
	}
	e, err = Compute(FootprintOf(cfg, 0), DefaultAssumptions, Seoul)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(e.Table(), "surplus") {
		t.Errorf("standard nodes only, yet a surplus-credit line:\n%s", e.Table())
	}
}
