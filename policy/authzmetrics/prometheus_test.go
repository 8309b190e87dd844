package authzmetrics_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/metrics"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/authzmetrics"
)

// scrape GETs url and returns its Prometheus text, retrying while the
// handler's server is coming up.
func scrape(t *testing.T, url string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			body, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK {
				return string(body)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("scrape %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// buckets returns the cumulative counts of the histogram series name (all
// label sets added up) by upper bound, "+Inf" as the last.
func buckets(t *testing.T, text, name string) (les []string, counts map[string]float64) {
	t.Helper()
	counts = map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"_bucket{") {
			continue
		}
		labels, value, _ := strings.Cut(line[len(name+"_bucket{"):], "} ")
		i := strings.Index(labels, `le="`)
		if i < 0 {
			t.Fatalf("bucket without le: %q", line)
		}
		le, _, _ := strings.Cut(labels[i+len(`le="`):], `"`)
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		if _, seen := counts[le]; !seen {
			les = append(les, le)
		}
		counts[le] += v
	}
	return les, counts
}

// The evaluation latency, scraped from a real Temporal Prometheus handler
// (OpenTelemetry, as MetricsHandlerFromConfig builds it from global.metrics),
// lands in buckets of 1 µs to 100 ms, below 1 ms for these evaluations; a
// Temporal timer on the same handler keeps its millisecond buckets.
func TestEvalLatencyBucketsScraped(t *testing.T) {
	mh, addr := prometheusHandler(t)

	az, err := policy.NewAuthorizer(policy.Options{Recorder: authzmetrics.New(mh)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	const misses = 20 // one per namespace: each a cache miss, evaluated
	for i := range misses {
		ns := fmt.Sprintf("ns-%d", i)
		claims := &authorization.Claims{Subject: "r", Namespaces: map[string]authorization.Role{ns: authorization.RoleReader}}
		if _, err := az.Authorize(context.Background(), claims, &authorization.CallTarget{APIName: apiList, Namespace: ns}); err != nil {
			t.Fatal(err)
		}
	}
	metrics.ServiceLatency.With(mh).Record(3 * time.Millisecond) // one of Temporal's timers

	text := scrape(t, "http://"+addr+"/metrics")
	const name = "temporal_opa_policy_eval_latency_microseconds_ratio"
	les, counts := buckets(t, text, name)
	want := []string{"1", "2", "5", "10", "20", "50", "100", "200", "500", "1000", "2000", "5000", "10000", "20000", "50000", "100000", "+Inf"}
	if !slices.Equal(les, want) {
		t.Fatalf("%s buckets %v, want %v (1 µs to 100 ms)\n%s", name, les, want, text)
	}
	if counts["+Inf"] != misses {
		t.Errorf("%s: %v evaluations counted, want %d", name, counts["+Inf"], misses)
	}
	// A cache miss of the default policy takes tens of microseconds: most
	// land below 1 ms (all on an idle machine), none at once in le="1".
	if counts["500"] < misses/2 || counts["1"] == misses {
		t.Errorf("%s: %v of %d evaluations at or below 500 µs, %v at or below 1 µs: the buckets do not resolve them\n%s",
			name, counts["500"], misses, counts["1"], text)
	}
	if !strings.Contains(text, name+`_bucket{operation="ListWorkflowExecutions"`) {
		t.Errorf("no %s series with operation=ListWorkflowExecutions", name)
	}

	// Temporal's own series are unchanged: its timers keep milliseconds
	// from 1 ms to 1,000 s.
	les, counts = buckets(t, text, "service_latency_milliseconds")
	if len(les) == 0 || les[0] != "1" || les[len(les)-2] != "1e+06" || counts["5"] != 1 || counts["2"] != 0 {
		t.Errorf("Temporal's service_latency buckets %v (counts %v), want 1 ms to 1e+06 ms with the 3 ms sample in le=5", les, counts)
	}
}

// prometheusHandler is Temporal's metrics handler serving Prometheus (the
// OpenTelemetry framework, as the server configures it) on a free loopback
// port, stopped at the end of the test; addr is that port's address.
func prometheusHandler(t *testing.T) (mh metrics.Handler, addr string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr = ln.Addr().String()
	_ = ln.Close()
	mh, err = metrics.MetricsHandlerFromConfig(log.NewNoopLogger(), &metrics.Config{Prometheus: &metrics.PrometheusConfig{
		Framework: metrics.FrameworkOpentelemetry, ListenAddress: addr, HandlerPath: "/metrics"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mh.Stop(log.NewNoopLogger()) })
	return mh, addr
}
