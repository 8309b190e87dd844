package policy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy/grants"
	"github.com/temporal-opa/temporal-opa/policy/internal/projection"
)

// GrantDecision is the policy's decision on one grant operation
// (data.temporal.grants.decision).
type GrantDecision struct {
	Allow  bool   `json:"allow"`
	Reason string `json:"reason"`
	// ID identifies the decision-log event of the decision ("" when decisions
	// are not logged).
	ID string `json:"decision_id,omitempty"`
	// Input is the document the policy decided on.
	Input     map[string]any    `json:"input,omitempty"`
	Revisions map[string]string `json:"revisions,omitempty"`
}

// Decision-log paths of grant events.
const (
	// GrantDecisionPath decides grant operations.
	GrantDecisionPath = "data.temporal.grants.decision"
	// GrantEndedPath records the end of a grant by itself (its expiry), which
	// no call decided.
	GrantEndedPath = "temporal/grants/ended"
	// GrantAPIPrefix starts the Target.APIName of a grant operation's event:
	// temporal-opa/grants/approve.
	GrantAPIPrefix = "temporal-opa/grants/"
)

// GrantOperation is the grant operation an Event records (Event.GrantOperation):
// a request, approval, denial, revocation or break glass decided by the
// policy, or a grant's expiry (Operation "expire", no caller).
type GrantOperation struct {
	Operation string
	Grant     grants.Grant
}

// GrantEndedAfter is how long an ended grant (expired, revoked) is still shown
// to the policy (input.grants, state expired or revoked), so that a deny
// reason can name it.
const GrantEndedAfter = time.Hour

// SetGrants replaces the grants the Authorizer honours with gs: every grant
// the server follows, active or recently ended (an ended grant is named in
// deny reasons). A grant counts for a call from its NotBefore until its
// Expires, by the clock of the call, with no further SetGrants: decisions
// under a grant are never reused past its end, nor decisions without it past
// its start, since the grants a call sees are part of its cache key.
func (a *Authorizer) SetGrants(gs []grants.Grant) {
	a.grants.Store(newGrantIndex(gs))
}

// Grants returns the grants of the last SetGrants.
func (a *Authorizer) Grants() []grants.Grant {
	ix := a.grants.Load()
	if ix == nil {
		return nil
	}
	out := make([]grants.Grant, len(ix.all))
	for i, e := range ix.all {
		out[i] = e.g
	}
	return out
}

// grantIndex holds the grants of SetGrants for the call path: by the subject
// they name, and the claim subjects apart. It is immutable.
type grantIndex struct {
	all       []*indexedGrant // sorted by id
	bySubject map[string][]*indexedGrant
	byClaim   []*indexedGrant
	byID      map[string]*indexedGrant
}

// indexedGrant is a grant with its input.grants objects, one per state a
// call can see it in, built once.
type indexedGrant struct {
	g     grants.Grant
	key   string // identifies the grant's content (id, and a digest of its JSON)
	terms map[string]*ast.Term
	// alone is input.grants of a call that sees this grant alone, by state:
	// the common case costs no allocation.
	alone map[string]*projection.Grants
}

// Grant states a call sees in input.grants[_].state, beyond grants.State:
// an approved grant before its NotBefore is "scheduled".
const stateScheduled = "scheduled"

var callStates = []string{string(grants.StateActive), stateScheduled, string(grants.StateRequested), string(grants.StateExpired), string(grants.StateRevoked)}

func newGrantIndex(gs []grants.Grant) *grantIndex {
	if len(gs) == 0 {
		return nil
	}
	ix := &grantIndex{bySubject: map[string][]*indexedGrant{}, byID: map[string]*indexedGrant{}}
	for _, g := range gs {
		if g.ID == "" || ix.byID[g.ID] != nil {
			continue
		}
		e := &indexedGrant{g: g, terms: make(map[string]*ast.Term, len(callStates)), alone: make(map[string]*projection.Grants, len(callStates))}
		doc := grantDoc(g)
		raw, _ := json.Marshal(doc)
		e.key = g.ID + "\x00" + digest(raw)
		for _, st := range callStates {
			doc["state"] = st
			v, err := projection.JSONValue(doc)
			if err != nil {
				continue
			}
			e.terms[st] = ast.NewTerm(v)
			e.alone[st] = &projection.Grants{Key: grantKey(nil, e.key, st), Value: ast.NewTerm(ast.NewArray(e.terms[st]))}
		}
		ix.byID[g.ID] = e
		ix.all = append(ix.all, e)
	}
	slices.SortFunc(ix.all, func(x, y *indexedGrant) int { return strings.Compare(x.g.ID, y.g.ID) })
	for _, e := range ix.all {
		if e.g.Subject.Claim != "" {
			ix.byClaim = append(ix.byClaim, e)
		} else {
			ix.bySubject[e.g.Subject.Subject] = append(ix.bySubject[e.g.Subject.Subject], e)
		}
	}
	return ix
}

// grantDoc is a grant as the policy reads it (input.grants[_], input.grant),
// without its state.
func grantDoc(g grants.Grant) map[string]any {
	doc := map[string]any{
		"id":           g.ID,
		"subject":      subjectDoc(g.Subject),
		"namespace":    g.Namespace,
		"role":         g.Role,
		"apis":         stringsDoc(g.APIs),
		"not_before":   timeDoc(g.NotBefore),
		"expires":      timeDoc(g.Expires),
		"duration_ns":  json.Number(fmt.Sprint(int64(g.Duration()))),
		"reason":       g.Reason,
		"break_glass":  g.BreakGlass,
		"requested_by": identityDoc(&g.RequestedBy),
		"approved_by":  identityDoc(g.ApprovedBy),
		"state":        string(g.State),
	}
	return doc
}

func subjectDoc(s grants.Subject) map[string]any {
	return map[string]any{"subject": s.Subject, "issuer": s.Issuer, "claim": s.Claim, "value": s.Value}
}

func identityDoc(i *grants.Identity) any {
	if i == nil {
		return nil
	}
	return map[string]any{"subject": i.Subject, "issuer": i.Issuer}
}

func stringsDoc(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func timeDoc(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// callState is the state in which a call at now sees grant g; "" when the
// grant does not bear on calls (denied, or ended more than GrantEndedAfter ago).
func callState(g *grants.Grant, now time.Time) string {
	switch g.State {
	case grants.StateActive:
		switch {
		case now.Before(g.NotBefore):
			return stateScheduled
		case now.Before(g.Expires):
			return string(grants.StateActive)
		case now.Before(g.Expires.Add(GrantEndedAfter)):
			return string(grants.StateExpired)
		}
	case grants.StateRequested:
		if now.Before(g.Expires) {
			return string(grants.StateRequested)
		}
	case grants.StateRevoked:
		end := g.EndedAt
		if end.IsZero() {
			end = g.Expires
		}
		if now.Before(end.Add(GrantEndedAfter)) {
			return string(grants.StateRevoked)
		}
	case grants.StateExpired:
		if now.Before(g.Expires.Add(GrantEndedAfter)) {
			return string(grants.StateExpired)
		}
	}
	return ""
}

// forCall returns the grants of the caller with claims on namespace ns as a
// call at now sees them; nil when there are none.
func (ix *grantIndex) forCall(claims *authorization.Claims, ns string, now time.Time) *projection.Grants {
	if ix == nil || claims == nil {
		return nil
	}
	var (
		first      *indexedGrant
		firstState string
		terms      []*ast.Term
		key        []byte
	)
	add := func(e *indexedGrant) {
		if e.g.Namespace != ns {
			return
		}
		st := callState(&e.g, now)
		if st == "" || !e.g.Subject.Matches(claims) {
			return
		}
		if first == nil {
			first, firstState = e, st
			return
		}
		if terms == nil {
			terms = append(terms, first.terms[firstState])
			key = []byte(grantKey(key, first.key, firstState))
		}
		terms = append(terms, e.terms[st])
		key = []byte(grantKey(key, e.key, st))
	}
	if claims.Subject != "" {
		for _, e := range ix.bySubject[claims.Subject] {
			add(e)
		}
	}
	for _, e := range ix.byClaim {
		add(e)
	}
	switch {
	case first == nil:
		return nil
	case terms == nil:
		return first.alone[firstState]
	}
	return &projection.Grants{Key: string(key), Value: ast.NewTerm(ast.NewArray(terms...))}
}

// grantKey appends a grant's key and the state a call sees it in to key.
func grantKey(key []byte, grantKey, state string) string {
	key = append(append(key, grantKey...), 0)
	return string(append(append(key, state...), 0))
}

// DecideGrant decides the grant operation op (grants.OpRequest, ...) of the
// caller with claims on grant g (as stored, or as requested), with the
// policy's data.temporal.grants.decision, and records the decision (an Event
// with GrantOperation set). Whatever the policy says, a caller without a
// verified subject is never allowed, nor one who is the grant's requester or
// is among its subject to approve or deny it (four eyes). Errors (no grant
// policy, an evaluation error) deny.
func (a *Authorizer) DecideGrant(ctx context.Context, claims *authorization.Claims, op string, g grants.Grant) (GrantDecision, error) {
	start := time.Now()
	gen := a.current.Load()
	in, doc, err := grantInput(claims, op, g)
	var d GrantDecision
	switch why := fourEyes(claims, op, &g); {
	case err != nil:
		err = &EvalError{Code: CodeInvalidInput, Err: err}
	case why != "":
		d.Reason = why // whatever the policy would say
	default:
		d, err = gen.decideGrant(ctx, in)
	}
	if err != nil {
		d = GrantDecision{Reason: denyReason(err)}
	}
	d.Input, d.Revisions = doc, maps.Clone(gen.revisions)
	if rec := a.opts.Recorder; rec != nil {
		d.ID = a.ids.next()
		e := &Event{
			ID:             d.ID,
			Time:           start,
			Claims:         claims,
			Target:         authorization.CallTarget{APIName: GrantAPIPrefix + op, Namespace: g.Namespace},
			Allow:          d.Allow,
			Reason:         d.Reason,
			Err:            err,
			Mode:           a.opts.Mode,
			Generation:     gen.id,
			Revisions:      gen.revisions,
			Peer:           peerAddr(ctx),
			GrantOperation: &GrantOperation{Operation: op, Grant: g},
			input:          in,
		}
		e.Duration = time.Since(start)
		rec.Record(e)
		if !d.Allow && a.idInReason {
			d.Reason += decisionSuffix(d.ID)
		}
	}
	return d, err
}

// fourEyes is why the caller may not take op on g whatever the policy says;
// "" when it may.
func fourEyes(claims *authorization.Claims, op string, g *grants.Grant) string {
	caller := grants.IdentityOf(claims)
	if caller.Subject == "" {
		return "grant operations need a caller with a verified subject"
	}
	if op != grants.OpApprove && op != grants.OpDeny {
		return ""
	}
	if caller.Same(g.RequestedBy) {
		return fmt.Sprintf("%s requested grant %s and cannot %s it: another person must (four eyes)", caller, g.ID, op)
	}
	if g.Subject.Covers(caller, claims) {
		return fmt.Sprintf("%s would hold grant %s and cannot %s it: another person must (four eyes)", caller, g.ID, op)
	}
	return ""
}

// grantInput is the input document of a grant operation: the caller's
// claims, a target on the grant's namespace (so that the default policy's
// held_roles are the caller's roles there), the operation and the grant.
func grantInput(claims *authorization.Claims, op string, g grants.Grant) (ast.Value, map[string]any, error) {
	if !slices.Contains(grants.Operations, op) {
		return nil, nil, fmt.Errorf("unknown grant operation %q", op)
	}
	in, err := projection.Whole(claims, &authorization.CallTarget{APIName: GrantAPIPrefix + op, Namespace: g.Namespace}, nil, false)
	if err != nil {
		return nil, nil, err
	}
	obj := in.(ast.Object)
	// A grant operation is on the grant's namespace, as an admin API is.
	tgt := obj.Get(ast.StringTerm("target")).Value.(ast.Object)
	tgt.Insert(ast.StringTerm("scope"), ast.StringTerm("namespace"))
	tgt.Insert(ast.StringTerm("access"), ast.StringTerm("admin"))
	caller := grants.IdentityOf(claims)
	gd := grantDoc(g)
	extra := map[string]any{
		"operation": op,
		"grant":     gd,
		"caller": map[string]any{
			"subject":      caller.Subject,
			"issuer":       caller.Issuer,
			"is_requester": caller.Subject != "" && caller.Same(g.RequestedBy),
			"is_subject":   caller.Subject != "" && g.Subject.Covers(caller, claims),
		},
	}
	for k, v := range extra {
		x, err := projection.JSONValue(v)
		if err != nil {
			return nil, nil, err
		}
		obj.Insert(ast.StringTerm(k), ast.NewTerm(x))
	}
	doc, err := projection.JSON(obj)
	if err != nil {
		return nil, nil, err
	}
	return obj, doc, nil
}

// decideGrant evaluates data.temporal.grants.decision on input.
func (g *generation) decideGrant(ctx context.Context, input ast.Value) (GrantDecision, error) {
	if g.grantBody == nil {
		return GrantDecision{}, &EvalError{Code: CodeUndefinedDecision, Err: errors.New(GrantDecisionPath + " is not defined by the active policy")}
	}
	rs, err := g.run(ctx, g.grantBody, input, nil)
	if err != nil {
		return GrantDecision{}, err
	}
	if len(rs) != 1 || rs[0][g.grantVar] == nil {
		return GrantDecision{}, &EvalError{Code: CodeUndefinedDecision, Err: errors.New(GrantDecisionPath + " is undefined for this input")}
	}
	d, err := decisionOf(GrantDecisionPath, rs[0][g.grantVar].Value)
	if err != nil {
		return GrantDecision{}, err
	}
	d = capReason(d)
	return GrantDecision{Allow: d.allow, Reason: d.reason}, nil
}

// RecordGrantEnded records the end of grant g that no call decided (it
// expired): a decision-log event at GrantEndedPath, and the metrics.
func (a *Authorizer) RecordGrantEnded(g grants.Grant) {
	rec := a.opts.Recorder
	if rec == nil {
		return
	}
	gen := a.current.Load()
	now := time.Now()
	rec.Record(&Event{
		ID:             a.ids.next(),
		Time:           now,
		Target:         authorization.CallTarget{APIName: GrantAPIPrefix + "expire", Namespace: g.Namespace},
		Allow:          false,
		Reason:         fmt.Sprintf("grant %s (%s for %s) expired at %s", g.ID, g.Access(), g.Subject, g.Expires.UTC().Format(time.RFC3339)),
		Mode:           a.opts.Mode,
		Generation:     gen.id,
		Revisions:      gen.revisions,
		GrantOperation: &GrantOperation{Operation: "expire", Grant: g},
	})
}

// grantOf returns the grant of the last SetGrants with id.
func (a *Authorizer) grantOf(id string) (grants.Grant, bool) {
	ix := a.grants.Load()
	if ix == nil {
		return grants.Grant{}, false
	}
	e := ix.byID[id]
	if e == nil {
		return grants.Grant{}, false
	}
	return e.g, true
}

// digest is a short hex digest of b, for cache keys.
func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// grantPtr is the grant with id of the last SetGrants; nil for "" or an
// unknown id.
func (a *Authorizer) grantPtr(id string) *grants.Grant {
	if id == "" {
		return nil
	}
	g, ok := a.grantOf(id)
	if !ok {
		return nil
	}
	return &g
}

// addGrantRoles adds to out the roles of the caller's time-bound grants in
// effect at now, each as a Grant whose rule is "grant <id>".
func (a *Authorizer) addGrantRoles(out *Roles, claims *authorization.Claims, now time.Time) {
	ix := a.grants.Load()
	if ix == nil || claims == nil {
		return
	}
	for _, e := range ix.all {
		bit, ok := roleRank[e.g.Role]
		if !ok || !e.g.InEffect(now) || !e.g.Subject.Matches(claims) {
			continue
		}
		out.Namespaces[e.g.Namespace] |= bit
		out.Granted = append(out.Granted, Grant{Role: e.g.Role, Namespace: e.g.Namespace, Rule: "grant " + e.g.ID})
	}
}

// compileGrantQuery compiles the query of GrantDecisionPath; a nil body when
// the policy does not define it.
func compileGrantQuery(c *ast.Compiler) (ast.Body, ast.Var, error) {
	ref := ast.MustParseRef(GrantDecisionPath)
	if len(c.GetRules(ref)) == 0 {
		return nil, "", nil
	}
	q, err := ast.ParseBodyWithOpts(GrantDecisionPath+" = _", ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, "", err
	}
	body, err := c.QueryCompiler().Compile(q)
	if err != nil {
		return nil, "", err
	}
	var v ast.Var
	ast.WalkVars(body, func(x ast.Var) bool {
		if x.IsWildcard() {
			v = x
		}
		return false
	})
	return body, v, nil
}

// grantAPIs are the calls a grant operation makes on the grants namespace;
// the grant service's frontend interceptor decides each with DecideGrant.
var grantAPIs = map[string]bool{
	"/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution":      true,
	"/temporal.api.workflowservice.v1.WorkflowService/UpdateWorkflowExecution":     true,
	"/temporal.api.workflowservice.v1.WorkflowService/PollWorkflowExecutionUpdate": true,
	"/temporal.api.workflowservice.v1.WorkflowService/ListWorkflowExecutions":      true,
	"/temporal.api.workflowservice.v1.WorkflowService/CountWorkflowExecutions":     true,
	"/temporal.api.workflowservice.v1.WorkflowService/DescribeWorkflowExecution":   true,
}

// isInternalPrincipal reports Temporal's own internal principal (the
// internal-frontend's callers), which the claim mappers never produce.
func isInternalPrincipal(c *authorization.Claims) bool {
	return c != nil && c.AuthType == authorization.InternalPrincipalType
}

// grantGate decides a call on the grants namespace by a caller other than
// Temporal's internal principal: a grant operation's call goes on to the
// frontend interceptor that decides it with DecideGrant; nothing else is
// allowed there, whatever the policy's roles say.
func grantGate(claims *authorization.Claims, target *authorization.CallTarget) outcome {
	method := target.APIName[strings.LastIndexByte(target.APIName, '/')+1:]
	if _, ok := target.Request.(*workflowservice.RespondWorkflowTaskCompletedRequest); ok {
		// A command of a workflow of another namespace aimed at this one
		// (system.enableCrossNamespaceCommands): a child grant workflow would
		// skip the grant service's checks.
		return outcome{d: decided{reason: fmt.Sprintf("namespace %q holds the access grants: it is changed only through `temporal-opa grant`, not by workflows of other namespaces", target.Namespace)}}
	}
	switch {
	case !grantAPIs[target.APIName]:
		return outcome{d: decided{reason: fmt.Sprintf("namespace %q holds the access grants: %s is not a grant operation; use `temporal-opa grant`", target.Namespace, method)}}
	case claims == nil || claims.Subject == "":
		return outcome{d: decided{reason: fmt.Sprintf("namespace %q holds the access grants: grant operations need a caller with a verified subject", target.Namespace)}}
	}
	return outcome{d: decided{allow: true, reason: "a grant operation, decided by " + GrantDecisionPath + " in the frontend"}}
}
