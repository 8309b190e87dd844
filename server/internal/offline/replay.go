package offline

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
	"github.com/temporal-opa/temporal-opa/policy/decisionlog"
	"github.com/temporal-opa/temporal-opa/server/internal/authzconfig"
	"github.com/temporal-opa/temporal-opa/server/internal/cli"
)

// Changed is returned by Replay when a replayed decision changed: main exits
// with status 1, the report having been printed.
type Changed struct{}

func (Changed) Error() string { return "decisions changed" }

// InputError is input that cannot be used (an unreadable decision log, a bad
// bundle): main exits with status 2.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// ReplayReport is what eval --replay prints.
type ReplayReport struct {
	Policy        string          `json:"policy"`
	Replayed      int             `json:"replayed"`       // decisions decided again
	Changed       int             `json:"changed"`        // of those, decided differently
	NotReplayable int             `json:"not_replayable"` // events the candidate cannot decide from what was recorded
	Skipped       int             `json:"skipped"`        // JSON values that were not decision events
	Changes       []ChangeGroup   `json:"changes"`
	Unreplayable  []NotReplayable `json:"not_replayable_events"`
}

// ChangeGroup counts the changed decisions of one API and namespace that moved
// the same way for the same new reason.
type ChangeGroup struct {
	API         string   `json:"api"`
	Namespace   string   `json:"namespace"`
	From        string   `json:"from"` // allow or deny
	To          string   `json:"to"`
	Reason      string   `json:"reason"` // the candidate's reason
	Count       int      `json:"count"`
	Subjects    []string `json:"subjects"`     // distinct, sorted (at most 20)
	DecisionIDs []string `json:"decision_ids"` // of the recorded events (at most 5)
}

// NotReplayable is an event the candidate could not be judged on.
type NotReplayable struct {
	DecisionID string `json:"decision_id"`
	API        string `json:"api"`
	Why        string `json:"why"`
}

const (
	maxSubjects    = 20
	maxDecisionIDs = 5
)

// Replay is "temporal-opa eval --replay": it decides every recorded decision
// again with the candidate policy (o.Policy, else the authz file's
// policy.bundle, layered on the embedded default, as the server would), and
// reports what changed. It returns Changed when a decision changed.
func Replay(ctx context.Context, o cli.Eval, stdin io.Reader, w io.Writer) error {
	var settings authzconfig.File
	if o.AuthzFile != "" {
		f, err := authzconfig.Load(o.AuthzFile, claimmapper.Config{})
		if err != nil {
			return &InputError{Err: err}
		}
		settings = *f
	}
	if len(o.Policy) > 0 {
		settings.Policy.Bundle = o.Policy
	}
	desc := "embedded default policy"
	if paths := settings.Policy.Bundle; len(paths) > 0 {
		desc = strings.Join(paths, " and ") + " layered on the embedded default"
	}
	// The candidate is built as the server builds it, without the remote
	// bundles of policy.opa_config: what is replayed is the candidate alone.
	settings.Policy.OPA = nil
	az, done, err := authorizer(ctx, settings, nil)
	if err != nil {
		return &InputError{Err: err}
	}
	defer done()

	rep := ReplayReport{Policy: desc, Changes: []ChangeGroup{}, Unreplayable: []NotReplayable{}}
	groups := map[[5]string]*ChangeGroup{}
	readsRequest := az.ReadsInput("request") || az.ReadsInput("request_type")
	decide := func(r decisionlog.Recorded) error {
		if why := unreplayable(az, r, readsRequest); why != "" {
			rep.NotReplayable++
			rep.Unreplayable = append(rep.Unreplayable, NotReplayable{DecisionID: r.DecisionID, API: r.API, Why: why})
			return nil
		}
		d, _ := az.DecideInput(ctx, r.Input) // an error is a deny with its reason
		rep.Replayed++
		if d.Allow == r.Allow {
			return nil
		}
		rep.Changed++
		k := [5]string{r.API, r.Namespace, verdict(r.Allow), verdict(d.Allow), d.Reason}
		g := groups[k]
		if g == nil {
			g = &ChangeGroup{API: k[0], Namespace: k[1], From: k[2], To: k[3], Reason: k[4]}
			groups[k] = g
		}
		g.Count++
		if len(g.Subjects) < maxSubjects && !slices.Contains(g.Subjects, r.Subject) {
			g.Subjects = append(g.Subjects, r.Subject)
		}
		if len(g.DecisionIDs) < maxDecisionIDs {
			g.DecisionIDs = append(g.DecisionIDs, r.DecisionID)
		}
		return nil
	}
	for _, name := range o.Replay {
		var r io.Reader = stdin
		if name != "-" {
			f, err := os.Open(name)
			if err != nil {
				return &InputError{Err: fmt.Errorf("--replay %s: %w", name, errors.Unwrap(err))}
			}
			defer f.Close()
			r = f
		}
		skipped, err := decisionlog.Read(r, name, decide)
		rep.Skipped += skipped
		if err != nil {
			return &InputError{Err: fmt.Errorf("--replay %w", err)}
		}
	}
	if rep.Replayed+rep.NotReplayable == 0 {
		return &InputError{Err: fmt.Errorf("--replay %s: no decision-log events found (%d other JSON values skipped): give the console's JSON lines or a service's batches", strings.Join(o.Replay, ", "), rep.Skipped)}
	}
	for _, g := range groups {
		slices.Sort(g.Subjects)
		rep.Changes = append(rep.Changes, *g)
	}
	slices.SortFunc(rep.Changes, func(a, b ChangeGroup) int {
		return cmp.Or(b.Count-a.Count, strings.Compare(a.API, b.API), strings.Compare(a.Namespace, b.Namespace), strings.Compare(a.Reason, b.Reason))
	})
	if o.Format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printReplay(w, rep)
	}
	if rep.Changed > 0 {
		return Changed{}
	}
	return nil
}

// unreplayable says why a recorded event cannot be decided again by az, or "".
func unreplayable(az *policy.Authorizer, r decisionlog.Recorded, readsRequest bool) string {
	if r.Input == nil {
		return "the event has no input (erased by a mask rule?)"
	}
	if _, ok := r.Input["request"]; !ok && readsRequest {
		return "the candidate reads input.request, which was not recorded (the recording policy did not read it)"
	}
	if _, ok := r.Input["request"]; ok && len(r.RequestPaths) > 0 {
		if p, ok := az.RequestReadsWithin(r.RequestPaths); !ok {
			return "the candidate reads " + p + ", which was not recorded (the recording policy did not read it)"
		}
	}
	for _, p := range r.Erased {
		path, ok := decisionlog.InputPath(p)
		if ok && az.ReadsInput(path...) {
			return "the candidate reads " + p + ", which was erased from the event"
		}
	}
	return ""
}

func verdict(allow bool) string {
	if allow {
		return "allow"
	}
	return "deny"
}

func printReplay(w io.Writer, rep ReplayReport) {
	fmt.Fprintf(w, "Replayed %d decisions against %s: %d changed, %d not replayable.\n",
		rep.Replayed, rep.Policy, rep.Changed, rep.NotReplayable)
	if rep.Skipped > 0 {
		fmt.Fprintf(w, "(%d JSON values that are not decision events were skipped.)\n", rep.Skipped)
	}
	for _, g := range rep.Changes {
		ns := g.Namespace
		if ns == "" {
			ns = "(cluster)"
		}
		fmt.Fprintf(w, "\n%s -> %s  %s  namespace %s  %d call(s)\n", g.From, g.To, g.API, ns, g.Count)
		if g.Reason != "" {
			fmt.Fprintf(w, "  reason:    %s\n", g.Reason)
		}
		fmt.Fprintf(w, "  subjects:  %s\n", strings.Join(g.Subjects, ", "))
		fmt.Fprintf(w, "  decisions: %s\n", strings.Join(g.DecisionIDs, ", "))
	}
	if len(rep.Unreplayable) > 0 {
		why := map[string]int{}
		for _, u := range rep.Unreplayable {
			why[u.API+": "+u.Why]++
		}
		fmt.Fprintf(w, "\nNot replayable:\n")
		for _, k := range slices.Sorted(maps.Keys(why)) {
			fmt.Fprintf(w, "  %d x %s\n", why[k], k)
		}
	}
}
