// Package jsonpointer escapes and unescapes the reference tokens of JSON
// pointers (RFC 6901, section 3): the one encoding that package policy's
// projection (the paths a policy reads) and package decisionlog (the erased and
// truncated paths of an event) share, so that a pointer one writes the other
// reads back.
package jsonpointer

import "strings"

// Escape encodes a reference token: "~" as "~0", then "/" as "~1".
func Escape(token string) string {
	if !strings.ContainsAny(token, "~/") {
		return token
	}
	return strings.ReplaceAll(strings.ReplaceAll(token, "~", "~0"), "/", "~1")
}

// Unescape decodes a reference token: "~1" as "/", then "~0" as "~", so that
// "~01" decodes to "~1" and not to "/".
func Unescape(token string) string {
	if !strings.Contains(token, "~") {
		return token
	}
	return strings.ReplaceAll(strings.ReplaceAll(token, "~1", "/"), "~0", "~")
}
