package wiring

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
	"github.com/temporal-opa/temporal-opa/server/internal/authzconfig"
	"github.com/temporal-opa/temporal-opa/server/internal/devkey"
	"github.com/temporal-opa/temporal-opa/server/internal/offline"
	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
)

// issuerKey is a signing key whose JWKS is served over HTTP.
func issuerKey(t *testing.T) (*devkey.Key, string) {
	t.Helper()
	k, err := devkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	h, err := devkey.Handler(k)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return k, srv.URL + devkey.JWKSPath
}

// TestNewAuthWithIssuers: with jwt.issuers, the server's claim mapper accepts
// each issuer's token verified with that issuer's key only, and refuses a token
// signed by one issuer's key that claims the other, and unlisted issuers.
func TestNewAuthWithIssuers(t *testing.T) {
	keyA, jwksA := issuerKey(t)
	keyB, jwksB := issuerKey(t)
	keyDev, jwksDev := issuerKey(t)
	const issA, issB = "https://people.example", "https://k8s.example"
	settings := authzconfig.File{JWT: claimmapper.Config{
		Audiences: []string{"temporal"},
		Issuers: []claimmapper.Config{
			{Issuer: issA, SkipDiscovery: true, JWKSURLs: []string{jwksA}},
			{Issuer: issB, SkipDiscovery: true, JWKSURLs: []string{jwksB}},
		},
	}}
	a, err := NewAuth(context.Background(), settings, nil, nil)
	if err != nil {
		t.Fatalf("NewAuth: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })
	if a.ClaimMapper != nil || a.Issuers == nil {
		t.Fatalf("ClaimMapper=%v Issuers=%v, want only Issuers", a.ClaimMapper, a.Issuers)
	}
	// start-dev's trusted dev issuer is routed beside jwt.issuers.
	dev, err := claimmapper.New(context.Background(), claimmapper.Config{Issuer: devkey.Issuer, SkipDiscovery: true, JWKSURLs: []string{jwksDev}})
	if err != nil {
		t.Fatal(err)
	}
	a.TrustIssuer(devkey.Issuer, dev)
	cm := a.claimMapper()

	mint := func(k *devkey.Key, iss string) string {
		tok, err := k.Mint(devkey.Claims{Subject: "sub-of-" + iss, Issuer: iss, Audience: []string{"temporal"}, Permissions: []string{"payments:write"}})
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok
	}
	tests := []struct {
		name     string
		auth     string
		wantCode claimmapper.ErrorCode // "" = accepted
	}{
		{name: "A's token with A's key", auth: mint(keyA, issA)},
		{name: "B's token with B's key", auth: mint(keyB, issB)},
		{name: "dev token with the trusted dev key", auth: mint(keyDev, devkey.Issuer)},
		{name: "A's key claiming B", auth: mint(keyA, issB), wantCode: claimmapper.CodeUnknownKID},
		{name: "B's key claiming A", auth: mint(keyB, issA), wantCode: claimmapper.CodeUnknownKID},
		{name: "dev key claiming A", auth: mint(keyDev, issA), wantCode: claimmapper.CodeUnknownKID},
		{name: "unlisted issuer", auth: mint(keyA, "https://other.example"), wantCode: claimmapper.CodeUnknownIssuer},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			claims, err := cm.GetClaims(&authorization.AuthInfo{AuthToken: tc.auth})
			if tc.wantCode == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if claims.Namespaces["payments"] != authorization.RoleWriter {
					t.Errorf("namespaces %v, want payments writer", claims.Namespaces)
				}
				return
			}
			var te *claimmapper.TokenError
			if !errors.As(err, &te) || te.Code != tc.wantCode {
				t.Fatalf("got %v, want code %s", err, tc.wantCode)
			}
		})
	}
}

// TestPolicyReadsTheVerifiedIssuer: with jwt.issuers, input.claims.jwt.iss is
// the issuer whose keys verified the token, and cached decisions keep two
// issuers' callers with the same roles apart.
func TestPolicyReadsTheVerifiedIssuer(t *testing.T) {
	// The verified token's iss, and the configured issuer that verified it.
	for _, read := range []string{"input.claims.jwt.iss", "input.claims.issuer"} {
		t.Run(read, func(t *testing.T) {
			keyA, jwksA := issuerKey(t)
			keyB, jwksB := issuerKey(t)
			const issA, issB = "https://people.example", "https://k8s.example"
			dir := testutil.WriteFiles(t, map[string]string{
				"bundle/.manifest": `{"roots": ["acme"]}`,
				"bundle/acme/authz.rego": `package acme

		# METADATA
		# entrypoint: true
		decision := {"allow": false, "reason": "people-only admits people"} if {
			input.target.namespace == "people-only"
			` + read + ` != "` + issA + `"
		} else := data.temporal.authz.decision
		`,
			})
			settings := authzconfig.File{JWT: claimmapper.Config{
				Audiences: []string{"temporal"},
				Issuers: []claimmapper.Config{
					{Issuer: issA, SkipDiscovery: true, JWKSURLs: []string{jwksA}},
					{Issuer: issB, SkipDiscovery: true, JWKSURLs: []string{jwksB}},
				},
			}}
			settings.Policy.Bundle = authzconfig.BundlePaths{filepath.Join(dir, "bundle")}
			settings.Policy.DecisionPath = "data.acme.decision"
			a, err := NewAuth(context.Background(), settings, nil, nil)
			if err != nil {
				t.Fatalf("NewAuth: %v", err)
			}
			t.Cleanup(func() { _ = a.Close() })
			cm := a.claimMapper()
			api, err := offline.ResolveAPI("StartWorkflowExecution")
			if err != nil {
				t.Fatal(err)
			}
			mint := func(k *devkey.Key, iss string) string {
				tok, err := k.Mint(devkey.Claims{Subject: "same-subject", Issuer: iss, Audience: []string{"temporal"}, Permissions: []string{"people-only:write"}})
				if err != nil {
					t.Fatal(err)
				}
				return "Bearer " + tok
			}
			tokA, tokB := mint(keyA, issA), mint(keyB, issB)
			// Twice each, interleaved: the second round is answered from the decision cache.
			for round := range 2 {
				for _, tc := range []struct {
					name      string
					auth      string
					issuer    string
					wantAllow bool
				}{{"people issuer", tokA, issA, true}, {"workload issuer", tokB, issB, false}} {
					claims, err := cm.GetClaims(&authorization.AuthInfo{AuthToken: tc.auth})
					if err != nil {
						t.Fatalf("%s: refused: %v", tc.name, err)
					}
					if got, want := (&policy.Event{Claims: claims}).Issuer(), tc.issuer; got != want {
						t.Errorf("%s: the verifying issuer is %q, want %q", tc.name, got, want)
					}
					res, err := a.Authorizer.Authorize(context.Background(), claims, &authorization.CallTarget{APIName: api, Namespace: "people-only"})
					if err != nil {
						t.Fatalf("%s: %v", tc.name, err)
					}
					if got := res.Decision == authorization.DecisionAllow; got != tc.wantAllow {
						t.Errorf("round %d, %s: allowed=%v, want %v", round, tc.name, got, tc.wantAllow)
					}
				}
			}
		})
	}
}
