package offline

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	defaultrego "github.com/temporal-opa/temporal-opa/rego"
	"github.com/temporal-opa/temporal-opa/server/internal/cli"
)

// SchemaFileName is the name policy export gives the input schema.
const SchemaFileName = "input.schema.json"

// PolicyExport is "temporal-opa policy export": it writes the embedded default
// policy bundle (without its tests, as activation has it) and the input schema
// into o.Dir, and prints what it wrote and how to use it.
func PolicyExport(o cli.PolicyExport, w io.Writer) error {
	var written []string
	write := func(rel string, data []byte) error {
		path := filepath.Join(o.Dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return fmt.Errorf("policy export: %w", err)
		}
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return fmt.Errorf("policy export: %w", err)
		}
		written = append(written, path)
		return nil
	}
	src := defaultrego.BundleFS()
	err := fs.WalkDir(src, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, "_test.rego") {
			return err
		}
		data, err := fs.ReadFile(src, p)
		if err != nil {
			return err
		}
		return write(p, data)
	})
	if err != nil {
		return err
	}
	if err := write(SchemaFileName, defaultrego.InputSchema()); err != nil {
		return err
	}
	for _, p := range written {
		fmt.Fprintf(w, "wrote %s\n", p)
	}
	fmt.Fprintf(w, "\nThe embedded default policy (bundle roots temporal/authz and temporal/grants) and the schema of its input. With OPA:\n"+
		"  opa test %[1]s my-bundle\n"+
		"  opa check --strict --schema %[2]s %[1]s my-bundle\n"+
		"or with %[3]s alone: %[3]s policy test my-bundle, %[3]s policy check my-bundle\n",
		o.Dir, filepath.Join(o.Dir, SchemaFileName), cli.Program)
	return nil
}
