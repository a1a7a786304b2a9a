package cost

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Savings is what spot capacity and office hours take off a stack's monthly bill.
type Savings struct {
	// Without is the stack bought on demand and never stopped.
	Without float64
	// Spot is what spot capacity saves, around the clock.
	Spot float64
	// OfficeHours is what stopping the instances outside office hours saves on top of that.
	OfficeHours float64
	// With is the stack as configured: Without - Spot - OfficeHours.
	With float64
	// RunningHours is how many of the month's hours the instances run.
	RunningHours float64
}

// SavingsOf prices a footprint three ways: on demand around the clock, as configured around the
// clock, and as configured.
func SavingsOf(f Footprint, a Assumptions, prices map[string]Price) (Savings, error) {
	var totals [3]float64
	for i, g := range []Footprint{f.OnDemandAroundTheClock(), f.AroundTheClock(), f} {
		e, err := Compute(g, a, prices)
		if err != nil {
			return Savings{}, err
		}
		totals[i] = e.Total
	}
	r := func(v float64) float64 { return math.Round(v*100) / 100 }
	return Savings{Without: totals[0], Spot: r(totals[0] - totals[1]), OfficeHours: r(totals[1] - totals[2]), With: totals[2], RunningHours: f.RunningHours}, nil
}

// Table renders the savings.
func (s Savings) Table() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-52s %10.2f\n", "on demand, around the clock", s.Without)
	fmt.Fprintf(&b, "%-52s %10.2f\n", "spot capacity saves", -s.Spot)
	fmt.Fprintf(&b, "%-52s %10.2f\n", fmt.Sprintf("office hours save (instances run %g of %d h)", s.RunningHours, HoursPerMonth), -s.OfficeHours)
	fmt.Fprintf(&b, "%-52s %10.2f\n", "as configured (USD per month)", s.With)
	return b.String()
}

// Compare lists, item by item, what a stack costs against a reference stack (dev against prod),
// and the share of the reference's total it comes to.
func Compare(name string, e *Estimate, refName string, ref *Estimate) string {
	monthly := func(x *Estimate) map[string]float64 {
		m := map[string]float64{}
		for _, it := range x.Items {
			m[it.Name] += it.Monthly
		}
		return m
	}
	a, b := monthly(e), monthly(ref)
	var names []string
	for _, it := range ref.Items {
		names = append(names, it.Name)
	}
	for _, it := range e.Items {
		if !slices.Contains(names, it.Name) {
			names = append(names, it.Name)
		}
	}
	var out strings.Builder
	fmt.Fprintf(&out, "%-40s %10s %10s %10s\n", "ITEM", strings.ToUpper(refName), strings.ToUpper(name), "DIFFERENCE")
	for _, n := range names {
		if a[n] == b[n] {
			continue
		}
		fmt.Fprintf(&out, "%-40s %10.2f %10.2f %10.2f\n", n, b[n], a[n], a[n]-b[n])
	}
	fmt.Fprintf(&out, "%-40s %10.2f %10.2f %10.2f\n", "TOTAL (USD per month)", ref.Total, e.Total, e.Total-ref.Total)
	fmt.Fprintf(&out, "%s costs %.1f%% of %s (items not listed cost the same in both)\n", name, Ratio(e, ref)*100, refName)
	return out.String()
}

// Ratio is a stack's total as a fraction of a reference stack's total.
func Ratio(e, ref *Estimate) float64 { return e.Total / ref.Total }
