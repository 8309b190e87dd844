package offline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/keys"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/server/internal/cli"
)

// CheckResult is what policy check prints with --format json.
type CheckResult struct {
	OK           bool            `json:"ok"`
	Bundles      []CheckedBundle `json:"bundles"`
	Layered      bool            `json:"layered_on_default"` // false: a bundle replaces the embedded default
	DecisionPath string          `json:"decision_path"`
	// What the server would report of the activated policy.
	DecisionCache bool `json:"decision_cache"`
	UsesRequest   bool `json:"uses_request"`
	// Notes say where the policy defeats the decision cache, with file:line;
	// they do not stop the server from activating it.
	Notes  []string     `json:"notes,omitempty"`
	Errors []CheckError `json:"errors,omitempty"`
}

// CheckedBundle is one bundle checked.
type CheckedBundle struct {
	Name              string `json:"name"`
	Path              string `json:"path"`
	Revision          string `json:"revision"`
	SignatureVerified bool   `json:"signature_verified"`
}

// CheckError is one reason the server would reject the bundles. Message is
// the whole error as the server logs it; Code and Location are set for
// compile errors.
type CheckError struct {
	Stage    string        `json:"stage,omitempty"` // load, compile, entrypoint, ...
	Code     string        `json:"code,omitempty"`  // OPA's error code, e.g. rego_type_error
	Location *ast.Location `json:"location,omitempty"`
	Message  string        `json:"message"`
}

// PolicyCheck is "temporal-opa policy check": it makes the server's activation
// checks on the bundles, with the server's code, and prints the server's
// errors on errw (pretty) or the CheckResult on w (json). It returns
// ExitError{1} when the server would reject them.
func PolicyCheck(ctx context.Context, o cli.PolicyCheck, w, errw io.Writer) error {
	res := CheckResult{DecisionPath: o.DecisionPath}
	if res.DecisionPath == "" {
		res.DecisionPath = policy.DefaultDecisionPath
	}
	var opts policy.ReadOptions
	if o.VerificationKey != "" {
		kc, err := keys.NewKeyConfig(o.VerificationKey, o.SigningAlg, o.Scope)
		if err != nil {
			return fmt.Errorf("--verification-key %s: %w", o.VerificationKey, err)
		}
		opts.Verification = bundle.NewVerificationConfig(map[string]*keys.Config{o.VerificationKeyID: kc}, o.VerificationKeyID, o.Scope, o.ExcludeFiles)
	}
	ls, err := loadBundles(o.Bundles, opts)
	if err != nil {
		res.Errors = []CheckError{{Stage: "load", Message: err.Error()}}
		return reportCheck(w, errw, o.Format, res, err)
	}
	for _, l := range ls {
		res.Bundles = append(res.Bundles, CheckedBundle{Name: l.name, Path: l.path, Revision: l.b.Manifest.Revision, SignatureVerified: opts.Verification != nil})
	}
	// The server's own activation, on a fresh authorizer: its checks, its messages.
	az, err := policy.NewAuthorizer(policy.Options{DecisionPath: o.DecisionPath}, byName(ls))
	if err != nil {
		err = fmt.Errorf("%s: %w", describe(ls), err)
		res.Errors = checkErrors(err)
		return reportCheck(w, errw, o.Format, res, err)
	}
	st := az.Status()
	res.OK = true
	_, res.Layered = st.Revisions[policy.DefaultBundleName]
	res.DecisionCache, res.UsesRequest, res.Notes = st.Cacheable, st.UsesRequest, st.CacheNotes
	return reportCheck(w, errw, o.Format, res, nil)
}

// checkErrors splits an activation error into its compile errors, each with
// its code and location, or returns it whole.
func checkErrors(err error) []CheckError {
	stage := ""
	var ae *policy.ActivationError
	if errors.As(err, &ae) {
		stage = string(ae.Stage)
	}
	var errs ast.Errors
	if !errors.As(err, &errs) || len(errs) == 0 {
		return []CheckError{{Stage: stage, Message: err.Error()}}
	}
	out := make([]CheckError, len(errs))
	for i, e := range errs {
		out[i] = CheckError{Stage: stage, Code: e.Code, Location: e.Location, Message: e.Error()}
	}
	return out
}

func reportCheck(w, errw io.Writer, format string, res CheckResult, err error) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(res); jerr != nil {
			return jerr
		}
	} else if err != nil {
		fmt.Fprintln(errw, err)
	} else {
		var names []string
		for _, b := range res.Bundles {
			n := b.Name + " from " + b.Path
			if b.Revision != "" {
				n += fmt.Sprintf(" (revision %q)", b.Revision)
			}
			if b.SignatureVerified {
				n += ", signature verified"
			}
			names = append(names, n)
		}
		how := "layered on the embedded default policy"
		if !res.Layered {
			how = "replacing the embedded default policy"
		}
		fmt.Fprintf(w, "ok: the server activates bundle %s, %s, decision %s\n", strings.Join(names, "; bundle "), how, res.DecisionPath)
		for _, n := range res.Notes {
			fmt.Fprintf(w, "note: %s\n", n)
		}
	}
	if err != nil {
		return ExitError{Code: 1}
	}
	return nil
}
