package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/temporal-opa/temporal-opa/server/internal/devkey"
)

// flappingServer serves a handler on a fixed loopback port and can be taken
// down (its listener and connections closed: callers get "connection
// refused", as from a crashed service) and brought up again on the same
// address. The soak's bundle server, OIDC issuer and decision-log service are
// each one.
type flappingServer struct {
	name    string
	addr    string
	handler http.Handler
	tls     *tls.Config

	mu  sync.Mutex
	srv *http.Server
}

func newFlappingServer(t *testing.T, name string, handler http.Handler, tlsConfig *tls.Config) *flappingServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &flappingServer{name: name, addr: ln.Addr().String(), handler: handler, tls: tlsConfig}
	f.serve(ln)
	t.Cleanup(f.down)
	return f
}

// URL is the server's base URL.
func (f *flappingServer) URL() string {
	if f.tls != nil {
		return "https://" + f.addr
	}
	return "http://" + f.addr
}

func (f *flappingServer) serve(ln net.Listener) {
	srv := &http.Server{Handler: f.handler, ReadHeaderTimeout: 10 * time.Second}
	if f.tls != nil {
		ln = tls.NewListener(ln, f.tls)
	}
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// down closes the listener and every open connection.
func (f *flappingServer) down() {
	f.mu.Lock()
	srv := f.srv
	f.srv = nil
	f.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// up listens again on the same address (retrying while the port is released).
func (f *flappingServer) up() error {
	var err error
	for range 50 {
		var ln net.Listener
		if ln, err = net.Listen("tcp", f.addr); err == nil {
			f.serve(ln)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s: listen again on %s: %w", f.name, f.addr, err)
}

// rotatingIssuer is an OIDC issuer over HTTPS (a private CA): discovery and a
// JWKS holding every published key. Rotation publishes a new key and signs
// new tokens with it at once (the verifiers fetch it on its first unknown
// kid); the old key stays published until the tokens it signed have expired.
type rotatingIssuer struct {
	*flappingServer
	url string

	mu        sync.Mutex
	signing   *devkey.Key
	published []*devkey.Key
	all       []*devkey.Key // every key ever published, for the offline oracle
	fetches   atomic.Int64
}

func newRotatingIssuer(t *testing.T, ca *testCA) *rotatingIssuer {
	t.Helper()
	key, err := devkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	is := &rotatingIssuer{signing: key, published: []*devkey.Key{key}, all: []*devkey.Key{key}}
	tlsConfig := &tls.Config{Certificates: []tls.Certificate{ca.serverCert(t)}, MinVersion: tls.VersionTLS12}
	is.flappingServer = newFlappingServer(t, "OIDC issuer", http.HandlerFunc(is.serveHTTP), tlsConfig)
	is.url = is.URL()
	return is
}

func (is *rotatingIssuer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		is.fetches.Add(1)
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": is.url, "jwks_uri": is.url + "/jwks", "id_token_signing_alg_values_supported": []string{"ES256"}})
	case "/jwks":
		is.fetches.Add(1)
		is.mu.Lock()
		keys := append([]*devkey.Key(nil), is.published...)
		is.mu.Unlock()
		b, err := jwksOf(keys)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(b)
	default:
		http.NotFound(w, r)
	}
}

// jwksOf is one JSON Web Key Set holding the public keys of keys.
func jwksOf(keys []*devkey.Key) ([]byte, error) {
	var all []json.RawMessage
	for _, k := range keys {
		b, err := k.JWKS()
		if err != nil {
			return nil, err
		}
		var set struct {
			Keys []json.RawMessage `json:"keys"`
		}
		if err := json.Unmarshal(b, &set); err != nil {
			return nil, err
		}
		all = append(all, set.Keys...)
	}
	return json.Marshal(map[string]any{"keys": all})
}

// mint signs a token for sub with perms, valid for ttl from now (negative:
// already expired), with the current signing key.
func (is *rotatingIssuer) mint(sub string, perms []string, ttl time.Duration) (string, error) {
	is.mu.Lock()
	key := is.signing
	is.mu.Unlock()
	return key.Mint(devkey.Claims{Subject: sub, Permissions: perms, TTL: ttl, Issuer: is.url})
}

// rotate publishes a new key and signs with it from now on; it returns the
// old key, to retire once its tokens have expired.
func (is *rotatingIssuer) rotate() (*devkey.Key, error) {
	key, err := devkey.Generate()
	if err != nil {
		return nil, err
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	old := is.signing
	is.signing = key
	is.published = append(is.published, key)
	is.all = append(is.all, key)
	return old, nil
}

// retire stops publishing key.
func (is *rotatingIssuer) retire(key *devkey.Key) {
	is.mu.Lock()
	defer is.mu.Unlock()
	for i, k := range is.published {
		if k == key {
			is.published = append(is.published[:i], is.published[i+1:]...)
			return
		}
	}
}

// signingKID is the kid of the current signing key (a forger copies it).
func (is *rotatingIssuer) signingKID() string {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.signing.KeyID()
}

// allKeysJWKS is every key the issuer ever published, for the offline oracle.
func (is *rotatingIssuer) allKeysJWKS() ([]byte, error) {
	is.mu.Lock()
	keys := append([]*devkey.Key(nil), is.all...)
	is.mu.Unlock()
	return jwksOf(keys)
}

// logService is a decision-log service (OPA's /logs: gzip'd JSON arrays of
// events) that can be down (a flappingServer) or slow (each upload answered
// after a delay).
type logService struct {
	*flappingServer
	slow atomic.Int64 // delay per upload, nanoseconds; 0: answer at once

	mu      sync.Mutex
	events  map[string]map[string]any // by decision id
	dups    int                       // events received again (a batch retried after its answer was lost)
	batches int
}

func newLogService(t *testing.T) *logService {
	t.Helper()
	s := &logService{events: map[string]map[string]any{}}
	s.flappingServer = newFlappingServer(t, "decision-log service", http.HandlerFunc(s.serveHTTP), nil)
	return s
}

func (s *logService) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if d := time.Duration(s.slow.Load()); d > 0 {
		time.Sleep(d)
	}
	batch, _, err := readLogBatch(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches++
	for _, ev := range batch {
		id, _ := ev["decision_id"].(string)
		if _, seen := s.events[id]; seen {
			s.dups++
			continue
		}
		s.events[id] = ev
	}
}

// loggedEvent is what the soak reads of one event.
type loggedEvent struct {
	instance string // labels.instance: the frontend process that decided
	revision string // bundles.authz.revision
	allow    bool
	reason   string
	api      string
	subject  string
	at       time.Time
}

func (s *logService) snapshot() (map[string]loggedEvent, int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]loggedEvent, len(s.events))
	for id, ev := range s.events {
		var e loggedEvent
		if l, ok := ev["labels"].(map[string]any); ok {
			e.instance, _ = l["instance"].(string)
		}
		if b, ok := ev["bundles"].(map[string]any); ok {
			if a, ok := b["authz"].(map[string]any); ok {
				e.revision, _ = a["revision"].(string)
			}
		}
		if r, ok := ev["result"].(map[string]any); ok {
			e.allow, _ = r["allow"].(bool)
			e.reason, _ = r["reason"].(string)
		}
		if c, ok := ev["custom"].(map[string]any); ok {
			e.api, _ = c["api"].(string)
			e.subject, _ = c["subject"].(string)
		}
		if ts, ok := ev["timestamp"].(string); ok {
			e.at, _ = time.Parse(time.RFC3339Nano, ts)
		}
		out[id] = e
	}
	return out, s.dups, s.batches
}

// eventIndex finds the events of a call: by instance, API and subject, in
// time order. The load's callers of one subject call one API through one
// frontend one call at a time, so the events within a call's time are its
// own (several when the SDK retried it after a decision).
type eventIndex map[string][]eventAt

type eventAt struct {
	at time.Time
	id string
}

func indexEvents(events map[string]loggedEvent) eventIndex {
	idx := eventIndex{}
	for id, e := range events {
		k := e.instance + "|" + e.api + "|" + e.subject
		idx[k] = append(idx[k], eventAt{at: e.at, id: id})
	}
	for _, list := range idx {
		sort.Slice(list, func(i, j int) bool { return list[i].at.Before(list[j].at) })
	}
	return idx
}

// find returns the ids of the events of instance, api and subject decided
// within [start, end].
func (idx eventIndex) find(instance, api, subject string, start, end time.Time) []string {
	list := idx[instance+"|"+api+"|"+subject]
	i := sort.Search(len(list), func(i int) bool { return !list[i].at.Before(start) })
	var ids []string
	for ; i < len(list) && !list[i].at.After(end); i++ {
		ids = append(ids, list[i].id)
	}
	return ids
}

// countBy counts events by instance.
func countBy(events map[string]loggedEvent) map[string]int {
	n := map[string]int{}
	for _, e := range events {
		n[e.instance]++
	}
	return n
}

// decisionIDOf is the decision id at the end of a denied call's reason
// ("... (decision <id>)"), or "".
func decisionIDOf(reason string) string {
	i := strings.LastIndex(reason, "(decision ")
	if i < 0 || !strings.HasSuffix(reason, ")") {
		return ""
	}
	return reason[i+len("(decision ") : len(reason)-1]
}
