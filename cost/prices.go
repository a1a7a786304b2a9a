package cost

// Price is one unit price with where it comes from.
type Price struct {
	// USD per Unit.
	USD  float64
	Unit string
	// Source says where the figure comes from and when it was read.
	Source string
}

// HoursPerMonth is AWS's billing convention for a month (730 hours).
const HoursPerMonth = 730

// pricesRead says where the figures below come from: AWS's published On-Demand prices for
// Asia Pacific (Seoul) as known in 2025. They were not re-read from AWS when this table was
// written (no network); prices change, so check them before quoting a figure to anyone.
const pricesRead = "AWS published prices for Asia Pacific (Seoul), as known in 2025, not re-checked"

// spotAssumed says where the spot figures below come from. Spot prices move with supply and
// demand, hour by hour and zone by zone, so each is an assumption, not a reading: 30% of the
// on-demand price, the low end of the 60-70% saving AWS's Spot Instance Advisor showed for
// these families in Seoul in 2025. It was not read from the price history when this table was
// written (no network): `aws ec2 describe-spot-price-history --instance-types t3.medium
// --product-descriptions Linux/UNIX --region ap-northeast-2` gives today's figures.
const spotAssumed = "EC2 Spot Linux, assumed 30% of on-demand (Spot Instance Advisor, Seoul, 2025, not re-checked)"

// Prices are the price tables by region. A stack in a region without one gets no estimate.
var Prices = map[string]map[string]Price{"ap-northeast-2": Seoul}

// Seoul holds the unit prices of ap-northeast-2 for every billable thing the program declares.
var Seoul = map[string]Price{
	"ec2:t3.small":           {0.026, "instance-hour", "EC2 On-Demand Linux, " + pricesRead},
	"ec2:t3.medium":          {0.052, "instance-hour", "EC2 On-Demand Linux, " + pricesRead},
	"ec2:t3.large":           {0.104, "instance-hour", "EC2 On-Demand Linux, " + pricesRead},
	"ec2:t3.xlarge":          {0.208, "instance-hour", "EC2 On-Demand Linux, " + pricesRead},
	"ec2:m6i.large":          {0.118, "instance-hour", "EC2 On-Demand Linux, " + pricesRead},
	"ec2:m6i.xlarge":         {0.236, "instance-hour", "EC2 On-Demand Linux, " + pricesRead},
	"ec2spot:t3.small":       {0.0078, "instance-hour", spotAssumed},
	"ec2spot:t3.medium":      {0.0156, "instance-hour", spotAssumed},
	"ec2spot:t3.large":       {0.0312, "instance-hour", spotAssumed},
	"ec2spot:t3.xlarge":      {0.0624, "instance-hour", spotAssumed},
	"ec2spot:m6i.large":      {0.0354, "instance-hour", spotAssumed},
	"ec2spot:m6i.xlarge":     {0.0708, "instance-hour", spotAssumed},
	"ec2:surplus-credit":     {0.05, "vCPU-hour", "EC2 burstable instances in unlimited mode, surplus CPU credits, Linux (the same in every region), " + pricesRead},
	"ebs:gp3":                {0.0912, "GB-month", "EBS gp3 storage (3000 IOPS / 125 MB/s included), " + pricesRead},
	"ebs:snapshot":           {0.05, "GB-month", "EBS snapshots, standard tier, " + pricesRead},
	"ipv4:public":            {0.005, "address-hour", "VPC public IPv4 address charge (since 2024-02-01, all regions; in use or idle Elastic IPs alike; a stopped instance's launch-time address is released and not charged), " + pricesRead},
	"alb:hour":               {0.0225, "ALB-hour", "Elastic Load Balancing, Application Load Balancer, " + pricesRead},
	"alb:lcu":                {0.008, "LCU-hour", "Elastic Load Balancing, Application Load Balancer, " + pricesRead},
	"route53:zone":           {0.50, "hosted zone-month", "Route 53 hosted zones (first 25), " + pricesRead},
	"route53:query":          {0.40, "million queries", "Route 53 standard queries (alias queries to an ALB are free), " + pricesRead},
	"s3:standard":            {0.025, "GB-month", "S3 Standard, first 50 TB, " + pricesRead},
	"s3:standard-ia":         {0.0138, "GB-month", "S3 Standard-IA, " + pricesRead},
	"s3:glacier":             {0.0045, "GB-month", "S3 Glacier Flexible Retrieval, " + pricesRead},
	"s3:onezone-ia":          {0.011, "GB-month", "S3 One Zone-IA, " + pricesRead},
	"s3:intelligent-tiering": {0.025, "GB-month", "S3 Intelligent-Tiering, frequent tier (monitoring fee not counted), " + pricesRead},
	"s3:glacier-ir":          {0.005, "GB-month", "S3 Glacier Instant Retrieval, " + pricesRead},
	"s3:deep-archive":        {0.002, "GB-month", "S3 Glacier Deep Archive, " + pricesRead},
	"transfer:out":           {0.126, "GB", "Data transfer out to the internet, first 10 TB (first 100 GB/month free account-wide, not counted), " + pricesRead},
	"acm:public":             {0, "certificate", "ACM public certificates are free"},
	"logs:ingest":            {0.76, "GB ingested", "CloudWatch Logs standard log class, data ingestion (the 5 GB/month free tier is account-wide, not counted), " + pricesRead},
	"logs:store":             {0.0314, "GB-month", "CloudWatch Logs archived storage (billed compressed), " + pricesRead},
}
