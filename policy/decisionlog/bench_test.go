package decisionlog_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.temporal.io/server/common/authorization"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/decisionlog"
)

// BenchmarkRecord is what decision logging adds to a call, on the caller's
// goroutine: the decision id, the event and the queue (the logger's goroutine
// is kept busy elsewhere: its queue is full, so this is also the cost of a
// dropped event).
func BenchmarkRecord(b *testing.B) {
	block := make(chan struct{})
	defer close(block)
	w := writerFunc(func(p []byte) (int, error) { <-block; return len(p), nil })
	dl, err := decisionlog.New(context.Background(), nil, decisionlog.Options{ForceConsole: true, Console: w, QueueSize: 1})
	if err != nil {
		b.Fatal(err)
	}
	benchAuthorize(b, dl)
}

// BenchmarkLogEvent is the whole cost of logging one event, caller and logger
// goroutine together (ns/op includes waiting for the queue to drain): the input
// document, erasure, OPA's drop and mask rules, and the sink. It runs off the
// request path; under a load the logger cannot keep up with, events are
// dropped and counted, never waited for. service is the upload path,
// service-plugin OPA's plugin doing all (Options.PluginUpload, the path
// before).
//
// Profile before the upload path (main at af42fad, console, console-token-claims
// and service, 20,000 events each; go test -bench LogEvent -benchtime 20000x
// -cpuprofile, go tool pprof -top -cum; 5.44 s of samples,
// 2 cores, no other measurement running):
//
//	cum%   what
//	66.7%  decisionlog.(*Logger).log
//	54.2%  logs.(*Plugin).Log (OPA's plugin)
//	25.6%  runtime.mallocgc (359-723 allocations per event); 19.5% gcBgMarkWorker
//	23.9%  logs.(*Plugin).logEvent (console: eventToFields' JSON round trips 11.9%, logrus JSON 9.6%)
//	12.5%  logs.(*EventV1).AST (the event as an OPA value for the drop and mask rules; roundtripJSONToAST 6.1%)
//	12.5%  decisionlog.(*Logger).info (ast.JSON 3.9%, projection.Whole 3.5%, keepClaimsRead 1.5%)
//	10.1%  rego.PreparedEvalQuery.Eval (dropEvent 7.0%, maskEvent 3.1%: with no system.log rules loaded)
//	 6.3%  logs.(*Plugin).push -> sizeBuffer.Push (json.Marshal of the event by reflection, gzip 1.1%)
//
// After (service, the upload path; 3 x 20,000 events; 0.90 s of samples,
// setup included; 9.2-9.6 µs/op, 98 allocations per event instead of 359;
// since then strings to cut are found while encoding and escaping is
// table-driven: 8.0-8.3 µs/op and 72 allocations, service-plugin 43-46 µs/op
// and 356 in the same run):
//
//	cum%   what
//	60.0%  decisionlog.(*Logger).log
//	26.7%  decisionlog.(*Logger).info (projection.Whole 12.2%, plainInput 6.7%, keepClaimsRead 3.3%)
//	21.1%  decisionlog.appendEvent (appendString 10.0%, map keys sorted 6.7%, the input value 8.9%)
//	17.8%  runtime.mallocgc; 16.7% gcBgMarkWorker
//	12.2%  decisionlog.(*uploader).add (gzip 10.0%: klauspost/compress, fastest level)
//	 5.6%  policy.NewAuthorizer (setup)
//	 0%    rego evaluation, reflection, JSON round trips
func BenchmarkLogEvent(b *testing.B) {
	svc := newBenchService(b)
	withToken := writer("default")
	withToken.Extensions = map[string]any{ // a typical OIDC token's claims, none read by the default policy
		"iss": "https://idp.example", "sub": "bob", "aud": "temporal", "exp": 1795443985, "iat": 1795440385,
		"email": "bob@example.com", "name": "Bob Smith", "groups": []any{"payments-team", "ops"},
	}
	for _, sink := range []struct {
		name   string
		cfg    string
		opts   decisionlog.Options
		claims *authorization.Claims
	}{
		{"console", "", decisionlog.Options{ForceConsole: true, Console: io.Discard}, writer("default")},
		{"console-token-claims", "", decisionlog.Options{ForceConsole: true, Console: io.Discard}, withToken},
		{"service", "services: {audit: {url: '" + svc.URL + "'}}\ndecision_logs: {service: audit, reporting: {min_delay_seconds: 1, max_delay_seconds: 1}}", decisionlog.Options{}, writer("default")},
		{"service-plugin", "services: {audit: {url: '" + svc.URL + "'}}\ndecision_logs: {service: audit, reporting: {min_delay_seconds: 1, max_delay_seconds: 1}}", decisionlog.Options{PluginUpload: true}, writer("default")},
	} {
		b.Run(sink.name, func(b *testing.B) {
			sink.opts.QueueSize = b.N + 1
			dl, err := decisionlog.New(context.Background(), []byte(sink.cfg), sink.opts)
			if err != nil {
				b.Fatal(err)
			}
			az, err := policy.NewAuthorizer(policy.Options{Recorder: dl}, nil)
			if err != nil {
				b.Fatal(err)
			}
			claims := sink.claims
			target := &authorization.CallTarget{APIName: apiStart, Namespace: "default"}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				_, _ = az.Authorize(context.Background(), claims, target)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			if err := dl.Close(ctx); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if st := dl.Status(); st.Logged != st.Recorded || st.Dropped != 0 {
				b.Fatalf("status %+v", st)
			}
		})
	}
}

func newBenchService(b *testing.B) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	b.Cleanup(s.Close)
	return s
}

func benchAuthorize(b *testing.B, rec policy.Recorder) {
	plain, err := policy.NewAuthorizer(policy.Options{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	recorded, err := policy.NewAuthorizer(policy.Options{Recorder: rec}, nil)
	if err != nil {
		b.Fatal(err)
	}
	claims := writer("default")
	target := &authorization.CallTarget{APIName: apiStart, Namespace: "default"}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = recorded.Authorize(ctx, claims, target)
	}
	with := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	start := time.Now()
	for range b.N {
		_, _ = plain.Authorize(ctx, claims, target)
	}
	b.ReportMetric(with-float64(time.Since(start).Nanoseconds())/float64(b.N), "logging_ns/op")
}
