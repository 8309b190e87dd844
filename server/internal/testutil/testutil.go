// Package testutil holds the helpers that the server's tests share: free
// ports below the ephemeral range, files and bundles on disk, signing keys,
// a bundle server, and waiting for a condition.
package testutil

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/temporal-opa/temporal-opa/server/internal/ports"
)

// FreePorts returns n distinct ports free on ip, below the kernel's ephemeral
// range (package ports): Temporal's SQL schemas keep membership ports in a
// SMALLINT, and a port of the ephemeral range can become any outgoing
// connection's while the test is not holding it. "0.0.0.0" finds ports free on
// every address.
func FreePorts(t testing.TB, ip string, n int) []int {
	t.Helper()
	p, err := ports.FreeLow(ip, n)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// FreePort is FreePorts of one port.
func FreePort(t testing.TB, ip string) int {
	t.Helper()
	return FreePorts(t, ip, 1)[0]
}

// WriteFiles writes files (slash-separated relative path to content) into a
// new temporary directory and returns it.
func WriteFiles(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// ECKeys returns a new ES256 key pair as PEM: private (PKCS#8) and public
// (PKIX), as `opa sign` and the keys section of an OPA config take them.
func ECKeys(t testing.TB) (private, public string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
}

// SignedBundle is an `opa build` tarball at revision rev holding one module
// of package temporal.custom, signed as `opa sign` does with the ES256 key
// priv (PEM) under key id "release".
func SignedBundle(t testing.TB, rev, priv, rego string) []byte {
	t.Helper()
	b := bundle.Bundle{
		Manifest: bundle.Manifest{Revision: rev, Roots: &[]string{"temporal/custom"}},
		Data:     map[string]any{},
		Modules:  []bundle.ModuleFile{{URL: "/temporal/custom/remote.rego", Path: "/temporal/custom/remote.rego", Raw: []byte(rego)}},
	}
	if err := b.GenerateSignature(bundle.NewSigningConfig(priv, "ES256", ""), "release", false); err != nil {
		t.Fatalf("sign: %v", err)
	}
	var buf bytes.Buffer
	if err := bundle.NewWriter(&buf).Write(b); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// BundleServer serves one tarball at any path with an ETag, to callers with
// the bearer token; Publish replaces the tarball, as a bundle server's
// operator uploading a new revision would. It stops at the end of the test.
type BundleServer struct {
	*httptest.Server
	requests atomic.Int64
	current  atomic.Pointer[servedBundle]

	mu        sync.Mutex
	downloads map[string][]time.Time // by ETag: when the tarball was sent (200)
}

type servedBundle struct {
	tarball []byte
	etag    string
}

// NewBundleServer serves tarball to callers with the bearer token.
func NewBundleServer(t testing.TB, token string, tarball []byte) *BundleServer {
	bs := &BundleServer{downloads: map[string][]time.Time{}}
	bs.Publish(tarball)
	bs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bs.requests.Add(1)
		if r.Header.Get("Authorization") != "Bearer "+token {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		cur := bs.current.Load()
		w.Header().Set("ETag", cur.etag)
		if r.Header.Get("If-None-Match") == cur.etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		bs.mu.Lock()
		bs.downloads[cur.etag] = append(bs.downloads[cur.etag], time.Now())
		bs.mu.Unlock()
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(cur.tarball)
	}))
	t.Cleanup(bs.Close)
	return bs
}

// Publish makes tarball the bundle served from now on.
func (bs *BundleServer) Publish(tarball []byte) {
	bs.current.Store(&servedBundle{tarball: tarball, etag: etagOf(tarball)})
}

// Requests counts the requests served, refused and 304 included.
func (bs *BundleServer) Requests() int64 { return bs.requests.Load() }

// Downloads are the times tarball was sent in full (not 304 Not Modified),
// oldest first: one per process that fetched it.
func (bs *BundleServer) Downloads(tarball []byte) []time.Time {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	return slices.Clone(bs.downloads[etagOf(tarball)])
}

func etagOf(tarball []byte) string { return fmt.Sprintf(`"%x"`, sha256.Sum256(tarball)) }

// Eventually polls cond every poll until it holds, and fails the test when it
// does not within timeout: a bound for a hang, not a timing assertion.
func Eventually(t testing.TB, timeout, poll time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", timeout, what)
		}
		time.Sleep(poll)
	}
}
