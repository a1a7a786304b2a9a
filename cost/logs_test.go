package cost

import "testing"

// Logs are priced from the assumed volume: ingestion for every running day, storage for the
// retention's worth of days, compressed; a stack that stops at night ingests less.
func TestLogsArePricedFromTheAssumedVolume(t *testing.T) {
	prices := fixturePrices()
	prices["logs:ingest"] = Price{0.5, "GB", "fixture"}
	prices["logs:store"] = Price{0.03, "GB-month", "fixture"}
	a := Assumptions{LogGBPerDay: 2, LogStoredFraction: 0.1}
	for _, tc := range []struct {
		name                  string
		hours                 float64
		retention             int
		wantIngest, wantStore float64
	}{
		// 2 GB × 730/24 days = 60.8 GB × 0.5; kept: 2 GB × 30 days × 10% = 6 GB × 0.03.
		{"around the clock, 30 days", HoursPerMonth, 30, 30.40, 0.18},
		// A third of the hours: 20.3 GB (rounded to 0.1 GB) × 0.5; kept 2 × 1/3 × 7 × 10% = 0.47 GB.
		{"office hours, 7 days", HoursPerMonth / 3, 7, 10.15, 0.01},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := Footprint{Instances: map[string]int{"t3.medium": 1}, RunningHours: tc.hours, ALBs: 1, ALBZones: 3, HostedZones: 1, ArchiveClass: "GLACIER", LogRetentionDays: tc.retention}
			e, err := Compute(f, a, prices)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]float64{}
			for _, it := range e.Items {
				got[it.Unit] = it.Monthly
				if it.UnitUSD == 0.5 {
					got["ingest"] = it.Monthly
				}
				if it.UnitUSD == 0.03 && it.Unit == "GB-month" {
					got["store"] = it.Monthly
				}
			}
			if got["ingest"] != tc.wantIngest || got["store"] != tc.wantStore {
				t.Errorf("logs ingest %.2f store %.2f, want %.2f and %.2f", got["ingest"], got["store"], tc.wantIngest, tc.wantStore)
			}
		})
	}
	if _, err := Compute(Footprint{Instances: map[string]int{}, RunningHours: HoursPerMonth, ArchiveClass: "GLACIER", LogRetentionDays: 7}, a, map[string]Price{}); err == nil {
		t.Error("an estimate without log prices was accepted")
	}
}
