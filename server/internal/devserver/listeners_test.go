package devserver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCheckUIExposure(t *testing.T) {
	admin := []string{"temporal-system:admin"}
	for _, tc := range []struct {
		name        string
		ip          string
		authEnabled bool
		allowed     bool
		wantErr     bool
	}{
		{"loopback", "127.0.0.1", false, false, false},
		{"another loopback address", "127.0.0.2", false, false, false},
		{"ipv6 loopback", "::1", false, false, false},
		{"localhost", "localhost", false, false, false},
		{"all addresses", "0.0.0.0", false, false, true},
		{"all ipv6 addresses", "::", false, false, true},
		{"a lan address", "192.0.2.10", false, false, true},
		{"all addresses, asked for", "0.0.0.0", false, true, false},
		{"all addresses with oidc login", "0.0.0.0", true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckUIExposure(tc.ip, admin, tc.authEnabled, tc.allowed)
			if (err != nil) != tc.wantErr {
				t.Fatalf("CheckUIExposure(%q, auth %v, allowed %v) = %v, want error %v", tc.ip, tc.authEnabled, tc.allowed, err, tc.wantErr)
			}
			var e *Error
			if err != nil && (!errors.As(err, &e) || !strings.Contains(e.Msg, "--ui-insecure-dev-identity-on-network") || !strings.Contains(e.Msg, "temporal-system:admin")) {
				t.Errorf("error %q: want a *Error naming the permissions and the flag", err)
			}
		})
	}
}

// prepareUI puts the UI on loopback whatever the frontend's IP, and refuses a
// non-loopback UI IP without OIDC login before anything starts.
func TestPrepareUI(t *testing.T) {
	noAuth := filepath.Join(t.TempDir(), "ui.yaml")
	if err := os.WriteFile(noAuth, []byte("defaultNamespace: default\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		o       Options
		wantIP  string
		wantErr string
	}{
		{"frontend on all addresses", Options{IP: "0.0.0.0", UI: &UIOptions{}}, "127.0.0.1", ""},
		{"ui on all addresses", Options{IP: "0.0.0.0", UI: &UIOptions{IP: "0.0.0.0"}}, "", "--ui-insecure-dev-identity-on-network"},
		{"ui config without login", Options{UI: &UIOptions{IP: "0.0.0.0", ConfigFile: noAuth}}, "", "--ui-ip 0.0.0.0 is not a loopback address"},
		{"ui on all addresses, asked for", Options{UI: &UIOptions{IP: "0.0.0.0", DevIdentityOnNetwork: true}}, "0.0.0.0", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := tc.o
			_, err := prepareUI(context.Background(), &o)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.UI.IP != tc.wantIP {
				t.Errorf("UI IP %q, want %q", o.UI.IP, tc.wantIP)
			}
		})
	}
}

func TestHTTPAllowedHosts(t *testing.T) {
	got, err := httpAllowedHosts(Options{IP: "127.0.0.1", HTTPPort: 7243})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"127.0.0.1:7243", "localhost:7243", "[::1]:7243"} {
		if !slices.Contains(got, h) {
			t.Errorf("%q: missing %s", got, h)
		}
	}
	for _, h := range []string{"evil.example:7243", "127.0.0.1:7244"} {
		if slices.Contains(got, h) {
			t.Errorf("%q: has %s", got, h)
		}
	}
	off, err := httpAllowedHosts(Options{IP: "127.0.0.1", HTTPPort: -1})
	if err != nil {
		t.Fatal(err)
	}
	if len(off) != 1 || !strings.HasSuffix(off[0], ".invalid") {
		t.Errorf("HTTP API off: %q, want one .invalid host", off)
	}
}
