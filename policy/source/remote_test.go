package source_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/temporal-opa/temporal-opa/policy/source"
)

const resource = "bundles/authz.tar.gz"

// bundleServer serves one bundle tarball with an ETag, answering 304 to a
// request whose If-None-Match names it, as OPA bundle servers do.
type bundleServer struct {
	srv *httptest.Server

	mu          sync.Mutex
	data        []byte
	etag        string
	changed     chan struct{} // closed by publish
	longPoll    bool          // serve as an OPA long-polling server
	ok, notMod  int
	held        int      // long-poll requests held until a change or timeout
	ifNoneMatch []string // every If-None-Match received
}

func newBundleServer(t *testing.T, data []byte) *bundleServer {
	s := &bundleServer{}
	s.publish(data)
	s.srv = httptest.NewServer(s)
	t.Cleanup(s.srv.Close)
	return s
}

func (s *bundleServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/"+resource {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	inm := r.Header.Get("If-None-Match")
	if inm != "" {
		s.ifNoneMatch = append(s.ifNoneMatch, inm)
	}
	if wait := longPollWait(r); s.longPoll && wait > 0 && inm == s.etag {
		// Hold the request until the bundle changes or the client's wait ends.
		s.held++
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-time.After(wait):
		case <-r.Context().Done():
			return
		}
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	w.Header().Set("ETag", s.etag)
	if inm == s.etag {
		s.notMod++
		w.WriteHeader(http.StatusNotModified)
		return
	}
	s.ok++
	if s.longPoll {
		w.Header().Set("Content-Type", "application/vnd.openpolicyagent.bundles")
	} else {
		w.Header().Set("Content-Type", "application/gzip")
	}
	_, _ = w.Write(s.data)
}

func (s *bundleServer) publish(data []byte) string {
	sum := sha256.Sum256(data)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data, s.etag = data, `"`+hex.EncodeToString(sum[:8])+`"`
	if s.changed != nil {
		close(s.changed)
	}
	s.changed = make(chan struct{})
	return s.etag
}

// longPollWait is the wait an OPA client asks for in its Prefer header.
func longPollWait(r *http.Request) time.Duration {
	for _, pref := range strings.Split(r.Header.Get("Prefer"), ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(pref), "wait="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return time.Duration(n) * time.Second
			}
		}
	}
	return 0
}

func (s *bundleServer) counts() (ok, notModified int, ifNoneMatch []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ok, s.notMod, slices.Clone(s.ifNoneMatch)
}

// remoteConfig is an OPA configuration for one bundle "authz" on srv, polled
// every second, verified with publicKey (PEM) when it is not empty.
func remoteConfig(t *testing.T, url, publicKey string) *source.Config {
	t.Helper()
	b := map[string]any{
		"service":  "acme",
		"resource": resource,
		"polling":  map[string]any{"min_delay_seconds": 1, "max_delay_seconds": 1},
	}
	doc := map[string]any{
		"services": map[string]any{"acme": map[string]any{"url": url}},
		"bundles":  map[string]any{"authz": b},
	}
	if publicKey != "" {
		doc["keys"] = map[string]any{"release": map[string]any{"algorithm": "ES256", "key": publicKey}}
		b["signing"] = map[string]any{"keyid": "release"}
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := source.ParseConfig(raw)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func openReady(t *testing.T, sink source.Sink, cfg *source.Config) (*source.Set, source.Source) {
	t.Helper()
	set, err := source.Open(context.Background(), sink, cfg, source.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := set.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return set, set.Sources()[0]
}

func TestRemoteETagPollingActivatesNewRevision(t *testing.T) {
	priv, pub := ecKeys(t)
	srv := newBundleServer(t, tarball(t, files("v1", true), priv, "release"))
	a := newAuthorizer(t)
	_, src := openReady(t, a, remoteConfig(t, srv.srv.URL, pub))

	st := src.Status()
	if got := outcome(a); got != "allow" || st.Revision != "v1" || st.Kind != source.KindHTTP || st.Location != srv.srv.URL+"/"+resource {
		t.Fatalf("first bundle: %s, status %+v", got, st)
	}
	etag1 := st.ETag
	eventually(t, "a conditional request answered 304, and seen by the source", func() bool {
		_, notMod, inm := srv.counts()
		st := src.Status()
		return notMod > 0 && slices.Contains(inm, etag1) && st.LastCheckAt.After(st.ActivatedAt)
	})
	if st := src.Status(); st.Activations != 1 || !st.OK {
		t.Errorf("status after 304s: %+v", st)
	}

	// v2 carries a test, as `opa build` keeps them: it is left out of the
	// policy (were it compiled, input.claim would fail the schema check).
	v2 := files("v2", false)
	v2["temporal/custom/rules_test.rego"] = "package temporal.custom\n\ntest_claim if input.claim.subject == \"x\"\n"
	etag2 := srv.publish(tarball(t, v2, priv, "release"))
	eventually(t, "revision v2", func() bool { return src.Status().Revision == "v2" })
	if got := outcome(a); got != "deny" {
		t.Errorf("after v2: %s", got)
	}
	if st := src.Status(); st.ETag != etag2 || st.Activations != 2 || st.Failures != 0 {
		t.Errorf("status after v2: %+v", st)
	}
	if got := a.Status().Revisions["authz"]; got != "v2" {
		t.Errorf("authorizer revision %q", got)
	}
}

func TestRemoteLongPolling(t *testing.T) {
	// Polling delays of a minute: a new revision that arrives within the test
	// came through a held long-poll request.
	s := &bundleServer{longPoll: true}
	s.publish(tarball(t, files("v1", true), "", ""))
	s.srv = httptest.NewServer(s)
	defer s.srv.Close()
	cfg, err := source.ParseConfig([]byte(`
services:
  acme:
    url: ` + s.srv.URL + `
bundles:
  authz:
    service: acme
    resource: ` + resource + `
    polling:
      min_delay_seconds: 60
      max_delay_seconds: 120
      long_polling_timeout_seconds: 30
`))
	if err != nil {
		t.Fatal(err)
	}
	a := newAuthorizer(t)
	set, src := openReady(t, a, cfg)
	eventually(t, "a long-poll request to be held", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.held > 0
	})
	s.publish(tarball(t, files("v2", false), "", ""))
	eventually(t, "revision v2", func() bool { return src.Status().Revision == "v2" })
	if got := outcome(a); got != "deny" {
		t.Errorf("after v2: %s", got)
	}
	// Close cancels the request held for the next change.
	eventually(t, "the next long-poll request to be held", func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.held > 1
	})
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRemoteRejectsBadSignature(t *testing.T) {
	priv, pub := ecKeys(t)
	otherPriv, _ := ecKeys(t)
	tests := []struct {
		name string
		bad  func(t *testing.T) []byte
		want string
	}{
		{name: "signed with another key", want: "failed to verify JWT signature",
			bad: func(t *testing.T) []byte { return tarball(t, files("v2", false), otherPriv, "release") }},
		{name: "unsigned", want: ".signatures.json",
			bad: func(t *testing.T) []byte { return tarball(t, files("v2", false), "", "") }},
		{name: "policy changed after signing", want: "digest mismatch",
			bad: func(t *testing.T) []byte {
				// The signature of the allow version, on the deny version's files.
				signed := tarball(t, files("v2", true), priv, "release")
				return retarball(t, signed, "temporal/custom/rules.rego", denyRules)
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newBundleServer(t, tarball(t, files("v1", true), priv, "release"))
			a := newAuthorizer(t)
			_, src := openReady(t, a, remoteConfig(t, srv.srv.URL, pub))
			before := a.Status().Generation

			srv.publish(tc.bad(t))
			eventually(t, "the bad bundle to be rejected", func() bool { return src.Status().Failures > 0 })
			st := src.Status()
			if !strings.Contains(st.LastError, tc.want) || st.OK || st.Revision != "v1" {
				t.Errorf("status: %+v; want LastError mentioning %q", st, tc.want)
			}
			if got := outcome(a); got != "allow" {
				t.Errorf("after the bad bundle: %s, want the previous allow", got)
			}
			if after := a.Status().Generation; after != before {
				t.Errorf("the sink saw the bad bundle: generation %d -> %d", before, after)
			}
		})
	}
}

func TestRemoteRejectedPolicyIsNotRetried(t *testing.T) {
	srv := newBundleServer(t, tarball(t, files("v1", true), "", ""))
	a := newAuthorizer(t)
	_, src := openReady(t, a, remoteConfig(t, srv.srv.URL, ""))

	bad := srv.publish(tarball(t, map[string]string{
		".manifest":                  manifest("v2"),
		"temporal/custom/rules.rego": "package temporal.custom\n\ndeny contains \"x\" if input.claim.subject == \"eve\"\n",
	}, "", ""))
	eventually(t, "the bad bundle to be rejected", func() bool { return src.Status().Failures > 0 })
	st := src.Status()
	if !strings.Contains(st.LastError, "undefined ref: input.claim") || !strings.Contains(st.LastError, "rules.rego:3") || st.Revision != "v1" {
		t.Errorf("status: %+v", st)
	}
	eventually(t, "a 304 for the rejected bundle's ETag", func() bool {
		_, _, inm := srv.counts()
		return slices.Contains(inm, bad)
	})
	if st := src.Status(); st.Failures != 1 || st.OK {
		t.Errorf("the rejected bundle was activated again or reported OK: %+v", st)
	}
	if got := outcome(a); got != "allow" {
		t.Errorf("after the bad bundle: %s", got)
	}
}

func TestRemoteRejectsDeltaBundle(t *testing.T) {
	srv := newBundleServer(t, tarball(t, files("v1", true), "", ""))
	a := newAuthorizer(t)
	_, src := openReady(t, a, remoteConfig(t, srv.srv.URL, ""))

	delta := bundle.Bundle{
		Manifest: bundle.Manifest{Revision: "v2", Roots: &[]string{"temporal/custom"}},
		Patch:    bundle.Patch{Data: []bundle.PatchOperation{{Op: "upsert", Path: "/temporal/custom/x", Value: 1}}},
	}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).Write(delta); err != nil {
		t.Fatal(err)
	}
	srv.publish(buf.Bytes())
	eventually(t, "the delta bundle to be rejected", func() bool { return src.Status().Failures > 0 })
	if st := src.Status(); !strings.Contains(st.LastError, "delta bundles are not supported") || st.Revision != "v1" {
		t.Errorf("status: %+v", st)
	}
	if got := outcome(a); got != "allow" {
		t.Errorf("after the delta bundle: %s", got)
	}
}

func TestRemoteServerGoneKeepsLastGoodPolicy(t *testing.T) {
	srv := newBundleServer(t, tarball(t, files("v1", true), "", ""))
	addr := srv.srv.Listener.Addr().String()
	a := newAuthorizer(t)
	_, src := openReady(t, a, remoteConfig(t, srv.srv.URL, ""))

	srv.srv.Close()
	eventually(t, "the failed download to be reported", func() bool { return src.Status().Failures > 0 })
	st := src.Status()
	if !strings.Contains(st.LastError, "request failed") || st.OK || st.Revision != "v1" {
		t.Errorf("status with the server gone: %+v", st)
	}
	if got := outcome(a); got != "allow" {
		t.Errorf("with the server gone: %s, want the last good allow", got)
	}

	// The server comes back on the same address with the same bundle: a 304,
	// nothing to activate, and the source is OK again.
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", addr, err)
	}
	back := httptest.NewUnstartedServer(srv)
	back.Listener.Close()
	back.Listener = l
	back.Start()
	defer back.Close()
	eventually(t, "the source to recover", func() bool { return src.Status().OK })
	if st := src.Status(); st.Activations != 1 || st.Revision != "v1" {
		t.Errorf("status after the server came back: %+v", st)
	}
}

func TestOpenFileURLWatchesLocalBundle(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, files("v1", true))
	cfg, err := source.ParseConfig([]byte("bundles:\n  local:\n    resource: file://" + dir + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := newAuthorizer(t)
	set, src := openReady(t, a, cfg)
	if st := set.Status(); len(st) != 1 || st[0].Kind != source.KindFile || st[0].Location != dir || st[0].Name != "local" {
		t.Fatalf("status %+v", st)
	}
	writeFiles(t, dir, files("v2", false))
	eventually(t, "revision v2", func() bool { return src.Status().Revision == "v2" })
	if got := outcome(a); got != "deny" {
		t.Errorf("after v2: %s", got)
	}
}

func TestWaitReadyReportsLastError(t *testing.T) {
	srv := newBundleServer(t, tarball(t, map[string]string{
		".manifest":                  manifest("v1"),
		"temporal/custom/rules.rego": "package temporal.custom\n\ndeny contains \"x\" if {\n",
	}, "", ""))
	set, err := source.Open(context.Background(), newAuthorizer(t), remoteConfig(t, srv.srv.URL, ""), source.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	eventually(t, "the bad bundle to be rejected", func() bool { return set.Status()[0].Failures > 0 })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = set.WaitReady(ctx)
	var nr *source.NotReadyError
	if !errorsAs(err, &nr) || !errorsIs(err, source.ErrNotReady) || !errorsIs(err, context.Canceled) || !strings.Contains(err.Error(), "rules.rego:4") {
		t.Fatalf("WaitReady: %v", err)
	}
}

func TestCloseStopsGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()
	srv := httptest.NewServer(&bundleServer{})
	bs := srv.Config.Handler.(*bundleServer)
	bs.publish(tarball(t, files("v1", true), "", ""))
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{".manifest": `{"roots": ["extra"]}`, "extra/x.rego": "package extra\n\nx := 1\n"})
	a := newAuthorizer(t)

	for range 3 {
		set, err := source.Open(context.Background(), a, remoteConfig(t, srv.URL, ""), source.Options{})
		if err != nil {
			t.Fatal(err)
		}
		f, err := source.NewFile(context.Background(), a, "local", dir, source.Options{})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := set.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := set.Close(); err != nil {
			t.Error(err)
		}
		if err := f.Close(); err != nil {
			t.Error(err)
		}
		_ = f.Close() // a second Close is harmless
	}
	srv.Close() // closes the client's idle connections too
	eventually(t, "goroutines to stop", func() bool { return runtime.NumGoroutine() <= base })
}
