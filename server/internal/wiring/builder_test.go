package wiring

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"testing"

	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
	"github.com/temporal-opa/temporal-opa/server/internal/authzconfig"
	"github.com/temporal-opa/temporal-opa/server/internal/cli"
	"github.com/temporal-opa/temporal-opa/server/internal/devkey"
	"github.com/temporal-opa/temporal-opa/server/internal/offline"
	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
)

// The server (NewAuth) and the offline commands (eval, and explain, can-i
// and replay, which build their authorizer the same way) run the same
// settings into the same policy: one authz file, with a policy.bundle whose
// own decision path the embedded default does not define, gives the same
// decisions, reasons, bundle names and revisions both ways.
func TestServerAndOfflineBuildTheSamePolicy(t *testing.T) {
	key, err := devkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := key.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	dir := testutil.WriteFiles(t, map[string]string{
		"jwks.json":        string(jwks),
		"bundle/.manifest": `{"roots": ["acme"], "revision": "acme-7"}`,
		"bundle/acme/authz.rego": `package acme

# METADATA
# entrypoint: true
decision := {"allow": false, "reason": sprintf("acme: %s is frozen", [input.target.namespace])} if {
	input.target.namespace == "frozen"
} else := data.temporal.authz.decision
`,
	})
	jwksFile := filepath.Join(dir, "jwks.json")
	authzFile := filepath.Join(testutil.WriteFiles(t, map[string]string{"authz.yaml": fmt.Sprintf(`jwt:
  issuer: %s
  skip_discovery: true
  jwks_files: [%s]
  audiences: [temporal]
policy:
  bundle: %s
  decision_path: data.acme.decision
`, devkey.Issuer, jwksFile, filepath.Join(dir, "bundle"))}), "authz.yaml")

	settings, err := authzconfig.Load(authzFile, claimmapper.Config{})
	if err != nil {
		t.Fatal(err)
	}
	server, err := NewAuth(context.Background(), *settings, nil, nil)
	if err != nil {
		t.Fatalf("NewAuth: %v", err)
	}
	t.Cleanup(func() { _ = server.Close() })

	tests := []struct {
		name      string
		perms     []string
		api       string
		namespace string
	}{
		{"writer starts in frozen", []string{"frozen:write"}, "StartWorkflowExecution", "frozen"},
		{"writer starts in default", []string{"default:write"}, "StartWorkflowExecution", "default"},
		{"reader starts in default", []string{"default:read"}, "StartWorkflowExecution", "default"},
		{"reader lists namespaces", []string{"default:read"}, "ListNamespaces", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			api, err := offline.ResolveAPI(tc.api)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := server.Authorizer.Decide(context.Background(), offline.ClaimsFromPermissions("eve", tc.perms),
				&authorization.CallTarget{APIName: api, Namespace: tc.namespace})
			var out bytes.Buffer
			err = offline.Eval(context.Background(), cli.Eval{AuthzFile: authzFile, Permissions: tc.perms, Subject: "eve", API: tc.api, Namespace: tc.namespace}, nil, &out)
			var denied offline.Denied
			if err != nil && !(errors.As(err, &denied) && !want.Allow) {
				t.Fatalf("eval --authz: %v\n%s", err, out.String())
			}
			var got struct {
				Allow     bool              `json:"allow"`
				Reason    string            `json:"reason"`
				Revisions map[string]string `json:"revisions"`
			}
			if err := json.Unmarshal(out.Bytes(), &got); err != nil {
				t.Fatalf("eval output: %v\n%s", err, out.String())
			}
			if got.Allow != want.Allow || got.Reason != want.Reason {
				t.Errorf("eval --authz: allow=%v %q; the server: allow=%v %q", got.Allow, got.Reason, want.Allow, want.Reason)
			}
			if serverRevs := server.Authorizer.Status().Revisions; !maps.Equal(got.Revisions, serverRevs) || !maps.Equal(got.Revisions, want.Revisions) {
				t.Errorf("eval --authz revisions %v; the server's %v (decision %v)", got.Revisions, serverRevs, want.Revisions)
			}
		})
	}
	if got := server.Authorizer.Status().Revisions[authzconfig.FileBundleName]; got != "acme-7" {
		t.Errorf("the server names policy.bundle %q with revision %q, want %q", authzconfig.FileBundleName, got, "acme-7")
	}
}
