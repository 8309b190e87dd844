package claimmapper

import (
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Warnings lists the settings of c under which tokens are verified less
// strictly than they could be, each one sentence naming the key and how to fix
// it. New logs each at Warn when the mapper starts. URLs appear without
// credentials or query strings.
//
//   - A key set or OIDC discovery document fetched over plain http:// from a
//     host other than loopback: anyone on the network path can substitute
//     keys and forge tokens.
//   - No audiences: a token the issuer minted for any other application (aud)
//     is accepted. Not reported when every key source is a loopback URL (such
//     as start-dev's own signing key, whose tokens serve this server alone).
func (c *Config) Warnings() []string {
	var out []string
	discovery := c.Issuer != "" && !c.SkipDiscovery
	if discovery {
		if w := plainHTTPWarning("config issuer", "the OIDC discovery document (and so the key set's URL)", c.Issuer); w != "" {
			out = append(out, w)
		}
	}
	for i, u := range c.JWKSURLs {
		if w := plainHTTPWarning(fmt.Sprintf("config jwks_urls[%d]", i), "the token signing keys", u); w != "" {
			out = append(out, w)
		}
	}
	if len(c.Audiences) == 0 && !c.loopbackKeysOnly() {
		out = append(out, "claimmapper: config audiences is empty, so a token's aud is not checked: "+
			"a token the issuer minted for any other application is accepted here; "+
			"set jwt.audiences (Temporal's global.authorization.audience) to this server's audience")
	}
	return out
}

// plainHTTPWarning warns about raw, where subject fetches what, when it is an
// http:// URL to a host that is not loopback.
func plainHTTPWarning(subject, what, raw string) string {
	u, err := url.Parse(raw)
	if err != nil || !strings.EqualFold(u.Scheme, "http") || isLoopbackHost(u.Hostname()) {
		return ""
	}
	return fmt.Sprintf("claimmapper: %s %s fetches %s over plain http from a host that is not loopback: "+
		"anyone on the network path can substitute the keys and forge tokens; use https", subject, redactURL(raw), what)
}

// loopbackKeysOnly reports whether every key source of c is a URL on a
// loopback host (no key files, whose origin cannot be told).
func (c *Config) loopbackKeysOnly() bool {
	var urls []string
	if c.Issuer != "" && !c.SkipDiscovery {
		urls = append(urls, c.Issuer)
	}
	urls = append(urls, c.JWKSURLs...)
	if len(urls) == 0 || len(c.JWKSFiles) > 0 {
		return false
	}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || !isLoopbackHost(u.Hostname()) {
			return false
		}
	}
	return true
}

// isLoopbackHost reports whether host (without port) is localhost or a
// loopback IP address.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
