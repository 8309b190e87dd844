package policy

import (
	"crypto/rand"
	"encoding/hex"
	mrand "math/rand/v2"
	"net"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy/grants"
	"github.com/temporal-opa/temporal-opa/policy/internal/projection"
)

// A Recorder receives every decision of an [Authorizer] once it is made: the
// audit trail (package policy/decisionlog), metrics, a shadow policy. Record runs
// on the caller's goroutine for every Temporal call, cache hits included: it must
// not block and must not keep more than a few hundred nanoseconds; anything
// heavier (JSON, masking, I/O) belongs on a goroutine of the recorder's own.
type Recorder interface {
	Record(e *Event)
}

// A RequestRecorder is a Recorder that needs the call's request body (a shadow
// policy that reads input.request): the Authorizer then hands it a copy in
// Event.Request, made on the call path only while NeedsRequest is true.
type RequestRecorder interface {
	Recorder
	NeedsRequest() bool
}

// A DecisionLogger is a Recorder that keeps an audit trail of decisions: the
// Authorizer then ends a denied call's reason with its decision id, so that a
// caller can point an operator at the event.
type DecisionLogger interface {
	Recorder
	LogsDecisions() bool
}

func logsDecisions(r Recorder) bool {
	dl, ok := r.(DecisionLogger)
	return ok && dl.LogsDecisions()
}

// Recorders returns a Recorder that hands every event to each of rs in turn
// (nil ones left out), and every activated policy to those that are
// PolicyObservers; nil when there is none.
func Recorders(rs ...Recorder) Recorder {
	var out multiRecorder
	for _, r := range rs {
		if r != nil {
			out = append(out, r)
		}
	}
	switch len(out) {
	case 0:
		return nil
	case 1:
		return out[0]
	}
	return out
}

type multiRecorder []Recorder

func (m multiRecorder) Record(e *Event) {
	for _, r := range m {
		r.Record(e)
	}
}

func (m multiRecorder) PolicyActivated(p ActivePolicy) {
	for _, r := range m {
		if o, ok := r.(PolicyObserver); ok {
			o.PolicyActivated(p)
		}
	}
}

func (m multiRecorder) LogsDecisions() bool {
	for _, r := range m {
		if logsDecisions(r) {
			return true
		}
	}
	return false
}

func (m multiRecorder) NeedsRequest() bool {
	for _, r := range m {
		if rr, ok := r.(RequestRecorder); ok && rr.NeedsRequest() {
			return true
		}
	}
	return false
}

// A PolicyObserver is a Recorder that also wants every activated policy: the
// decision logger reads the operator's system.log mask and drop rules from it.
type PolicyObserver interface {
	PolicyActivated(p ActivePolicy)
}

// ActivePolicy is a policy that was just activated.
type ActivePolicy struct {
	Generation uint64
	Revisions  map[string]string // bundle name to revision; do not modify
	// UsesRequest reports that the policy reads input.request.
	UsesRequest bool
	// System holds the source of the activated bundles' modules under data.system
	// (such as system.log mask and drop rules), by file name. They are not part of
	// the authorization policy: the input schema of a call does not apply to them.
	System map[string][]byte
}

// Event is one decision as a Recorder receives it. Its fields must not be
// modified: the same Event may go to several recorders.
type Event struct {
	// ID identifies the decision (a UUID). A denied call's reason ends with it.
	ID string
	// Time is when the call reached the Authorizer; Duration how long deciding took.
	Time     time.Time
	Duration time.Duration
	// EvalDuration is the policy evaluation's own time; 0 when the decision came
	// from the cache.
	EvalDuration time.Duration

	// Claims are the caller's claims as the claim mapper gave them (nil for a
	// call without a token); Target is the call, without its request body.
	Claims *authorization.Claims
	Target authorization.CallTarget

	// Allow is the policy's decision; Reason what the caller is told for a
	// deny (ending with the decision id), the policy's own reason for an allow
	// (the caller is told none). At most MaxReasonBytes come from the policy.
	// In dry-run mode the call was allowed whatever Allow says.
	Allow  bool
	Reason string
	// GrantedRoles are the roles the policy's role rules granted the caller
	// for the call (Decision.GrantedRoles). Shared with the decision cache: do
	// not modify.
	GrantedRoles []Grant
	// Grant is the time-bound access grant that allowed the call (the
	// decision's "grant"); nil when none did.
	Grant *grants.Grant
	// GrantOperation is set on the event of a grant operation (a request,
	// approval, denial, revocation or break glass, decided by
	// Authorizer.DecideGrant) or of a grant's expiry (RecordGrantEnded); nil
	// on the events of Temporal calls.
	GrantOperation *GrantOperation
	// Mode is the Authorizer's mode: ModeEnforce or ModeDryRun.
	Mode string
	// Request is a copy of the call's request body, only for a RequestRecorder
	// that needs it.
	Request any
	// Err is the *EvalError of a call the policy could not decide (it is denied).
	Err error
	// Cached reports a decision taken from the decision cache.
	Cached bool
	// Generation and Revisions identify the policy that decided.
	Generation uint64
	Revisions  map[string]string

	// Peer is the caller's network address, when the call carried one.
	Peer net.Addr

	// JWTPaths lists the token claims the deciding policy reads, as JSON
	// pointers below /input/claims/jwt ("*" for every key or element;
	// "/input/claims/jwt" itself when it reads them whole); nil when it reads
	// none. The decision logger keeps only these claims (decision_logs.keep_claims
	// keeps them all). Shared by the events of a policy generation: do not modify.
	JWTPaths []string

	input        ast.Value          // the document evaluated (for a cached decision, only when it carries the request); else nil
	grants       *projection.Grants // the caller's grants the call saw (input.grants); nil for none
	request      bool               // input carries input.request (the policy reads it)
	requestPaths []string
}

// Input returns the input document of the decision in its JSON form: the
// document the policy evaluated, with the token's claims in input.claims.jwt
// and, when the policy reads it, input.request. It is built on demand: call it
// off the request path.
func (e *Event) Input() (map[string]any, error) {
	v, err := e.InputValue()
	if err != nil {
		return nil, err
	}
	return projection.JSON(v)
}

// InputValue is Input as an OPA value. It must not be modified.
func (e *Event) InputValue() (ast.Value, error) {
	// The claims whole, whatever the policy read of them (never the token
	// itself); the request values as the policy read them.
	if e.GrantOperation != nil && e.input != nil {
		return e.input, nil // a grant operation's input, as the policy decided on it
	}
	v, err := projection.Whole(e.Claims, &e.Target, e.grants, false)
	if err != nil {
		return nil, err
	}
	e.withRequest(v)
	return v, nil
}

// InputValueWithJWT is InputValue with jwt as input.claims.jwt (nil: left
// out) instead of the token's claims. ok is false when it does not apply (a
// grant operation, a call without claims): use InputValue.
func (e *Event) InputValueWithJWT(jwt ast.Value) (v ast.Value, ok bool, err error) {
	if e.GrantOperation != nil || e.Claims == nil {
		return nil, false, nil
	}
	v, err = projection.WholeWithJWT(e.Claims, &e.Target, e.grants, jwt)
	if err != nil {
		return nil, true, err
	}
	e.withRequest(v)
	return v, true, nil
}

// withRequest adds the request values the policy read (from the evaluated
// input) to v, a whole input document.
func (e *Event) withRequest(v ast.Value) {
	if e.input == nil {
		return
	}
	in := e.input.(ast.Object)
	if req := in.Get(keyRequest); req != nil {
		v.(ast.Object).Insert(keyRequest, req)
		v.(ast.Object).Insert(keyRequestType, in.Get(keyRequestType))
	}
}

// Issuer is the configured issuer that verified the caller's token
// (input.claims.issuer); "" without one. Its values are bounded by the
// configuration: only tokens of configured issuers reach the authorizer.
func (e *Event) Issuer() string {
	if e.Claims == nil {
		return ""
	}
	return projection.IssuerOf(e.Claims.Extensions)
}

// HasRequest reports whether the input carries input.request (the deciding
// policy reads the request body).
func (e *Event) HasRequest() bool { return e.request }

// RequestPaths lists the fields of the request that input.request holds, as
// JSON pointers ("/input/request/workflow_type/name"; "*" for every key or
// element): the fields the deciding policy reads, the only ones the Authorizer
// builds. Nil when input.request holds the whole request or is absent.
func (e *Event) RequestPaths() []string {
	if !e.request {
		return nil
	}
	return e.requestPaths
}

// idSource hands out decision ids from ChaCha8 generators seeded from
// crypto/rand: a random id per call without a system call per call.
type idSource struct{ pool sync.Pool }

func newIDSource() *idSource {
	return &idSource{pool: sync.Pool{New: func() any {
		var seed [32]byte
		_, _ = rand.Read(seed[:]) // never fails (crypto/rand)
		return mrand.NewChaCha8(seed)
	}}}
}

// next returns a random (version 4) UUID.
func (ids *idSource) next() string {
	var b [16]byte
	src := ids.pool.Get().(*mrand.ChaCha8)
	_, _ = src.Read(b[:])
	ids.pool.Put(src)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:])
}

var (
	keyRequest     = ast.StringTerm("request")
	keyRequestType = ast.StringTerm("request_type")
)
