package source_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/temporal-opa/temporal-opa/policy/source"
)

// loadErrors records Options.OnLoadError's calls.
type loadErrors struct {
	mu   sync.Mutex
	errs []string // "bundle: error"
}

func (l *loadErrors) record(bundle string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, bundle+": "+err.Error())
}

func (l *loadErrors) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.errs...)
}

// TestLoadErrorsReported: a bundle that cannot be loaded (a syntax error on
// disk, a bad signature downloaded) is reported to OnLoadError, so that the
// server counts it as it counts the bundles the policy rejects; a bundle the
// sink rejects, and a bundle server that is down, are not.
func TestLoadErrorsReported(t *testing.T) {
	rules := "temporal/custom/rules.rego"
	t.Run("file", func(t *testing.T) {
		a := newAuthorizer(t)
		dir := t.TempDir()
		writeFiles(t, dir, files("good", true))
		var le loadErrors
		src, err := source.NewFile(context.Background(), a, "custom", dir, source.Options{Logger: testLogger(t), OnLoadError: le.record})
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()

		// Rejected by the sink (a type error): the sink's to count.
		writeFiles(t, dir, map[string]string{".manifest": manifest("typed"), rules: "package temporal.custom\n\ndeny contains \"x\" if input.target.health_check == \"yes\"\n"})
		eventually(t, "the rejection", func() bool { return src.Status().Failures == 1 })
		if got := le.list(); len(got) != 0 {
			t.Fatalf("a bundle the sink rejected was reported as not loaded: %q", got)
		}
		// Does not parse: reported once, with the file and the error.
		writeFiles(t, dir, map[string]string{".manifest": manifest("bad"), rules: "package temporal.custom\n\ndeny contains \"x\" if {\n"})
		eventually(t, "the load error", func() bool { return src.Status().Failures == 2 })
		got := le.list()
		if len(got) != 1 || !strings.HasPrefix(got[0], "custom: ") || !strings.Contains(got[0], "rego_parse_error") {
			t.Fatalf("load errors: %q; want one for bundle custom naming rego_parse_error", got)
		}
	})
	t.Run("remote", func(t *testing.T) {
		priv, pub := ecKeys(t)
		otherPriv, _ := ecKeys(t)
		srv := newBundleServer(t, tarball(t, files("v1", true), priv, "release"))
		a := newAuthorizer(t)
		var le loadErrors
		set, err := source.Open(context.Background(), a, remoteConfig(t, srv.srv.URL, pub), source.Options{Logger: testLogger(t), OnLoadError: le.record})
		if err != nil {
			t.Fatal(err)
		}
		defer set.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := set.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
		src := set.Sources()[0]

		srv.publish(tarball(t, files("v2", false), otherPriv, "release"))
		eventually(t, "the bad signature", func() bool { return len(le.list()) > 0 })
		if got := le.list(); !strings.Contains(got[0], "failed to verify JWT signature") {
			t.Fatalf("load errors: %q; want the signature failure", got)
		}
		failures := src.Status().Failures
		srv.srv.Close()
		eventually(t, "the failed download", func() bool {
			st := src.Status()
			return st.Failures > failures+1 && strings.Contains(st.LastError, "request failed")
		})
		// The bad bundle may have been downloaded (and reported) again before
		// the server went down; the failures to reach it are not reported.
		for _, e := range le.list() {
			if !strings.Contains(e, "failed to verify JWT signature") {
				t.Fatalf("a bundle server that is down was reported as a bad bundle: %q", e)
			}
		}
	})
}
