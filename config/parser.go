// How a key is read and a bad value reported: the parser that every concern's step reads its
// keys through (raw, str, boolean, object), which collects every problem rather than stopping at
// the first, and Error, the refusal that names the key, the value and what is allowed.

package config

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Error is a refused config value: the key, the value given and what would have been accepted.
type Error struct {
	// Key is the fully qualified key, with a field or index where the value is an object or a
	// list: waste-coach-infra:nodes[1].instanceType.
	Key string
	// Value is the refused value (quoted where it is a string) or a description of it, never a
	// secret's content; "" when the key is missing.
	Value string
	// Allowed says what would have been accepted.
	Allowed string
}

// Error returns the refusal as one line: "config <key>: <value> is not allowed; <allowed>", or
// "config <key>: missing; <allowed>".
func (e *Error) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("config %s: missing; %s", e.Key, e.Allowed)
	}
	return fmt.Sprintf("config %s: %s is not allowed; %s", e.Key, e.Value, e.Allowed)
}

// parser accumulates every problem so that an operator sees them all in one run.
type parser struct {
	get  Source
	errs []error
}

// fail records a refused value; key is fully qualified (see qualify).
func (p *parser) fail(key, value, allowed string) {
	p.errs = append(p.errs, &Error{Key: key, Value: value, Allowed: allowed})
}

// qualify returns the fully qualified key: a key of this project gets the project's namespace,
// a key of another namespace (aws:region) is left as it is.
func qualify(key string) string {
	if strings.Contains(key, ":") {
		return key
	}
	return Project + ":" + key
}

// raw returns a key's value, recording a missing required key.
func (p *parser) raw(key string, required bool) (string, bool) {
	v, ok := p.get(qualify(key))
	if (!ok || strings.TrimSpace(v) == "") && required {
		p.fail(qualify(key), "", "it is required (see Pulumi.yaml for its meaning)")
		return "", false
	}
	return v, ok && strings.TrimSpace(v) != ""
}

// str returns a key's value, or def when it is not set.
func (p *parser) str(key, def string, required bool) string {
	if v, ok := p.raw(key, required); ok {
		return v
	}
	return def
}

// boolean returns a key's value as a boolean, or def when it is not set or is refused.
func (p *parser) boolean(key string, def bool) bool {
	v, ok := p.raw(key, false)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(qualify(key), strconv.Quote(v), "true or false")
		return def
	}
	return b
}

// object decodes a JSON value (arrays and objects), refusing unknown fields so that a typo in a
// stack file is an error rather than a silently ignored setting.
func (p *parser) object(key string, out any, required bool) bool {
	v, ok := p.raw(key, required)
	if !ok {
		return false
	}
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		p.fail(qualify(key), v, fmt.Sprintf("a value of the shape documented in Pulumi.yaml (%v)", err))
		return false
	}
	return true
}
