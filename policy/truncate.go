package policy

import (
	"strconv"
	"unicode/utf8"
)

// MaxReasonBytes bounds the reason a policy gives, as the Authorizer returns it
// to the caller (PermissionDenied) and records it: a longer one is cut to this
// many bytes, its end marked (see [Truncate]), before " (decision <id>)" is
// appended. A policy may quote caller-controlled values in its reasons (the
// workflow-type ACL quotes the workflow type); the bound keeps a caller from
// making the server repeat megabytes into responses and audit trails.
const MaxReasonBytes = 1024

// Truncate returns s when it is at most max bytes long. Otherwise it returns a
// prefix of s, cut on a UTF-8 character boundary, followed by the marker
// "…(truncated, N bytes)" (N is the length of s), at most max bytes in all,
// and true. max must leave room for the marker (64 bytes do).
func Truncate(s string, max int) (string, bool) {
	if len(s) <= max {
		return s, false
	}
	marker := "…(truncated, " + strconv.Itoa(len(s)) + " bytes)"
	cut := max - len(marker)
	if cut < 0 {
		cut = 0
	}
	// Back up to the start of a character: the cut never splits one.
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + marker, true
}

// capReason bounds a policy's reason to MaxReasonBytes.
func capReason(d decided) decided {
	if len(d.reason) > MaxReasonBytes {
		d.reason, _ = Truncate(d.reason, MaxReasonBytes)
	}
	return d
}
