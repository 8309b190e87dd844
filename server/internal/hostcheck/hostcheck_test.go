package hostcheck

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestHosts(t *testing.T) {
	hostname, _ := os.Hostname()
	var ifaceIP string
	if addrs, _ := net.InterfaceAddrs(); len(addrs) > 0 {
		if n, ok := addrs[len(addrs)-1].(*net.IPNet); ok {
			ifaceIP = n.IP.String()
		}
	}
	for _, tc := range []struct {
		name    string
		addr    string
		want    []string // must be in the list
		notWant []string // must not be
	}{
		{"loopback", "127.0.0.1:8233",
			[]string{"127.0.0.1:8233", "localhost:8233", "[::1]:8233"},
			[]string{"evil.example:8233", "127.0.0.1:8234", "127.0.0.1", "localhost", net.JoinHostPort(hostname, "8233")}},
		{"ipv6 loopback", "[::1]:7243",
			[]string{"[::1]:7243", "127.0.0.1:7243", "localhost:7243"}, []string{"[::1]:7244"}},
		{"specific ip", "192.0.2.7:9090",
			[]string{"192.0.2.7:9090", "127.0.0.1:9090"}, []string{"192.0.2.8:9090", net.JoinHostPort(hostname, "9090")}},
		{"all ipv4 addresses", "0.0.0.0:7243",
			[]string{"127.0.0.1:7243", net.JoinHostPort(strings.ToLower(hostname), "7243"), net.JoinHostPort(ifaceIP, "7243")},
			[]string{"0.0.0.0:7243", "evil.example:7243"}},
		{"all addresses", "[::]:7243", []string{"localhost:7243", net.JoinHostPort(ifaceIP, "7243")}, nil},
		{"port 80", "127.0.0.1:80", []string{"127.0.0.1:80", "127.0.0.1", "localhost", "[::1]"}, []string{"evil.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Hosts(tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !slices.Contains(got, w) {
					t.Errorf("Hosts(%q) = %q: missing %q", tc.addr, got, w)
				}
			}
			for _, w := range tc.notWant {
				if slices.Contains(got, w) {
					t.Errorf("Hosts(%q) = %q: has %q", tc.addr, got, w)
				}
			}
		})
	}
}

func TestHostsRejectsBadAddresses(t *testing.T) {
	for _, addr := range []string{"127.0.0.1", "127.0.0.1:0", "127.0.0.1:x", ":70000"} {
		if _, err := Hosts(addr); err == nil {
			t.Errorf("Hosts(%q): no error", addr)
		}
	}
}

func TestHandler(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "served") })
	h, err := Wrap(ok, "127.0.0.1:8233")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		host     string
		wantCode int
	}{
		{"own address", "127.0.0.1:8233", http.StatusOK},
		{"localhost", "localhost:8233", http.StatusOK},
		{"localhost in capitals", "LocalHost:8233", http.StatusOK},
		{"ipv6 loopback", "[::1]:8233", http.StatusOK},
		{"rebinding name", "evil.example:8233", http.StatusMisdirectedRequest},
		{"rebinding name without port", "evil.example", http.StatusMisdirectedRequest},
		{"another port", "127.0.0.1:8234", http.StatusMisdirectedRequest},
		{"no port", "127.0.0.1", http.StatusMisdirectedRequest},
		{"empty", "", http.StatusMisdirectedRequest},
		{"subdomain of localhost", "evil.localhost.example:8233", http.StatusMisdirectedRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:8233/api/v1/namespaces/default/workflows/evil-1", strings.NewReader("{}"))
			r.Host = tc.host
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.wantCode {
				t.Fatalf("Host %q: %d %s, want %d", tc.host, w.Code, w.Body, tc.wantCode)
			}
			if tc.wantCode != http.StatusOK && (strings.Contains(w.Body.String(), "served") || !strings.Contains(w.Body.String(), "DNS rebinding")) {
				t.Errorf("Host %q: body %q", tc.host, w.Body)
			}
		})
	}
}
