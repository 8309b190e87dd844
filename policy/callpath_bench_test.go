package policy_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/open-policy-agent/opa/v1/bundle"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/metrics"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/authzmetrics"
	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
	"github.com/temporal-opa/temporal-opa/policy/decisionlog"
	"github.com/temporal-opa/temporal-opa/policy/grants"
	"github.com/temporal-opa/temporal-opa/policy/shadow"
)

// callPath is what the frontend runs on every call: claim mapper, then authorizer.
type callPath struct {
	mapper     authorization.ClaimMapper
	authorizer authorization.Authorizer
}

func (p callPath) call(ctx context.Context, token string, target *authorization.CallTarget) (authorization.Result, error) {
	claims, err := p.mapper.GetClaims(&authorization.AuthInfo{AuthToken: "Bearer " + token})
	if err != nil {
		return authorization.Result{}, err
	}
	return p.authorizer.Authorize(ctx, claims, target)
}

// BenchmarkCallPath runs the whole per-call path, Temporal's default JWT claim
// mapper and default authorizer against ours (claimmapper + the embedded policy),
// on the same ES256 tokens from a real JWKS server, in the same run. x_temporal is
// Temporal's ns/op divided by ours: above 1, ours is faster.
func BenchmarkCallPath(b *testing.B) {
	ctx := context.Background()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	priv, err := jwk.FromRaw(key)
	if err != nil {
		b.Fatal(err)
	}
	_ = priv.Set(jwk.KeyIDKey, "bench")
	_ = priv.Set(jwk.AlgorithmKey, jwa.ES256)
	pub, err := priv.PublicKey()
	if err != nil {
		b.Fatal(err)
	}
	set := jwk.NewSet()
	_ = set.AddKey(pub)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(set)
	}))
	defer srv.Close()

	sign := func(i int) string {
		payload, _ := json.Marshal(map[string]any{
			// One worker minting a fresh token per call, as Temporal's JWT sample does.
			"sub": "payments-worker", "jti": fmt.Sprintf("t-%d", i), "iss": "https://idp.example", "exp": time.Now().Add(time.Hour).Unix(),
			"permissions": []string{"payments:read", "payments:write", "orders:read"},
		})
		hdr := jws.NewHeaders()
		_ = hdr.Set(jws.KeyIDKey, "bench")
		tok, err := jws.Sign(payload, jws.WithKey(jwa.ES256, priv, jws.WithProtectedHeaders(hdr)))
		if err != nil {
			b.Fatal(err)
		}
		return string(tok)
	}

	tcfg := &config.Authorization{JWTKeyProvider: config.JWTKeyProvider{KeySourceURIs: []string{srv.URL}, RefreshInterval: time.Hour}}
	logger := log.NewNoopLogger()
	provider := authorization.NewDefaultTokenKeyProvider(tcfg, logger)
	defer provider.Close()
	theirs := callPath{authorization.NewDefaultJWTClaimMapper(provider, tcfg, logger), authorization.NewDefaultAuthorizer()}

	mcfg := claimmapper.FromTemporal(tcfg)
	mcfg.CacheSize = 256 // far below the token pool: every first-seen call verifies its token
	mapper, err := claimmapper.New(ctx, mcfg)
	if err != nil {
		b.Fatal(err)
	}
	defer mapper.Close()
	az, err := policy.NewAuthorizer(policy.Options{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ours := callPath{mapper, az}

	target := &authorization.CallTarget{APIName: apiStart, Namespace: "payments"}
	const pool = 4096 // distinct tokens for first-seen calls: more than either side caches
	tokens := make([]string, pool)
	for i := range tokens {
		tokens[i] = sign(i)
	}
	for _, p := range []callPath{theirs, ours} {
		res, err := p.call(ctx, tokens[0], target)
		if err != nil || res.Decision != authorization.DecisionAllow {
			b.Fatalf("call path not allowing a payments:write token: %v %v", res.Decision, err)
		}
	}

	b.Run("repeated-token", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = ours.call(ctx, tokens[0], target)
		}
		reportAgainstDefault(b, func() { _, _ = theirs.call(ctx, tokens[0], target) })
	})
	// The same path with decision logging on (console JSON lines to io.Discard,
	// the events built and written on the logger's goroutine): logging_ns/op is
	// what logging adds to a call, against the unlogged path timed for as many
	// calls in the same run.
	dl, err := decisionlog.New(ctx, nil, decisionlog.Options{ForceConsole: true, Console: io.Discard, QueueSize: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	azLogged, err := policy.NewAuthorizer(policy.Options{Recorder: dl}, nil)
	if err != nil {
		b.Fatal(err)
	}
	logged := callPath{mapper, azLogged}
	// extra_ns/op: what the feature adds to a call, against the plain path timed
	// for as many calls in the same run.
	withFeature := func(name string, p callPath) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = p.call(ctx, tokens[0], target)
			}
			with := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
			reportAgainstDefault(b, func() { _, _ = theirs.call(ctx, tokens[0], target) })
			reportExtra(b, with, func(int) { _, _ = ours.call(ctx, tokens[0], target) })
		})
	}
	withFeature("repeated-token-decision-log", logged)
	// Let the logger write its backlog before the next benchmarks, so that it
	// does not take their CPU.
	closeCtx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	_ = dl.Close(closeCtx)
	if st := dl.Status(); st.Dropped > 0 {
		b.Logf("decision log: %d events logged, %d dropped (queue full)", st.Logged, st.Dropped)
	}

	// Metrics on a real OpenTelemetry Prometheus handler, as start-dev --metrics-port builds it.
	mh, err := metrics.MetricsHandlerFromConfig(logger, &metrics.Config{Prometheus: &metrics.PrometheusConfig{
		Framework: metrics.FrameworkOpentelemetry, ListenAddress: "127.0.0.1:0", HandlerPath: "/metrics"}})
	if err != nil {
		b.Fatal(err)
	}
	defer mh.Stop(logger)
	azMetrics, err := policy.NewAuthorizer(policy.Options{Recorder: authzmetrics.New(mh)}, nil)
	if err != nil {
		b.Fatal(err)
	}
	withFeature("repeated-token-metrics", callPath{mapper, azMetrics})

	// A shadow policy (the least-privilege-workers example) beside the default.
	sh, err := shadow.New(shadow.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer sh.Close()
	cand, err := policy.LoadBundle("../bundles/least-privilege-workers")
	if err != nil {
		b.Fatal(err)
	}
	if err := sh.Authorizer().SetBundle(ctx, "shadow", cand); err != nil {
		b.Fatal(err)
	}
	azShadow, err := policy.NewAuthorizer(policy.Options{Recorder: sh}, nil)
	if err != nil {
		b.Fatal(err)
	}
	withFeature("repeated-token-shadow", callPath{mapper, azShadow})

	// Time-bound grants: 1,000 grants held by other callers and 20 group
	// grants for groups the caller is not in (each call looks its grants up);
	// then the caller holding a grant of its own (its grants are part of the
	// decision's cache key).
	azGrants, err := policy.NewAuthorizer(policy.Options{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	others := benchGrants(time.Now(), 1000, 20)
	azGrants.SetGrants(others)
	withFeature("repeated-token-grants-of-others", callPath{mapper, azGrants})
	azHeld, err := policy.NewAuthorizer(policy.Options{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	held := append(benchGrants(time.Now(), 1000, 20), grants.Grant{ID: "g-held", Subject: grants.Subject{Subject: "payments-worker"},
		Namespace: "payments", Role: "admin", State: grants.StateActive, NotBefore: time.Now().Add(-time.Minute),
		Expires: time.Now().Add(time.Hour), Reason: "bench", RequestedBy: grants.Identity{Subject: "x"}})
	azHeld.SetGrants(held)
	withFeature("repeated-token-under-grant", callPath{mapper, azHeld})

	b.Run("first-seen-token", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			_, _ = ours.call(ctx, tokens[i%pool], target)
			i++
		}
		j := 0
		reportAgainstDefault(b, func() { _, _ = theirs.call(ctx, tokens[j%pool], target); j++ })
	})

	// Roles from policy: people whose tokens carry groups, not permissions, and
	// a bundle of role rules that maps groups (a data.json table) to roles for
	// tokens of its issuer. Temporal's default runs on tokens that carry the
	// same roles as permissions. extra_ns/op is what the role rules add to our
	// call path with permission tokens (same mapper, same callers), in the same run.
	imcfg := mcfg
	imcfg.Issuer, imcfg.SkipDiscovery = "https://idp.example", true
	imapper, err := claimmapper.New(ctx, imcfg)
	if err != nil {
		b.Fatal(err)
	}
	defer imapper.Close()
	azRoles, err := policy.NewAuthorizer(policy.Options{}, map[string]*bundle.Bundle{"groups": groupsBundle(b,
		`{"payments-devs": ["payments:write", "orders:read"], "payments-viewers": ["payments:read"], "platform": ["temporal-system:read"]}`)})
	if err != nil {
		b.Fatal(err)
	}
	withRoles, plain := callPath{imapper, azRoles}, callPath{imapper, az}
	// Callers: 64 people, each in one to three of the groups.
	groupsOf := func(i int) []string {
		return [][]string{{"payments-devs"}, {"payments-devs", "platform"}, {"payments-devs", "payments-viewers"}}[i%3]
	}
	signGroups := func(i int) string {
		payload, _ := json.Marshal(map[string]any{
			"sub": fmt.Sprintf("person-%d", i%64), "jti": fmt.Sprintf("g-%d", i), "iss": "https://idp.example", "exp": time.Now().Add(time.Hour).Unix(),
			"groups": groupsOf(i % 64),
		})
		hdr := jws.NewHeaders()
		_ = hdr.Set(jws.KeyIDKey, "bench")
		tok, err := jws.Sign(payload, jws.WithKey(jwa.ES256, priv, jws.WithProtectedHeaders(hdr)))
		if err != nil {
			b.Fatal(err)
		}
		return string(tok)
	}
	groupTokens := make([]string, pool)
	for i := range groupTokens {
		groupTokens[i] = signGroups(i)
	}
	if res, err := withRoles.call(ctx, groupTokens[0], target); err != nil || res.Decision != authorization.DecisionAllow {
		b.Fatalf("role rules not granting payments:write from the payments-devs group: %v %v", res.Decision, err)
	}
	b.Run("role-rules-repeated-token", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = withRoles.call(ctx, groupTokens[0], target)
		}
		with := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		reportAgainstDefault(b, func() { _, _ = theirs.call(ctx, tokens[0], target) })
		reportExtra(b, with, func(int) { _, _ = plain.call(ctx, tokens[0], target) })
	})
	b.Run("role-rules-first-seen-token", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			_, _ = withRoles.call(ctx, groupTokens[i%pool], target)
			i++
		}
		with := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
		j := 0
		reportAgainstDefault(b, func() { _, _ = theirs.call(ctx, tokens[j%pool], target); j++ })
		reportExtra(b, with, func(k int) { _, _ = plain.call(ctx, tokens[k%pool], target) })
	})
}

// benchGrants are n active grants of other subjects and groups grants of
// groups no benchmark token carries, on payments.
func benchGrants(now time.Time, n, groups int) []grants.Grant {
	out := make([]grants.Grant, 0, n+groups)
	for i := range n + groups {
		sub := grants.Subject{Subject: fmt.Sprintf("person-%d", i)}
		if i >= n {
			sub = grants.Subject{Claim: "groups", Value: fmt.Sprintf("team-%d", i)}
		}
		out = append(out, grants.Grant{ID: fmt.Sprintf("g-%d", i), Subject: sub, Namespace: "payments", Role: "write",
			State: grants.StateActive, NotBefore: now.Add(-time.Minute), Expires: now.Add(time.Hour), Reason: "bench",
			RequestedBy: grants.Identity{Subject: "x"}})
	}
	return out
}
