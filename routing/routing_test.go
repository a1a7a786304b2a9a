package routing

import "testing"

// TestRoutePrioritiesAreFixedAndKeepTheSpecOrder: the listener evaluates rules by priority, so
// the routes' priorities must rise in the spec's order with "/" last; each route owns a span of
// priorities of its own (an admin route's several allow rules and its 403), and every one of them
// must be one the ALB accepts (1 to 50000).
func TestRoutePrioritiesAreFixedAndKeepTheSpecOrder(t *testing.T) {
	const maxALBPriority = 50000
	routes := Routes()
	for i, r := range routes {
		if r.Priority < 1 || r.Priority+PrioritySpan-1 > maxALBPriority {
			t.Errorf("route %s: priorities %d to %d, want within 1 to %d", r.Name, r.Priority, r.Priority+PrioritySpan-1, maxALBPriority)
		}
		if i > 0 && r.Priority < routes[i-1].Priority+PrioritySpan {
			t.Errorf("route %s at priority %d overlaps or precedes %s's span from %d", r.Name, r.Priority, routes[i-1].Name, routes[i-1].Priority)
		}
	}
	if last := routes[len(routes)-1]; last.Path != "/" {
		t.Errorf("the last route is %s; the default backend / must be evaluated last", last.Path)
	}
}
