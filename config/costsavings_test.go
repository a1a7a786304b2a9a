package config

import (
	"strings"
	"testing"
	"time"
)

// devRaw is validRaw as a non-production stack, where spot and office hours belong.
func devRaw(set map[string]string) map[string]string {
	raw := validRaw()
	raw["waste-coach-infra:production"] = "false"
	for k, v := range set {
		raw[k] = v
	}
	return raw
}

const weekdays = `{"timeZone":"Asia/Seoul","days":["MON","TUE","WED","THU","FRI"],"start":"09:00","stop":"20:00"}`

func TestSpotAndOfficeHoursAreRead(t *testing.T) {
	c, err := parse(devRaw(map[string]string{
		"waste-coach-infra:capacity":    "spot",
		"waste-coach-infra:officeHours": weekdays,
		"waste-coach-infra:nodes": `[
			{"role":"master","instanceType":"t3.large","subnet":0,"rootVolumeGiB":80,"capacity":"on-demand"},
			{"role":"worker-1","instanceType":"t3.medium","subnet":1,"rootVolumeGiB":40},
			{"role":"worker-2","instanceType":"t3.medium","subnet":2,"rootVolumeGiB":40},
			{"role":"storage","instanceType":"t3.large","subnet":0,"rootVolumeGiB":100}]`,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Node(RoleMaster).Capacity; got != OnDemand {
		t.Errorf("master capacity = %q, want its own on-demand over the stack's spot", got)
	}
	if got := c.Node(RoleWorker1).Capacity; got != Spot {
		t.Errorf("worker-1 capacity = %q, want the stack's spot", got)
	}
	o := c.OfficeHours
	if o == nil {
		t.Fatal("officeHours not read")
	}
	if got := o.Cron(o.Start); got != "cron(0 9 ? * MON,TUE,WED,THU,FRI *)" {
		t.Errorf("start expression = %s", got)
	}
	if got := o.Cron(o.Stop); got != "cron(0 20 ? * MON,TUE,WED,THU,FRI *)" {
		t.Errorf("stop expression = %s", got)
	}
	if got := o.HoursPerWeek(); got != 55 {
		t.Errorf("hours a week = %g, want 55", got)
	}

	// Unset, and Pulumi.yaml's default {}, mean on-demand around the clock.
	for _, v := range []string{"", "{}"} {
		c, err := parse(devRaw(map[string]string{"waste-coach-infra:officeHours": v}))
		if err != nil {
			t.Fatal(err)
		}
		if c.OfficeHours != nil || c.Node(RoleMaster).Capacity != OnDemand {
			t.Errorf("officeHours %q: schedule %v, master capacity %q; want none and on-demand", v, c.OfficeHours, c.Node(RoleMaster).Capacity)
		}
	}
}

// TestBadSpotAndScheduleConfigIsRefused shows each refusal naming the key, the value and what
// is allowed.
func TestBadSpotAndScheduleConfigIsRefused(t *testing.T) {
	hours := func(tz, start, stop string) string {
		return `{"timeZone":"` + tz + `","days":["MON","FRI"],"start":"` + start + `","stop":"` + stop + `"}`
	}
	cases := []struct {
		name       string
		set        map[string]string
		production bool
		want       []string
	}{
		{"25 o'clock", map[string]string{"waste-coach-infra:officeHours": hours("Asia/Seoul", "09:00", "25:00")}, false,
			[]string{"waste-coach-infra:officeHours.stop", `"25:00"`, "00:00 to 23:59"}},
		{"minutes past 59", map[string]string{"waste-coach-infra:officeHours": hours("Asia/Seoul", "09:60", "20:00")}, false,
			[]string{"waste-coach-infra:officeHours.start", `"09:60"`}},
		{"unknown time zone", map[string]string{"waste-coach-infra:officeHours": hours("Asia/Seol", "09:00", "20:00")}, false,
			[]string{"waste-coach-infra:officeHours.timeZone", `"Asia/Seol"`, "IANA"}},
		{"the machine's local zone", map[string]string{"waste-coach-infra:officeHours": hours("Local", "09:00", "20:00")}, false,
			[]string{"waste-coach-infra:officeHours.timeZone", `"Local"`}},
		{"stop before start", map[string]string{"waste-coach-infra:officeHours": hours("Asia/Seoul", "20:00", "09:00")}, false,
			[]string{"waste-coach-infra:officeHours.stop", `"09:00"`, "after start (20:00)"}},
		{"stop at start", map[string]string{"waste-coach-infra:officeHours": hours("UTC", "09:00", "09:00")}, false,
			[]string{"waste-coach-infra:officeHours.stop", "after start"}},
		{"a window too short for the backups", map[string]string{"waste-coach-infra:officeHours": hours("UTC", "09:00", "11:59")}, false,
			[]string{"waste-coach-infra:officeHours.stop", `"11:59"`, "at least 3 hours after start (09:00)", "backups"}},
		{"unknown day", map[string]string{"waste-coach-infra:officeHours": `{"timeZone":"UTC","days":["MON","FRY"],"start":"09:00","stop":"20:00"}`}, false,
			[]string{"waste-coach-infra:officeHours.days[1]", `"FRY"`, "MON"}},
		{"no days", map[string]string{"waste-coach-infra:officeHours": `{"timeZone":"UTC","days":[],"start":"09:00","stop":"20:00"}`}, false,
			[]string{"waste-coach-infra:officeHours.days", "one or more"}},
		{"a typo in a field", map[string]string{"waste-coach-infra:officeHours": `{"zone":"UTC","days":["MON"],"start":"09:00","stop":"20:00"}`}, false,
			[]string{"waste-coach-infra:officeHours", `unknown field "zone"`}},
		{"office hours on production", map[string]string{"waste-coach-infra:officeHours": weekdays}, true,
			[]string{"waste-coach-infra:officeHours", "production"}},
		{"unknown stack capacity", map[string]string{"waste-coach-infra:capacity": "reserved"}, false,
			[]string{"waste-coach-infra:capacity", `"reserved"`, "on-demand", "spot"}},
		{"unknown node capacity", map[string]string{"waste-coach-infra:nodes": `[
			{"role":"master","instanceType":"t3.large","subnet":0,"rootVolumeGiB":80,"capacity":"Spot"},
			{"role":"worker-1","instanceType":"t3.medium","subnet":1,"rootVolumeGiB":40},
			{"role":"worker-2","instanceType":"t3.medium","subnet":2,"rootVolumeGiB":40},
			{"role":"storage","instanceType":"t3.large","subnet":0,"rootVolumeGiB":100}]`}, false,
			[]string{"waste-coach-infra:nodes[master].capacity", `"Spot"`, "on-demand"}},
		{"credit mode of a type without credits", map[string]string{"waste-coach-infra:nodes": `[
			{"role":"master","instanceType":"m6i.large","subnet":0,"rootVolumeGiB":80,"cpuCredits":"standard"},
			{"role":"worker-1","instanceType":"t3.medium","subnet":1,"rootVolumeGiB":40},
			{"role":"worker-2","instanceType":"t3.medium","subnet":2,"rootVolumeGiB":40},
			{"role":"storage","instanceType":"t3.large","subnet":0,"rootVolumeGiB":100}]`}, false,
			[]string{"waste-coach-infra:nodes[master].cpuCredits", `"standard"`, "m6i.large is not a burstable type"}},
		{"unknown credit mode", map[string]string{"waste-coach-infra:nodes": `[
			{"role":"master","instanceType":"t3.large","subnet":0,"rootVolumeGiB":80},
			{"role":"worker-1","instanceType":"t3.medium","subnet":1,"rootVolumeGiB":40,"cpuCredits":"unlimted"},
			{"role":"worker-2","instanceType":"t3.medium","subnet":2,"rootVolumeGiB":40},
			{"role":"storage","instanceType":"t3.large","subnet":0,"rootVolumeGiB":100}]`}, false,
			[]string{"waste-coach-infra:nodes[worker-1].cpuCredits", `"unlimted"`, "standard or unlimited"}},
		{"replaceMaster not an instance id", map[string]string{"waste-coach-infra:replaceMaster": "master"}, false,
			[]string{"waste-coach-infra:replaceMaster", `"master"`, "instance id"}},
		{"spot that terminates", map[string]string{"waste-coach-infra:capacity": "spot", "waste-coach-infra:spotInterruptionBehavior": "terminate"}, false,
			[]string{"waste-coach-infra:spotInterruptionBehavior", `"terminate"`, "root volume", "Kubernetes identity"}},
		{"spot that hibernates", map[string]string{"waste-coach-infra:capacity": "spot", "waste-coach-infra:spotInterruptionBehavior": "hibernate"}, false,
			[]string{"waste-coach-infra:spotInterruptionBehavior", `"hibernate"`, "stop"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := devRaw(tc.set)
			if tc.production {
				raw["waste-coach-infra:production"] = "true"
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

// A stack-wide capacity moves the workers and the storage node, never the master: a change of
// capacity replaces each node it moves (infra.CapacityTrigger), and the master's replacement is
// a procedure of its own. Each burstable node's credit mode is explicit: standard on a spot worker (AWS's
// advice for spot: no surplus credits, billed per vCPU-hour), unlimited on demand and on the master.
func TestStackCapacityLeavesTheMasterAndCreditModesAreExplicit(t *testing.T) {
	c, err := parse(devRaw(map[string]string{
		"waste-coach-infra:capacity": "spot",
		"waste-coach-infra:nodes": `[
			{"role":"storage","instanceType":"m6i.large","subnet":0,"rootVolumeGiB":100},
			{"role":"master","instanceType":"t3.large","subnet":0,"rootVolumeGiB":80},
			{"role":"worker-1","instanceType":"t3.medium","subnet":1,"rootVolumeGiB":40,"cpuCredits":"unlimited"},
			{"role":"worker-2","instanceType":"t3.medium","subnet":2,"rootVolumeGiB":40,"capacity":"on-demand"}]`,
	}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[Role]struct {
		capacity Capacity
		credits  string
		path     string
	}{
		RoleMaster:  {OnDemand, CreditsUnlimited, "waste-coach-infra:nodes[1].capacity"},
		RoleWorker1: {Spot, CreditsUnlimited, "waste-coach-infra:nodes[2].capacity"},
		RoleWorker2: {OnDemand, CreditsUnlimited, "waste-coach-infra:nodes[3].capacity"},
		RoleStorage: {Spot, "", "waste-coach-infra:nodes[0].capacity"},
	}
	for role, w := range want {
		n := c.Node(role)
		if n.Capacity != w.capacity || n.CPUCredits != w.credits {
			t.Errorf("%s: capacity %q, credits %q; want %q, %q", role, n.Capacity, n.CPUCredits, w.capacity, w.credits)
		}
		// The refusals give `pulumi config set --path` commands: the index is the stack file's.
		if got := n.ConfigPath("capacity"); got != w.path {
			t.Errorf("%s: config path %q, want %q (its place in the stack file)", role, got, w.path)
		}
	}
	c, err = parse(devRaw(map[string]string{"waste-coach-infra:capacity": "spot"}))
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Node(RoleWorker1); n.CPUCredits != CreditsStandard {
		t.Errorf("a spot T3 worker without cpuCredits: %q, want standard", n.CPUCredits)
	}
	if n := c.Node(RoleMaster); n.Capacity != OnDemand {
		t.Errorf("the master under a stack-wide spot: %q, want on-demand (only its own capacity moves it)", n.Capacity)
	}
	c, err = parse(devRaw(map[string]string{"waste-coach-infra:nodes": `[
			{"role":"master","instanceType":"t3.large","subnet":0,"rootVolumeGiB":80,"capacity":"spot"},
			{"role":"worker-1","instanceType":"t3.medium","subnet":1,"rootVolumeGiB":40},
			{"role":"worker-2","instanceType":"t3.medium","subnet":2,"rootVolumeGiB":40},
			{"role":"storage","instanceType":"t3.large","subnet":0,"rootVolumeGiB":100}]`}))
	if err != nil {
		t.Fatal(err)
	}
	if n := c.Node(RoleMaster); n.CPUCredits != CreditsUnlimited {
		t.Errorf("a spot master without cpuCredits: %q, want unlimited (a standard T3 boots with no credits, at its baseline, under kubeadm's timeouts)", n.CPUCredits)
	}
}

// The daily backups of an office-hours stack run on its office days, in its time zone, and wait
// at most the longest gap between two office days for their next run.
func TestOfficeHoursBackupTimes(t *testing.T) {
	o := OfficeHours{TimeZone: "Asia/Seoul", Days: []string{"MON", "TUE", "WED", "THU", "FRI"}, Start: "09:00", Stop: "20:00"}
	if got := o.CronJobSchedule(75); got != "15 10 * * MON,TUE,WED,THU,FRI" {
		t.Errorf("75 minutes after 09:00 on weekdays: %q", got)
	}
	for days, want := range map[string]int{"MON,TUE,WED,THU,FRI": 3, "MON,TUE,WED,THU,FRI,SAT,SUN": 1, "WED": 7, "MON,THU": 4, "SUN,MON": 6} {
		o.Days = strings.Split(days, ",")
		if got := o.LongestGapDays(); got != want {
			t.Errorf("office days %s: longest gap %d days, want %d", days, got, want)
		}
	}
}

// TestADeployStartsOnlyWellInsideOfficeHours: a deploy of a stack with office hours may start
// from DeployAfterStart after the start (its nodes booted) until DeployBeforeStop before the
// stop (it ends before the stop schedule halts the nodes under it), on its days, in its zone.
func TestADeployStartsOnlyWellInsideOfficeHours(t *testing.T) {
	o := OfficeHours{TimeZone: "Asia/Seoul", Days: []string{"MON", "TUE", "WED", "THU", "FRI"}, Start: "09:00", Stop: "20:00"}
	seoul, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		t.Fatal(err)
	}
	at := func(day, hhmm string) time.Time {
		tm, err := time.ParseInLocation("2006-01-02 15:04", day+" "+hhmm, seoul)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	const monday, saturday = "2026-12-07", "2026-12-12"
	for _, tc := range []struct {
		when time.Time
		open bool
	}{
		{at(monday, "09:00"), false}, // the nodes are still booting
		{at(monday, "09:14"), false},
		{at(monday, "09:15"), true},
		{at(monday, "18:45"), true},
		{at(monday, "18:46"), false}, // would still run when the nodes stop at 20:00
		{at(monday, "23:00"), false},
		{at(saturday, "12:00"), false},
		{at(monday, "12:00").UTC(), true},                      // the same instant in another zone
		{time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC), true},   // 10:00 in Seoul
		{time.Date(2026, 12, 6, 23, 0, 0, 0, time.UTC), false}, // Monday 08:00 in Seoul, Sunday in UTC
	} {
		if got := o.DeployOpen(tc.when); got != tc.open {
			t.Errorf("%s: open = %v, want %v", tc.when, got, tc.open)
		}
	}
}
