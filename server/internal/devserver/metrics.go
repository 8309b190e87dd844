package devserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/metrics"

	"github.com/temporal-opa/temporal-opa/server/internal/hostcheck"
)

// histogramBoundaries are Temporal's default histogram buckets per unit
// (go.temporal.io/server/common/metrics, v1.32.1), which its own Prometheus
// set-up applies.
var histogramBoundaries = func() map[string][]float64 {
	ms := []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000, 1_000_000}
	s := make([]float64, len(ms))
	for i, b := range ms {
		s[i] = b / 1000
	}
	return map[string][]float64{
		metrics.Dimensionless: {1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000},
		metrics.Milliseconds:  ms,
		metrics.Seconds:       s,
		metrics.Bytes:         {1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072, 262144, 524288, 1048576, 2097152, 4194304, 8388608, 16777216},
	}
}()

// serveMetrics is Temporal's OpenTelemetry Prometheus metrics handler
// (metrics.MetricsHandlerFromConfig with framework opentelemetry: the same
// exporter, buckets and series), served at http://addr/metrics by a server of
// its own: Temporal's would answer any Host, and this one answers only the
// listener's own addresses (package hostcheck: no DNS rebinding). The handler's
// Stop stops the server.
func serveMetrics(logger log.Logger, addr string) (metrics.Handler, error) {
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("prometheus exporter: %w", err)
	}
	var views []sdkmetric.View
	for _, unit := range []string{metrics.Dimensionless, metrics.Bytes, metrics.Milliseconds, metrics.Seconds} {
		views = append(views, sdkmetric.NewView(
			sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram, Unit: unit},
			sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: histogramBoundaries[unit]}},
		))
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter), sdkmetric.WithView(views...))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	h, err := hostcheck.Wrap(mux, ln.Addr().String())
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	p := &metricsProvider{meter: provider.Meter("temporal"), srv: &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}}
	go func() {
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("metrics server stopped: " + err.Error())
		}
	}()
	mh, err := metrics.NewOtelMetricsHandler(logger, p, metrics.ClientConfig{PerUnitHistogramBoundaries: histogramBoundaries}, false)
	if err != nil {
		_ = p.srv.Close()
		return nil, err
	}
	return mh, nil
}

// metricsProvider is a metrics.OpenTelemetryProvider whose Stop stops the
// metrics server.
type metricsProvider struct {
	meter metric.Meter
	srv   *http.Server
}

func (p *metricsProvider) GetMeter() metric.Meter { return p.meter }

func (p *metricsProvider) Stop(log.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
}
