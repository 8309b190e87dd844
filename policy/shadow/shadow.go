// Package shadow runs a candidate policy beside the enforced one: every call the
// enforced [policy.Authorizer] decides is decided again by the shadow policy, on
// the same claims, target and request, off the request path, and every
// disagreement is counted and reported. The shadow never changes a call's
// result and adds no latency to it: the enforced authorizer only queues the
// event (a bounded queue; when it is full the event is dropped and counted).
//
//	sh, err := shadow.New(shadow.Options{OnCompared: report})
//	src, err := source.NewFile(ctx, sh.Authorizer(), "shadow", "/etc/temporal-opa/candidate", ...)
//	az, err := policy.NewAuthorizer(policy.Options{Recorder: sh}, nil)
//	defer sh.Close()
//
// Counters restart whenever the shadow policy is activated again (hot reload),
// so /status and the disagreement counts always describe the revision in place.
// Promoting the candidate is then a file copy.
package shadow

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/temporal-opa/temporal-opa/policy"
)

// DefaultQueueSize bounds the events waiting for the shadow policy when
// Options.QueueSize is 0.
const DefaultQueueSize = 10000

// Comparison is one call decided by both policies.
type Comparison struct {
	Enforced *policy.Event // the enforced decision
	Shadow   *policy.Event // the shadow policy's decision of the same call
	Disagree bool          // they differ on allow
}

// Direction is "allow_to_deny" (the shadow would deny an allowed call) or
// "deny_to_allow".
func (c Comparison) Direction() string { return direction(c.Enforced.Allow) }

func direction(enforcedAllow bool) string {
	if enforcedAllow {
		return "allow_to_deny"
	}
	return "deny_to_allow"
}

// Options configure a [Shadow].
type Options struct {
	// Policy configures the shadow authorizer (eval_timeout, cache size...);
	// Mode and Recorder are its own.
	Policy policy.Options
	// QueueSize bounds the events waiting for the shadow policy (0: DefaultQueueSize).
	QueueSize int
	// OnCompared is called, on the shadow's goroutine, for every call both
	// policies decided (metrics; the decision log of disagreements).
	OnCompared func(Comparison)
}

// Shadow is a shadow policy: a [policy.Recorder] of the enforced authorizer.
type Shadow struct {
	az     *policy.Authorizer
	opts   Options
	queue  chan *policy.Event
	stop   chan struct{}
	done   chan struct{}
	closed atomic.Bool
	once   sync.Once

	last        *policy.Event // the shadow authorizer's last event (its goroutine only)
	usesRequest atomic.Bool   // the active shadow policy reads input.request

	mu       sync.Mutex
	counters Counters
}

var _ policy.RequestRecorder = (*Shadow)(nil)

// Counters are what the shadow policy did since it was activated.
type Counters struct {
	Generation  uint64            `json:"generation"` // the shadow policy's generation
	Revisions   map[string]string `json:"revisions"`
	ActivatedAt time.Time         `json:"activated_at"`
	Compared    uint64            `json:"compared"`      // calls decided by both
	AllowToDeny uint64            `json:"allow_to_deny"` // allowed calls the shadow would deny
	DenyToAllow uint64            `json:"deny_to_allow"` // denied calls the shadow would allow
	Errors      uint64            `json:"errors"`        // calls the shadow could not decide (counted as denies)
	Dropped     uint64            `json:"dropped"`       // events not compared: the queue was full
}

// New returns a Shadow running the embedded default policy (feed it bundles
// with a bundle source through Authorizer). Close it when done.
func New(opts Options) (*Shadow, error) {
	if opts.QueueSize == 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.QueueSize < 0 {
		return nil, fmt.Errorf("shadow: queue size %d is negative", opts.QueueSize)
	}
	s := &Shadow{
		opts:  opts,
		queue: make(chan *policy.Event, opts.QueueSize),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
	po := opts.Policy
	po.Mode = policy.ModeEnforce
	po.Recorder = (*capture)(s)
	az, err := policy.NewAuthorizer(po, nil)
	if err != nil {
		return nil, fmt.Errorf("shadow policy: %w", err)
	}
	s.az = az
	go s.loop()
	return s, nil
}

// Authorizer is the shadow authorizer: give it to a bundle source as its sink.
func (s *Shadow) Authorizer() *policy.Authorizer { return s.az }

// NeedsRequest reports whether the shadow policy reads the request body.
func (s *Shadow) NeedsRequest() bool { return s.usesRequest.Load() }

// Record queues an enforced decision for the shadow policy; it never blocks.
func (s *Shadow) Record(e *policy.Event) {
	if s.closed.Load() {
		return
	}
	select {
	case s.queue <- e:
	default:
		s.mu.Lock()
		s.counters.Dropped++
		s.mu.Unlock()
	}
}

// drainInterval is how often the worker takes what was queued. Waking it per
// event would cost every call a goroutine switch; batching costs the shadow
// results at most this delay.
const drainInterval = 5 * time.Millisecond

func (s *Shadow) loop() {
	defer close(s.done)
	tick := time.NewTicker(drainInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			for n := len(s.queue); n > 0; n-- {
				s.compare(<-s.queue)
			}
		case <-s.stop:
			return
		}
	}
}

// compare decides the enforced call again with the shadow policy.
func (s *Shadow) compare(e *policy.Event) {
	target := e.Target
	target.Request = e.Request
	s.last = nil
	_, _ = s.az.Authorize(context.Background(), e.Claims, &target)
	sh := s.last
	if sh == nil {
		return
	}
	s.mu.Lock()
	if sh.Generation != s.counters.Generation {
		// A new shadow revision was activated since the last call: its counts
		// start now (PolicyActivated has reset them, unless this raced it).
		s.mu.Unlock()
		return
	}
	s.counters.Compared++
	if sh.Err != nil {
		s.counters.Errors++
	}
	disagree := sh.Allow != e.Allow
	if disagree {
		if e.Allow {
			s.counters.AllowToDeny++
		} else {
			s.counters.DenyToAllow++
		}
	}
	s.mu.Unlock()
	if s.opts.OnCompared != nil {
		s.opts.OnCompared(Comparison{Enforced: e, Shadow: sh, Disagree: disagree})
	}
}

// Counters reports what the shadow policy did since its last activation.
func (s *Shadow) Counters() Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counters
	c.Revisions = maps.Clone(c.Revisions)
	return c
}

// Close stops comparing; queued events are dropped.
func (s *Shadow) Close() {
	s.once.Do(func() {
		s.closed.Store(true)
		close(s.stop)
		<-s.done
	})
}

// capture is the shadow authorizer's own recorder: it keeps the last event
// (the shadow goroutine is its only caller) and resets the counters on every
// activation.
type capture Shadow

func (c *capture) Record(e *policy.Event) { c.last = e }

func (c *capture) PolicyActivated(p policy.ActivePolicy) {
	c.usesRequest.Store(p.UsesRequest)
	c.mu.Lock()
	c.counters = Counters{Generation: p.Generation, Revisions: maps.Clone(p.Revisions), ActivatedAt: time.Now()}
	c.mu.Unlock()
}
