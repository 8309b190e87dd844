package cli

import (
	"path/filepath"
	"testing"
	"time"
)

func cert(a []string, e Env) error { _, err := ParseCert(a, e); return err }

func TestParseCertErrors(t *testing.T) {
	tests := []flagErrorCase{
		{"no cn", cert, nil, "cert: --cn is required, e.g. --cn alice"},
		{"spiffe scheme", cert, []string{"--cn", "w", "--spiffe-id", "https://dev.local/w"}, `cert: --spiffe-id: SPIFFE ID "https://dev.local/w": scheme must be spiffe (want spiffe://trust-domain/path, e.g. spiffe://dev.local/worker)`},
		{"spiffe no path", cert, []string{"--cn", "w", "--spiffe-id", "spiffe://dev.local"}, `cert: --spiffe-id: SPIFFE ID "spiffe://dev.local": no path: a trust domain alone names no workload (want spiffe://trust-domain/path, e.g. spiffe://dev.local/worker)`},
		{"spiffe upper-case domain", cert, []string{"--cn", "w", "--spiffe-id", "spiffe://Dev.local/w"}, `cert: --spiffe-id: SPIFFE ID "spiffe://Dev.local/w": trust domain may hold only lower-case letters, digits, '.', '-' and '_' (want spiffe://trust-domain/path, e.g. spiffe://dev.local/worker)`},
		{"spiffe port", cert, []string{"--cn", "w", "--spiffe-id", "spiffe://dev.local:8443/w"}, `cert: --spiffe-id: SPIFFE ID "spiffe://dev.local:8443/w": no user info or port allowed (want spiffe://trust-domain/path, e.g. spiffe://dev.local/worker)`},
		{"spiffe query", cert, []string{"--cn", "w", "--spiffe-id", "spiffe://dev.local/w?x=1"}, `cert: --spiffe-id: SPIFFE ID "spiffe://dev.local/w?x=1": no query or fragment allowed (want spiffe://trust-domain/path, e.g. spiffe://dev.local/worker)`},
		{"spiffe dot segment", cert, []string{"--cn", "w", "--spiffe-id", "spiffe://dev.local/a/../b"}, `cert: --spiffe-id: SPIFFE ID "spiffe://dev.local/a/../b": path segments must be non-empty and not . or .. (want spiffe://trust-domain/path, e.g. spiffe://dev.local/worker)`},
		{"bad dns", cert, []string{"--cn", "w", "--dns", "a b"}, `cert: --dns "a b": not a DNS name`},
		{"bad email", cert, []string{"--cn", "w", "--email", "alice"}, `cert: --email "alice": not an email address`},
		{"zero ttl", cert, []string{"--cn", "w", "--ttl", "0s"}, "cert: --ttl 0s: must be positive, e.g. 1h or 30m"},
		{"cert file alone", cert, []string{"--cn", "w", "--cert-file", "w.pem"}, "cert: --cert-file and --key-file go together: give both, or --out DIR"},
		{"out and files", cert, []string{"--cn", "w", "--out", "d", "--cert-file", "w.pem", "--key-file", "w-key.pem"}, "cert: --out and --cert-file/--key-file both say where to write: keep one"},
		{"same file", cert, []string{"--cn", "w", "--cert-file", "w.pem", "--key-file", "w.pem"}, "cert: --cert-file and --key-file name the same file w.pem"},
		{"empty state dir", cert, []string{"--cn", "w", "--state-dir", ""}, "cert: --state-dir is empty: give the directory of the dev CA"},
	}
	checkFlagErrors(t, tests)
}

func TestParseCertFiles(t *testing.T) {
	tests := []struct {
		name              string
		args              []string
		wantCert, wantKey string
	}{
		{"default: the current directory", []string{"--cn", "alice"}, "alice.pem", "alice-key.pem"},
		{"out", []string{"--cn", "alice", "--out", "certs"}, filepath.Join("certs", "alice.pem"), filepath.Join("certs", "alice-key.pem")},
		{"a cn unsafe as a file name", []string{"--cn", "../Payments Worker"}, "_._Payments_Worker.pem", "_._Payments_Worker-key.pem"},
		{"explicit files", []string{"--cn", "alice", "--cert-file", "a.crt", "--key-file", "a.key"}, "a.crt", "a.key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := ParseCert(tc.args, testEnv(t))
			if err != nil {
				t.Fatal(err)
			}
			if o.CertFile != tc.wantCert || o.KeyFile != tc.wantKey {
				t.Errorf("files %s, %s; want %s, %s", o.CertFile, o.KeyFile, tc.wantCert, tc.wantKey)
			}
		})
	}
	o, err := ParseCert([]string{"--cn", "w", "--spiffe-id", "spiffe://dev.local/ns/payments/w", "--dns", "a.local,b.local", "--email", "w@dev.local"}, testEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	if o.TTL != 24*time.Hour || o.StateDir == "" || len(o.DNSNames) != 2 || o.SPIFFEID == "" {
		t.Errorf("parsed %+v", o)
	}
}
