package workloads

import (
	"fmt"

	helmv3 "github.com/pulumi/pulumi-kubernetes/sdk/v4/go/kubernetes/helm/v3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/waste-coach/infra/cluster"
	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/infra"
	"github.com/waste-coach/infra/versions"
)

// NamespaceLogging holds Fluent Bit, which reads every node's log files (host paths: the
// namespace is privileged, and nothing else runs in it).
const NamespaceLogging = "logging"

// LogsReader is Grafana's read-only login to the stack's log group (infra.Logs).
type LogsReader struct {
	// AccessKeyID and SecretAccessKey are Pulumi secrets.
	AccessKeyID, SecretAccessKey pulumi.StringOutput
}

// fluentBit is Fluent Bit's container on every node: a few hundred lines a second with a
// 5 MB buffer per input.
var fluentBit = Resources{CPU: 20, MemoryMiB: 48, CPULimit: 200, MemoryLimitMiB: 128, DiskMiB: 16, DiskLimitMiB: diskLimit(0)}

// Names of what Grafana reads CloudWatch with.
const (
	grafanaCloudWatchSecret = "grafana-cloudwatch"
	// CloudWatchDataSource is the name of Grafana's CloudWatch data source.
	CloudWatchDataSource = "CloudWatch Logs"
)

// FluentBitConfig is Fluent Bit's pipeline: every container's log file (the CRI format of
// containerd), the kubelet's and containerd's journal and, on the master, the API server's audit
// log (cluster.AuditPolicy; streams audit.<node>.*), with the pod's namespace, name, labels and
// node added by the kubernetes filter, shipped to the stack's log group. No pod can leave the
// shipping: the filter ignores the fluentbit.io/exclude annotation. Streams are
// named after the node and the file, so a node's lines stay apart from its successor's. The
// group exists before Fluent Bit starts (the program declares it with its retention): Fluent
// Bit never creates one. The tail database on the host keeps each file's offset across restarts
// of the pod: no line is shipped twice or skipped when Fluent Bit is upgraded.
func FluentBitConfig(region, group string) (inputs, filters, outputs string) {
	inputs = `[INPUT]
    Name tail
    Path /var/log/containers/*.log
    multiline.parser cri, docker
    Tag kube.*
    DB /var/log/fluent-bit-containers.db
    Mem_Buf_Limit 5MB
    Skip_Long_Lines On

[INPUT]
    Name tail
    Path ` + cluster.AuditLogPath + `
    Tag audit.*
    DB /var/log/fluent-bit-audit.db
    Mem_Buf_Limit 5MB
    Skip_Long_Lines On

[INPUT]
    Name systemd
    Tag host.*
    Systemd_Filter _SYSTEMD_UNIT=kubelet.service
    Systemd_Filter _SYSTEMD_UNIT=containerd.service
    DB /var/log/fluent-bit-journal.db
    Read_From_Tail On
`
	filters = `[FILTER]
    Name kubernetes
    Match kube.*
    Merge_Log On
    Keep_Log Off
    Labels On
    Annotations Off
    K8S-Logging.Parser On
    K8S-Logging.Exclude Off
`
	out := func(match, prefix string) string {
		return fmt.Sprintf(`[OUTPUT]
    Name cloudwatch_logs
    Match %s
    region %s
    log_group_name %s
    log_stream_prefix %s
    auto_create_group Off
    retry_limit 5
`, match, region, group, prefix)
	}
	outputs = out("kube.*", "${NODE_NAME}.") + "\n" + out("host.*", "${NODE_NAME}.") + "\n" + out("audit.*", "audit.${NODE_NAME}.")
	return inputs, filters, outputs
}

// fluentBitValues run Fluent Bit on every node, the master included (it tolerates every
// taint), with a role of its own that may only write to the stack's log group
// (infra.PodRoleLogs): Fluent Bit's credential chain takes the web identity before the node's.
func fluentBitValues(cfg *config.Config, identity *awsIdentity) pulumi.Map {
	inputs, filters, outputs := FluentBitConfig(cfg.Region, cfg.Logs.GroupName)
	hostPath := func(name, path, typ string) pulumi.Map {
		hp := pulumi.Map{"path": pulumi.String(path)}
		if typ != "" {
			hp["type"] = pulumi.String(typ)
		}
		return pulumi.Map{"name": pulumi.String(name), "hostPath": hp}
	}
	mount := func(name, path string, readOnly bool) pulumi.Map {
		return pulumi.Map{"name": pulumi.String(name), "mountPath": pulumi.String(path), "readOnly": pulumi.Bool(readOnly)}
	}
	return pulumi.Map{
		"kind":        pulumi.String("DaemonSet"),
		"resources":   fluentBit.values(),
		"tolerations": pulumi.Array{pulumi.Map{"operator": pulumi.String("Exists")}},
		"env": append(pulumi.Array{pulumi.Map{"name": pulumi.String("NODE_NAME"), "valueFrom": pulumi.Map{
			"fieldRef": pulumi.Map{"fieldPath": pulumi.String("spec.nodeName")},
		}}}, identity.chartEnv()...),
		"extraVolumes":      pulumi.Array{identity.chartVolume()},
		"extraVolumeMounts": pulumi.Array{identity.chartMount()},
		// /var/log holds the containers' logs, the journal and the tail databases; containerd
		// writes no /var/lib/docker, which the chart mounts by default.
		"daemonSetVolumes": pulumi.Array{
			hostPath("varlog", "/var/log", "Directory"),
			hostPath("etcmachineid", "/etc/machine-id", "File"),
		},
		"daemonSetVolumeMounts": pulumi.Array{
			mount("varlog", "/var/log", false),
			mount("etcmachineid", "/etc/machine-id", true),
		},
		"config": pulumi.Map{
			"inputs":  pulumi.String(inputs),
			"filters": pulumi.String(filters),
			"outputs": pulumi.String(outputs),
		},
	}
}

// Logging is Fluent Bit on every node, which ships every container's and kubelet's log lines
// to the stack's log group (infra.Logs).
type Logging struct {
	pulumi.ResourceState

	// FluentBit is Fluent Bit's release.
	FluentBit *helmv3.Release
}

// loggingArgs are the inputs of the central logs' shipper.
type loggingArgs struct {
	// tierArgs name the resources; the configuration names the region and the log group.
	tierArgs
	// Charts install Fluent Bit.
	Charts chartArgs
}

// newLogging installs Fluent Bit.
func newLogging(ctx *pulumi.Context, name string, args *loggingArgs, opts ...pulumi.ResourceOption) (*Logging, error) {
	c := &Logging{}
	return c, component(ctx, args.tierArgs, "Logging", name, c, opts, func(s *scope) error {
		var err error
		c.FluentBit, err = s.release(args.Charts, "fluent-bit", NamespaceLogging, versions.FluentBit, fluentBitValues(args.Config, s.awsIdentity(infra.PodRoleLogs)))
		return err
	})
}
