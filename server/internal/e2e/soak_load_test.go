package e2e

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
)

// Call outcomes as the client saw them.
const (
	outAllowed = "allowed"
	outDenied  = "denied"  // PermissionDenied with the policy's reason
	outRefused = "refused" // PermissionDenied "Request unauthorized.": the claim mapper refused the token
	outFailed  = "failed"  // any other error: not a decision
)

// callRecord is one call of the load: who called what through which
// frontend, with which token (kept in memory for the oracle, never logged),
// when, and what came back.
type callRecord struct {
	op         string // the API method
	fe         string
	caller     string // the kind of caller (writer, reader, wrong-namespace...)
	ns         string
	token      string
	start, end time.Time
	outcome    string
	reason     string
	decisionID string
	code       codes.Code
	err        string
	eventFound bool  // its decision-log event was found (set by the oracle)
	opID       int64 // the logical operation: failed attempts are retried under the same id
	attempt    int
	// rpcFailures are the gRPC attempts of the call that failed for a
	// reason other than the policy and that the SDK retried (seen by an
	// interceptor inside the SDK's retry loop).
	rpcFailures []rpcFailure
}

// rpcFailure is one failed gRPC attempt.
type rpcFailure struct {
	method     string
	start, end time.Time
	code       codes.Code
	err        string
}

// attemptsKey carries the *callRecord whose gRPC attempts are watched.
type attemptsKey struct{}

var attemptsMu sync.Mutex

// watchAttempts is a gRPC client interceptor placed inside the SDK's retry
// loop: it records every attempt of a tracked call that failed with an
// error other than a decision or an application answer.
func watchAttempts(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	start := time.Now()
	err := invoker(ctx, method, req, reply, cc, opts...)
	c, ok := ctx.Value(attemptsKey{}).(*callRecord)
	if !ok || err == nil {
		return err
	}
	switch code := grpcstatus.Code(err); code {
	case codes.PermissionDenied, codes.NotFound, codes.AlreadyExists:
	default:
		attemptsMu.Lock()
		c.rpcFailures = append(c.rpcFailures, rpcFailure{method: method, start: start, end: time.Now(), code: code, err: err.Error()})
		attemptsMu.Unlock()
	}
	return err
}

// soakDial is dialAt with watchAttempts.
func (s *soak) soakDial(addr string, hp headersProvider) client.Client {
	c, err := client.NewLazyClient(client.Options{
		HostPort: addr, Namespace: soakNamespace, HeadersProvider: hp, Logger: quietLogger{},
		ConnectionOptions: client.ConnectionOptions{DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(watchAttempts)}},
	})
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(c.Close)
	return c
}

type recorder struct {
	mu    sync.Mutex
	calls []*callRecord
	ops   int64
}

func (r *recorder) add(c *callRecord) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
}

func (r *recorder) nextOp() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops++
	return r.ops
}

func (r *recorder) all() []*callRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*callRecord(nil), r.calls...)
}

// classify fills the outcome of c from err.
func classify(c *callRecord, err error) {
	if err == nil {
		c.outcome = outAllowed
		return
	}
	st := serviceerror.ToStatus(err)
	c.code = st.Code()
	var pd *serviceerror.PermissionDenied
	if st.Code() == codes.PermissionDenied && errors.As(serviceerror.FromStatus(st), &pd) {
		c.reason = pd.Reason
		if pd.Reason == "" && pd.Message == "Request unauthorized." {
			c.outcome = outRefused
			return
		}
		c.outcome = outDenied
		c.decisionID = decisionIDOf(pd.Reason)
		return
	}
	c.outcome = outFailed
	c.err = err.Error()
}

// tokenKey carries the token a tracked call must use, so that the oracle
// knows exactly what the frontend verified.
type tokenKey struct{}

// soakTokens is a HeadersProvider: a tracked call's own token (from its
// context), else a fresh token from the issuer for every RPC (the workers'
// polls).
type soakTokens struct {
	s     *soak
	sub   string
	perms []string
}

func (s *soak) tokens(sub string, perms ...string) *soakTokens {
	return &soakTokens{s: s, sub: sub, perms: perms}
}

func (p *soakTokens) GetHeaders(ctx context.Context) (map[string]string, error) {
	if tok, ok := ctx.Value(tokenKey{}).(string); ok {
		return map[string]string{"Authorization": "Bearer " + tok}, nil
	}
	tok, err := p.s.issuer.mint(p.sub, p.perms, p.s.plan.tokenTTL)
	if err != nil {
		return nil, err
	}
	return map[string]string{"Authorization": "Bearer " + tok}, nil
}

// caller is one kind of client of one frontend.
type caller struct {
	kind   string
	fe     string
	client client.Client
	token  func() (string, error) // the token of each tracked call
}

const (
	callTimeout = 10 * time.Second // one attempt
	opDeadline  = 90 * time.Second // retries of one operation
)

// do makes one tracked call, retrying an attempt that failed for a reason
// other than the policy (recorded, to be explained) until it succeeds or is
// decided, within opDeadline and the run's context.
func (s *soak) do(cl *caller, op, ns string, call func(ctx context.Context) error) *callRecord {
	id := s.rec.nextOp()
	began := time.Now()
	for attempt := 1; ; attempt++ {
		tok, err := cl.token()
		if err != nil {
			s.cancel(fmt.Errorf("mint a token: %w", err))
			return nil
		}
		c := &callRecord{op: op, fe: cl.fe, caller: cl.kind, ns: ns, token: tok, opID: id, attempt: attempt}
		ctx, cancel := context.WithTimeout(context.WithValue(context.WithValue(s.ctx, tokenKey{}, tok), attemptsKey{}, c), callTimeout)
		c.start = time.Now()
		err = call(ctx)
		c.end = time.Now()
		cancel()
		attemptsMu.Lock() // the interceptor's writes are done: the call returned
		attemptsMu.Unlock()
		if s.ctx.Err() != nil && err != nil {
			return nil // the run is ending: not a call's outcome
		}
		classify(c, err)
		s.rec.add(c)
		if c.outcome != outFailed || time.Since(began) > opDeadline {
			return c
		}
		select {
		case <-s.ctx.Done():
			return c
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// SoakFlow is the soak's workflow: it answers the query "stage", waits for
// the signal "go", runs Hello and returns its result.
func SoakFlow(ctx workflow.Context, name string) (string, error) {
	stage := "waiting"
	if err := workflow.SetQueryHandler(ctx, "stage", func() (string, error) { return stage, nil }); err != nil {
		return "", err
	}
	workflow.GetSignalChannel(ctx, "go").Receive(ctx, nil)
	stage = "running"
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 20 * time.Second})
	var out string
	err := workflow.ExecuteActivity(ctx, Hello, name).Get(ctx, &out)
	return out, err
}

const soakTaskQueue = "soak"

// startWorkers runs an SDK worker through each frontend, on one task queue.
func (s *soak) startWorkers() (stop func()) {
	var ws []worker.Worker
	for _, fe := range s.fes {
		c := dialAt(s.t, fe.addr, soakNamespace, s.tokens("soak-worker-"+fe.name, soakNamespace+":read", soakNamespace+":write"))
		w := worker.New(c, soakTaskQueue, worker.Options{})
		w.RegisterWorkflow(SoakFlow)
		w.RegisterActivity(Hello)
		if err := w.Start(); err != nil {
			s.t.Fatalf("start worker via %s: %v", fe.name, err)
		}
		ws = append(ws, w)
	}
	return sync.OnceFunc(func() {
		for _, w := range ws {
			w.Stop()
		}
	})
}

// newCaller is a client of fe for kind, whose tracked calls carry tokens
// from token; its untracked calls (the SDK's own, such as a result's long
// poll) get fresh tokens with perms.
func (s *soak) newCaller(kind, fe string, perms []string, token func() (string, error)) *caller {
	c := s.soakDial(s.fes[fe].addr, s.tokens("soak-"+kind, perms...))
	return &caller{kind: kind, fe: fe, client: c, token: token}
}

// minting returns tokens for sub with perms from the issuer, one per call.
func (s *soak) minting(sub string, ttl time.Duration, perms ...string) func() (string, error) {
	return func() (string, error) { return s.issuer.mint(sub, perms, ttl) }
}

// loop runs step every interval until the load ends, at most n times.
func (s *soak) loop(wg *sync.WaitGroup, end time.Time, interval time.Duration, step func(i int)) {
	n := int(s.plan.duration/interval) + 1
	wg.Go(func() {
		for i := 0; i < n && time.Now().Before(end) && s.ctx.Err() == nil; i++ {
			next := time.Now().Add(interval)
			step(i)
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(time.Until(next)):
			}
		}
	})
}

// runLoad drives both frontends until end; it returns when every loop and
// every workflow it started has finished (bounded by the run's context).
func (s *soak) runLoad(end time.Time) {
	var loops, results sync.WaitGroup
	for _, fe := range []string{"fe1", "fe2"} {
		rw := []string{soakNamespace + ":read", soakNamespace + ":write"}
		ro := []string{soakNamespace + ":read"}
		other := []string{"other:read", "other:write"}
		writer := s.newCaller("writer", fe, rw, s.minting("soak-writer", s.plan.tokenTTL, rw...))
		reader := s.newCaller("reader", fe, ro, s.minting("soak-reader", s.plan.tokenTTL, ro...))
		scheduler := s.newCaller("scheduler", fe, rw, s.minting("soak-scheduler", s.plan.tokenTTL, rw...))
		wrongNS := s.newCaller("wrong-namespace", fe, other, s.minting("soak-other", s.plan.tokenTTL, other...))
		readOnly := s.newCaller("read-only-starter", fe, ro, s.minting("soak-reader", s.plan.tokenTTL, ro...))
		expired := s.newCaller("expired-token", fe, rw, s.minting("soak-writer", -time.Minute, rw...))
		forged := s.newCaller("forged-token", fe, rw, s.forging("soak-writer", rw...))

		s.loop(&loops, end, time.Second, func(i int) { s.workflowStep(writer, &results) })
		s.loop(&loops, end, 500*time.Millisecond, func(i int) { s.readStep(reader, i) })
		s.loop(&loops, end, 10*time.Second, func(i int) { s.scheduleStep(scheduler) })
		s.loop(&loops, end, time.Second, func(i int) { s.deniedStep(wrongNS, readOnly, expired, forged, i) })
	}
	loops.Wait()
	results.Wait()
}

// workflowStep starts a SoakFlow, queries it, signals it, and waits for its
// result in the background.
func (s *soak) workflowStep(w *caller, results *sync.WaitGroup) {
	id := randomName("soak-wf")
	c := s.do(w, "StartWorkflowExecution", soakNamespace, func(ctx context.Context) error {
		_, err := w.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: soakTaskQueue, WorkflowExecutionTimeout: 5 * time.Minute}, SoakFlow, id)
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if errors.As(err, &started) {
			return nil // a failed attempt had started it
		}
		return err
	})
	if c == nil || c.outcome != outAllowed {
		return
	}
	s.started.Add(1)
	s.do(w, "QueryWorkflow", soakNamespace, func(ctx context.Context) error {
		_, err := w.client.QueryWorkflow(ctx, id, "", "stage")
		return err
	})
	s.do(w, "SignalWorkflowExecution", soakNamespace, func(ctx context.Context) error {
		return w.client.SignalWorkflow(ctx, id, "", "go", nil)
	})
	results.Go(func() {
		// Untracked: waiting for the result long-polls the history; its
		// outcome is the workflow's, counted apart.
		ctx, cancel := context.WithTimeout(s.ctx, 4*time.Minute)
		defer cancel()
		var out string
		var err error
		for {
			err = w.client.GetWorkflow(ctx, id, "").Get(ctx, &out)
			if err == nil || ctx.Err() != nil || isPermanent(err) {
				break
			}
			time.Sleep(time.Second) // the frontend may be restarting
		}
		if err == nil && out == "Hello, "+id+"!" {
			s.done.Add(1)
			return
		}
		s.wfErrs.Store(id, fmt.Sprintf("result %q, error %v", out, err))
	})
}

// isPermanent reports whether a workflow's result error is the workflow's own
// (not the connection's).
func isPermanent(err error) bool {
	var app *temporal.ApplicationError
	var timeout *temporal.TimeoutError
	var pd *serviceerror.PermissionDenied
	var nf *serviceerror.NotFound
	return errors.As(err, &app) || errors.As(err, &timeout) || errors.As(err, &pd) || errors.As(err, &nf)
}

func (s *soak) readStep(r *caller, i int) {
	switch i % 3 {
	case 0:
		s.do(r, "ListWorkflowExecutions", soakNamespace, func(ctx context.Context) error {
			_, err := r.client.ListWorkflow(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: soakNamespace, PageSize: 20})
			return err
		})
	case 1:
		// Denied by every even bundle revision.
		s.do(r, "CountWorkflowExecutions", soakNamespace, func(ctx context.Context) error {
			_, err := r.client.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Namespace: soakNamespace})
			return err
		})
	default:
		s.do(r, "DescribeNamespace", soakNamespace, func(ctx context.Context) error {
			_, err := r.client.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: soakNamespace})
			return err
		})
	}
}

// scheduleStep creates a paused schedule, describes it and deletes it.
func (s *soak) scheduleStep(w *caller) {
	id := randomName("soak-schedule")
	sc := w.client.ScheduleClient()
	c := s.do(w, "CreateSchedule", soakNamespace, func(ctx context.Context) error {
		_, err := sc.Create(ctx, client.ScheduleOptions{ID: id, Paused: true,
			Spec:   client.ScheduleSpec{Intervals: []client.ScheduleIntervalSpec{{Every: time.Hour}}},
			Action: &client.ScheduleWorkflowAction{ID: id + "-wf", Workflow: SoakFlow, Args: []any{id}, TaskQueue: soakTaskQueue}})
		if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
			return nil // a failed attempt had created it
		}
		return err
	})
	if c == nil || c.outcome != outAllowed {
		return
	}
	h := sc.GetHandle(context.Background(), id)
	s.do(w, "DescribeSchedule", soakNamespace, func(ctx context.Context) error {
		_, err := h.Describe(ctx)
		return err
	})
	s.do(w, "DeleteSchedule", soakNamespace, func(ctx context.Context) error {
		err := h.Delete(ctx)
		var nf *serviceerror.NotFound
		if errors.As(err, &nf) {
			return nil // a failed attempt had deleted it
		}
		return err
	})
}

// deniedStep makes the calls the policy or the claim mapper must refuse.
func (s *soak) deniedStep(wrongNS, readOnly, expired, forged *caller, i int) {
	list := func(cl *caller) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			_, err := cl.client.WorkflowService().ListWorkflowExecutions(ctx, &workflowservice.ListWorkflowExecutionsRequest{Namespace: soakNamespace})
			return err
		}
	}
	switch i % 4 {
	case 0:
		s.do(wrongNS, "ListWorkflowExecutions", soakNamespace, list(wrongNS))
	case 1:
		s.do(readOnly, "StartWorkflowExecution", soakNamespace, func(ctx context.Context) error {
			_, err := readOnly.client.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("soak-denied"), TaskQueue: soakTaskQueue}, SoakFlow, "x")
			return err
		})
	case 2:
		s.do(expired, "ListWorkflowExecutions", soakNamespace, list(expired))
	default:
		s.do(forged, "ListWorkflowExecutions", soakNamespace, list(forged))
	}
}

// forging returns forged tokens: signed by an attacker's key, with the kid of
// the issuer's current signing key.
func (s *soak) forging(sub string, perms ...string) func() (string, error) {
	return func() (string, error) {
		f := newSigner(s.t, s.issuer.url, "ES256", s.issuer.signingKID())
		now := time.Now()
		return f.sign(s.t, map[string]any{"iss": s.issuer.url, "sub": sub, "permissions": perms,
			"iat": now.Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(s.plan.tokenTTL).Unix()}), nil
	}
}

// holdOldToken mints a token with the signing key before a rotation and
// calls with it until it has expired: before its expiry it must be accepted,
// after it refused.
func (s *soak) holdOldToken(wg *sync.WaitGroup, fe string) error {
	tok, err := s.issuer.mint("soak-old-token", []string{soakNamespace + ":read"}, s.plan.oldTokenTTL)
	if err != nil {
		return err
	}
	cl := s.newCaller("old-key-token", fe, []string{soakNamespace + ":read"}, func() (string, error) { return tok, nil })
	until := time.Now().Add(s.plan.oldTokenTTL + 4*time.Second)
	wg.Go(func() {
		for i := 0; i < 100 && time.Now().Before(until) && s.ctx.Err() == nil; i++ {
			s.do(cl, "DescribeNamespace", soakNamespace, func(ctx context.Context) error {
				_, err := cl.client.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: soakNamespace})
				return err
			})
			time.Sleep(time.Second)
		}
	})
	return nil
}
