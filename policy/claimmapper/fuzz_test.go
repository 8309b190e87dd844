package claimmapper

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"go.temporal.io/server/common/authorization"
)

// FuzzGetClaims feeds arbitrary Authorization values to a Mapper whose keys are
// known. It must never panic; a refusal must be a *TokenError with a code, no claims,
// and no copy of the token; an acceptance must carry a token that jwx itself verifies
// with the published keys, a CacheKey that is the token's SHA-256, and roles that are
// never zero, never for an empty namespace and never for temporal-system.
func FuzzGetClaims(f *testing.F) {
	rs := newTestKey(f, "rs", "RS256")
	es := newTestKey(f, "es", "ES256")
	ed := newTestKey(f, "ed", "EdDSA")
	set := jwk.NewSet()
	for _, k := range []*testKey{rs, es, ed} {
		must(f, set.AddKey(k.pub))
	}
	srv := &jwksServer{keys: []jwk.Key{rs.pub, es.pub, ed.pub}}
	rec := httptest.NewRecorder()
	srv.serveJWKS(rec, nil)
	path := filepath.Join(f.TempDir(), "jwks.json")
	must(f, os.WriteFile(path, rec.Body.Bytes(), 0o600))

	now := time.Unix(1_800_000_000, 0)
	m := newTestMapper(f, Config{
		JWKSFiles:              []string{path},
		SystemNamespaceAliases: []string{"system"},
		Audiences:              []string{"temporal", "account"},
		CacheSize:              256,
	}, WithClock(func() time.Time { return now }))

	claims := func(perms any) map[string]any {
		c := claimsAt(now, "alice", perms)
		c["aud"] = []any{"temporal"}
		return c
	}
	for _, k := range []*testKey{rs, es, ed} {
		f.Add(bearer(k.sign(f, claims([]any{"default:read", "temporal-system:admin", "a:b:c", 5, "system:write"}), nil)))
		f.Add("bearer " + k.sign(f, claims("default:read other:write"), nil))
		f.Add(bearer(k.sign(f, claims(map[string]any{"x": []any{"y:admin"}}), map[string]any{"jku": "http://127.0.0.1:1/"})))
	}
	valid := es.sign(f, claims([]any{"ns:worker"}), nil)
	p := strings.Split(valid, ".")
	f.Add(bearer(seg(map[string]any{"alg": "none", "kid": "es"}) + "." + p[1] + "."))
	f.Add(bearer(seg(map[string]any{"alg": "HS256", "kid": "rs"}) + "." + p[1] + "." + p[2]))
	f.Add(bearer(p[0] + "." + p[1]))
	f.Add(bearer(p[0] + "." + p[1] + "." + p[2][:10]))
	f.Add(bearer(valid + "." + p[2]))
	f.Add(bearer(es.sign(f, map[string]any{"sub": 1, "exp": float64(now.Unix() + 60)}, nil)))
	f.Add(bearer(es.signRaw(f, `{"sub":"a","exp":1e300,"permissions":[["x"]],"aud":"temporal"}`)))
	f.Add(bearer(es.signRaw(f, `{"sub":"a","exp":1800000060,"aud":"temporal","permissions":["\u0000:read","ns:\u212Aworker"]}`)))
	f.Add("")
	f.Add("Bearer ")
	f.Add("Bearer a.b.c")
	f.Add("Basic dXNlcjpwYXNz")
	f.Add("Bearer " + strings.Repeat("A", DefaultMaxTokenSize))

	f.Fuzz(func(t *testing.T, auth string) {
		c, err := m.GetClaims(&authorization.AuthInfo{AuthToken: auth})
		if err != nil {
			var te *TokenError
			if !errors.As(err, &te) || te.Code == "" {
				t.Fatalf("refusal is not a *TokenError with a code: %v", err)
			}
			if c != nil {
				t.Fatalf("claims returned with an error")
			}
			if _, raw, ok := strings.Cut(auth, " "); ok && len(raw) >= 16 && strings.Contains(err.Error(), raw) {
				t.Fatalf("error contains the token: %v", err)
			}
			return
		}
		if c == nil || c.AuthType != "jwt" {
			t.Fatalf("accepted without jwt claims: %+v", c)
		}
		if auth == "" {
			return
		}
		_, raw, _ := strings.Cut(auth, " ")
		if _, err := jws.Verify([]byte(raw), jws.WithKeySet(set, jws.WithRequireKid(true))); err != nil {
			t.Fatalf("accepted a token jwx refuses: %v", err)
		}
		hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
		if strings.Contains(string(hdr), `"none"`) || strings.Contains(string(hdr), `"HS`) {
			t.Fatalf("accepted header %s", hdr)
		}
		sum := sha256.Sum256([]byte(raw))
		if tok, ok := c.Extensions.(*Token); !ok || tok.CacheKey() != hex.EncodeToString(sum[:]) {
			t.Fatalf("Extensions %#v", c.Extensions)
		}
		for ns, r := range c.Namespaces {
			if r == 0 || ns == "" || ns == SystemNamespace || ns == "system" {
				t.Fatalf("namespace role %q=%v", ns, r)
			}
		}
	})
}
