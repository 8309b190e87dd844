package claimmapper

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"go.temporal.io/server/common/authorization"
)

// A SPIFFE trust bundle, as `spire-server bundle show -format spiffe` writes it
// and as jwks_files reads it: JWT-SVID keys have "use": "jwt-svid" (not
// "sig") and sit beside the X.509 authorities ("use": "x509-svid", with x5c).
// The JWT-SVID key verifies SVIDs, with or without kid; the X.509 authority
// verifies nothing, and does not count as a second key for a token without kid.
// Before the fix, every key of such a bundle was skipped: "no usable signing
// keys among 2 keys" at start-up.
func TestSPIFFEBundleFile(t *testing.T) {
	jwtKey := newTestKey(t, "spire-jwt-1", "ES256")
	caSigner, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "example.org"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caSigner.PublicKey, caSigner)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testKey{kid: "", alg: "ES256", signer: caSigner}

	entry := func(k any, use string, extra map[string]any) map[string]any {
		b, err := json.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		must(t, json.Unmarshal(b, &m))
		m["use"] = use
		delete(m, "alg") // SPIRE sets no alg
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	caPub, err := jwk.FromRaw(&caSigner.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	caJWK := entry(caPub, "x509-svid", map[string]any{"x5c": []string{base64.StdEncoding.EncodeToString(caDER)}})
	bundle, err := json.Marshal(map[string]any{
		"keys":                []any{caJWK, entry(jwtKey.pub, "jwt-svid", nil)},
		"spiffe_sequence":     1,
		"spiffe_refresh_hint": 300,
	})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "bundle.spiffe")
	must(t, os.WriteFile(path, bundle, 0o600))

	const td = "spiffe://example.org"
	m := newTestIssuers(t, Config{Issuers: []Config{{Issuer: td, SkipDiscovery: true, JWKSFiles: []string{path}, Audiences: []string{td + "/temporal"}}}})
	now := time.Now()
	svid := map[string]any{"iss": td, "sub": td + "/ns/payments/sa/worker", "aud": td + "/temporal",
		"exp": now.Add(5 * time.Minute).Unix(), "iat": now.Unix(), "permissions": []any{"payments:worker"}}

	for _, tc := range []struct {
		name     string
		tok      string
		wantCode ErrorCode
	}{
		{name: "JWT-SVID without kid", tok: jwtKey.sign(t, svid, map[string]any{"kid": nil})},
		{name: "JWT-SVID with the bundle's kid", tok: jwtKey.sign(t, svid, nil)},
		{name: "signed by the X.509 authority's key", tok: ca.sign(t, svid, map[string]any{"kid": nil}), wantCode: CodeBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := m.GetClaims(authInfo(tc.tok))
			if tc.wantCode != "" {
				if !isCode(err, tc.wantCode) {
					t.Fatalf("got %v, want code %s", err, tc.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if got.Subject != td+"/ns/payments/sa/worker" || got.Namespaces["payments"] != authorization.RoleWorker {
				t.Errorf("claims %+v", got)
			}
		})
	}
}
