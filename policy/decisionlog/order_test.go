package decisionlog_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/decisionlog"
)

// TestEveryEventOnceInOrder: several clients call through the same Authorizer
// and Logger (the upload path of BenchmarkDecisionLogLineRate) into an
// httptest service; within a few seconds, without Close, the service has every
// event exactly once (by decision id), and each client's events in the order
// of its calls.
func TestEveryEventOnceInOrder(t *testing.T) {
	type ev struct {
		DecisionID string `json:"decision_id"`
		Custom     struct {
			Subject   string `json:"subject"`
			Namespace string `json:"namespace"`
		} `json:"custom"`
	}
	var (
		mu       sync.Mutex
		received []ev
	)
	svc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var batch []ev
		if err := json.NewDecoder(zr).Decode(&batch); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		received = append(received, batch...)
		mu.Unlock()
	}))
	defer svc.Close()
	cfg := "services: {audit: {url: '" + svc.URL + "'}}\n" +
		// Small uploads: many batches, so that order across batches is tested too.
		"decision_logs: {service: audit, reporting: {min_delay_seconds: 1, max_delay_seconds: 1, upload_size_limit_bytes: 4096}}"
	dl, err := decisionlog.New(context.Background(), []byte(cfg), decisionlog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer closeLogger(t, dl)
	az, err := policy.NewAuthorizer(policy.Options{Recorder: dl}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const clients, calls = 6, 500
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			claims := &authorization.Claims{Subject: fmt.Sprintf("client-%d", c), Namespaces: map[string]authorization.Role{"default": authorization.RoleWriter}}
			for k := range calls {
				// The call's sequence number is in its namespace (each a cache miss).
				_, _ = az.Authorize(context.Background(), claims, &authorization.CallTarget{APIName: apiStart, Namespace: fmt.Sprintf("ns-%04d", k)})
			}
		}()
	}
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(received)
		mu.Unlock()
		if n >= clients*calls || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(received) != clients*calls {
		t.Fatalf("the service received %d events within 5s, want %d (status %+v)", len(received), clients*calls, dl.Status())
	}
	ids := map[string]bool{}
	next := map[string]int{}
	for _, e := range received {
		if e.DecisionID == "" || ids[e.DecisionID] {
			t.Fatalf("decision id %q missing or received twice", e.DecisionID)
		}
		ids[e.DecisionID] = true
		seq, err := strconv.Atoi(strings.TrimPrefix(e.Custom.Namespace, "ns-"))
		if err != nil {
			t.Fatalf("event of namespace %q", e.Custom.Namespace)
		}
		if seq != next[e.Custom.Subject] {
			t.Fatalf("%s: call %d received after call %d", e.Custom.Subject, seq, next[e.Custom.Subject]-1)
		}
		next[e.Custom.Subject]++
	}
	if len(next) != clients {
		t.Fatalf("events of %d clients, want %d", len(next), clients)
	}
	if st := dl.Status(); st.Dropped != 0 || st.Failed != 0 {
		t.Fatalf("status %+v", st)
	}
}

// TestServiceDownBoundedAndExact: while the service is down events wait in a
// bounded buffer (in events or in compressed bytes, by buffer type); what the
// bound drops is counted exactly (Status().Dropped and OnDrop): once the
// service is back, received + dropped = recorded. No call waits meanwhile.
func TestServiceDownBoundedAndExact(t *testing.T) {
	for _, reporting := range []string{
		"buffer_type: event, buffer_size_limit_events: 300",
		"buffer_type: size, buffer_size_limit_bytes: 20000, upload_size_limit_bytes: 4096",
	} {
		t.Run(strings.TrimSuffix(strings.Fields(reporting)[1], ","), func(t *testing.T) {
			svc := newLogService(t)
			svc.mu.Lock()
			svc.fail = true
			svc.mu.Unlock()
			cfg := "services: {audit: {url: '" + svc.URL + "'}}\ndecision_logs: {service: audit, reporting: {min_delay_seconds: 1, max_delay_seconds: 1, " + reporting + "}}"
			var onDrop atomic.Int64
			dl, err := decisionlog.New(context.Background(), []byte(cfg), decisionlog.Options{OnDrop: func() { onDrop.Add(1) }})
			if err != nil {
				t.Fatal(err)
			}
			az, err := policy.NewAuthorizer(policy.Options{Recorder: dl}, nil)
			if err != nil {
				t.Fatal(err)
			}
			const calls = 3000
			start := time.Now()
			for k := range calls {
				_, _ = az.Authorize(context.Background(), writer("default"), &authorization.CallTarget{APIName: apiStart, Namespace: fmt.Sprintf("ns-%d", k%50)})
				if k%500 == 499 {
					time.Sleep(20 * time.Millisecond) // the queue drains
				}
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("calls took %v with the service down", d)
			}
			deadline := time.Now().Add(5 * time.Second)
			for dl.Status().Logged+dl.Status().Dropped < calls && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(1500 * time.Millisecond) // an upload attempt fails: nothing is lost by it
			st := dl.Status()
			if st.Dropped == 0 || st.Dropped >= calls {
				t.Fatalf("with the service down, %d of %d dropped: want some, bounded (status %+v)", st.Dropped, calls, st)
			}
			svc.mu.Lock()
			svc.fail = false
			svc.mu.Unlock()
			closeLogger(t, dl)
			st = dl.Status()
			got := len(svc.received())
			if uint64(got)+st.Dropped != calls || onDrop.Load() != int64(st.Dropped) {
				t.Fatalf("received %d + dropped %d (OnDrop %d) != %d calls (status %+v)", got, st.Dropped, onDrop.Load(), calls, st)
			}
			t.Logf("%s: received %d, dropped %d", reporting, got, st.Dropped)
		})
	}
}
