package source

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"

	"github.com/temporal-opa/temporal-opa/policy"
)

// Sink receives the bundles a source produces. SetBundle activates b under name,
// replacing the bundle previously set under that name, or returns an error and
// keeps the previous one. *policy.Authorizer is a Sink.
type Sink interface {
	SetBundle(ctx context.Context, name string, b *bundle.Bundle) error
}

var _ Sink = (*policy.Authorizer)(nil)

// Kinds of source, as reported in [Status].
const (
	KindFile = "file" // a local directory or tarball, watched
	KindHTTP = "http" // a bundle service, polled
)

// DefaultDebounce is how long a file source waits for the events of one change
// to stop before it reloads.
const DefaultDebounce = 250 * time.Millisecond

// Options configure sources. The zero value is valid.
type Options struct {
	// Logger receives activations, rejected bundles and download errors; nil
	// discards them.
	Logger *slog.Logger
	// Debounce is how long a file source waits after the last event of a change
	// before it reloads; 0 means DefaultDebounce. Events that keep coming delay
	// a reload by at most four times this.
	Debounce time.Duration
	// OnLoadError, when set, is called with each bundle a source could not
	// load: a local bundle that does not parse or cannot be read, a
	// downloaded one that does not parse, fails its signature check or is a
	// delta bundle. The bundles the sink rejects are the sink's to count;
	// a bundle server that cannot be reached or answers an error is not a
	// bad bundle (Status says so).
	OnLoadError func(bundle string, err error)
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

func (o Options) debounce() time.Duration {
	if o.Debounce <= 0 {
		return DefaultDebounce
	}
	return o.Debounce
}

// Status describes one source for operators. Times are zero until the event
// happened.
type Status struct {
	Name     string `json:"name"`     // the bundle name given to the sink
	Kind     string `json:"kind"`     // KindFile or KindHTTP
	Location string `json:"location"` // the path, or the service URL and resource

	// OK is true when the last load or download succeeded and its bundle, if
	// new, was activated.
	OK bool `json:"ok"`
	// Revision is the manifest revision of the bundle last activated from this
	// source, ETag the ETag it was served with (remote sources).
	Revision    string    `json:"revision"`
	ETag        string    `json:"etag,omitempty"`
	ActivatedAt time.Time `json:"activated_at,omitzero"`
	// LastCheckAt is the last time the source looked for a new bundle: a
	// download request (304 included), or a reload after a change on disk.
	LastCheckAt time.Time `json:"last_check_at,omitzero"`

	Activations uint64 `json:"activations"` // bundles activated, the first included
	Failures    uint64 `json:"failures"`    // loads, downloads or activations that failed

	// LastError is the most recent failure, with file and line for a rejected
	// policy; it stays after later successes (see OK).
	LastError   string    `json:"last_error,omitempty"`
	LastErrorAt time.Time `json:"last_error_at,omitzero"`
}

// Source is a running bundle source.
type Source interface {
	// Name is the bundle name the source gives the sink.
	Name() string
	// Status describes the source now.
	Status() Status
	// WaitReady blocks until the source has activated a bundle, or ctx is
	// done: then it returns a *NotReadyError carrying the source's last error.
	WaitReady(ctx context.Context) error
	// Close stops the source and waits for its goroutines. The policy it
	// activated stays active.
	Close() error
}

// ErrNotReady is wrapped by WaitReady when no bundle was activated in time.
var ErrNotReady = errors.New("no bundle activated yet")

// tracker holds a source's status and logs its transitions. Safe for concurrent use.
type tracker struct {
	log         *slog.Logger
	ready       chan struct{}       // closed at the first activation
	onLoadError func(string, error) // Options.OnLoadError; nil for none
	name        string

	mu         sync.Mutex
	st         Status
	lastLogged string // the failure last logged, for sources that repeat one
}

func newTracker(log *slog.Logger, name, kind, location string, onLoadError func(string, error)) *tracker {
	return &tracker{
		onLoadError: onLoadError,
		name:        name,
		log:         log.With("bundle", name, "source", kind, "location", location),
		ready:       make(chan struct{}),
		st:          Status{Name: name, Kind: kind, Location: location},
	}
}

func (t *tracker) status() Status {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st
}

// checked records a look for a new bundle that found none (304 Not Modified, or
// files that did not change). current reports that what the source serves is the
// bundle last activated from it, not one it rejected.
func (t *tracker) checked(current bool) {
	t.mu.Lock()
	recovered := current && !t.st.OK && t.st.Activations > 0
	t.st.LastCheckAt = time.Now()
	if current {
		t.st.OK = true
		t.lastLogged = ""
	}
	rev := t.st.Revision
	t.mu.Unlock()
	if recovered {
		t.log.Info("bundle source is current again", "revision", rev)
	}
}

// activated records a bundle the sink accepted.
func (t *tracker) activated(b *bundle.Bundle, etag string) {
	now := time.Now()
	t.mu.Lock()
	first := t.st.Activations == 0
	t.st.OK = true
	t.st.Revision = b.Manifest.Revision
	t.st.ETag = etag
	t.st.ActivatedAt, t.st.LastCheckAt = now, now
	t.st.Activations++
	t.lastLogged = ""
	t.mu.Unlock()
	if first {
		close(t.ready)
	}
	attrs := []any{"revision", b.Manifest.Revision}
	if etag != "" {
		attrs = append(attrs, "etag", etag)
	}
	t.log.Debug("bundle activated", attrs...) // the Authorizer logs every activation at Info
}

// failed records a failed load, download or activation and logs it. With
// repeats set (a poller that meets the same failure again and again), a failure
// identical to the one last logged is counted but not logged again.
func (t *tracker) failed(msg string, err error, repeats bool) {
	err = redactErr(err) // a download error names the URL, query included
	now := time.Now()
	t.mu.Lock()
	t.st.OK = false
	t.st.LastCheckAt = now
	t.st.LastError, t.st.LastErrorAt = err.Error(), now
	t.st.Failures++
	skip := repeats && t.lastLogged == err.Error()
	t.lastLogged = err.Error()
	t.mu.Unlock()
	if !skip {
		t.log.Error(msg, "error", err)
	}
}

// waitReady blocks until the first activation or ctx is done.
// loadError reports a bundle that could not be loaded to Options.OnLoadError.
func (t *tracker) loadError(err error) {
	if t.onLoadError != nil {
		t.onLoadError(t.name, redactErr(err))
	}
}

func (t *tracker) waitReady(ctx context.Context) error {
	select {
	case <-t.ready:
		return nil
	case <-ctx.Done():
		st := t.status()
		if st.LastError != "" {
			return &NotReadyError{Name: st.Name, Location: st.Location, LastError: st.LastError, Err: ctx.Err()}
		}
		return &NotReadyError{Name: st.Name, Location: st.Location, Err: ctx.Err()}
	}
}

// NotReadyError is returned by WaitReady when a source activated no bundle
// before the context ended.
type NotReadyError struct {
	Name, Location string
	LastError      string // the source's last error, if any
	Err            error  // the context's error
}

func (e *NotReadyError) Error() string {
	s := "bundle " + e.Name + " (" + e.Location + "): " + ErrNotReady.Error()
	if e.LastError != "" {
		s += "; last error: " + e.LastError
	}
	return s + " (" + e.Err.Error() + ")"
}

// Unwrap returns ErrNotReady and the context's error.
func (e *NotReadyError) Unwrap() []error { return []error{ErrNotReady, e.Err} }
