// Package tests holds whole-program tests: the real program, run for the prod and dev stacks
// with their real configuration files under the shared mocks, checked for what operators rely on.
package tests

import (
	"fmt"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"github.com/waste-coach/infra/internal/mocks"
	"github.com/waste-coach/infra/internal/offline"
)

var stacks = []string{"prod", "dev"}

var (
	runsMu sync.Mutex
	runs   = map[string]*offline.Result{}
)

// run evaluates a stack once per test binary; every test reads the same registrations.
func run(t *testing.T, stack string) *offline.Result {
	t.Helper()
	runsMu.Lock()
	defer runsMu.Unlock()
	if r, ok := runs[stack]; ok {
		return r
	}
	r, err := offline.Run("..", stack)
	if err != nil {
		t.Fatalf("run stack %s: %v", stack, err)
	}
	runs[stack] = r
	return r
}

// forEachStack runs a subtest per stack.
func forEachStack(t *testing.T, f func(t *testing.T, r *offline.Result)) {
	for _, s := range stacks {
		t.Run(s, func(t *testing.T) { f(t, run(t, s)) })
	}
}

// prop walks a path of keys and indexes into a resource's inputs ("metadataOptions.httpTokens").
func prop(r *mocks.Resource, path ...any) resource.PropertyValue {
	v := resource.NewObjectProperty(r.Inputs)
	for _, p := range path {
		for v.IsSecret() {
			v = v.SecretValue().Element
		}
		switch k := p.(type) {
		case string:
			if !v.IsObject() {
				return resource.NewNullProperty()
			}
			v = v.ObjectValue()[resource.PropertyKey(k)]
		case int:
			if !v.IsArray() || k >= len(v.ArrayValue()) {
				return resource.NewNullProperty()
			}
			v = v.ArrayValue()[k]
		}
	}
	return v
}

func str(r *mocks.Resource, path ...any) string {
	v := prop(r, path...)
	if v.IsString() {
		return v.StringValue()
	}
	if v.IsNumber() {
		return fmt.Sprint(v.NumberValue())
	}
	if v.IsBool() {
		return fmt.Sprint(v.BoolValue())
	}
	return ""
}

func must(t *testing.T, r *offline.Result, typ, name string) *mocks.Resource {
	t.Helper()
	res := r.Named(typ, name)
	if res == nil {
		t.Fatalf("stack %s declares no %s named %q", r.Stack, typ, name)
	}
	return res
}
