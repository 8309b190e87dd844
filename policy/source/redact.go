package source

import (
	"context"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
)

// redacted stands for the query or fragment of a URL in status and logs.
const redacted = "<redacted>"

// RedactURL returns raw as status documents and logs may show it: without
// user:password, and with its query and fragment replaced by "<redacted>"
// (presigned URLs and SAS tokens carry credentials in the query):
// https://host/path?<redacted>. What does not parse as a URL is cut at its
// first '?' or '#', and at its last '@' before the path.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return redactByHand(raw)
	}
	query := u.RawQuery != "" || u.ForceQuery
	fragment := u.Fragment != "" || strings.Contains(raw, "#")
	u.User = nil
	u.RawQuery, u.ForceQuery = "", false
	u.Fragment, u.RawFragment = "", ""
	s := u.String()
	if query {
		s += "?" + redacted
	}
	if fragment {
		s += "#" + redacted
	}
	return s
}

func redactByHand(raw string) string {
	suffix := ""
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		suffix = string(raw[i]) + redacted
		raw = raw[:i]
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return raw + suffix
	}
	host, path, _ := strings.Cut(rest, "/")
	if i := strings.LastIndex(host, "@"); i >= 0 {
		host = host[i+1:]
	}
	if path != "" || strings.HasSuffix(rest, "/") {
		host += "/" + path
	}
	return scheme + "://" + host + suffix
}

// urlInText finds http(s) URLs in a message, such as Go's
// `Get "https://host/b.tar.gz?sig=...": dial tcp ...`.
var urlInText = regexp.MustCompile(`(?i)https?://[^\s"'<>]+`)

// redactText redacts every http(s) URL in s (see RedactURL).
func redactText(s string) string {
	if !strings.Contains(s, "://") {
		return s
	}
	return urlInText.ReplaceAllStringFunc(s, RedactURL)
}

// redactedError is an error whose message has its URLs redacted; it unwraps to
// the original.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redactErr returns err with the URLs in its message redacted.
func redactErr(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if r := redactText(msg); r != msg {
		return &redactedError{msg: r, err: err}
	}
	return err
}

// redactingHandler redacts the URLs in the messages and string attributes it
// passes on: OPA's REST client logs the URL of every request at debug level.
type redactingHandler struct{ h slog.Handler }

// RedactLogs returns a handler that passes what it handles on to h with every
// http(s) URL in messages and string or error attributes redacted (see
// RedactURL): for the loggers given to OPA's REST clients.
func RedactLogs(h slog.Handler) slog.Handler { return redactingHandler{h} }

func (r redactingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return r.h.Enabled(ctx, l)
}

func (r redactingHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, redactText(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return r.h.Handle(ctx, out)
}

func (r redactingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = redactAttr(a)
	}
	return redactingHandler{r.h.WithAttrs(red)}
}

func (r redactingHandler) WithGroup(name string) slog.Handler {
	return redactingHandler{r.h.WithGroup(name)}
}

func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, redactText(v.String()))
	case slog.KindGroup:
		g := v.Group()
		red := make([]any, len(g))
		for i, x := range g {
			red[i] = redactAttr(x)
		}
		return slog.Group(a.Key, red...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.Any(a.Key, redactErr(err))
		}
		return slog.String(a.Key, redactText(v.String()))
	}
	return slog.Attr{Key: a.Key, Value: v}
}
