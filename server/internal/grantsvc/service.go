package grantsvc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdklog "go.temporal.io/sdk/log"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/log"
	"go.temporal.io/server/common/metrics"
	"go.temporal.io/server/common/rpc/encryption"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/temporal-opa/temporal-opa/policy/grants"
)

// DefaultRetention is how long the grants namespace keeps a closed grant
// workflow when grants.retention is not set.
const DefaultRetention = 7 * 24 * time.Hour

// DefaultStartTimeout bounds how long the service tries to reach the
// internal-frontend at start-up.
const DefaultStartTimeout = 5 * time.Minute

// Authorizer is what the grant service needs of the policy's authorizer
// (*policy.Authorizer): deciding operations, taking the grants followed,
// recording expiries.
type Authorizer interface {
	Decider
	GrantSetter
	GrantEndRecorder
}

// Config configures the grant service of one frontend process.
type Config struct {
	// Namespace holds the grants (DefaultNamespace when empty).
	Namespace string
	// PollInterval is how often the follower lists the grants (0: DefaultPollInterval).
	PollInterval time.Duration
	// RequestTTL bounds how long a request waits for approval (0: DefaultRequestTTL).
	RequestTTL time.Duration
	// Retention of the grants namespace when the service registers it (0: DefaultRetention).
	Retention time.Duration
	// HostPort is the internal-frontend's gRPC address: the service's client
	// is Temporal's internal principal there.
	HostPort string
	// TLS dials HostPort with TLS when set (Temporal's internode client settings).
	TLS *tls.Config
	// Authorizer decides grant operations and takes the grants followed.
	Authorizer Authorizer
	// Logger receives the service's logs; nil discards them.
	Logger *slog.Logger
	// StartTimeout bounds the start-up's attempts to reach the internal-frontend
	// (0: DefaultStartTimeout).
	StartTimeout time.Duration
}

// Service is the grant service of one frontend process: the frontend
// interceptor, and, once started, a client of the internal-frontend, the
// worker of the grant workflows and the follower of the grants.
type Service struct {
	cfg Config
	log *slog.Logger
	ic  *Interceptor

	mu       sync.Mutex
	client   client.Client
	worker   worker.Worker
	follower *Follower
	store    Store
	started  bool
	ready    chan struct{} // closed once the first poll loaded the grants, or the start failed
	startErr error
	cancel   context.CancelFunc
	done     chan struct{}
}

// New checks cfg and returns a service that is not started.
func New(cfg Config) (*Service, error) {
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if cfg.Authorizer == nil {
		return nil, errors.New("grants: no authorizer")
	}
	if cfg.HostPort == "" {
		return nil, errors.New("grants: no internal-frontend address: the grant service calls Temporal through the internal-frontend; " +
			"add services.internal-frontend to the Temporal config, or set grants.enabled: false")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"poll_interval", cfg.PollInterval}, {"request_ttl", cfg.RequestTTL}, {"retention", cfg.Retention}, {"start timeout", cfg.StartTimeout}} {
		if d.v < 0 {
			return nil, fmt.Errorf("grants: %s must not be negative, got %s", d.name, d.v)
		}
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = DefaultPollInterval
	}
	if cfg.RequestTTL == 0 {
		cfg.RequestTTL = DefaultRequestTTL
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "grants")
	s := &Service{cfg: cfg, log: logger, ready: make(chan struct{}), done: make(chan struct{})}
	s.ic = &Interceptor{
		Namespace: cfg.Namespace,
		Decider:   cfg.Authorizer,
		Store:     s.currentStore,
		Applied:   s.apply,
		Log:       logger,
	}
	return s, nil
}

// Namespace is the grants namespace.
func (s *Service) Namespace() string { return s.cfg.Namespace }

// Interceptor is the frontend interceptor of the grant operations, to chain
// after Temporal's authorization interceptor.
func (s *Service) Interceptor() grpc.UnaryServerInterceptor { return s.ic.Intercept }

func (s *Service) currentStore() Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.store
}

func (s *Service) apply(g grants.Grant) {
	s.mu.Lock()
	f := s.follower
	s.mu.Unlock()
	if f != nil {
		f.Apply(g)
	}
}

// Start starts the service in the background: it dials the internal-frontend
// (retrying until it answers, within the start timeout), registers the
// grants namespace when missing, starts the worker and follows the grants.
// Call it once, when the Temporal server is starting or started.
func (s *Service) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return
	}
	s.started = true
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go func() {
		defer close(s.done)
		s.run(ctx)
	}()
}

// WaitReady waits until the grants are loaded (the first poll succeeded),
// the start failed (its error), or ctx is done.
func (s *Service) WaitReady(ctx context.Context) error {
	select {
	case <-s.ready:
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.startErr
	case <-ctx.Done():
		return fmt.Errorf("grants: not ready: %w", ctx.Err())
	}
}

// fail ends a start that did not succeed: stopped (ctx done: Close) quietly,
// otherwise with an error log.
func (s *Service) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		err = errors.New("grants: the grant service was stopped while starting")
	}
	s.mu.Lock()
	s.startErr = err
	s.mu.Unlock()
	close(s.ready)
	if ctx.Err() == nil {
		s.log.Error("grants: the grant service did not start: grant operations are refused and no grant is honoured", "error", err)
	}
}

func (s *Service) run(ctx context.Context) {
	sctx, cancel := context.WithTimeout(ctx, s.cfg.StartTimeout)
	defer cancel()
	c, err := s.dial(sctx)
	if err != nil {
		s.fail(ctx, err)
		return
	}
	if err := s.ensureNamespace(sctx, c); err != nil {
		c.Close()
		s.fail(ctx, err)
		return
	}
	w := worker.New(c, TaskQueue, worker.Options{})
	wf := &Workflows{RequestTTL: s.cfg.RequestTTL, Recorder: s.cfg.Authorizer}
	w.RegisterWorkflowWithOptions(wf.Grant, workflow.RegisterOptions{Name: WorkflowType})
	w.RegisterActivityWithOptions(wf.GrantEnded, activity.RegisterOptions{Name: GrantEndedActivity})
	if err := retry(sctx, func() error { return w.Start() }); err != nil {
		c.Close()
		s.fail(ctx, fmt.Errorf("grants: start the worker of task queue %s: %w", TaskQueue, err))
		return
	}
	f := NewFollower(c.WorkflowService(), s.cfg.Namespace, s.cfg.Authorizer, s.log)
	s.mu.Lock()
	s.client, s.worker, s.follower = c, w, f
	s.store = clientStore{c: c, ns: s.cfg.Namespace}
	s.mu.Unlock()
	if err := retry(sctx, func() error { return f.Poll(sctx) }); err != nil {
		s.fail(ctx, fmt.Errorf("grants: first load of the grants: %w", err))
		return
	}
	close(s.ready)
	s.log.Info("grants: the grant service is running", "namespace", s.cfg.Namespace, "poll_interval", s.cfg.PollInterval.String())
	f.Run(ctx, s.cfg.PollInterval)
}

// retry calls fn until it succeeds or ctx is done, backing off up to 2 s.
func retry(ctx context.Context, fn func() error) error {
	wait := 100 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (gave up: %v)", err, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Second)
	}
}

func (s *Service) dial(ctx context.Context) (client.Client, error) {
	var c client.Client
	attempts := 0
	err := retry(ctx, func() error {
		attempts++
		var err error
		c, err = client.DialContext(ctx, client.Options{
			HostPort:          s.cfg.HostPort,
			Namespace:         s.cfg.Namespace,
			Identity:          "temporal-opa grant service",
			Logger:            sdklog.NewStructuredLogger(s.log.With("component", "grants-sdk")),
			ConnectionOptions: client.ConnectionOptions{TLS: s.cfg.TLS},
		})
		if err != nil && attempts%10 == 0 {
			s.log.Info("grants: waiting for the internal-frontend", "address", s.cfg.HostPort, "error", err)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("grants: dial the internal-frontend at %s: %w", s.cfg.HostPort, err)
	}
	return c, nil
}

// ensureNamespace registers the grants namespace when it does not exist.
func (s *Service) ensureNamespace(ctx context.Context, c client.Client) error {
	return retry(ctx, func() error {
		_, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: s.cfg.Namespace})
		var nf *serviceerror.NamespaceNotFound
		if err == nil || !errors.As(err, &nf) {
			if err != nil {
				return fmt.Errorf("grants: describe namespace %s: %w", s.cfg.Namespace, err)
			}
			return nil
		}
		_, err = c.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
			Namespace:                        s.cfg.Namespace,
			Description:                      "temporal-opa: time-bound access grants (one workflow per grant)",
			WorkflowExecutionRetentionPeriod: durationpb.New(s.cfg.Retention),
		})
		var exists *serviceerror.NamespaceAlreadyExists
		if err != nil && !errors.As(err, &exists) {
			return fmt.Errorf("grants: register namespace %s: %w", s.cfg.Namespace, err)
		}
		s.log.Info("grants: registered the grants namespace", "namespace", s.cfg.Namespace, "retention", s.cfg.Retention.String())
		return nil
	})
}

// Close stops the follower, the worker and the client.
func (s *Service) Close() error {
	s.mu.Lock()
	cancel, started := s.cancel, s.started
	s.mu.Unlock()
	if !started {
		return nil
	}
	cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.worker != nil {
		s.worker.Stop()
		s.worker = nil
	}
	if s.client != nil {
		s.client.Close()
		s.client = nil
	}
	s.store, s.follower = nil, nil
	return nil
}

// clientStore reads grants with DescribeWorkflowExecution through the
// internal-frontend.
type clientStore struct {
	c  client.Client
	ns string
}

func (cs clientStore) Grant(ctx context.Context, wid string) (grants.Grant, string, error) {
	resp, err := cs.c.WorkflowService().DescribeWorkflowExecution(ctx, &workflowservice.DescribeWorkflowExecutionRequest{
		Namespace: cs.ns, Execution: &commonpb.WorkflowExecution{WorkflowId: wid},
	})
	if err != nil {
		return grants.Grant{}, "", err
	}
	info := resp.GetWorkflowExecutionInfo()
	g, err := DecodeMemo(info.GetMemo())
	if err != nil {
		return g, "", fmt.Errorf("grant workflow %s: %w", wid, err)
	}
	if WorkflowID(g.ID) != wid {
		return g, "", fmt.Errorf("grant workflow %s: its memo names grant %s", wid, g.ID)
	}
	return g, info.GetExecution().GetRunId(), nil
}

// InternalFrontend is the address and TLS settings to reach the
// internal-frontend of a Temporal config: the host is the service's bind IP
// (loopback with bindOnLocalHost; the membership broadcast address, or
// loopback, when it binds every interface); the TLS settings are the
// internode client's of global.tls, when it configures internode TLS. ok is
// false when the config has no services.internal-frontend.
func InternalFrontend(cfg *config.Config, logger log.Logger) (hostPort string, tlsCfg *tls.Config, ok bool, err error) {
	svc, ok := cfg.Services["internal-frontend"]
	if !ok {
		return "", nil, false, nil
	}
	rpc := svc.RPC
	if rpc.GRPCPort == 0 {
		return "", nil, true, errors.New("services.internal-frontend.rpc.grpcPort is not set")
	}
	host := "127.0.0.1"
	switch ip := rpc.BindOnIP; {
	case rpc.BindOnLocalHost:
	case ip != "" && ip != "0.0.0.0" && ip != "::":
		host = ip
	case cfg.Global.Membership.BroadcastAddress != "":
		host = cfg.Global.Membership.BroadcastAddress
	}
	hostPort = net.JoinHostPort(host, strconv.Itoa(rpc.GRPCPort))
	if !internodeTLS(cfg.Global.TLS) {
		return hostPort, nil, true, nil
	}
	if logger == nil {
		logger = log.NewNoopLogger()
	}
	p, err := encryption.NewTLSConfigProviderFromConfig(cfg.Global.TLS, metrics.NoopMetricsHandler, logger, nil)
	if err != nil {
		return hostPort, nil, true, fmt.Errorf("global.tls: %w", err)
	}
	tlsCfg, err = p.GetInternodeClientConfig()
	if err != nil {
		return hostPort, nil, true, fmt.Errorf("global.tls.internode.client: %w", err)
	}
	return hostPort, tlsCfg, true, nil
}

func internodeTLS(t config.RootTLS) bool {
	s := t.Internode.Server
	return s.CertFile != "" || s.CertData != "" || t.Internode.Client.RootCAFiles != nil || t.Internode.Client.RootCAData != nil
}

// IsInternal reports whether claims are Temporal's internal principal.
func IsInternal(c *authorization.Claims) bool {
	return c != nil && c.AuthType == authorization.InternalPrincipalType
}
