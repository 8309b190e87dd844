package source_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/temporal-opa/temporal-opa/policy/source"
)

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"plain", "https://bundles.example/temporal/authz.tar.gz", "https://bundles.example/temporal/authz.tar.gz"},
		{"user and password", "https://alice:s3cret@bundles.example/b.tar.gz", "https://bundles.example/b.tar.gz"},
		{"presigned S3 query", "https://bucket.s3.amazonaws.com/b.tar.gz?X-Amz-Credential=AKIA&X-Amz-Signature=s3cret", "https://bucket.s3.amazonaws.com/b.tar.gz?<redacted>"},
		{"Azure SAS token", "https://acct.blob.core.windows.net/c/b.tar.gz?sv=2022&sig=s3cret%3D", "https://acct.blob.core.windows.net/c/b.tar.gz?<redacted>"},
		{"fragment", "https://bundles.example/b.tar.gz#token=s3cret", "https://bundles.example/b.tar.gz#<redacted>"},
		{"all of them", "https://u:s3cret@h:8443/p?sig=s3cret#s3cret", "https://h:8443/p?<redacted>#<redacted>"},
		{"empty query", "https://h/p?", "https://h/p?<redacted>"},
		{"does not parse", "https://u:s3cret@h/p%zz?sig=s3cret", "https://h/p%zz?<redacted>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := source.RedactURL(tc.in)
			if got != tc.want {
				t.Errorf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if strings.Contains(got, "s3cret") {
				t.Errorf("RedactURL(%q) = %q keeps the secret", tc.in, got)
			}
		})
	}
}

// lockedBuffer is a bytes.Buffer safe for the downloader's goroutine.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRemoteRedactsQuery: a bundle resource with a presigned query and a service
// URL with credentials show neither in the status (location, last_error) nor in
// the logs, debug level included, whether the download succeeds or fails.
func TestRemoteRedactsQuery(t *testing.T) {
	const secret = "s3cretSig"
	srv := newBundleServer(t, tarball(t, files("v1", true), "", ""))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String() // nothing listens there once closed
	_ = ln.Close()

	for _, tc := range []struct {
		name, url string
		ok        bool
	}{
		{"served", strings.Replace(srv.srv.URL, "http://", "http://alice:"+secret+"@", 1), true},
		{"server down", strings.Replace(down, "http://", "http://alice:"+secret+"@", 1), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw, _ := json.Marshal(map[string]any{
				"services": map[string]any{"acme": map[string]any{"url": tc.url}},
				"bundles": map[string]any{"authz": map[string]any{
					"service": "acme", "resource": resource + "?X-Amz-Signature=" + secret,
					"polling": map[string]any{"min_delay_seconds": 1, "max_delay_seconds": 1},
				}},
			})
			cfg, err := source.ParseConfig(raw)
			if err != nil {
				t.Fatal(err)
			}
			var logs lockedBuffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			set, err := source.Open(context.Background(), newAuthorizer(t), cfg, source.Options{Logger: log})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = set.Close() })
			src := set.Sources()[0]
			eventually(t, "a download", func() bool { st := src.Status(); return st.Activations+st.Failures > 0 })
			st := src.Status()
			if st.OK != tc.ok {
				t.Fatalf("status ok = %v, want %v: %+v", st.OK, tc.ok, st)
			}
			if !strings.HasSuffix(st.Location, "/"+resource+"?<redacted>") {
				t.Errorf("location %q: want the resource with its query redacted", st.Location)
			}
			if !tc.ok && !strings.Contains(st.LastError, "?<redacted>") {
				t.Errorf("last_error %q: want the URL it names, redacted", st.LastError)
			}
			doc, _ := json.Marshal(set.Status())
			for what, text := range map[string]string{"status": string(doc), "logs": logs.String()} {
				if strings.Contains(text, secret) {
					t.Errorf("%s show the secret:\n%s", what, text)
				}
			}
		})
	}
}

// TestRedactLogs: the handler given to OPA's clients redacts URLs in messages,
// string attributes, errors and groups.
func TestRedactLogs(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(source.RedactLogs(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	u := "https://h/logs?sig=s3cret"
	log.With("base", u).WithGroup("g").Debug("Sending request to "+u,
		"url", u,
		"error", fmt.Errorf("Post %q: %w", u, errors.New("connection refused")),
		slog.Group("req", "url", u),
		"headers", map[string][]string{"X": {u}})
	out := buf.String()
	if strings.Contains(out, "s3cret") {
		t.Fatalf("log shows the query:\n%s", out)
	}
	if strings.Count(out, "https://h/logs?<redacted>") != 6 {
		t.Fatalf("want the URL six times, redacted:\n%s", out)
	}
}
