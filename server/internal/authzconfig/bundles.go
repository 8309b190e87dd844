package authzconfig

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// BundlePaths is policy.bundle: one bundle directory or tarball (a string), or
// several (a list of them), each watched on its own.
type BundlePaths []string

// UnmarshalYAML takes a string or a list of strings.
func (p *BundlePaths) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		var s string
		if err := n.Decode(&s); err != nil {
			return err
		}
		*p = nil
		if s != "" {
			*p = BundlePaths{s}
		}
		return nil
	case yaml.SequenceNode:
		out := make(BundlePaths, 0, len(n.Content))
		for i, item := range n.Content {
			if item.Kind == yaml.AliasNode {
				item = item.Alias
			}
			if item.Kind == yaml.ScalarNode && item.Tag == "!!null" {
				return &itemError{node: item, index: i, msg: "empty entry: give a bundle directory or tarball"}
			}
			if item.Kind != yaml.ScalarNode {
				return &itemError{node: item, index: i, msg: "expected a bundle path (a string), got " + describe(item)}
			}
			out = append(out, item.Value)
		}
		*p = out
		return nil
	}
	return errors.New("expected a bundle path or a list of them, got " + describe(n))
}

// itemError is a bad item of a list, for the checker to point at.
type itemError struct {
	node  *yaml.Node
	index int
	msg   string
}

func (e *itemError) Error() string { return fmt.Sprintf("item %d: %s", e.index, e.msg) }

// FileBundle is one bundle of policy.bundle and the name it is activated under.
type FileBundle struct {
	Name string // FileBundleName, or FileBundleName/<base name> when there are several
	Path string
}

// FileBundles names the paths of policy.bundle (or of start-dev's --policy):
// a single path is FileBundleName ("policy"), as it always was; each of several
// is FileBundleName + "/" + the base name of its path without .tar.gz or .tgz,
// e.g. policy/keycloak-groups. An empty path, a path given twice and two paths
// with the same base name are errors naming the paths.
func FileBundles(paths []string) ([]FileBundle, error) {
	if len(paths) == 1 && paths[0] != "" {
		return []FileBundle{{Name: FileBundleName, Path: paths[0]}}, nil
	}
	out := make([]FileBundle, 0, len(paths))
	byPath, byName := map[string]string{}, map[string]string{}
	for i, p := range paths {
		if p == "" {
			return nil, &PathError{Index: i, Msg: "empty path: give a bundle directory or tarball"}
		}
		clean := filepath.Clean(p)
		if other, dup := byPath[clean]; dup {
			return nil, &PathError{Index: i, Msg: fmt.Sprintf("%s is given twice (also as %s): give each bundle once", p, other)}
		}
		byPath[clean] = p
		name := FileBundleName + "/" + baseName(clean)
		if other, dup := byName[name]; dup {
			return nil, &PathError{Index: i, Msg: fmt.Sprintf("%s and %s would both be bundle %s (bundles are named after the base name of their path): rename one directory or tarball", other, p, name)}
		}
		byName[name] = p
		out = append(out, FileBundle{Name: name, Path: p})
	}
	return out, nil
}

// PathError is a path of policy.bundle that cannot be used with the others;
// Index is its position in the list.
type PathError struct {
	Index int
	Msg   string
}

func (e *PathError) Error() string { return e.Msg }

// baseName is the base name of a clean path, without the tarball extension.
func baseName(clean string) string {
	base := filepath.Base(clean)
	if base == "." || base == ".." || base == string(filepath.Separator) {
		if abs, err := filepath.Abs(clean); err == nil {
			base = filepath.Base(abs)
		}
	}
	for _, ext := range []string{".tar.gz", ".tgz"} {
		if b, ok := strings.CutSuffix(base, ext); ok && b != "" {
			return b
		}
	}
	return base
}

// Bundles are the bundles of policy.bundle, named (see FileBundles); Parse has
// checked them, so only settings built in code can make it fail.
func (p Policy) Bundles() ([]FileBundle, error) {
	if len(p.Bundle) == 0 {
		return nil, nil
	}
	return FileBundles(p.Bundle)
}
