package wiring

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
	"github.com/temporal-opa/temporal-opa/server/internal/authzconfig"
	"github.com/temporal-opa/temporal-opa/server/internal/offline"
	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
)

// denyBundle writes, into dir/name, a bundle rooted at temporal/custom/<pkg>
// whose rule denies method with reason.
func denyBundle(t *testing.T, dir, name, pkg, rev, method, reason string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	files := map[string]string{
		".manifest":                              fmt.Sprintf(`{"roots": ["temporal/custom/%s"], "revision": %q}`, pkg, rev),
		"temporal/custom/" + pkg + "/rules.rego": fmt.Sprintf("package temporal.custom.%s\n\ndeny contains %q if input.target.method == %q\n", pkg, reason, method),
	}
	for f, content := range files {
		p := filepath.Join(path, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return path
}

// TestNewAuthWithSeveralBundles: the bundles of a policy.bundle list are active
// together, each under policy/<base name>; each is watched on its own: an edit
// of one is activated beside the other, a broken edit of one is rejected and
// the last good policy stays.
func TestNewAuthWithSeveralBundles(t *testing.T) {
	_, jwks := issuerKey(t)
	dir := t.TempDir()
	pathA := denyBundle(t, dir, "starts", "starts", "a-1", "StartWorkflowExecution", "starts are frozen")
	pathB := denyBundle(t, dir, "signals", "signals", "b-1", "SignalWorkflowExecution", "signals are frozen")
	settings := authzconfig.File{JWT: claimmapper.Config{Issuer: "https://idp.example", SkipDiscovery: true, JWKSURLs: []string{jwks}}}
	settings.Policy.Bundle = authzconfig.BundlePaths{pathA, pathB}
	a, err := NewAuth(context.Background(), settings, nil, nil)
	if err != nil {
		t.Fatalf("NewAuth: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })

	writer := &authorization.Claims{Subject: "dev", Namespaces: map[string]authorization.Role{"default": authorization.RoleWriter}}
	reason := func(method string) string {
		t.Helper()
		api, err := offline.ResolveAPI(method)
		if err != nil {
			t.Fatal(err)
		}
		res, err := a.Authorizer.Authorize(context.Background(), writer, &authorization.CallTarget{APIName: api, Namespace: "default"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Decision == authorization.DecisionAllow {
			return "allowed"
		}
		return res.Reason
	}
	revisions := func() map[string]string {
		revs := a.Authorizer.Status().Revisions
		delete(revs, "temporal-opa/default")
		return revs
	}
	if got, want := revisions(), map[string]string{"policy/starts": "a-1", "policy/signals": "b-1"}; !maps.Equal(got, want) {
		t.Fatalf("revisions %v, want %v", got, want)
	}
	if got := reason("StartWorkflowExecution"); got != "starts are frozen" {
		t.Errorf("start: %q, want the first bundle's deny", got)
	}
	if got := reason("SignalWorkflowExecution"); got != "signals are frozen" {
		t.Errorf("signal: %q, want the second bundle's deny", got)
	}
	var names []string
	for _, s := range a.Sources() {
		names = append(names, s.Name+"="+s.Location)
	}
	if want := []string{"policy/starts=" + pathA, "policy/signals=" + pathB}; !slices.Equal(names, want) {
		t.Errorf("sources %q, want %q", names, want)
	}
	if want := pathA + ", " + pathB + " (bundles policy/starts, policy/signals, each watched: edits are activated without a restart), layered on the embedded default"; a.PolicySources != want {
		t.Errorf("PolicySources %q, want %q", a.PolicySources, want)
	}

	// An edit of one bundle is activated beside the other.
	denyBundle(t, dir, "starts", "starts", "a-2", "StartWorkflowExecution", "starts are frozen until Monday")
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, "the edit of policy/starts", func() bool {
		return revisions()["policy/starts"] == "a-2"
	})
	if got := reason("StartWorkflowExecution"); got != "starts are frozen until Monday" {
		t.Errorf("start after the edit: %q", got)
	}
	if got, want := revisions(), map[string]string{"policy/starts": "a-2", "policy/signals": "b-1"}; !maps.Equal(got, want) {
		t.Errorf("revisions after the edit %v, want %v", got, want)
	}

	// A broken edit of the other is rejected; the last good policy stays.
	rules := filepath.Join(pathB, "temporal", "custom", "signals", "rules.rego")
	if err := os.WriteFile(rules, []byte("package temporal.custom.signals\n\ndeny contains \"x\" if {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, 20*time.Millisecond, "the broken edit of policy/signals to be reported", func() bool {
		st := a.Sources()[1]
		return !st.OK && st.LastError != ""
	})
	if st := a.Sources()[1]; !strings.Contains(st.LastError, "bundle policy/signals") {
		t.Errorf("source error %q, want it to name bundle policy/signals", st.LastError)
	}
	if got := reason("SignalWorkflowExecution"); got != "signals are frozen" {
		t.Errorf("signal after the broken edit: %q, want the last good rule", got)
	}
	if got := reason("StartWorkflowExecution"); got != "starts are frozen until Monday" {
		t.Errorf("start after the broken edit of the other bundle: %q", got)
	}
	if st := a.Sources()[0]; !st.OK {
		t.Errorf("policy/starts source %+v, want OK", st)
	}
}

// TestNewAuthSeveralBundlesErrors: at start-up, a bundle of the list that does
// not load names its path; two whose roots overlap name both bundles.
func TestNewAuthSeveralBundlesErrors(t *testing.T) {
	_, jwks := issuerKey(t)
	dir := t.TempDir()
	good := denyBundle(t, dir, "good", "good", "1", "StartWorkflowExecution", "no")
	bad := denyBundle(t, dir, "bad", "bad", "1", "StartWorkflowExecution", "no")
	if err := os.WriteFile(filepath.Join(bad, "temporal", "custom", "bad", "rules.rego"), []byte("package temporal.custom.bad\n\ndeny contains \"x\" if {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	overlapping := denyBundle(t, dir, "overlapping", "good", "1", "SignalWorkflowExecution", "no")
	typo := denyBundle(t, dir, "typo", "typo", "1", "StartWorkflowExecution", "no")
	if err := os.WriteFile(filepath.Join(typo, "temporal", "custom", "typo", "rules.rego"), []byte("package temporal.custom.typo\n\ndeny contains \"x\" if input.target.metod == \"X\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		paths     []string
		wantPath  string
		wantPaths []string
		want      string
	}{
		{"one does not load", []string{good, bad}, bad, nil, "rules.rego:4: rego_parse_error"},
		{"one does not compile", []string{good, typo}, typo, nil, "/temporal/custom/typo/rules.rego:3: rego_type_error: undefined ref: input.target.metod"},
		{"overlapping roots", []string{good, overlapping}, "", []string{good, overlapping},
			"bundles policy/good and policy/overlapping have overlapping roots (temporal/custom/good and temporal/custom/good)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			settings := authzconfig.File{JWT: claimmapper.Config{Issuer: "https://idp.example", SkipDiscovery: true, JWKSURLs: []string{jwks}}}
			settings.Policy.Bundle = tc.paths
			a, err := NewAuth(context.Background(), settings, nil, nil)
			if err == nil {
				_ = a.Close()
				t.Fatal("NewAuth: no error")
			}
			var pe *PolicyError
			if !errors.As(err, &pe) || pe.Path != tc.wantPath || !slices.Equal(pe.Paths, tc.wantPaths) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v (%#v)\nwant a PolicyError for %q %q containing %q", err, pe, tc.wantPath, tc.wantPaths, tc.want)
			}
		})
	}
}
