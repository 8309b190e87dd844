package e2e

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
)

// oracle recomputes decisions offline, with the repository's own claim
// mapper (every key the issuer ever published, the clock set to the call's
// time) and one policy.Authorizer per bundle revision (the signed tarball
// the bundle server served, read back).
type oracle struct {
	mu     sync.Mutex
	now    time.Time
	mapper *claimmapper.Mapper
	authz  map[string]*policy.Authorizer
	order  []string             // revision names in publication order
	at     map[string]time.Time // when each was published
}

func (s *soak) newOracle() *oracle {
	t := s.t
	o := &oracle{authz: map[string]*policy.Authorizer{}, at: map[string]time.Time{}}
	jwks, err := s.issuer.allKeysJWKS()
	if err != nil {
		t.Fatal(err)
	}
	file := s.write("oracle-jwks.json", string(jwks))
	o.mapper, err = claimmapper.New(context.Background(), claimmapper.Config{Issuer: s.issuer.url, SkipDiscovery: true,
		JWKSFiles: []string{file}, CacheSize: -1}, claimmapper.WithClock(func() time.Time { return o.now }))
	if err != nil {
		t.Fatalf("oracle claim mapper: %v", err)
	}
	t.Cleanup(func() { _ = o.mapper.Close() })
	s.revMu.Lock()
	revs := append([]publishedRevision(nil), s.revisions...)
	s.revMu.Unlock()
	for _, r := range revs {
		b, err := bundle.NewReader(bytes.NewReader(r.tarball)).WithSkipBundleVerification(true).Read()
		if err != nil {
			t.Fatalf("oracle: read %s: %v", r.name, err)
		}
		if b.Manifest.Revision != r.name {
			t.Fatalf("oracle: tarball of %s has revision %q", r.name, b.Manifest.Revision)
		}
		a, err := policy.NewAuthorizer(policy.Options{}, map[string]*bundle.Bundle{"authz": &b})
		if err != nil {
			t.Fatalf("oracle: authorizer of %s: %v", r.name, err)
		}
		o.authz[r.name] = a
		o.order = append(o.order, r.name)
		o.at[r.name] = r.at
	}
	return o
}

// accepts reports whether the claim mapper accepts token at time at, and the
// claims it maps it to.
func (o *oracle) accepts(token string, at time.Time) (*authorization.Claims, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.now = at
	c, err := o.mapper.GetClaims(&authorization.AuthInfo{AuthToken: "Bearer " + token})
	return c, err == nil
}

// decide is revision rev's decision on claims calling op in ns.
func (o *oracle) decide(rev string, claims *authorization.Claims, op, ns string) (string, error) {
	a := o.authz[rev]
	if a == nil {
		return "", fmt.Errorf("no revision %q", rev)
	}
	d, err := a.Decide(context.Background(), claims, &authorization.CallTarget{APIName: apiPath(op), Namespace: ns})
	if err != nil {
		return "", err
	}
	if d.Allow {
		return outAllowed, nil
	}
	return outDenied, nil
}

// apiPath is the gRPC method of op as Temporal names it in a CallTarget.
func apiPath(op string) string {
	svc := "temporal.api.workflowservice.v1.WorkflowService"
	return "/" + svc + "/" + op
}

// publishedBy are the revisions published before t.
func (o *oracle) publishedBy(t time.Time) []string {
	var out []string
	for _, r := range o.order {
		if o.at[r].Before(t) {
			out = append(out, r)
		}
	}
	return out
}

// candidates are the revisions that may have been active on fe during
// [start, end]: from the last /status reading before start to the first
// after end (a switch between two readings may fall on either side);
// outside the readings (a frontend restarting), any revision published by
// end.
func (fe *soakFrontend) candidates(start, end time.Time, published []string) []string {
	fe.mu.Lock()
	tl := fe.timeline
	fe.mu.Unlock()
	first := sort.Search(len(tl), func(i int) bool { return tl[i].received.After(start) }) - 1
	last := sort.Search(len(tl), func(i int) bool { return !tl[i].sent.Before(end) })
	if first < 0 || last >= len(tl) {
		return published // outside the readings: any revision
	}
	seen := map[string]bool{}
	var out []string
	for _, smp := range tl[first : last+1] {
		if smp.rev != "" && !seen[smp.rev] {
			seen[smp.rev] = true
			out = append(out, smp.rev)
		}
	}
	return out
}

// verdict is the oracle's judgement of one decided call.
type verdict struct {
	expected map[string]bool // the outcomes the policy allows for it
	window   string          // "" or the documented window that widened expected
	wrong    string          // why the client's outcome is wrong; "" when right
}

// judge recomputes c's decision. shift, for the self-check, attributes
// every call to the revision after the one active (a deliberately wrong
// timeline): it must produce wrong decisions.
func (s *soak) judge(o *oracle, c *callRecord, events map[string]loggedEvent, idx eventIndex, shift bool) verdict {
	v := verdict{expected: map[string]bool{}}
	cands := s.fes[c.fe].candidates(c.start, c.end, o.publishedBy(c.end))
	if shift {
		cands = o.shifted(cands)
	}
	var windows []string
	if len(cands) > 1 {
		windows = append(windows, "bundle switch")
	}
	// The token as the claim mapper judges it at the call's start and end:
	// one expiring during the call may be accepted or refused.
	var claims *authorization.Claims
	for _, at := range []time.Time{c.start, c.end} {
		if cl, ok := o.accepts(c.token, at); ok {
			claims = cl
		} else {
			v.expected[outRefused] = true
		}
	}
	if v.expected[outRefused] && claims != nil {
		windows = append(windows, "token expiry")
	}
	if claims != nil {
		for _, rev := range cands {
			d, err := o.decide(rev, claims, c.op, c.ns)
			if err != nil {
				v.wrong = "oracle: " + err.Error()
				return v
			}
			v.expected[d] = true
		}
	}
	if len(v.expected) > 1 {
		v.window = strings.Join(windows, "+")
	}
	if !v.expected[c.outcome] {
		v.wrong = fmt.Sprintf("%s, the policy says %s (revisions %v)", c.outcome, keys(v.expected), cands)
		return v
	}
	// The decision log says which revision decided the call: a denial
	// names its decision id; an allowed call's events are found by
	// instance, API, subject and time. That revision must be a candidate
	// and decide as the client saw.
	if claims == nil || c.outcome == outRefused {
		return v // refused: no decision, no event
	}
	var ids []string
	if c.decisionID != "" {
		ids = []string{c.decisionID}
	} else {
		// Any instance of the frontend: a call in flight at a kill may be
		// retried by the SDK on the next one.
		fe := s.fes[c.fe]
		fe.mu.Lock()
		insts := append([]*feInstance(nil), fe.instances...)
		fe.mu.Unlock()
		for _, inst := range insts {
			ids = append(ids, idx.find(inst.name, c.op, claims.Subject, c.start, c.end)...)
		}
	}
	for _, id := range ids {
		ev, ok := events[id]
		if !ok {
			continue
		}
		c.eventFound = true
		if !contains(cands, ev.revision) {
			v.wrong = fmt.Sprintf("decided by %s, active then: %v", ev.revision, cands)
			return v
		}
		if d, _ := o.decide(ev.revision, claims, c.op, c.ns); d != c.outcome || ev.allow != (c.outcome == outAllowed) {
			v.wrong = fmt.Sprintf("%s by %s, which decides %s (logged allow=%v)", c.outcome, ev.revision, d, ev.allow)
			return v
		}
	}
	return v
}

// shifted maps each revision to the next one published (the last stays).
func (o *oracle) shifted(revs []string) []string {
	var out []string
	for _, r := range revs {
		i := indexOf(o.order, r)
		if i >= 0 && i+1 < len(o.order) {
			r = o.order[i+1]
		}
		out = append(out, r)
	}
	return out
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func contains(xs []string, x string) bool { return indexOf(xs, x) >= 0 }

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

// jsonPath is where SOAK_REPORT points, relative paths from the package
// directory made absolute for the message.
func jsonPath(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	return abs
}
