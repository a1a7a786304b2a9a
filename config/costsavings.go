// Cost savings: spot capacity, for the whole stack or per node, and office hours outside which
// the instances are stopped (keys capacity, spotInterruptionBehavior, officeHours and the
// capacity of each node).

package config

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	// The zone database is compiled in, so that officeHours.timeZone is checked the same way on
	// every machine (a CI runner without /usr/share/zoneinfo would refuse every zone).
	_ "time/tzdata"
)

// Capacity is how a node's EC2 capacity is bought.
type Capacity string

// The purchase options a node may use.
const (
	// OnDemand is the default: capacity that AWS never takes back.
	OnDemand Capacity = "on-demand"
	// Spot is spare capacity at a discount, which AWS may reclaim at two minutes' notice. The
	// program requests it persistently with the interruption behaviour SpotInterruptionStop.
	Spot Capacity = "spot"
)

// Capacities lists the purchase options a node may use.
var Capacities = []Capacity{OnDemand, Spot}

// SpotInterruptionStop is what AWS does to a spot node when it reclaims the capacity: it stops
// the instance, which keeps its root volume, its private address (the master's fixed one), its
// Elastic IP and so its Kubernetes identity, and starts it again when capacity returns.
// "terminate" would lose all of that and "hibernate" needs hibernation configured at launch; a
// persistent request (the only kind that can come back) accepts only stop or hibernate.
const SpotInterruptionStop = "stop"

// OfficeHours is a weekly window outside which the stack's instances are stopped (officeHours).
type OfficeHours struct {
	// TimeZone is the IANA zone the times are in, such as Asia/Seoul.
	TimeZone string `json:"timeZone"`
	// Days are the days of the week the instances run: MON, TUE, ... SUN.
	Days []string `json:"days"`
	// Start and Stop are the local times, HH:MM (24 hours), at which the instances are started
	// and stopped on each of Days. Stop is later than Start on the same day.
	Start string `json:"start"`
	Stop  string `json:"stop"`
}

// Weekdays are the day names officeHours.days accepts, in EventBridge's cron spelling.
var Weekdays = []string{"MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"}

var instanceID = regexp.MustCompile(`^i-[0-9a-f]{8,17}$`)

var clockRE = regexp.MustCompile(`^([01][0-9]|2[0-3]):([0-5][0-9])$`)

// clock parses HH:MM into minutes after midnight.
func clock(s string) (int, bool) {
	m := clockRE.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	h, _ := strconv.Atoi(m[1])
	mi, _ := strconv.Atoi(m[2])
	return h*60 + mi, true
}

// HoursPerWeek is how long the instances run in a week.
func (o OfficeHours) HoursPerWeek() float64 {
	start, _ := clock(o.Start)
	stop, _ := clock(o.Stop)
	return float64(len(o.Days)*(stop-start)) / 60
}

// Cron returns the EventBridge Scheduler expression that fires at hhmm (Start or Stop) on Days,
// in the schedule's own time zone: cron(minutes hours day-of-month month day-of-week year).
func (o OfficeHours) Cron(hhmm string) string {
	m, _ := clock(hhmm)
	return fmt.Sprintf("cron(%d %d ? * %s *)", m%60, m/60, strings.Join(o.Days, ","))
}

// CronJobSchedule is a Kubernetes CronJob schedule (in the office hours' time zone, the CronJob's
// timeZone) that fires minutesAfterStart after Start on each of Days.
func (o OfficeHours) CronJobSchedule(minutesAfterStart int) string {
	start, _ := clock(o.Start)
	at := start + minutesAfterStart
	return fmt.Sprintf("%d %d * * %s", at%60, at/60, strings.Join(o.Days, ","))
}

// LongestGapDays is the most days from one office day to the next (3 from Friday to Monday for
// MON-FRI, 7 for a single day a week): the longest a daily job run in office hours waits.
func (o OfficeHours) LongestGapDays() int {
	longest := 0
	for _, d := range o.Days {
		i := slices.Index(Weekdays, d)
		for gap := 1; gap <= 7; gap++ {
			if slices.Contains(o.Days, Weekdays[(i+gap)%7]) {
				longest = max(longest, gap)
				break
			}
		}
	}
	return longest
}

// Deploy margins inside the office window: the nodes boot and the cluster settles after the
// start (the run refuses stopped nodes), and a deploy must end before the stop schedule halts
// the nodes under it (an up of dev takes up to about an hour: docs/delivery.md).
const (
	DeployAfterStart = 15 * time.Minute
	DeployBeforeStop = 75 * time.Minute
)

// DeployOpen reports whether a deploy started at t fits the window: on one of Days, from
// DeployAfterStart after Start until DeployBeforeStop before Stop, in TimeZone. A zone that
// does not load (Parse refuses it first) counts as closed.
func (o OfficeHours) DeployOpen(t time.Time) bool {
	loc, err := time.LoadLocation(o.TimeZone)
	if err != nil {
		return false
	}
	local := t.In(loc)
	if !slices.Contains(o.Days, Weekdays[(int(local.Weekday())+6)%7]) {
		return false
	}
	start, _ := clock(o.Start)
	stop, _ := clock(o.Stop)
	now := time.Duration(local.Hour())*time.Hour + time.Duration(local.Minute())*time.Minute + time.Duration(local.Second())*time.Second
	return now >= time.Duration(start)*time.Minute+DeployAfterStart && now <= time.Duration(stop)*time.Minute-DeployBeforeStop
}

// MinOfficeMinutes is the shortest office window: the daily backups run 60 and 90 minutes after
// the start (workloads.PostgresBackupSchedules) and need the cluster up until they finish.
const MinOfficeMinutes = 180

// String says the window as an operator would: "MON,TUE,WED,THU,FRI 09:00-20:00 Asia/Seoul".
func (o OfficeHours) String() string {
	return fmt.Sprintf("%s %s-%s %s", strings.Join(o.Days, ","), o.Start, o.Stop, o.TimeZone)
}

// The credit modes of a burstable instance type (EC2 CreditSpecification.CpuCredits).
const (
	// CreditsStandard spends the credits the node earned and then holds it at its baseline.
	CreditsStandard = "standard"
	// CreditsUnlimited bursts past the earned credits and bills the surplus per vCPU-hour.
	CreditsUnlimited = "unlimited"
)

// capacity reads the stack-wide capacity and applies it to every worker and the storage node
// that does not set its own; the master takes only its own (default on-demand), so that a
// stack-wide change, which replaces each node that moves, never replaces the control plane on
// the way. It then settles each node's credit mode and checks the spot settings.
func (p *parser) capacity(c *Config) {
	key := qualify("capacity")
	c.Capacity = Capacity(p.str("capacity", string(OnDemand), false))
	if !slices.Contains(Capacities, c.Capacity) {
		p.fail(key, strconv.Quote(string(c.Capacity)), fmt.Sprintf("one of %v (the default for every node but the master; a node may set its own capacity)", Capacities))
		c.Capacity = OnDemand
	}
	for i := range c.Nodes {
		n := &c.Nodes[i]
		switch {
		case n.Capacity == "" && n.Role.ControlPlane():
			n.Capacity = OnDemand
		case n.Capacity == "":
			n.Capacity = c.Capacity
		case !slices.Contains(Capacities, n.Capacity):
			fallback := fmt.Sprintf("capacity (%s)", c.Capacity)
			if n.Role.ControlPlane() {
				fallback = string(OnDemand) + " (the master never takes the stack-wide capacity)"
			}
			p.fail(fmt.Sprintf("%s[%s].capacity", qualify("nodes"), n.Role), strconv.Quote(string(n.Capacity)), fmt.Sprintf("one of %v, or unset for %s", Capacities, fallback))
		}
		p.cpuCredits(n)
	}
	c.ReplaceMaster = strings.TrimSpace(p.str("replaceMaster", "", false))
	if c.ReplaceMaster != "" && !instanceID.MatchString(c.ReplaceMaster) {
		p.fail(qualify("replaceMaster"), strconv.Quote(c.ReplaceMaster), "the instance id of the master to replace (i-0123456789abcdef0), or unset")
	}
	behaviour := p.str("spotInterruptionBehavior", SpotInterruptionStop, false)
	switch behaviour {
	case SpotInterruptionStop:
	case "terminate":
		p.fail(qualify("spotInterruptionBehavior"), strconv.Quote(behaviour), "stop: a terminated node loses its root volume, its private address and its Kubernetes identity, and a persistent spot request (the only kind that brings a node back) does not accept it")
	case "hibernate":
		p.fail(qualify("spotInterruptionBehavior"), strconv.Quote(behaviour), "stop: hibernation must be enabled when the instance is launched, which the program does not do")
	default:
		p.fail(qualify("spotInterruptionBehavior"), strconv.Quote(behaviour), "stop (the only behaviour that keeps a node's disk, addresses and identity)")
	}
}

// cpuCredits settles a node's credit mode: only a burstable type has one, and unset it is
// unlimited on the master and on demand, standard on a spot worker or storage node
// (Node.CPUCredits).
func (p *parser) cpuCredits(n *Node) {
	at := fmt.Sprintf("%s[%s].cpuCredits", qualify("nodes"), n.Role)
	t, known := InstanceTypes[n.InstanceType]
	switch {
	case !known:
		// nodes refused the type already.
	case !t.Burstable() && n.CPUCredits != "":
		p.fail(at, strconv.Quote(n.CPUCredits), fmt.Sprintf("unset: %s is not a burstable type and has no CPU credits", n.InstanceType))
	case !t.Burstable():
	case n.CPUCredits == "" && n.Capacity == Spot && !n.Role.ControlPlane():
		n.CPUCredits = CreditsStandard
	case n.CPUCredits == "":
		n.CPUCredits = CreditsUnlimited
	case n.CPUCredits != CreditsStandard && n.CPUCredits != CreditsUnlimited:
		p.fail(at, strconv.Quote(n.CPUCredits), fmt.Sprintf("%s or %s (or unset: %s on a spot worker or storage node, %s otherwise)", CreditsStandard, CreditsUnlimited, CreditsStandard, CreditsUnlimited))
	}
}

// officeHours reads the optional schedule that stops the stack outside office hours.
func (p *parser) officeHours(c *Config) {
	var o OfficeHours
	if !p.object("officeHours", &o, false) {
		return
	}
	if o.TimeZone == "" && o.Days == nil && o.Start == "" && o.Stop == "" {
		return // {}, Pulumi.yaml's default: no schedule
	}
	key := qualify("officeHours")
	bad := len(p.errs)
	if c.Production {
		p.fail(key, o.String(), "unset on a production stack: it serves users around the clock (stop a dev stack, not prod)")
	}
	switch o.TimeZone {
	case "", "Local":
		p.fail(key+".timeZone", strconv.Quote(o.TimeZone), "an IANA time zone name such as Asia/Seoul or UTC")
	default:
		if _, err := time.LoadLocation(o.TimeZone); err != nil {
			p.fail(key+".timeZone", strconv.Quote(o.TimeZone), "an IANA time zone name such as Asia/Seoul or UTC (unknown zone)")
		}
	}
	if len(o.Days) == 0 {
		p.fail(key+".days", "[]", fmt.Sprintf("one or more of %v", Weekdays))
	}
	for i, d := range o.Days {
		if !slices.Contains(Weekdays, d) {
			p.fail(fmt.Sprintf("%s.days[%d]", key, i), strconv.Quote(d), fmt.Sprintf("one of %v", Weekdays))
		} else if slices.Index(o.Days, d) != i {
			p.fail(fmt.Sprintf("%s.days[%d]", key, i), strconv.Quote(d), "each day once")
		}
	}
	start, okStart := clock(o.Start)
	if !okStart {
		p.fail(key+".start", strconv.Quote(o.Start), "a time of day HH:MM from 00:00 to 23:59")
	}
	stop, okStop := clock(o.Stop)
	if !okStop {
		p.fail(key+".stop", strconv.Quote(o.Stop), "a time of day HH:MM from 00:00 to 23:59")
	}
	if okStart && okStop && stop <= start {
		p.fail(key+".stop", strconv.Quote(o.Stop), fmt.Sprintf("a time after start (%s) on the same day: a window across midnight is not supported", o.Start))
	} else if okStart && okStop && stop-start < MinOfficeMinutes {
		p.fail(key+".stop", strconv.Quote(o.Stop), fmt.Sprintf("at least %d hours after start (%s): the daily backups run in office hours, 60 and 90 minutes after the start", MinOfficeMinutes/60, o.Start))
	}
	if len(p.errs) == bad {
		c.OfficeHours = &o
	}
}
