package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"

	defaultrego "github.com/temporal-opa/temporal-opa/rego"
)

// maxBundleBytes bounds each file read from a bundle.
const maxBundleBytes = 64 << 20

// skipTests is a loader filter that leaves policy tests out of what is activated.
func skipTests(abspath string, info fs.FileInfo, _ int) bool {
	return !info.IsDir() && strings.HasSuffix(info.Name(), "_test.rego")
}

// LoadBundle reads a bundle from a directory or from an `opa build` tarball
// (.tar.gz). Test files (*_test.rego) are left out. The bundle is not verified
// for signatures; see package docs of the bundle sources for signed bundles.
func LoadBundle(path string) (*bundle.Bundle, error) {
	return ReadBundle(path, ReadOptions{})
}

// ReadOptions say how [ReadBundle] reads a bundle.
type ReadOptions struct {
	// Verification, when set, verifies the bundle's signature (.signatures.json)
	// as OPA's bundle downloader does for a bundle with a signing configuration:
	// a bundle without a valid signature over all its files is an error. The
	// tests are left out after the signature was checked over them.
	Verification *bundle.VerificationConfig
}

// ReadBundle reads a bundle from a directory or from an `opa build` tarball as
// opts say. LoadBundle is ReadBundle with the zero ReadOptions.
func ReadBundle(path string, opts ReadOptions) (*bundle.Bundle, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load bundle: %w", err)
	}
	var loader bundle.DirectoryLoader
	if info.IsDir() {
		loader = bundle.NewDirectoryLoader(path)
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("load bundle: %w", err)
		}
		defer f.Close()
		loader = bundle.NewTarballLoaderWithBaseURL(f, path)
	}
	loader = loader.WithSizeLimitBytes(maxBundleBytes)
	if opts.Verification == nil {
		loader = loader.WithFilter(skipTests)
	}
	r := bundle.NewCustomReader(loader).
		WithRegoVersion(ast.RegoV1).
		WithProcessAnnotations(true)
	if opts.Verification != nil {
		r = r.WithBundleVerificationConfig(opts.Verification)
	} else {
		r = r.WithSkipBundleVerification(true)
	}
	b, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("load bundle %s: %w", path, err)
	}
	if opts.Verification != nil {
		// Signed over every file; the tests are not part of the policy.
		b.Modules = slices.DeleteFunc(b.Modules, func(m bundle.ModuleFile) bool {
			return strings.HasSuffix(m.Path, "_test.rego") || strings.HasSuffix(m.URL, "_test.rego")
		})
	}
	return &b, nil
}

// defaultBundle reads the embedded default policy.
func defaultBundle() (*bundle.Bundle, error) {
	loader, err := bundle.NewFSLoader(defaultrego.BundleFS())
	if err != nil {
		return nil, err
	}
	b, err := bundle.NewCustomReader(loader.WithFilter(skipTests)).
		WithRegoVersion(ast.RegoV1).
		WithProcessAnnotations(true).
		Read()
	if err != nil {
		return nil, fmt.Errorf("embedded default policy: %w", err)
	}
	return &b, nil
}

// rootsOf returns a bundle's roots; a bundle without roots owns the whole tree.
func rootsOf(b *bundle.Bundle) []string {
	if b.Manifest.Roots == nil {
		return []string{""}
	}
	return *b.Manifest.Roots
}

// overlaps reports whether any root of a overlaps any root of b.
func overlaps(a, b []string) bool {
	_, _, ok := overlappingRoots(a, b)
	return ok
}

// overlappingRoots returns the first root of a and root of b that overlap.
func overlappingRoots(a, b []string) (x, y string, ok bool) {
	for _, x := range a {
		for _, y := range b {
			if bundle.RootPathsOverlap(x, y) {
				return x, y, true
			}
		}
	}
	return "", "", false
}

var errNoBundle = errors.New("nil bundle")

var customPackage = ast.MustParseRef("data.temporal.custom")

// extensionNames are the rules the default policy reads in package
// temporal.custom and in the packages one level below it.
var extensionNames = []string{"deny", "allow", "namespace_roles", "system_roles", "grant_deny", "grant_allow", "grant_max_duration"}

// ruleOnlyExtensions are the extension points data.json may not set: data
// cannot deny, allow or grant, only rules can. grant_max_duration may be data.
var ruleOnlyExtensions = []string{"deny", "allow", "namespace_roles", "system_roles", "grant_deny", "grant_allow"}

// checkCustomRules checks that a bundle's rules at the default policy's
// extension points have the shapes it reads: deny a set of reasons, allow a
// boolean, namespace_roles an object of role sets, system_roles a set of
// roles; that no package deeper than temporal.custom.<name> defines them (the
// default policy would not read them: a deny there would deny nothing); and
// that the bundle's data defines none of them (data.json's allow: true would
// allow every call). The compiler would reject some other shapes too, but with
// a type error inside the default policy; this names the author's own file
// and line.
func checkCustomRules(name string, b *bundle.Bundle) error {
	for _, m := range b.Modules {
		if m.Parsed == nil {
			continue
		}
		level := customLevel(m.Parsed.Package.Path)
		if level < 0 {
			continue
		}
		pkg := m.Parsed.Package.Path.String()
		for _, r := range m.Parsed.Rules {
			ref := r.Head.Ref()
			if len(ref) == 0 {
				continue
			}
			rule, _ := ref[0].Value.(ast.Var)
			if !slices.Contains(extensionNames, string(rule)) {
				continue
			}
			path := pkg + "." + string(rule)
			if level > 1 {
				return fmt.Errorf("bundle %s: %s: %s is not read by the default policy, which collects %s only from package temporal.custom and the packages directly below it; move it to package %s (bundle root %s)",
					name, r.Location, path, rule, customPackage.Append(m.Parsed.Package.Path[len(customPackage)]).String()[len("data."):], rootOf(m.Parsed.Package.Path[:len(customPackage)+1]))
			}
			switch rule {
			case "deny":
				if len(ref) != 1 || r.Head.RuleKind() != ast.MultiValue {
					return fmt.Errorf("bundle %s: %s: %s must be a set of reason strings; write it as: deny contains \"why\" if { ... }", name, r.Location, path)
				}
			case "allow":
				if len(ref) != 1 || r.Head.RuleKind() != ast.SingleValue || (r.Head.Value != nil && !isBoolean(r.Head.Value)) {
					return fmt.Errorf("bundle %s: %s: %s must be a boolean; write it as: allow if { ... }", name, r.Location, path)
				}
			case "system_roles":
				if len(ref) != 1 || r.Head.RuleKind() != ast.MultiValue {
					return fmt.Errorf("bundle %s: %s: %s must be a set of role names; write it as: system_roles contains \"read\" if { ... }", name, r.Location, path)
				}
			case "grant_deny":
				if len(ref) != 1 || r.Head.RuleKind() != ast.MultiValue {
					return fmt.Errorf("bundle %s: %s: %s must be a set of reason strings; write it as: grant_deny contains \"why\" if { ... }", name, r.Location, path)
				}
			case "grant_allow":
				if len(ref) != 1 || r.Head.RuleKind() != ast.SingleValue || (r.Head.Value != nil && !isBoolean(r.Head.Value)) {
					return fmt.Errorf("bundle %s: %s: %s must be a boolean; write it as: grant_allow if { ... }", name, r.Location, path)
				}
			case "grant_max_duration":
				if len(ref) > 2 || r.Head.RuleKind() != ast.SingleValue {
					return fmt.Errorf("bundle %s: %s: %s must map roles to durations; write it as: grant_max_duration := {\"write\": \"4h\"}, or grant_max_duration.write := \"4h\"", name, r.Location, path)
				}
			case "namespace_roles":
				if len(ref) != 2 || r.Head.RuleKind() != ast.MultiValue {
					return fmt.Errorf("bundle %s: %s: %s must map namespaces to sets of role names; write it as: namespace_roles[namespace] contains \"write\" if { ... }", name, r.Location, path)
				}
			}
		}
	}
	return checkCustomData(name, b.Data)
}

// checkCustomData rejects data at the extension points: data.json cannot
// deny, allow or grant roles, only rules can.
func checkCustomData(name string, data map[string]any) error {
	temporal, _ := data["temporal"].(map[string]any)
	custom, _ := temporal["custom"].(map[string]any)
	for _, key := range slices.Sorted(maps.Keys(custom)) {
		if slices.Contains(ruleOnlyExtensions, key) {
			return fmt.Errorf("bundle %s: data.temporal.custom.%s is data; the default policy reads it as a rule: rename the data key", name, key)
		}
		sub, _ := custom[key].(map[string]any)
		for _, ext := range ruleOnlyExtensions {
			if _, ok := sub[ext]; ok {
				return fmt.Errorf("bundle %s: data.temporal.custom.%s.%s is data; the default policy reads it as a rule of package temporal.custom.%s: rename the data key", name, key, ext, key)
			}
		}
	}
	return nil
}

// rootOf is the bundle root of a package path: data.temporal.custom.x is temporal/custom/x.
func rootOf(pkg ast.Ref) string {
	parts := make([]string, 0, len(pkg)-1)
	for _, t := range pkg[1:] {
		s, _ := t.Value.(ast.String)
		parts = append(parts, string(s))
	}
	return strings.Join(parts, "/")
}

func isBoolean(t *ast.Term) bool {
	_, ok := t.Value.(ast.Boolean)
	return ok
}

var systemPackage = ast.MustParseRef("data.system")

// compileSystem compiles the modules under data.system on their own, so that a
// bundle whose decision-log mask or drop rules do not compile is rejected.
func compileSystem(system map[string][]byte) error {
	if len(system) == 0 {
		return nil
	}
	mods := make(map[string]*ast.Module, len(system))
	for name, src := range system {
		m, err := ast.ParseModuleWithOpts(name, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return err
		}
		mods[name] = m
	}
	c := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if c.Compile(mods); c.Failed() {
		return c.Errors
	}
	return nil
}

// withoutSystemModules returns b without its modules under data.system (OPA's
// reserved namespace: decision-log mask and drop rules), adding them to system
// by file name. The policy is compiled without them: their input is a
// decision-log event, not a call, so the call's input schema does not apply.
func withoutSystemModules(b *bundle.Bundle, system map[string][]byte) *bundle.Bundle {
	n := 0
	for _, m := range b.Modules {
		if m.Parsed != nil && m.Parsed.Package.Path.HasPrefix(systemPackage) {
			n++
		}
	}
	if n == 0 {
		return b
	}
	out := *b
	out.Modules = make([]bundle.ModuleFile, 0, len(b.Modules)-n)
	for _, m := range b.Modules {
		if m.Parsed != nil && m.Parsed.Package.Path.HasPrefix(systemPackage) {
			system[m.Path] = m.Raw
			continue
		}
		out.Modules = append(out.Modules, m)
	}
	return &out
}
