package devkey

import (
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

func TestLoadOrCreateKeepsTheKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	k1, created, err := LoadOrCreate(dir)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreate: created=%v err=%v", created, err)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, KeyFileName): 0o600} {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s mode %o, want %o", path, got, want)
		}
	}
	k2, created, err := LoadOrCreate(dir)
	if err != nil || created {
		t.Fatalf("second LoadOrCreate: created=%v err=%v", created, err)
	}
	if k1.KeyID() != k2.KeyID() || k2.Path() != filepath.Join(dir, KeyFileName) {
		t.Errorf("reloaded key %s at %s, want %s", k2.KeyID(), k2.Path(), k1.KeyID())
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	rsaPEM := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(rsaPEM, []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, want string
		notExist         bool
	}{
		{"missing", filepath.Join(dir, "none.pem"), "does not exist", true},
		{"not PEM", garbage, "garbage.pem: not a PEM file (delete the file to generate a new key)", false},
		{"wrong block", rsaPEM, `PEM block is "CERTIFICATE", want an ECDSA P-256 "PRIVATE KEY"`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(tc.path)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to contain %q", err, tc.want)
			}
			if errors.Is(err, fs.ErrNotExist) != tc.notExist {
				t.Errorf("errors.Is(err, fs.ErrNotExist) = %v, want %v", !tc.notExist, tc.notExist)
			}
		})
	}
	// A key file that exists but is unreadable is reported, never replaced.
	if os.Getuid() != 0 {
		locked := filepath.Join(dir, "locked")
		if err := os.MkdirAll(locked, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(locked, KeyFileName), []byte("x"), 0o000); err != nil {
			t.Fatal(err)
		}
		if _, _, err := LoadOrCreate(locked); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Errorf("unreadable key: error %v, want permission denied", err)
		}
	}
}

func TestSaveRefusesToOverwrite(t *testing.T) {
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "k.pem")
	if err := k.Save(path); err != nil {
		t.Fatal(err)
	}
	if err := k.Save(path); err == nil {
		t.Fatal("second Save overwrote the key")
	}
}

func TestMintVerifiesAgainstServedJWKS(t *testing.T) {
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	s, err := Serve("127.0.0.1:0", k)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	resp, err := http.Get(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), `"d"`) {
		t.Fatalf("JWKS leaks the private key: %s", body)
	}
	set, err := jwk.Parse(body)
	if err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	tok, err := k.Mint(Claims{Subject: "alice", Permissions: []string{"default:read", "temporal-system:admin"}, TTL: time.Hour, Now: now, Audience: []string{"temporal"}})
	if err != nil {
		t.Fatal(err)
	}
	msg, err := jws.Parse([]byte(tok))
	if err != nil {
		t.Fatal(err)
	}
	if h := msg.Signatures()[0].ProtectedHeaders(); h.KeyID() != k.KeyID() || h.Algorithm().String() != "ES256" {
		t.Errorf("header kid=%q alg=%q, want kid=%q alg=ES256", h.KeyID(), h.Algorithm(), k.KeyID())
	}
	parsed, err := jwt.Parse([]byte(tok), jwt.WithKeySet(set), jwt.WithValidate(true), jwt.WithIssuer(Issuer), jwt.WithAudience("temporal"))
	if err != nil {
		t.Fatalf("token does not verify with the served JWKS: %v", err)
	}
	if parsed.Subject() != "alice" || parsed.Expiration().Unix() != now.Add(time.Hour).Unix() {
		t.Errorf("sub=%q exp=%v", parsed.Subject(), parsed.Expiration())
	}
	perms, _ := parsed.Get("permissions")
	b, _ := json.Marshal(perms)
	if string(b) != `["default:read","temporal-system:admin"]` {
		t.Errorf("permissions %s", b)
	}

	expired, err := k.Mint(Claims{Subject: "alice", TTL: -time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwt.Parse([]byte(expired), jwt.WithKeySet(set), jwt.WithValidate(true)); err == nil {
		t.Error("a token minted with a negative TTL is valid")
	}
	if _, err := k.Mint(Claims{}); err == nil {
		t.Error("Mint without a subject succeeded")
	}
	if strings.Contains(k.String(), "BEGIN") || !strings.Contains(k.String(), k.KeyID()) {
		t.Errorf("String() = %q", k.String())
	}
}
