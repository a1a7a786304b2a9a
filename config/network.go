// The network: the VPC and its three subnets, the availability zone of each subnet and the data
// zone, the admin ranges that may reach SSH and the Kubernetes API, the domain, and the browser
// origins allowed to upload (keys vpcCidr, subnetCidrs, availabilityZones, dataZone, adminCidrs,
// domain and appOrigins).

package config

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// vpc reads the VPC's range and its three subnets, each inside it and none overlapping another.
func (p *parser) vpc(c *Config) {
	vpcKey := qualify("vpcCidr")
	vpc, vpcOK := p.prefix(vpcKey, p.str("vpcCidr", "10.0.0.0/16", false))
	if vpcOK && (vpc.Bits() < 16 || vpc.Bits() > 24) {
		p.fail(vpcKey, vpc.String(), "a prefix length from /16 to /24 (AWS VPC limits, with room for three subnets)")
		vpcOK = false
	}
	c.VPCCIDR = vpc

	subnetsKey := qualify("subnetCidrs")
	raw := []string{"10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"}
	p.object("subnetCidrs", &raw, false)
	if len(raw) != 3 {
		p.fail(subnetsKey, fmt.Sprintf("%d subnets %v", len(raw), raw), "exactly 3 subnets, one per availability zone")
	}
	for i, s := range raw {
		key := fmt.Sprintf("%s[%d]", subnetsKey, i)
		sn, ok := p.prefix(key, s)
		if !ok {
			continue
		}
		if vpcOK && (!vpc.Contains(sn.Addr()) || sn.Bits() < vpc.Bits()) {
			p.fail(key, sn.String(), fmt.Sprintf("a subnet inside the VPC %s", vpc))
		}
		if sn.Bits() > 28 {
			p.fail(key, sn.String(), "a prefix length of /28 or shorter (AWS subnet limit)")
		}
		for j, other := range c.SubnetCIDRs {
			if other.Overlaps(sn) {
				p.fail(key, sn.String(), fmt.Sprintf("a range that does not overlap %s[%d] %s", subnetsKey, j, other))
			}
		}
		c.SubnetCIDRs = append(c.SubnetCIDRs, sn)
	}
}

// prefix parses the value of key as an IPv4 network range, refusing one with host bits set.
func (p *parser) prefix(key, value string) (netip.Prefix, bool) {
	pfx, err := netip.ParsePrefix(value)
	if err != nil || !pfx.Addr().Is4() {
		p.fail(key, strconv.Quote(value), "an IPv4 CIDR such as 10.0.0.0/16")
		return netip.Prefix{}, false
	}
	if pfx.Masked() != pfx {
		p.fail(key, strconv.Quote(value), fmt.Sprintf("a network address without host bits (did you mean %s?)", pfx.Masked()))
		return netip.Prefix{}, false
	}
	return pfx, true
}

var zoneRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+[a-z]$`)

// zones reads the pinned availability zones and the storage node's data zone. Whether the pinned
// zones exist in the region is checked against the AWS lookup by the infra tier.
func (p *parser) zones(c *Config) {
	key := qualify("availabilityZones")
	p.object("availabilityZones", &c.AvailabilityZones, false)
	switch n := len(c.AvailabilityZones); {
	case n == 0 && c.Production:
		p.fail(key, "", "required on a production stack: the zone of each subnet, pinned so that an impaired zone never moves subnets and nodes")
	case n != 0 && n != len(c.SubnetCIDRs):
		p.fail(key, fmt.Sprint(c.AvailabilityZones), fmt.Sprintf("exactly %d zone names, one per subnet in the order of subnetCidrs", len(c.SubnetCIDRs)))
	}
	for i, z := range c.AvailabilityZones {
		if !zoneRE.MatchString(z) || (c.Region != "" && !strings.HasPrefix(z, c.Region)) {
			p.fail(fmt.Sprintf("%s[%d]", key, i), strconv.Quote(z), fmt.Sprintf("an availability zone name of region %s, such as %sa", c.Region, c.Region))
		}
		if slices.Index(c.AvailabilityZones, z) != i {
			p.fail(fmt.Sprintf("%s[%d]", key, i), strconv.Quote(z), "a zone not already used by another subnet (the subnets spread over three zones)")
		}
	}
	c.DataZone = p.str("dataZone", "", false)
	switch {
	case c.DataZone == "" && c.Production:
		p.fail(qualify("dataZone"), "", "required on a production stack: the zone of the storage node's EBS volumes, one of availabilityZones")
	case c.DataZone != "" && !slices.Contains(c.AvailabilityZones, c.DataZone):
		p.fail(qualify("dataZone"), strconv.Quote(c.DataZone), fmt.Sprintf("one of availabilityZones %v", c.AvailabilityZones))
	}
}

// adminCIDRs reads the ranges that may reach SSH and the Kubernetes API: at least one, and on a
// production stack none wider than MinProductionAdminPrefix.
func (p *parser) adminCIDRs(c *Config) {
	adminKey := qualify("adminCidrs")
	var admin []string
	if p.object("adminCidrs", &admin, true) && len(admin) == 0 {
		p.fail(adminKey, "[]", "at least one CIDR that may reach SSH and the Kubernetes API")
	}
	for i, s := range admin {
		key := fmt.Sprintf("%s[%d]", adminKey, i)
		pfx, ok := p.prefix(key, s)
		if !ok {
			continue
		}
		if c.Production && pfx.Bits() < MinProductionAdminPrefix {
			p.fail(key, pfx.String(), fmt.Sprintf("on a production stack, the operators' own address ranges only, each /%d or narrower (SSH and 6443 must not be open to large parts of the internet)", MinProductionAdminPrefix))
		}
		if j := slices.Index(c.AdminCIDRs, pfx); j >= 0 {
			// Each range is one security-group rule named after it: a repeat would be a second
			// resource of the same name (and a rule AWS refuses as a duplicate).
			p.fail(key, pfx.String(), fmt.Sprintf("a range not listed before (it repeats %s[%d])", adminKey, j))
			continue
		}
		c.AdminCIDRs = append(c.AdminCIDRs, pfx)
	}
}

// MinProductionAdminPrefix is the shortest prefix an admin range may have on a production stack:
// two /1 ranges are the whole internet as surely as one /0.
const MinProductionAdminPrefix = 16

var (
	dnsLabelRE    = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	localhostPort = regexp.MustCompile(`^:\d+$`)
)

// validDomain reports whether d is a DNS name with at least two labels.
func validDomain(d string) bool {
	labels := strings.Split(d, ".")
	if len(d) > 253 || len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if !dnsLabelRE.MatchString(l) {
			return false
		}
	}
	return true
}

// dns reads the domain, the apex of the stack's hosted zone, and the browser origins allowed to
// upload, by default the apex and www.
func (p *parser) dns(c *Config) {
	c.Domain = strings.TrimSuffix(p.str("domain", "", true), ".")
	if c.Domain != "" && !validDomain(c.Domain) {
		p.fail(qualify("domain"), strconv.Quote(c.Domain), "a lower-case DNS name such as example.com (the apex of an existing Route53 hosted zone)")
	}
	p.object("appOrigins", &c.AppOrigins, false)
	if len(c.AppOrigins) == 0 {
		c.AppOrigins = []string{"https://" + c.Domain, "https://www." + c.Domain}
	}
	for i, o := range c.AppOrigins {
		host, ok := strings.CutPrefix(o, "https://")
		if !ok {
			host, ok = strings.CutPrefix(o, "http://localhost")
			if ok && (host == "" || localhostPort.MatchString(host)) {
				continue
			}
		}
		if !ok || !validDomain(host) {
			p.fail(fmt.Sprintf("%s[%d]", qualify("appOrigins"), i), strconv.Quote(o), "https://<dns name> (or http://localhost[:port] for local development)")
		}
	}
}
