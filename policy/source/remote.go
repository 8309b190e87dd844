package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/download"
	"github.com/open-policy-agent/opa/v1/plugins/rest"

	bundleplugin "github.com/open-policy-agent/opa/v1/plugins/bundle"
)

// Remote is a bundle downloaded from a bundle service by OPA's downloader
// (v1/download): ETag and 304, periodic or long polling, signature
// verification. Open starts it from a [Config].
type Remote struct {
	name  string
	sink  Sink
	t     *tracker
	d     *download.Downloader
	close sync.Once

	started bool // set by start, before any goroutine

	// Owned by the downloader's goroutine (the callback runs there).
	activeETag string // ETag of the bundle last activated
	lastETag   string // ETag of the bundle last received, activated or not
}

var _ Source = (*Remote)(nil)

// newRemote prepares a downloader for src; start starts it.
func newRemote(sink Sink, name string, src *bundleplugin.Source, client rest.Client, log *slog.Logger, onLoadError func(string, error)) *Remote {
	// Never show credentials in status or logs: user:password, and a query
	// (presigned URLs, SAS tokens) in the service URL or the resource.
	location := RedactURL(strings.TrimRight(client.Config().URL, "/") + "/" + strings.TrimLeft(src.Resource, "/"))
	r := &Remote{name: name, sink: sink, t: newTracker(log, name, KindHTTP, location, onLoadError)}
	r.d = download.New(src.Config, client, src.Resource).
		WithCallback(r.update).
		WithBundleVerificationConfig(src.Signing).
		WithSizeLimitBytes(src.SizeLimitBytes).
		WithBundleName(name).
		WithBundleParserOpts(ast.ParserOptions{RegoVersion: ast.RegoV1, ProcessAnnotation: true})
	return r
}

func (r *Remote) start() {
	r.started = true
	// The downloader runs its loop on a context of its own, stopped by Stop.
	r.d.Start(context.Background())
}

// update is the downloader's callback: one download (or 304, or error).
func (r *Remote) update(ctx context.Context, u download.Update) error {
	switch {
	case u.Error != nil:
		// As OPA's bundle plugin does: keep asking with the ETag of the bundle
		// last received, so that a server that comes back with the same bundle
		// answers 304.
		r.d.SetCache(r.lastETag)
		err := fmt.Errorf("bundle %s: %w", r.name, u.Error)
		r.t.failed("bundle download failed; the previous policy stays active", err, true)
		if !unreachable(u.Error) {
			r.t.loadError(err) // downloaded, but does not parse or fails its signature check
		}
	case u.Bundle == nil:
		r.t.checked(u.ETag == r.activeETag)
	case u.Bundle.Type() == bundle.DeltaBundleType:
		// A delta bundle patches data in an OPA store; the sink compiles whole
		// bundles, and would read one made of a patch alone as empty.
		r.lastETag = u.ETag
		err := fmt.Errorf("bundle %s (revision %q): delta bundles are not supported; serve snapshot bundles", r.name, u.Bundle.Manifest.Revision)
		r.t.failed("bundle rejected; the previous policy stays active", err, true)
		r.t.loadError(err)
	default:
		r.lastETag = u.ETag
		b := withoutTests(u.Bundle)
		if err := r.sink.SetBundle(ctx, r.name, b); err != nil {
			r.t.failed("bundle rejected; the previous policy stays active", fmt.Errorf("bundle %s (revision %q): %w", r.name, u.Bundle.Manifest.Revision, err), true)
			return nil
		}
		r.activeETag = u.ETag
		r.t.activated(b, u.ETag)
	}
	return nil
}

// unreachable reports whether a download error says the bundle server could
// not be reached or answered with an error status, rather than that what it
// served is not a valid bundle.
func unreachable(err error) bool {
	var status download.HTTPError
	var ue *url.Error
	return errors.As(err, &status) || errors.As(err, &ue) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// withoutTests leaves policy tests (*_test.rego) out of a downloaded bundle,
// as policy.LoadBundle does for local ones: `opa build` keeps them, but they are
// not part of the policy. The signature, if any, was verified on the whole bundle.
func withoutTests(b *bundle.Bundle) *bundle.Bundle {
	if !slices.ContainsFunc(b.Modules, isTest) {
		return b
	}
	c := *b
	c.Modules = slices.DeleteFunc(slices.Clone(b.Modules), isTest)
	return &c
}

func isTest(m bundle.ModuleFile) bool {
	return strings.HasSuffix(m.Path, "_test.rego") || strings.HasSuffix(m.URL, "_test.rego")
}

// Name implements Source.
func (r *Remote) Name() string { return r.name }

// Status implements Source.
func (r *Remote) Status() Status { return r.t.status() }

// WaitReady blocks until a bundle from this source was activated, or ctx is
// done: then it returns a *NotReadyError with the source's last error.
func (r *Remote) WaitReady(ctx context.Context) error { return r.t.waitReady(ctx) }

// Close stops the downloader, cancelling a download in flight, and waits for it.
func (r *Remote) Close() error {
	r.close.Do(func() {
		if r.started {
			r.d.Stop(context.Background())
		}
	})
	return nil
}
