//go:build tools

// Package tools pins the pulumi-kubernetes provider. Its main package embeds a schema that must be
// generated next to it first, so tools/engine/build.sh builds it from a scratch copy of that one
// package inside this module.
package tools

import _ "github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
