package source_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/source"
)

const apiStart = "/temporal.api.workflowservice.v1.WorkflowService/StartWorkflowExecution"

// reader may read in namespace payments: the default policy denies it a start,
// the allow version of the test bundle grants it, the deny version denies it
// with the reason "frozen".
var reader = &authorization.Claims{Subject: "alice", AuthType: "jwt", Namespaces: map[string]authorization.Role{"payments": authorization.RoleReader}}

var startTarget = &authorization.CallTarget{APIName: apiStart, Namespace: "payments"}

const (
	allowRules = "package temporal.custom\n\nallow if input.target.method == \"StartWorkflowExecution\"\n"
	denyRules  = "package temporal.custom\n\ndeny contains \"frozen\" if input.target.namespace == \"payments\"\n"
)

func manifest(rev string) string {
	return fmt.Sprintf(`{"roots": ["temporal/custom"], "revision": %q}`, rev)
}

// files returns the files of a bundle directory: the allow or the deny version at revision rev.
func files(rev string, allow bool) map[string]string {
	rules := denyRules
	if allow {
		rules = allowRules
	}
	return map[string]string{".manifest": manifest(rev), "temporal/custom/rules.rego": rules}
}

// tarball builds an `opa build`-format tarball of the given files with bundle.Writer,
// signed with key (PEM, ES256) under keyID when key is not empty.
func tarball(t testing.TB, fs map[string]string, key, keyID string) []byte {
	t.Helper()
	var m bundle.Manifest
	if err := jsonUnmarshal(fs[".manifest"], &m); err != nil {
		t.Fatal(err)
	}
	b := bundle.Bundle{Manifest: m, Data: map[string]any{}}
	for name, content := range fs {
		if !strings.HasSuffix(name, ".rego") {
			continue
		}
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: "/" + name, Path: "/" + name, Raw: []byte(content)})
	}
	if key != "" {
		if err := b.GenerateSignature(bundle.NewSigningConfig(key, "ES256", ""), keyID, false); err != nil {
			t.Fatalf("sign: %v", err)
		}
	}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).Write(b); err != nil {
		t.Fatalf("write tarball: %v", err)
	}
	return buf.Bytes()
}

// writeFiles writes fs under dir, the manifest last (a reload between two
// writes then sees the previous revision, never a new revision with old rules).
func writeFiles(t testing.TB, dir string, fs map[string]string) {
	t.Helper()
	write := func(name string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(fs[name]), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for name := range fs {
		if name != ".manifest" {
			write(name)
		}
	}
	if _, ok := fs[".manifest"]; ok {
		write(".manifest")
	}
}

// replaceFile writes data to a temporary file beside path and renames it over
// path, as editors and `kubectl cp`-style tools do.
func replaceFile(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tmp.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := tmp.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		t.Fatal(err)
	}
}

func newAuthorizer(t testing.TB) *policy.Authorizer {
	t.Helper()
	a, err := policy.NewAuthorizer(policy.Options{Logger: testLogger(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// testLogger logs to the test at warning level and above.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// outcome names a decision on the reader's start: "allow", "deny" (the deny
// version), "default" (the default policy alone) or a description of anything else.
func outcome(a *policy.Authorizer) string {
	r, err := a.Authorize(context.Background(), reader, startTarget)
	switch {
	case err != nil:
		return "error: " + err.Error()
	case r.Decision == authorization.DecisionAllow:
		return "allow"
	case r.Reason == "frozen":
		return "deny"
	case strings.Contains(r.Reason, "requires write"):
		return "default"
	default:
		return "unexpected deny: " + r.Reason
	}
}

func want(allow bool) string {
	if allow {
		return "allow"
	}
	return "deny"
}

// eventually polls cond until it holds, failing the test after a generous
// bound (a hang, not a timing assertion).
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func statusOf(s source.Source) source.Status { return s.Status() }

// ecKeys returns a new ES256 key pair, PEM-encoded.
func ecKeys(t testing.TB) (private, public string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }

func errorsAs(err error, target any) bool { return errors.As(err, target) }
func errorsIs(err, target error) bool     { return errors.Is(err, target) }

// retarball returns the tarball data with the file name replaced by content,
// every other entry (the signature included) kept.
func retarball(t testing.TB, data []byte, name, content string) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	tw := tar.NewWriter(zw)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(h.Name, "/") == name {
			body = []byte(content)
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
