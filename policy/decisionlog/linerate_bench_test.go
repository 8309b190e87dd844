package decisionlog_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/decisionlog"
)

// countingService is a decision-log service that decodes every batch it
// receives (gzip'd JSON arrays of events, as OPA uploads them) and counts the
// events and the decision ids.
type countingService struct {
	*httptest.Server
	events, batches, bad atomic.Int64
}

func newCountingService(tb testing.TB) *countingService {
	s := &countingService{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zr, err := gzip.NewReader(r.Body)
		if err != nil || r.URL.Path != "/logs" {
			s.bad.Add(1)
			http.Error(w, "bad batch", http.StatusBadRequest)
			return
		}
		var batch []struct {
			DecisionID string `json:"decision_id"`
		}
		if err := json.NewDecoder(zr).Decode(&batch); err != nil {
			s.bad.Add(1)
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, ev := range batch {
			if ev.DecisionID == "" {
				s.bad.Add(1)
			}
		}
		s.events.Add(int64(len(batch)))
		s.batches.Add(1)
	}))
	tb.Cleanup(s.Close)
	return s
}

// cpuTime is the process's CPU time (user and system) so far.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// capture keeps the events of the calls (a decision logger: denied reasons
// carry the decision id, as with a Logger).
type capture struct {
	mu     sync.Mutex
	events []*policy.Event
}

func (c *capture) Record(e *policy.Event) { c.mu.Lock(); c.events = append(c.events, e); c.mu.Unlock() }
func (c *capture) LogsDecisions() bool    { return true }

// lineRateClients are the clients of the line-rate run: their calls (starts
// and lists, some denied) are spread over clients goroutines.
const lineRateClients = 8

func clientClaims(client int) *authorization.Claims {
	claims := &authorization.Claims{Subject: fmt.Sprintf("client-%d", client), Namespaces: map[string]authorization.Role{"default": authorization.RoleWriter}}
	if client%4 == 3 {
		claims.Namespaces["default"] = authorization.RoleReader // its starts are denied
	}
	return claims
}

func lineRateCall(az *policy.Authorizer, claims *authorization.Claims, k int) {
	api := apiStart
	if k%3 == 2 {
		api = apiList
	}
	_, _ = az.Authorize(context.Background(), claims, &authorization.CallTarget{APIName: api, Namespace: "default"})
}

// paced calls Authorize at rate calls/s from lineRateClients goroutines for d
// and returns each call's latency.
func paced(az *policy.Authorizer, rate int, d time.Duration) []time.Duration {
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		all []time.Duration
	)
	interval := time.Duration(float64(time.Second) * lineRateClients / float64(rate))
	start := time.Now()
	for c := range lineRateClients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, int(d/interval)+1)
			claims := clientClaims(c)
			for k := 0; ; k++ {
				due := start.Add(time.Duration(k)*interval + time.Duration(c)*interval/lineRateClients)
				if due.Sub(start) >= d {
					break
				}
				if w := time.Until(due); w > 0 {
					time.Sleep(w)
				}
				t0 := time.Now()
				lineRateCall(az, claims, k)
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all = append(all, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(all)
	return all
}

func p99(lat []time.Duration) time.Duration { return lat[len(lat)*99/100] }

// perEventCPU is a logger's CPU per event for events already decided: each is
// recorded, encoded, batched, gzip'd and uploaded to a service that discards
// what it receives, until Close has flushed them all.
func perEventCPU(b *testing.B, events []*policy.Event, pluginUpload bool) time.Duration {
	svc := newBenchService(b)
	cfg := "services: {audit: {url: '" + svc.URL + "'}}\ndecision_logs: {service: audit, reporting: {min_delay_seconds: 1, max_delay_seconds: 1}}"
	dl, err := decisionlog.New(context.Background(), []byte(cfg), decisionlog.Options{QueueSize: len(events), PluginUpload: pluginUpload})
	if err != nil {
		b.Fatal(err)
	}
	cpu0 := cpuTime(b)
	for _, e := range events {
		dl.Record(e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := dl.Close(ctx); err != nil {
		b.Fatal(err)
	}
	cpu := cpuTime(b) - cpu0
	if st := dl.Status(); st.Logged != uint64(len(events)) || st.Dropped != 0 {
		b.Fatalf("status %+v", st)
	}
	return cpu / time.Duration(len(events))
}

// lineRate is the result of the one line-rate run of a process.
type lineRate struct {
	once    sync.Once
	metrics map[string]float64
	err     error
}

var lineRateRun lineRate // BenchmarkDecisionLogLineRate runs once whatever b.N

// BenchmarkDecisionLogLineRate drives TEMPORAL_OPA_DL_RATE calls/s (50,000)
// for TEMPORAL_OPA_DL_DURATION (60s) from 8 clients through an Authorizer
// whose Logger uploads to an httptest service that decodes and counts the
// batches, with the default queue and OPA's default upload size, then the same
// rate for 10s without logging. It runs once per process (b.N is ignored) and
// reports: events received, dropped, events/s per core of the whole process
// (callers, logger and the decoding service; getrusage), the logging's CPU per
// call at that rate, the p99 of a call with and without logging, and the
// logger's CPU per event in a closed loop for the path of OPA's plugin
// (Options.PluginUpload, the path before) and the direct one, with their ratio.
//
// Profile of BenchmarkLogEvent/service (20,000 events, before this change;
// go test -bench LogEvent -cpuprofile, go tool pprof -top): see the package
// doc and docs/performance.md for the figures.
func BenchmarkDecisionLogLineRate(b *testing.B) {
	lineRateRun.once.Do(func() { lineRateRun.metrics, lineRateRun.err = runLineRate(b) })
	if lineRateRun.err != nil {
		b.Fatal(lineRateRun.err)
	}
	for name, v := range lineRateRun.metrics {
		b.ReportMetric(v, name)
	}
}

func runLineRate(b *testing.B) (map[string]float64, error) {
	rate, d := 50000, 60*time.Second
	if s := os.Getenv("TEMPORAL_OPA_DL_RATE"); s != "" {
		if _, err := fmt.Sscan(s, &rate); err != nil || rate <= 0 {
			return nil, fmt.Errorf("TEMPORAL_OPA_DL_RATE=%q: not a positive number", s)
		}
	}
	if s := os.Getenv("TEMPORAL_OPA_DL_DURATION"); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d <= 0 {
			return nil, fmt.Errorf("TEMPORAL_OPA_DL_DURATION=%q: not a positive duration", s)
		}
	}
	out := map[string]float64{}

	// The logger's CPU per event, closed loop: old path and new, same events.
	capt := &capture{}
	caz, err := policy.NewAuthorizer(policy.Options{Recorder: capt}, nil)
	if err != nil {
		return nil, err
	}
	for k := range 20000 {
		lineRateCall(caz, clientClaims(k%lineRateClients), k/lineRateClients)
	}
	plugin := perEventCPU(b, capt.events, true)
	direct := perEventCPU(b, capt.events, false)
	out["plugin_cpu_us/event"] = float64(plugin.Nanoseconds()) / 1e3
	out["direct_cpu_us/event"] = float64(direct.Nanoseconds()) / 1e3
	out["x_plugin"] = float64(plugin) / float64(direct)

	// Without logging, at the same rate.
	plain, err := policy.NewAuthorizer(policy.Options{}, nil)
	if err != nil {
		return nil, err
	}
	plainD := min(d, 10*time.Second)
	cpu0 := cpuTime(b)
	latPlain := paced(plain, rate, plainD)
	cpuPlain := cpuTime(b) - cpu0

	// With logging.
	svc := newCountingService(b)
	cfg := "services: {audit: {url: '" + svc.URL + "'}}\ndecision_logs: {service: audit, reporting: {min_delay_seconds: 1, max_delay_seconds: 2}}"
	dl, err := decisionlog.New(context.Background(), []byte(cfg), decisionlog.Options{})
	if err != nil {
		return nil, err
	}
	az, err := policy.NewAuthorizer(policy.Options{Recorder: dl}, nil)
	if err != nil {
		return nil, err
	}
	cpu0 = cpuTime(b)
	t0 := time.Now()
	lat := paced(az, rate, d)
	elapsed := time.Since(t0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := dl.Close(ctx); err != nil {
		return nil, err
	}
	cpu := cpuTime(b) - cpu0
	st := dl.Status()
	calls := len(lat)
	if svc.bad.Load() != 0 {
		return nil, fmt.Errorf("the service received %d bad batches or events", svc.bad.Load())
	}
	if got := svc.events.Load(); got+int64(st.Dropped) != int64(calls) || st.Recorded+st.Dropped != uint64(calls) {
		return nil, fmt.Errorf("%d calls, %d events received, status %+v", calls, got, st)
	}
	out["calls/s"] = float64(calls) / elapsed.Seconds()
	out["received"] = float64(svc.events.Load())
	out["dropped"] = float64(st.Dropped)
	out["events/s/core"] = float64(svc.events.Load()) / cpu.Seconds()
	perCallPlain := float64(cpuPlain.Nanoseconds()) / float64(len(latPlain))
	out["logging_cpu_us/call"] = (float64(cpu.Nanoseconds())/float64(calls) - perCallPlain) / 1e3
	out["p99_us"] = float64(p99(lat).Nanoseconds()) / 1e3
	out["p99_plain_us"] = float64(p99(latPlain).Nanoseconds()) / 1e3
	out["p99_added_us"] = out["p99_us"] - out["p99_plain_us"]
	b.Logf("%d calls/s for %v (%d calls): %d received in %d batches, %d dropped; %.0f events/s per core (process CPU %.1fs); logging %.2f µs CPU/call; p99 %.1f µs (without logging %.1f µs); per event closed loop: OPA's plugin %.1f µs, direct %.1f µs (%.1fx)",
		rate, d, calls, svc.events.Load(), svc.batches.Load(), st.Dropped, out["events/s/core"], cpu.Seconds(), out["logging_cpu_us/call"],
		out["p99_us"], out["p99_plain_us"], out["plugin_cpu_us/event"], out["direct_cpu_us/event"], out["x_plugin"])
	return out, nil
}
