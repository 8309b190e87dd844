package offline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/cover"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/lineage"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/server/internal/cli"
)

// PolicyTest is "temporal-opa policy test": OPA's test runner over the bundles
// (their tests included), layered on the embedded default policy as
// activation layers them, with input type-checked against the input schema.
// Output and exit status are opa test's: results (or the coverage report of the
// bundles' own files) on w, load and compile errors on errw; ExitError{2} when
// a test fails or coverage is below the threshold, ExitError{1} when the
// bundles cannot be compiled or, with FailOnEmpty, no test ran.
func PolicyTest(ctx context.Context, o cli.PolicyTest, w, errw io.Writer) error {
	ls, err := loadBundles(o.Bundles, policy.ReadOptions{})
	if err != nil {
		fmt.Fprintln(errw, err)
		return ExitError{Code: 1}
	}
	// Errors and coverage name the files as given on the command line.
	userModules := map[string]*ast.Module{}
	tests := map[string]*ast.Module{}
	for _, l := range ls {
		for i := range l.b.Modules {
			m := &l.b.Modules[i]
			if m.Parsed, err = parseAs(l.path, m.Path, m.Raw); err != nil {
				fmt.Fprintln(errw, err)
				return ExitError{Code: 1}
			}
			userModules[m.Parsed.Package.Location.File] = m.Parsed
		}
		if err := readTests(l.path, tests); err != nil {
			fmt.Fprintln(errw, err)
			return ExitError{Code: 1}
		}
	}
	maps.Copy(userModules, tests)
	all, err := policy.Layer(byName(ls))
	if err != nil {
		fmt.Fprintf(errw, "%s: %v\n", describe(ls), err)
		return ExitError{Code: 1}
	}
	if _, layered := all[policy.DefaultBundleName]; !layered {
		fmt.Fprintf(errw, "note: %s: its roots cover the default policy's (temporal/authz), so it replaces it, as on the server; give a bundle of custom rules the roots [\"temporal/custom/<name>\"] in its .manifest to layer it\n", describe(ls))
	}
	schemas, err := policy.InputSchemas()
	if err != nil {
		return err
	}
	compiler := ast.NewCompiler().
		WithCapabilities(ast.CapabilitiesForThisVersion()).
		WithEnablePrintStatements(true).
		WithSchemas(schemas).
		WithUseTypeCheckAnnotations(true).
		WithDefaultRegoVersion(ast.RegoV1)

	var cov *cover.Cover
	if o.Coverage {
		cov = cover.New()
	}
	store := inmem.NewWithOpts(inmem.OptRoundTripOnWrite(false))
	txn, err := store.NewTransaction(ctx, storage.WriteParams)
	if err != nil {
		return err
	}
	defer store.Abort(ctx, txn)
	runner := tester.NewRunner().
		SetCompiler(compiler).
		SetStore(store).
		SetDefaultRegoVersion(ast.RegoV1).
		CapturePrintOutput(true).
		EnableTracing(o.Verbose).
		StackTraces(true).
		SetBundles(all).
		SetModules(tests).
		SetTimeout(o.Timeout).
		Filter(o.Run).
		SetParallel(runtime.NumCPU())
	if cov != nil {
		runner = runner.SetCoverageQueryTracer(cov).
			SetCoverageRuns([]cover.Kind{cover.KindIndexExcluded, cover.KindEarlyExit})
	}
	ch, err := runner.RunTests(ctx, txn)
	if err != nil {
		fmt.Fprintln(errw, err)
		return ExitError{Code: 1}
	}

	var reporter tester.Reporter
	switch {
	case cov != nil:
		reporter = coverageReporter{cover: cov, modules: userModules, out: w, threshold: o.Threshold, verbose: o.Verbose}
	case o.Format == "json":
		reporter = tester.JSONReporter{Output: w}
	default:
		reporter = tester.PrettyReporter{Output: w, Verbose: o.Verbose}
	}
	ran, failed := false, false
	results := make(chan *tester.Result)
	go func() {
		defer close(results)
		for r := range ch {
			ran = true
			if !r.Pass() {
				failed = true
			}
			if o.Verbose {
				r.Trace = lineage.Filter(r.Trace, func(e *topdown.Event) bool { return e.Op == topdown.NoteOp || e.Op == topdown.FailOp })
			} else {
				r.Trace = nil
			}
			results <- r
		}
	}()
	err = reporter.Report(results)
	for range results { // a reporter may stop at the first error: let the runner finish
	}
	if err != nil {
		fmt.Fprintln(errw, err)
		if _, ok := errors.AsType[*cover.CoverageThresholdError](err); ok {
			return ExitError{Code: 2}
		}
		if failed {
			return ExitError{Code: 2}
		}
		return ExitError{Code: 1}
	}
	if !ran && o.FailOnEmpty {
		fmt.Fprintln(errw, "no tests were run")
		return ExitError{Code: 1}
	}
	if failed {
		return ExitError{Code: 2}
	}
	return nil
}

// coverageReporter is OPA's JSONCoverageReporter restricted to the bundles'
// own files: the embedded default policy's lines count for nothing.
type coverageReporter struct {
	cover     *cover.Cover
	modules   map[string]*ast.Module
	out       io.Writer
	threshold float64
	verbose   bool
}

func (r coverageReporter) Report(ch chan *tester.Result) error {
	var failures []*tester.Result
	for tr := range ch {
		if tr.Error != nil {
			return tr.Error
		}
		if tr.Fail {
			failures = append(failures, tr)
		}
	}
	if len(failures) > 0 {
		fch := make(chan *tester.Result, len(failures))
		for _, f := range failures {
			fch <- f
		}
		close(fch)
		_ = tester.PrettyReporter{Output: r.out, Verbose: r.verbose}.Report(fch)
		return errors.New(failures[0].String())
	}
	report := r.cover.Report(r.modules)
	report.CoveredLines, report.NotCoveredLines = 0, 0
	for file, fr := range report.Files {
		if _, ours := r.modules[file]; !ours {
			delete(report.Files, file)
			continue
		}
		report.CoveredLines += fr.CoveredLines
		report.NotCoveredLines += fr.NotCoveredLines
	}
	report.Coverage = 0
	if total := report.CoveredLines + report.NotCoveredLines; total > 0 {
		report.Coverage = 100 * float64(report.CoveredLines) / float64(total)
	}
	if report.Coverage < r.threshold {
		err := &cover.CoverageThresholdError{Coverage: report.Coverage, Threshold: r.threshold}
		if r.verbose {
			err.Report = &report
		}
		return err
	}
	enc := json.NewEncoder(r.out)
	enc.SetIndent("", "  ")
	return enc.Encode(report)
}

// parseAs parses a bundle's file (path inside the bundle) with the name
// bundle/path, as opa test names the files it reports on.
func parseAs(bundlePath, path string, raw []byte) (*ast.Module, error) {
	name := filepath.ToSlash(filepath.Join(bundlePath, filepath.FromSlash(path)))
	return ast.ParseModuleWithOpts(name, string(raw), ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
}

// readTests parses the *_test.rego files of the bundle directory or tarball at
// path into tests. They are not part of the bundle (activation leaves them
// out, and their packages, such as temporal.custom_test, lie outside its
// roots); they are compiled beside it, as opa test compiles them.
func readTests(path string, tests map[string]*ast.Module) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	var loader bundle.DirectoryLoader
	if info.IsDir() {
		loader = bundle.NewDirectoryLoader(path)
	} else {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		loader = bundle.NewTarballLoaderWithBaseURL(f, path)
	}
	for {
		d, err := loader.NextFile()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tests of %s: %w", path, err)
		}
		if !strings.HasSuffix(d.Path(), "_test.rego") {
			_ = d.Close()
			continue
		}
		var buf bytes.Buffer
		_, err = d.Read(&buf, maxTestFileBytes)
		_ = d.Close()
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read %s: %w", d.URL(), err)
		}
		m, err := parseAs(path, d.Path(), buf.Bytes())
		if err != nil {
			return err
		}
		tests[m.Package.Location.File] = m
	}
}

// maxTestFileBytes bounds each test file read.
const maxTestFileBytes = 64 << 20
