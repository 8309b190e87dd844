// Package hostcheck refuses HTTP requests whose Host header does not name the
// server they reached: the defence against DNS rebinding.
//
// A page on evil.example can make its own name resolve to 127.0.0.1 a moment
// after it loads; the browser then treats http://evil.example:8233 as the same
// origin as the page, sends requests to the server on 127.0.0.1:8233 and reads
// the answers, with "Host: evil.example:8233". A server that answers only to
// its own addresses (localhost, the loopback addresses and, when it listens on
// them, the machine's own addresses and host name) never serves such a page.
package hostcheck

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
)

// Hosts returns the Host header values a server listening on addr (host:port
// as it was bound: 127.0.0.1:8233, 0.0.0.0:7243, [::]:9090) answers to:
// localhost, 127.0.0.1 and [::1] with its port; its own IP when it listens on
// one; every address of the machine's interfaces and its host name when it
// listens on all of them (0.0.0.0 or ::). With port 80 the same names without
// a port are added, as browsers send them.
func Hosts(addr string) ([]string, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("hostcheck: listen address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("hostcheck: listen address %q: want a port between 1 and 65535", addr)
	}
	names := []string{"localhost", "127.0.0.1", "::1"}
	ip := net.ParseIP(host)
	switch {
	case host == "" || (ip != nil && ip.IsUnspecified()):
		ifaddrs, err := net.InterfaceAddrs()
		if err != nil {
			return nil, fmt.Errorf("hostcheck: the machine's addresses: %w", err)
		}
		for _, a := range ifaddrs {
			if n, ok := a.(*net.IPNet); ok {
				names = append(names, n.IP.String())
			}
		}
		if h, err := os.Hostname(); err == nil && h != "" {
			names = append(names, h)
		}
	case ip != nil:
		names = append(names, ip.String())
	default:
		names = append(names, host) // "localhost"
	}
	var hosts []string
	for _, n := range names {
		n = strings.ToLower(n)
		hosts = append(hosts, net.JoinHostPort(n, portStr))
		if port == 80 {
			if strings.Contains(n, ":") {
				n = "[" + n + "]"
			}
			hosts = append(hosts, n)
		}
	}
	slices.Sort(hosts)
	return slices.Compact(hosts), nil
}

// Handler serves h only for requests whose Host is one of hosts (compared
// without regard to case); any other request is answered 421 Misdirected
// Request with a message that says why, and never reaches h.
func Handler(h http.Handler, hosts []string) http.Handler {
	allowed := make(map[string]bool, len(hosts))
	for _, host := range hosts {
		allowed[strings.ToLower(host)] = true
	}
	example := ""
	if len(hosts) > 0 {
		example = hosts[0]
		for _, host := range hosts {
			if strings.HasPrefix(host, "127.0.0.1") {
				example = host
			}
		}
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if allowed[strings.ToLower(r.Host)] {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusMisdirectedRequest)
		fmt.Fprintf(w, "Host %q is not an address of this server, which answers only to its own addresses "+
			"(e.g. %s) to protect against DNS rebinding\n", r.Host, example)
	})
}

// Wrap is Handler(h, Hosts(addr)).
func Wrap(h http.Handler, addr string) (http.Handler, error) {
	hosts, err := Hosts(addr)
	if err != nil {
		return nil, err
	}
	return Handler(h, hosts), nil
}
