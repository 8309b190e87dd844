package claimmapper

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ErrorCode is the stable, snake_case reason a token was refused. Callers branch on it
// (metrics, audit logs); the text of an error may change, its code does not.
type ErrorCode string

// Error codes of *TokenError.
const (
	CodeNoAuthInfo        ErrorCode = "no_auth_info"        // GetClaims called with a nil *AuthInfo
	CodeInvalidAuthHeader ErrorCode = "invalid_auth_header" // not "Bearer <token>"
	CodeTokenTooLarge     ErrorCode = "token_too_large"     // over max_token_size, refused before parsing
	CodeMalformedToken    ErrorCode = "malformed_token"     // not a compact JWS with a JSON header and payload
	CodeUnsupportedAlg    ErrorCode = "unsupported_alg"     // none, HMAC, unknown or not in the allow-list
	CodeUnsupportedHeader ErrorCode = "unsupported_header"  // a crit header (no extension is supported)
	CodeMissingKID        ErrorCode = "missing_kid"         // no kid header, and not exactly one key fits the alg
	CodeUnknownKID        ErrorCode = "unknown_kid"         // kid not in the key set, even after a refetch
	CodeKeyMismatch       ErrorCode = "key_mismatch"        // the kid's key does not fit the token's alg
	CodeBadSignature      ErrorCode = "bad_signature"       // the signature does not verify
	CodeInvalidClaims     ErrorCode = "invalid_claims"      // exp/nbf/iat of the wrong type
	CodeMissingExp        ErrorCode = "missing_exp"         // no exp and require_exp is on
	CodeLifetimeTooLong   ErrorCode = "lifetime_too_long"   // exp - iat (or exp - now) is above max_lifetime
	CodeTokenExpired      ErrorCode = "token_expired"       // exp (+ leeway) is past
	CodeTokenNotYetValid  ErrorCode = "token_not_yet_valid" // nbf or iat (- leeway) is in the future
	CodeInvalidIssuer     ErrorCode = "invalid_issuer"      // iss is not the configured issuer
	CodeUnknownIssuer     ErrorCode = "unknown_issuer"      // iss names no issuer of jwt.issuers (Issuers)
	CodeInvalidAudience   ErrorCode = "invalid_audience"    // aud has none of the expected audiences
	CodeInvalidSubject    ErrorCode = "invalid_subject"     // the subject claim is missing or not a string
	// CodeCertificateBinding: the token is bound to a client certificate
	// (cnf.x5t#S256, RFC 8705) that the connection did not present.
	CodeCertificateBinding ErrorCode = "certificate_binding"
)

// TokenError is returned by GetClaims when a token is refused. Its message names the
// reason and never contains the token, a key or a secret. Temporal turns any
// ClaimMapper error into PermissionDenied for the caller and logs the message.
type TokenError struct {
	Code   ErrorCode
	Reason string // human readable detail, safe to log
	Err    error  // underlying cause, if any (also safe to log)
}

func (e *TokenError) Error() string {
	var b strings.Builder
	b.WriteString("claimmapper: token refused (")
	b.WriteString(string(e.Code))
	b.WriteString(")")
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *TokenError) Unwrap() error { return e.Err }

// Is reports whether target is a *TokenError with the same Code, so that
// errors.Is(err, &TokenError{Code: CodeTokenExpired}) works.
func (e *TokenError) Is(target error) bool {
	t, ok := target.(*TokenError)
	return ok && t.Code == e.Code
}

func tokenErr(code ErrorCode, reason string) *TokenError {
	return &TokenError{Code: code, Reason: reason}
}

func tokenErrf(code ErrorCode, format string, args ...any) *TokenError {
	return &TokenError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// short quotes an attacker-controlled header value for an error message, bounded.
func short(s string) string {
	const limit = 40
	if len(s) > limit {
		return fmt.Sprintf("%q...", s[:limit])
	}
	return fmt.Sprintf("%q", s)
}

// sourceError reports a key source that cannot be loaded. Its message names the
// source with credentials and query string removed.
type sourceError struct {
	raw    string // as configured, may carry credentials; never printed
	source string // redacted
	err    error
}

func (e *sourceError) Error() string {
	msg := e.err.Error()
	if e.raw != "" && e.raw != e.source {
		msg = strings.ReplaceAll(msg, e.raw, e.source)
	}
	return "claimmapper: key source " + e.source + ": " + msg
}

func (e *sourceError) Unwrap() error { return e.err }

// redactURL drops the user info, query and fragment of a URL so that it can be logged.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "REDACTED"
	}
	u.Fragment = ""
	return u.String()
}

// sanitize returns err's text with the raw URL replaced by its redacted form.
func sanitize(err error, raw string) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	if red := redactURL(raw); red != raw {
		msg = strings.ReplaceAll(msg, raw, red)
	}
	return msg
}

var errNoUsableKeys = errors.New("no usable signing keys")
