package e2e

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/temporal-opa/temporal-opa/server/internal/authzconfig"
	"github.com/temporal-opa/temporal-opa/server/internal/devserver"
	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
)

// start-dev --authz FILE whose file sets policy.bundle describes that bundle
// in its banner, as /status shows it active (the banner said "embedded
// default": it described the flags, not the policy that was built).
func TestStartDevDescribesTheAuthzFileBundle(t *testing.T) {
	ctx := ctxFor(t, 2*time.Minute)
	dir := testutil.WriteFiles(t, map[string]string{
		"bundle/.manifest":                  `{"roots": ["temporal/custom"], "revision": "described-1"}`,
		"bundle/temporal/custom/rules.rego": "package temporal.custom\n\ndeny contains \"frozen\" if input.target.namespace == \"frozen\"\n",
	})
	bundleDir := filepath.Join(dir, "bundle")
	authz := testutil.WriteFiles(t, map[string]string{"authz.yaml": "policy:\n  bundle: " + bundleDir + "\n"})
	s, err := devserver.Start(ctx, devserver.Options{Namespaces: []string{"default"}, Key: srv.Key(), AuthzFile: filepath.Join(authz, "authz.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	if got := s.PolicySources(); !strings.Contains(got, bundleDir) || strings.HasPrefix(got, "embedded default") {
		t.Errorf("banner's policy line %q, want it to name %s", got, bundleDir)
	}
	if rev := s.Report().Policy.Revisions[authzconfig.FileBundleName]; rev != "described-1" {
		t.Errorf("/status revisions %v, want bundle %q at described-1", s.Report().Policy.Revisions, authzconfig.FileBundleName)
	}
}
