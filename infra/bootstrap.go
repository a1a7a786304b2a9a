package infra

import (
	"bytes"
	"compress/gzip"
	"embed"
	"encoding/base64"
	"fmt"
	"strings"
	"text/template"

	"github.com/waste-coach/infra/config"
)

// A node's boot has two parts. The instance's user data is a fixed bootstrap (BootstrapScript)
// that names only the node's SSM parameter; the preparation script itself (cluster.UserData:
// Kubernetes packages, containerd, kernel settings) lives in that parameter.
//
// Why not the script as user data: pulumi-aws stops and starts an instance whose user data
// changes (or replaces it, with userDataReplaceOnChange), and hiding the change with
// ignoreChanges is worse: Pulumi then reuses the old user data when the node is replaced, so a
// new node would boot the old preparation. With the script in a parameter, an edit (a new
// Kubernetes patch, a containerd bump) updates only the parameter: running nodes, which ran
// their preparation once at first boot, are not touched, and the next node launched (a
// replacement or a new stack) reads the current script.

//go:embed scripts/*.sh.tmpl
var scriptFS embed.FS

var bootstrapTemplate = template.Must(template.New("node-bootstrap.sh.tmpl").Option("missingkey=error").
	ParseFS(scriptFS, "scripts/node-bootstrap.sh.tmpl"))

// PreparationParameterName is the SSM parameter that holds a node role's preparation script.
// It depends only on the stack's cluster id and the role, so the bootstrap naming it is fixed.
func PreparationParameterName(cfg *config.Config, role config.Role) string {
	return fmt.Sprintf("/%s/node-prepare/%s", cfg.ClusterID(), role)
}

// BootstrapScript is a node's user data: it fetches the preparation script from parameter and
// runs it. It is the same text for the life of the stack.
func BootstrapScript(parameter string) string {
	var b strings.Builder
	if err := bootstrapTemplate.Execute(&b, struct{ Parameter string }{parameter}); err != nil {
		// The template is embedded and its data typed: a failure is a programming error.
		panic(fmt.Sprintf("render node-bootstrap: %v", err))
	}
	return b.String()
}

// PreparationParameterValue encodes a preparation script for its parameter: gzip, then base64,
// so that it fits a standard (free, 4 KB) parameter. It is stored as the parameter's insecure
// (plain) value: it holds no secret, and a preview shows its changes. The encoding is
// deterministic: the same script always gives the same value, and a preview shows no change.
func PreparationParameterValue(script string) string {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	// Writes to a bytes.Buffer do not fail.
	_, _ = zw.Write([]byte(script))
	_ = zw.Close()
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// DecodePreparationParameter reverses PreparationParameterValue, as the bootstrap does on the
// node.
func DecodePreparationParameter(value string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		return "", fmt.Errorf("decode preparation parameter: %w", err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return "", fmt.Errorf("decompress preparation parameter: %w", err)
	}
	var out bytes.Buffer
	if _, err := out.ReadFrom(zr); err != nil {
		return "", fmt.Errorf("decompress preparation parameter: %w", err)
	}
	return out.String(), nil
}

// MaxStandardParameterBytes is the size limit of a standard-tier SSM parameter value.
const MaxStandardParameterBytes = 4096
