// Package grants defines time-bound access grants: a role (or a list of APIs)
// on one namespace, held by a subject from not-before until expiry, requested
// by one verified caller and approved by another. The policy reads the
// grants a caller holds as input.grants and decides with them; who may
// request, approve, deny, revoke and break glass is decided by the policy too
// (data.temporal.grants.decision).
//
// The package holds the grant itself ([Grant]), how a grant names who holds
// it ([Subject]) and matches a caller's verified claims, and the verified
// identity of the people and workloads that request and approve grants
// ([Identity]). Where grants are stored and how every frontend follows them
// is the server's business; the policy package's Authorizer takes the grants
// in effect with SetGrants.
package grants

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.temporal.io/server/common/authorization"
)

// State is where a grant is in its life.
type State string

// States of a grant. A grant is requested, then approved (active), denied,
// revoked or left to expire; a break-glass grant is active from its request.
const (
	StateRequested State = "requested" // waiting for an approval
	StateActive    State = "active"    // approved (or break glass): honoured from NotBefore until Expires
	StateDenied    State = "denied"    // an approver refused it; it never was active
	StateRevoked   State = "revoked"   // ended before its expiry
	StateExpired   State = "expired"   // past its expiry (or a request never approved in time)
)

// Operations on grants, each decided by the policy (data.temporal.grants.decision).
const (
	OpRequest    = "request"     // ask for a grant, to be approved by someone else
	OpBreakGlass = "break_glass" // a grant active at once, without a second person, loudly
	OpApprove    = "approve"     // make a requested grant active (or approve a break-glass grant after the fact)
	OpDeny       = "deny"        // refuse a requested grant
	OpRevoke     = "revoke"      // end a grant before its expiry
	OpList       = "list"        // read the grants
)

// Operations lists every operation, in the order a person meets them.
var Operations = []string{OpRequest, OpBreakGlass, OpApprove, OpDeny, OpRevoke, OpList}

// Roles a grant may give, as the permissions claim names them.
var Roles = []string{"worker", "read", "write", "admin"}

// Grant is one time-bound access grant. Its JSON form is the one the policy
// reads (input.grants, input.grant) and the one the server stores.
type Grant struct {
	ID        string  `json:"id"`
	Subject   Subject `json:"subject"`
	Namespace string  `json:"namespace"`
	// Role is worker, read, write or admin on Namespace; empty when the grant
	// names APIs instead.
	Role string `json:"role,omitempty"`
	// APIs are the methods the grant allows on Namespace, by name
	// (StartWorkflowExecution, as input.target.method); empty when it gives a role.
	APIs       []string  `json:"apis,omitempty"`
	NotBefore  time.Time `json:"not_before"`
	Expires    time.Time `json:"expires"`
	Reason     string    `json:"reason"` // the ticket or incident it is for
	BreakGlass bool      `json:"break_glass,omitempty"`
	State      State     `json:"state"`

	RequestedBy Identity  `json:"requested_by"`
	RequestedAt time.Time `json:"requested_at"`
	// ApprovedBy is the approver; nil until approved (a break-glass grant is
	// active without one, and asks for one after the fact).
	ApprovedBy *Identity `json:"approved_by,omitempty"`
	ApprovedAt time.Time `json:"approved_at,omitzero"`
	// EndedBy denied or revoked the grant; EndReason says why.
	EndedBy   *Identity `json:"ended_by,omitempty"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	EndReason string    `json:"end_reason,omitempty"`
}

// Subject names who holds a grant: one caller by its verified subject (the
// token's sub, a SPIFFE ID, a Kubernetes service account
// system:serviceaccount:<ns>:<name>, a client certificate's SPIFFE ID or common
// name), or every caller whose token claim Claim holds Value (a group). Issuer,
// when set, must be the issuer of the caller's token.
type Subject struct {
	Subject string `json:"subject,omitempty"`
	Issuer  string `json:"issuer,omitempty"`
	Claim   string `json:"claim,omitempty"`
	Value   string `json:"value,omitempty"`
}

// Identity is a verified caller as the server saw it: who requested,
// approved, denied or revoked a grant.
type Identity struct {
	Subject  string `json:"subject"`
	Issuer   string `json:"issuer,omitempty"`
	AuthType string `json:"auth_type,omitempty"` // jwt or tls
}

// String names the identity for people: the subject, with its issuer.
func (i Identity) String() string {
	if i.Issuer == "" {
		return i.Subject
	}
	return i.Subject + " (" + i.Issuer + ")"
}

// Same reports whether two identities are the same caller.
func (i Identity) Same(o Identity) bool {
	return i.Subject == o.Subject && i.Issuer == o.Issuer
}

// IdentityOf is the verified identity of claims; its Subject is empty for a
// caller without claims or without a subject.
func IdentityOf(c *authorization.Claims) Identity {
	if c == nil {
		return Identity{}
	}
	return Identity{Subject: c.Subject, Issuer: issuerOf(c.Extensions), AuthType: c.AuthType}
}

// String names the subject for people: "alice", "alice (https://idp)",
// "groups=sre".
func (s Subject) String() string {
	var out string
	if s.Claim != "" {
		out = s.Claim + "=" + s.Value
	} else {
		out = s.Subject
	}
	if s.Issuer != "" {
		out += " (" + s.Issuer + ")"
	}
	return out
}

// Matches reports whether the caller with claims holds grants given to s.
func (s Subject) Matches(c *authorization.Claims) bool {
	if c == nil {
		return false
	}
	if s.Issuer != "" && issuerOf(c.Extensions) != s.Issuer {
		return false
	}
	if s.Claim == "" {
		return s.Subject != "" && c.Subject == s.Subject
	}
	return claimHolds(tokenClaims(c.Extensions), s.Claim, s.Value)
}

// Covers reports whether the identity i is (or is among) the subject s: the
// same subject, or, for a claim subject, a caller whose claims (c, the
// caller's own claims) hold the value. Four eyes: an approver s covers may not
// approve.
func (s Subject) Covers(i Identity, c *authorization.Claims) bool {
	if s.Claim == "" {
		return s.Subject == i.Subject && (s.Issuer == "" || s.Issuer == i.Issuer)
	}
	return s.Matches(c)
}

// claimHolds reports whether the token claim name (a dotted path, such as
// realm_access.roles) is value or a list holding it.
func claimHolds(claims map[string]any, name, value string) bool {
	var v any = claims
	for part := range strings.SplitSeq(name, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = m[part]; !ok {
			return false
		}
	}
	switch x := v.(type) {
	case string:
		return x == value
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok && s == value {
				return true
			}
		}
	case []string:
		return slices.Contains(x, value)
	}
	return false
}

type tokenClaimer interface{ TokenClaims() map[string]any }

func tokenClaims(ext any) map[string]any {
	switch e := ext.(type) {
	case tokenClaimer:
		return e.TokenClaims()
	case map[string]any:
		return e
	}
	return nil
}

type issuerer interface{ Issuer() string }

func issuerOf(ext any) string {
	if i, ok := ext.(issuerer); ok {
		return i.Issuer()
	}
	return ""
}

// Limits on a grant's fields.
const (
	MaxReasonBytes = 512
	MaxAPIs        = 32
	// MaxDuration bounds any grant, whatever the policy allows: a grant is
	// temporary access.
	MaxDuration = 30 * 24 * time.Hour
)

var (
	idPattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	apiPattern = regexp.MustCompile(`^[A-Z][A-Za-z0-9]{0,127}$`)
)

// ValidID reports whether id can name a grant: 1-63 lower-case letters,
// digits and dashes, starting with a letter or digit.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// Validate checks the fields a request sets: an error says which field is
// wrong and how to fix it.
func (g *Grant) Validate() error {
	var errs []error
	if !ValidID(g.ID) {
		errs = append(errs, fmt.Errorf("id %q: use 1-63 lower-case letters, digits and dashes", g.ID))
	}
	if g.Subject.Claim == "" && g.Subject.Subject == "" {
		errs = append(errs, errors.New("subject: name a subject (a token's sub, a SPIFFE ID) or a claim and its value (groups=sre)"))
	}
	if g.Subject.Claim != "" && (g.Subject.Value == "" || g.Subject.Subject != "") {
		errs = append(errs, errors.New("subject: a claim subject needs a value and no subject"))
	}
	if g.Namespace == "" {
		errs = append(errs, errors.New("namespace: name the namespace the grant is for"))
	}
	switch {
	case g.Role == "" && len(g.APIs) == 0:
		errs = append(errs, fmt.Errorf("role: give a role (%s) or a list of APIs", strings.Join(Roles, ", ")))
	case g.Role != "" && len(g.APIs) > 0:
		errs = append(errs, errors.New("role and apis: give a role or a list of APIs, not both"))
	case g.Role != "" && !slices.Contains(Roles, g.Role):
		errs = append(errs, fmt.Errorf("role %q: must be one of %s", g.Role, strings.Join(Roles, ", ")))
	}
	if len(g.APIs) > MaxAPIs {
		errs = append(errs, fmt.Errorf("apis: %d APIs, at most %d", len(g.APIs), MaxAPIs))
	}
	for _, a := range g.APIs {
		if !apiPattern.MatchString(a) {
			errs = append(errs, fmt.Errorf("apis: %q is not an API method name such as StartWorkflowExecution", a))
		}
	}
	if g.NotBefore.IsZero() || g.Expires.IsZero() {
		errs = append(errs, errors.New("not_before and expires: both are required"))
	} else if !g.Expires.After(g.NotBefore) {
		errs = append(errs, fmt.Errorf("expires %s is not after not_before %s", g.Expires.Format(time.RFC3339), g.NotBefore.Format(time.RFC3339)))
	} else if d := g.Expires.Sub(g.NotBefore); d > MaxDuration {
		errs = append(errs, fmt.Errorf("duration %s is longer than any grant may be (%s)", d, MaxDuration))
	}
	if strings.TrimSpace(g.Reason) == "" {
		errs = append(errs, errors.New("reason: say what the access is for (a ticket or an incident)"))
	}
	if len(g.Reason) > MaxReasonBytes {
		errs = append(errs, fmt.Errorf("reason: %d bytes, at most %d", len(g.Reason), MaxReasonBytes))
	}
	return errors.Join(errs...)
}

// Duration is how long the grant lasts.
func (g *Grant) Duration() time.Duration { return g.Expires.Sub(g.NotBefore) }

// At is the grant's state at time now: an active grant is expired from its
// expiry on; a requested one past its expiry is expired too. Other states
// are final.
func (g *Grant) At(now time.Time) State {
	switch g.State {
	case StateActive, StateRequested:
		if !now.Before(g.Expires) {
			return StateExpired
		}
	}
	return g.State
}

// InEffect reports whether the grant is honoured at time now: active, and
// now in [NotBefore, Expires).
func (g *Grant) InEffect(now time.Time) bool {
	return g.State == StateActive && !now.Before(g.NotBefore) && now.Before(g.Expires)
}

// Access names what the grant gives: "write on payments", "StartWorkflowExecution,
// SignalWorkflowExecution on payments".
func (g *Grant) Access() string {
	what := g.Role
	if what == "" {
		what = strings.Join(g.APIs, ", ")
	}
	return fmt.Sprintf("%s on %s", what, g.Namespace)
}
