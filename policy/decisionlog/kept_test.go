package decisionlog

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/bundle"
	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy"
)

// token is a verified token's Claims.Extensions: its claims and cache key.
type token struct {
	key    string
	claims map[string]any
}

func (t token) TokenClaims() map[string]any { return t.claims }
func (t token) CacheKey() string            { return t.key }

type captured struct {
	mu     sync.Mutex
	events []*policy.Event
}

func (c *captured) Record(e *policy.Event) {
	c.mu.Lock()
	c.events = append(c.events, e)
	c.mu.Unlock()
}

// TestKeptClaimsReused: the input an event logs is the same whether the
// claims kept of its token are computed for it or reused from an earlier
// event of the token: under the default policy (reads no claim) and under one
// that reads some (groups, org.team), with tokens whose claims have the shapes
// the pruning treats apart (a string where an object is read, lists, nested
// objects), and when the active policy changes the claims it reads.
func TestKeptClaimsReused(t *testing.T) {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(7, 9))
	tokens := make([]token, 40)
	for i := range tokens {
		c := map[string]any{"sub": fmt.Sprintf("u%d", i), "exp": 1795423527, "iss": "https://idp.example"}
		switch i % 5 {
		case 0:
			c["groups"] = []any{"contractors", "ops"}
		case 1:
			c["groups"] = "contractors"
		case 2:
			c["org"] = map[string]any{"team": "red", "site": "a"}
		case 3:
			c["org"] = "red"
		}
		if i%3 == 0 {
			c["email"] = fmt.Sprintf("u%d@example", i)
		}
		tokens[i] = token{key: fmt.Sprintf("k%d", i), claims: c}
	}
	apis := []string{
		"/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution",
		"/temporal.api.workflowservice.v1.WorkflowService/TerminateWorkflowExecution",
		"/temporal.api.workflowservice.v1.WorkflowService/DescribeNamespace",
	}
	rec := &captured{}
	b, err := policy.LoadBundle("testdata/reads-claims")
	if err != nil {
		t.Fatal(err)
	}
	az, err := policy.NewAuthorizer(policy.Options{Recorder: rec, DecisionCacheSize: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := func(n int) {
		for range n {
			tk := tokens[rng.IntN(len(tokens))]
			c := &authorization.Claims{Subject: tk.claims["sub"].(string), AuthType: "jwt", Extensions: tk,
				Namespaces: map[string]authorization.Role{"payments": authorization.RoleWriter}}
			_, _ = az.Authorize(ctx, c, &authorization.CallTarget{APIName: apis[rng.IntN(len(apis))], Namespace: "payments"})
		}
	}
	calls(300) // the default policy: reads no claim
	if err := az.SetBundle(ctx, "claims", b); err != nil {
		t.Fatal(err)
	}
	calls(300) // reads groups and org.team
	if err := az.SetBundle(ctx, "claims", (*bundle.Bundle)(nil)); err != nil {
		t.Fatal(err)
	}
	calls(100) // the default policy again

	shared := &Logger{}
	hits := 0
	for i, e := range rec.events {
		if _, ok := shared.kept.get(e.Claims.Extensions.(token).key, e.JWTPaths); ok {
			hits++
		}
		got, gotErased, err1 := shared.input(e)
		want, wantErased, err2 := (&Logger{}).input(e) // computed for this event alone
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if got.Compare(want) != 0 || !slices.Equal(gotErased, wantErased) {
			t.Fatalf("event %d (token %s, claim paths %v):\nreused   %v erased %v\ncomputed %v erased %v",
				i, e.Claims.Extensions.(token).key, e.JWTPaths, got, gotErased, want, wantErased)
		}
		// And what the logger did before it reused anything.
		whole, err := e.InputValue()
		if err != nil {
			t.Fatal(err)
		}
		before, beforeErased := keepClaimsRead(whole, e.JWTPaths)
		if got.Compare(before) != 0 || !slices.Equal(gotErased, beforeErased) {
			t.Fatalf("event %d: %v erased %v; before this change %v erased %v", i, got, gotErased, before, beforeErased)
		}
	}
	if hits < len(rec.events)/2 {
		t.Errorf("only %d of %d events reused their token's kept claims", hits, len(rec.events))
	}
	t.Logf("%d events, %d reused their token's kept claims, all equal to the claims computed alone", len(rec.events), hits)
}
