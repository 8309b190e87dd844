package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/temporal-opa/temporal-opa/server/internal/wiring"
)

// revSample is one reading of a frontend's /status: the active revision.
// sent and received bound the moment the frontend read it.
type revSample struct {
	sent, received time.Time
	rev            string
}

// dlStatus is a frontend's decision-logger counters from /status.
type dlStatus struct {
	at       time.Time
	recorded uint64
	dropped  uint64
	queued   int
	buffered int64
}

// metricSample is one scrape of a frontend's Prometheus endpoint.
type metricSample struct {
	at        time.Time
	decisions float64 // temporal_opa_decisions, every series
	dropped   float64 // temporal_opa_decision_logs_dropped
	refused   float64 // temporal_opa_tokens_refused
	jwksOK    float64
	jwksErr   float64
	bundleOK  float64
}

// memSample is one reading of a frontend's Go runtime through pprof: the
// live heap after a GC, and the goroutines.
type memSample struct {
	at         time.Time
	heap       float64 // HeapAlloc after runtime.GC (bytes)
	goroutines float64
}

// faultEvent is a fault as it happened.
type faultEvent struct {
	kind       string
	arg        string
	start, end time.Time // end: the component is back (serving again, for a frontend)
}

var statusClient = &http.Client{Timeout: time.Second}

// pollStatus reads fe's /status every 100ms: the revision timeline of the
// frontend (across its incarnations) and the current instance's
// decision-logger counters.
func (s *soak) pollStatus(ctx context.Context, wg *sync.WaitGroup, fe *soakFrontend) {
	wg.Go(func() {
		for ctx.Err() == nil {
			inst := fe.current()
			sent := time.Now()
			if st, ok := soakStatus(ctx, fe.statusAddr); ok && inst == fe.current() {
				now := time.Now()
				fe.mu.Lock()
				fe.timeline = append(fe.timeline, revSample{sent: sent, received: now, rev: st.Policy.Revisions["authz"]})
				fe.mu.Unlock()
				if dl := st.DecisionLogs; dl != nil {
					inst.mu.Lock()
					inst.statusDL = dlStatus{at: now, recorded: dl.Recorded, dropped: dl.Dropped, queued: dl.Queued, buffered: dl.Buffered}
					inst.mu.Unlock()
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
}

func soakStatus(ctx context.Context, addr string) (wiring.StatusReport, bool) {
	var st wiring.StatusReport
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return st, false
	}
	resp, err := statusClient.Do(req)
	if err != nil {
		return st, false
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st) == nil
}

// scrapeMetrics scrapes fe every second, and reads its memory every 15s, each
// sample kept by the instance that served it.
func (s *soak) scrapeMetrics(ctx context.Context, wg *sync.WaitGroup, fe *soakFrontend) {
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			inst := fe.current()
			inst.mu.Lock()
			serving := !inst.ready.IsZero() && inst.killed.IsZero()
			inst.mu.Unlock()
			if serving {
				if m, ok := scrapeFrontend(ctx, fe.metricsAddr); ok && inst == fe.current() {
					inst.addSample(m)
				}
				inst.mu.Lock()
				readMem := inst.memFirst == nil || i%15 == 0
				inst.mu.Unlock()
				if readMem {
					if m, ok := readMemory(ctx, fe.pprofAddr); ok && inst == fe.current() {
						inst.addMemory(m)
					}
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	})
}

func (inst *feInstance) addSample(m metricSample) {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if !inst.killed.IsZero() {
		return
	}
	if inst.first == nil {
		inst.first = &m
	}
	inst.last = &m
	inst.scrapes = append(inst.scrapes, m)
}

func scrapeFrontend(ctx context.Context, addr string) (metricSample, bool) {
	m := metricSample{at: time.Now()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return m, false
	}
	resp, err := statusClient.Do(req)
	if err != nil {
		return m, false
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return m, false
	}
	sum := func(name string, labels ...string) float64 { return sumSeries(body, name, labels...) }
	m.decisions = sum("temporal_opa_decisions")
	m.dropped = sum("temporal_opa_decision_logs_dropped")
	m.refused = sum("temporal_opa_tokens_refused")
	m.jwksOK = sum("temporal_opa_jwks_fetches", `result="ok"`)
	m.jwksErr = sum("temporal_opa_jwks_fetches", `result="error"`)
	m.bundleOK = sum("temporal_opa_bundle_loaded")
	return m, true
}

// readMemory reads the live heap (the heap profile with gc=1 runs a GC
// first; its debug=1 form ends with the MemStats) and the goroutine count.
func readMemory(ctx context.Context, addr string) (memSample, bool) {
	m := memSample{at: time.Now()}
	get := func(path string) ([]byte, bool) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
		if err != nil {
			return nil, false
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			return nil, false
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return b, err == nil && resp.StatusCode == http.StatusOK
	}
	heap, ok1 := get("/debug/pprof/heap?debug=1&gc=1")
	gr, ok2 := get("/debug/pprof/goroutine?debug=1")
	if !ok1 || !ok2 {
		return m, false
	}
	for _, line := range strings.Split(string(heap), "\n") {
		if v, ok := strings.CutPrefix(line, "# HeapAlloc = "); ok {
			m.heap, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	first, _, _ := strings.Cut(string(gr), "\n")
	if v, ok := strings.CutPrefix(first, "goroutine profile: total "); ok {
		m.goroutines, _ = strconv.ParseFloat(strings.TrimSpace(v), 64)
	}
	return m, m.heap > 0 && m.goroutines > 0
}

func (inst *feInstance) addMemory(m memSample) {
	inst.mu.Lock()
	defer inst.mu.Unlock()
	if !inst.killed.IsZero() {
		return
	}
	if inst.memFirst == nil {
		inst.memFirst = &m
	}
	inst.memLast = &m
	if m.heap > inst.memMax.heap {
		inst.memMax = m
	}
}

// sumSeries sums the samples of the series named name (Prometheus text
// format) whose labels contain every one of labels (`key="value"`).
func sumSeries(body []byte, name string, labels ...string) float64 {
	total := 0.0
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var lbl, value string
		switch {
		case strings.HasPrefix(line, name+"{"):
			lbl, value, _ = strings.Cut(line[len(name)+1:], "} ")
		case strings.HasPrefix(line, name+" "):
			value = line[len(name)+1:]
		default:
			continue
		}
		ok := true
		for _, l := range labels {
			if !strings.Contains(","+lbl+",", ","+l+",") {
				ok = false
			}
		}
		if f, err := strconv.ParseFloat(strings.Fields(value)[0], 64); ok && err == nil {
			total += f
		}
	}
	return total
}

// run registers the namespace, starts the workers and the monitors, and
// drives the load and the faults for the plan's duration; then it drains:
// the workflows finish, the workers stop, every decision-log event is
// uploaded, and the processes are stopped with SIGTERM.
func (s *soak) run() {
	t := s.t
	s.registerNamespace()
	stopWorkers := s.startWorkers()
	t.Cleanup(stopWorkers)
	monCtx, stopMonitors := context.WithCancel(s.ctx)
	var monitors sync.WaitGroup
	for _, fe := range s.fes {
		s.pollStatus(monCtx, &monitors, fe)
		s.scrapeMetrics(monCtx, &monitors, fe)
	}
	defer func() {
		stopMonitors()
		monitors.Wait()
	}()

	s.loadStart = time.Now()
	end := s.loadStart.Add(s.plan.duration)
	var faults sync.WaitGroup
	s.runFaults(&faults)
	s.publishEvery(&faults, end)
	s.runLoad(end)
	s.loadEnd = time.Now()
	faults.Wait()
	if err := context.Cause(s.ctx); err != nil {
		t.Fatalf("the run ended early: %v", err)
	}
	stopWorkers()
	s.drain()
	stopMonitors()
	monitors.Wait()
	for _, name := range []string{"fe2", "fe1"} {
		fe := s.fes[name]
		fe.mu.Lock()
		proc := fe.proc
		fe.mu.Unlock()
		s.c.stop(proc.name, time.Minute)
	}
	for _, name := range []string{"worker", "internal-frontend", "matching", "history"} {
		s.c.stop(name, time.Minute)
	}
}

// drain waits until each serving frontend has uploaded every event it
// recorded (queue and upload buffer empty), then takes a last scrape once
// its metrics have settled (Temporal's reporter flushes every second).
func (s *soak) drain() {
	deadline := time.Now().Add(2 * time.Minute)
	for _, fe := range s.fes {
		inst := fe.current()
		for {
			inst.mu.Lock()
			dl := inst.statusDL
			inst.mu.Unlock()
			if dl.at.After(s.loadEnd) && dl.queued == 0 && dl.buffered == 0 {
				break
			}
			if time.Now().After(deadline) {
				s.t.Fatalf("%s: decision logs not drained 2m after the load: %+v", inst.name, dl)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	time.Sleep(3 * time.Second)
	for _, fe := range s.fes {
		inst := fe.current()
		for {
			a, ok1 := scrapeFrontend(s.ctx, fe.metricsAddr)
			time.Sleep(1500 * time.Millisecond)
			b, ok2 := scrapeFrontend(s.ctx, fe.metricsAddr)
			if ok1 && ok2 && a.decisions == b.decisions {
				inst.addSample(b)
				if m, ok := readMemory(s.ctx, fe.pprofAddr); ok {
					inst.addMemory(m)
				}
				break
			}
			if time.Now().After(deadline) {
				s.t.Fatalf("%s: decision count still moving 2m after the load", inst.name)
			}
		}
	}
}

// publishEvery publishes a new bundle revision every plan.publish until end.
func (s *soak) publishEvery(wg *sync.WaitGroup, end time.Time) {
	wg.Go(func() {
		for n := 2; s.ctx.Err() == nil; n++ {
			next := s.loadStart.Add(time.Duration(n-1) * s.plan.publish)
			if !next.Before(end) {
				return
			}
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(time.Until(next)):
			}
			s.publishRevision(n)
		}
	})
}

// runFaults runs the plan's faults, each at its time.
func (s *soak) runFaults(wg *sync.WaitGroup) {
	plan := append([]fault(nil), s.plan.faults...)
	sort.Slice(plan, func(i, j int) bool { return plan[i].at < plan[j].at })
	for _, f := range plan {
		wg.Go(func() {
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(time.Until(s.loadStart.Add(f.at))):
			}
			ev := faultEvent{kind: f.kind, arg: f.arg, start: time.Now()}
			if err := s.inject(f, wg); err != nil {
				s.cancel(fmt.Errorf("fault %s: %w", f.kind, err))
				return
			}
			ev.end = time.Now()
			s.faultMu.Lock()
			s.faults = append(s.faults, ev)
			sort.Slice(s.faults, func(i, j int) bool { return s.faults[i].start.Before(s.faults[j].start) })
			s.faultMu.Unlock()
			s.t.Logf("soak: %+.0fs %s %s (%s)", ev.start.Sub(s.loadStart).Seconds(), f.kind, f.arg, ev.end.Sub(ev.start).Round(time.Millisecond))
		})
	}
}

// inject causes one fault and returns when it is over.
func (s *soak) inject(f fault, wg *sync.WaitGroup) error {
	outage := func(down, up func()) error {
		down()
		select {
		case <-s.ctx.Done():
		case <-time.After(s.plan.outage):
		}
		up()
		return nil
	}
	switch f.kind {
	case faultRotate:
		// A token minted with the old key just before the rotation is held
		// and used until after its expiry.
		for _, fe := range []string{"fe1", "fe2"} {
			if err := s.holdOldToken(wg, fe); err != nil {
				return err
			}
		}
		old, err := s.issuer.rotate()
		if err != nil {
			return err
		}
		// Retired once every token it signed has expired.
		retireAt := time.Now().Add(max(s.plan.tokenTTL, s.plan.oldTokenTTL) + 5*time.Second)
		wg.Go(func() {
			select {
			case <-s.ctx.Done():
			case <-time.After(time.Until(retireAt)):
				s.issuer.retire(old)
			}
		})
		return nil
	case faultBundleDown:
		var err error
		_ = outage(s.bundleS.down, func() { err = s.bundleS.up() })
		return err
	case faultIssuerDown:
		var err error
		_ = outage(s.issuer.down, func() { err = s.issuer.up() })
		return err
	case faultLogDown:
		var err error
		_ = outage(s.logs.down, func() { err = s.logs.up() })
		return err
	case faultLogSlow:
		// Each upload answered after 3s: slower than the reporting interval.
		return outage(func() { s.logs.slow.Store(int64(3 * time.Second)) }, func() { s.logs.slow.Store(0) })
	case faultKill:
		s.kill(s.fes[f.arg])
		return nil
	case faultPGRestart:
		return s.pg.restart()
	}
	return fmt.Errorf("unknown fault %q", f.kind)
}
