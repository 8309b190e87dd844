package policy

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"

	defaultrego "github.com/temporal-opa/temporal-opa/rego"
)

// DefaultBundleName names the embedded default policy among the active bundles
// (in revisions and status). No other bundle may have this name.
const DefaultBundleName = defaultBundleName

// SetBundles activates exactly the given bundles (name to bundle), layered on
// the embedded default policy, in one activation: the bundles active before
// are replaced. On error the active policy is unchanged and the error is an
// *ActivationError.
func (a *Authorizer) SetBundles(ctx context.Context, bundles map[string]*bundle.Bundle) error {
	named := make(map[string]*bundle.Bundle, len(bundles))
	for name, b := range bundles {
		if b == nil {
			return &ActivationError{Stage: StageLoad, Err: errNoBundle}
		}
		if name == "" {
			return &ActivationError{Stage: StageLoad, Err: fmt.Errorf("bundle name is empty")}
		}
		named[name] = b
	}
	a.setMu.Lock()
	defer a.setMu.Unlock()
	return a.activate(ctx, named)
}

// DefaultBundle returns the embedded default policy as activation layers it:
// without its tests.
func DefaultBundle() (*bundle.Bundle, error) {
	b, err := defaultBundle()
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return b, nil
}

// InputSchemas returns the schema set every activation type-checks policies
// with: rego/input.schema.json as the schema of input.
func InputSchemas() (*ast.SchemaSet, error) {
	var schema any
	if err := json.Unmarshal(defaultrego.InputSchema(), &schema); err != nil {
		return nil, fmt.Errorf("policy: embedded input schema: %w", err)
	}
	schemas := ast.NewSchemaSet()
	schemas.Put(ast.SchemaRootRef, schema)
	return schemas, nil
}

// Layer returns the bundles an activation of user (name to bundle) compiles:
// the user bundles, and the embedded default policy under [DefaultBundleName]
// unless a user bundle's roots overlap the default's (such a bundle replaces
// it). It makes the checks activation makes before compiling (reserved name,
// custom rule shapes) and returns their *ActivationError. Test runners use it to
// test bundles exactly as they will be activated.
func Layer(user map[string]*bundle.Bundle) (map[string]*bundle.Bundle, error) {
	def, err := DefaultBundle()
	if err != nil {
		return nil, err
	}
	all, _, err := layer(def, user)
	return all, err
}

// layer adds the default bundle def to the user bundles unless one of them
// covers its roots (replaced); it checks the reserved name and, when layered,
// the shapes of the custom rules.
func layer(def *bundle.Bundle, user map[string]*bundle.Bundle) (all map[string]*bundle.Bundle, replaced bool, err error) {
	all = make(map[string]*bundle.Bundle, len(user)+1)
	defRoots := rootsOf(def)
	for name, b := range user {
		if name == defaultBundleName {
			return nil, false, &ActivationError{Stage: StageLoad, Err: fmt.Errorf("bundle name %q is reserved for the embedded default policy", name)}
		}
		all[name] = b
		if overlaps(rootsOf(b), defRoots) {
			replaced = true
		}
	}
	if err := checkDisjoint(user); err != nil {
		return nil, false, err
	}
	if replaced {
		return all, true, nil
	}
	for _, name := range sortedNames(user) {
		if err := checkCustomRules(name, user[name]); err != nil {
			return nil, false, &ActivationError{Stage: StageCompile, Err: err}
		}
	}
	all[defaultBundleName] = def
	return all, false, nil
}

// checkDisjoint refuses two user bundles whose roots overlap (OPA would refuse
// them too, naming neither), naming both bundles and the roots.
func checkDisjoint(user map[string]*bundle.Bundle) error {
	names := sortedNames(user)
	for i, a := range names {
		for _, b := range names[i+1:] {
			x, y, ok := overlappingRoots(rootsOf(user[a]), rootsOf(user[b]))
			if !ok {
				continue
			}
			return &ActivationError{Stage: StageLoad, Err: fmt.Errorf(
				"bundles %s and %s have overlapping roots (%s and %s): each bundle must own its roots; "+
					"give each its own root in its .manifest (e.g. temporal/custom/<name>), or build them into one bundle",
				a, b, describeRoot(x), describeRoot(y))}
		}
	}
	return nil
}

func describeRoot(r string) string {
	if r == "" {
		return "the whole tree: no roots in .manifest"
	}
	return r
}

// newCompiler is the compiler of every activation: Rego v1, strict mode, and
// input type-checked against the schema.
func newCompiler(schemas *ast.SchemaSet) *ast.Compiler {
	return ast.NewCompiler().
		WithSchemas(schemas).
		WithUseTypeCheckAnnotations(true).
		WithStrict(true).
		WithDefaultRegoVersion(ast.RegoV1)
}

func sortedNames(m map[string]*bundle.Bundle) []string {
	return slices.Sorted(maps.Keys(m))
}
