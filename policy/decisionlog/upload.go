package decisionlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/open-policy-agent/opa/v1/logging"
	"github.com/open-policy-agent/opa/v1/plugins"
	"github.com/open-policy-agent/opa/v1/plugins/logs"
	lstat "github.com/open-policy-agent/opa/v1/plugins/logs/status"
	"github.com/open-policy-agent/opa/v1/plugins/rest"
	"github.com/open-policy-agent/opa/v1/util"
)

// DefaultBufferBytes bounds the gzip'd events waiting for upload when the
// configuration sets no reporting.buffer_size_limit_bytes (OPA's own default
// is unlimited): a service down for long costs at most this much memory, and
// the oldest events beyond it are dropped and counted.
const DefaultBufferBytes = 32 << 20

// uploader batches encoded events into OPA's upload format (a gzip'd JSON array
// of events, at most reporting.upload_size_limit_bytes compressed, POSTed to
// the decision_logs resource with OPA's REST client and credentials) and
// uploads them on OPA's schedule (trigger periodic: every min..max delay;
// immediate: as soon as a batch is full), and sooner when half the bound is
// waiting. It replaces OPA's upload buffer
// because that one cannot count what it drops in events (it drops whole
// chunks and counts chunks), and its per-event cost is the JSON encoding by
// reflection of an event first converted for the drop and mask rules.
type uploader struct {
	client    rest.Client
	resource  string
	limit     int  // compressed bytes of one upload
	immediate bool // trigger: immediate
	minDelay  time.Duration
	maxDelay  time.Duration
	// The bound: compressed bytes (buffer_type size) or events (event).
	maxBytes  int
	maxEvents int
	logger    logging.Logger
	dropped   func(n int)

	mu          sync.Mutex
	raw         []byte // the open batch: "[" + events joined by ","
	rawEvents   int
	ends        []int // end offset of each event in raw
	rawLimit    int   // uncompressed bytes at which a batch is closed, adapted to the ratio
	chunks      []chunk
	chunkBytes  int
	chunkEvents int
	zw          *gzip.Writer
	zbuf        bytes.Buffer

	inflight bool       // chunks[0] is being uploaded: the bound spares it
	uploadMu sync.Mutex // one upload at a time: batches leave in order
	wake     chan struct{}
	stop     chan struct{}
	done     chan struct{}
}

type chunk struct {
	data   []byte
	events int
}

// gzipLevel trades compression for CPU: the fastest level (of
// klauspost/compress's gzip, already a dependency of OPA and Temporal, about
// twice as fast as compress/gzip) still compresses events manyfold.
const gzipLevel = gzip.BestSpeed

func newUploader(client rest.Client, cfg *logs.Config, logger logging.Logger, dropped func(int)) *uploader {
	u := &uploader{
		client:    client,
		resource:  *cfg.Resource,
		limit:     int(*cfg.Reporting.UploadSizeLimitBytes),
		immediate: *cfg.Reporting.Trigger == plugins.TriggerImmediate,
		minDelay:  time.Duration(*cfg.Reporting.MinDelaySeconds),
		maxDelay:  time.Duration(*cfg.Reporting.MaxDelaySeconds),
		logger:    logger,
		dropped:   dropped,
		wake:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if cfg.Reporting.BufferType == "event" {
		u.maxEvents = int(*cfg.Reporting.BufferSizeLimitEvents)
	} else {
		u.maxBytes = int(*cfg.Reporting.BufferSizeLimitBytes)
		if u.maxBytes == 0 {
			u.maxBytes = DefaultBufferBytes
		}
	}
	u.rawLimit = u.limit * 8
	u.zw, _ = gzip.NewWriterLevel(&u.zbuf, gzipLevel)
	go u.loop()
	return u
}

// add appends one encoded event to the open batch, closing it when full.
func (u *uploader) add(event []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.raw) > 1 && (len(u.raw)+1+len(event) > u.rawLimit || u.maxEvents > 0 && u.rawEvents >= max(1, u.maxEvents/4)) {
		// Full, or a quarter of an event bound: the bound drops batches whole.
		u.closeBatch()
	}
	if len(u.raw) == 0 {
		u.raw = append(u.raw, '[')
	} else {
		u.raw = append(u.raw, ',')
	}
	u.raw = append(u.raw, event...)
	u.ends = append(u.ends, len(u.raw))
	u.rawEvents++
	u.bound()
}

// closeBatch compresses the open batch into chunks of at most limit bytes.
// Called with mu held.
func (u *uploader) closeBatch() {
	if u.rawEvents == 0 {
		return
	}
	u.compress(0, len(u.ends))
	u.raw, u.ends, u.rawEvents = u.raw[:0], u.ends[:0], 0
	if u.immediate || u.maxBytes > 0 && u.chunkBytes > u.maxBytes/2 || u.maxEvents > 0 && u.chunkEvents > u.maxEvents/2 {
		// Immediate, or half the bound waits: upload now rather than drop later.
		select {
		case u.wake <- struct{}{}:
		default:
		}
	}
}

// compress turns the events [from, to) of the open batch into chunks, halving
// the range until each fits the upload limit; an event that cannot fit alone
// is dropped (OPA drops it too) and counted.
func (u *uploader) compress(from, to int) {
	start := 1 // after "["
	if from > 0 {
		start = u.ends[from-1] + 1 // after ","
	}
	body := u.raw[start:u.ends[to-1]]
	u.zbuf.Reset()
	u.zw.Reset(&u.zbuf)
	_, _ = u.zw.Write([]byte{'['})
	_, _ = u.zw.Write(body)
	_, _ = u.zw.Write([]byte{']'})
	_ = u.zw.Close()
	if u.zbuf.Len() <= u.limit {
		if from == 0 && to == len(u.ends) {
			// Aim the next batch at 90% of the limit by this batch's ratio.
			u.rawLimit = max(1024, int(float64(len(body))*0.9*float64(u.limit)/float64(u.zbuf.Len())))
		}
		u.chunks = append(u.chunks, chunk{data: bytes.Clone(u.zbuf.Bytes()), events: to - from})
		u.chunkBytes += u.zbuf.Len()
		u.chunkEvents += to - from
		return
	}
	if to-from == 1 {
		u.logger.Error("Decision log event of %d bytes dropped: over upload_size_limit_bytes (%d) compressed.", len(body), u.limit)
		u.dropped(1)
		return
	}
	u.rawLimit = max(1024, u.rawLimit/2)
	mid := (from + to) / 2
	u.compress(from, mid)
	u.compress(mid, to)
}

// bound drops the oldest batches past the buffer's bound, counting their
// events. Called with mu held.
func (u *uploader) bound() {
	first := 0
	if u.inflight {
		first = 1 // an upload under way: dropping it would count events that arrive
	}
	for len(u.chunks) > first && (u.maxBytes > 0 && u.chunkBytes > u.maxBytes || u.maxEvents > 0 && u.chunkEvents+u.rawEvents > u.maxEvents) {
		c := u.chunks[first]
		u.chunks = slices.Delete(u.chunks, first, first+1)
		u.chunkBytes -= len(c.data)
		u.chunkEvents -= c.events
		u.dropped(c.events)
	}
	if u.maxEvents > 0 && u.rawEvents > u.maxEvents {
		// The bound is below one batch: close it to drop whole batches.
		u.closeBatch()
		u.bound()
	}
}

// size is what waits for upload: events, and compressed bytes of the closed
// batches plus the open batch's uncompressed bytes.
func (u *uploader) size() (events, bytes int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.chunkEvents + u.rawEvents, u.chunkBytes + len(u.raw)
}

func (u *uploader) loop() {
	defer close(u.done)
	retry := 0
	for {
		delay := u.minDelay + time.Duration(rand.Int64N(int64(u.maxDelay-u.minDelay)+1))
		if retry > 0 {
			delay = time.Duration(util.DefaultBackoff(float64(100*time.Millisecond), float64(u.maxDelay), retry))
		}
		t := time.NewTimer(delay)
		wake := u.wake
		if retry > 0 {
			wake = nil // backing off: the next attempt is the timer's
		}
		select {
		case <-u.stop:
			t.Stop()
			return
		case <-wake:
			t.Stop()
			// Closed batches to upload now; the open one waits.
			if err := u.upload(context.Background(), false); err != nil {
				retry++
				continue
			}
		case <-t.C:
			if err := u.upload(context.Background(), true); err != nil {
				u.logger.Error("%v.", err)
				retry++
				continue
			}
		}
		retry = 0
	}
}

// upload sends the closed batches (and the open one when all), oldest first;
// on a failure they stay in the buffer, in order, for the next attempt.
func (u *uploader) upload(ctx context.Context, all bool) error {
	u.uploadMu.Lock()
	defer u.uploadMu.Unlock()
	if all {
		u.mu.Lock()
		u.closeBatch()
		u.mu.Unlock()
	}
	for {
		u.mu.Lock()
		if len(u.chunks) == 0 {
			u.mu.Unlock()
			return nil
		}
		c := u.chunks[0]
		u.inflight = true
		u.mu.Unlock()
		err := u.post(ctx, c.data)
		u.mu.Lock()
		u.inflight = false
		if err != nil {
			u.mu.Unlock()
			return err
		}
		u.chunks = slices.Delete(u.chunks, 0, 1)
		u.chunkBytes -= len(c.data)
		u.chunkEvents -= c.events
		u.mu.Unlock()
	}
}

// post is OPA's upload of one chunk (logs.doUploadChunk): the same request.
func (u *uploader) post(ctx context.Context, data []byte) error {
	resp, err := u.client.
		WithHeader("Content-Type", "application/json").
		WithHeader("Content-Encoding", "gzip").
		WithBytes(data).
		Do(ctx, "POST", u.resource)
	if err != nil {
		return fmt.Errorf("log upload failed: %w", err)
	}
	defer util.Close(resp)
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		return lstat.HTTPError{StatusCode: resp.StatusCode}
	}
	return nil
}

// flush stops the schedule and uploads everything within ctx's deadline (one
// attempt without one); what cannot be uploaded by then is dropped and counted.
func (u *uploader) flush(ctx context.Context) error {
	close(u.stop)
	<-u.done
	var err error
	for {
		if err = u.upload(ctx, true); err == nil {
			return nil
		}
		if _, ok := ctx.Deadline(); !ok || ctx.Err() != nil {
			break // without a deadline, one attempt: Close must return
		}
		u.logger.Error("Error flushing decisions: %v", err)
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
		if ctx.Err() != nil {
			break
		}
	}
	u.mu.Lock()
	n := u.chunkEvents + u.rawEvents
	u.chunks, u.chunkBytes, u.chunkEvents = nil, 0, 0
	u.raw, u.ends, u.rawEvents = u.raw[:0], u.ends[:0], 0
	u.mu.Unlock()
	if n == 0 {
		return nil
	}
	u.dropped(n)
	return errors.Join(fmt.Errorf("decision logs: %d events not uploaded before the deadline", n), err)
}
