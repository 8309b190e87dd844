package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"
)

// soakFigures are what the soak prints and writes to SOAK_REPORT.
type soakFigures struct {
	Load           string         `json:"load"`
	Plan           string         `json:"plan"`
	LoadSeconds    float64        `json:"load_seconds"`
	Faults         []string       `json:"faults"`
	Calls          int            `json:"calls"`
	Allowed        int            `json:"allowed"`
	Denied         int            `json:"denied"`  // by the policy
	Refused        int            `json:"refused"` // tokens refused by the claim mapper
	Failed         int            `json:"failed"`  // not decided: see failures
	ByCaller       map[string]int `json:"by_caller_and_outcome"`
	CallsPerSecond float64        `json:"calls_per_second"`
	// Calls made in each 10s of the load (min, median, max): the load held
	// through the faults.
	Per10sMin    int `json:"calls_per_10s_min"`
	Per10sMedian int `json:"calls_per_10s_median"`
	Per10sMax    int `json:"calls_per_10s_max"`

	WrongDecisions       int            `json:"wrong_decisions"`
	WrongExamples        []string       `json:"wrong_examples,omitempty"`
	DecidedInWindow      map[string]int `json:"decided_in_documented_window"`
	DenyRuleHits         int            `json:"alternating_rule_denials"`
	DenyRuleRevisions    []string       `json:"alternating_rule_revisions"`
	MisattributedFlagged int            `json:"self_check_misattributed_flagged"`
	denyRuleChecked      int            // denials by the rule re-decided (their event found)
	ShiftedTimelineWrong int            `json:"self_check_shifted_timeline_wrong"`

	Failures             map[string]int `json:"failures_by_cause"`
	RPCFailures          map[string]int `json:"sdk_retried_attempts_by_cause"`
	RPCThenDecided       int            `json:"sdk_retried_attempts_then_decided"`
	RetriedThenSucceeded int            `json:"operations_retried_then_decided"`
	Unexplained          int            `json:"unexplained_failures"`
	UnexplainedExamples  []string       `json:"unexplained_examples,omitempty"`

	WorkflowsStarted   int64    `json:"workflows_started"`
	WorkflowsCompleted int64    `json:"workflows_completed"`
	WorkflowErrors     []string `json:"workflow_errors,omitempty"`

	DecisionLog dlFigures `json:"decision_logs"`

	BundleRevisions  int      `json:"bundle_revisions_published"`
	PropagationN     int      `json:"bundle_propagations_measured"`
	PropagationP50   float64  `json:"bundle_propagation_p50_seconds"`
	PropagationMax   float64  `json:"bundle_propagation_max_seconds"`
	PropagationNotes []string `json:"bundle_propagation_notes,omitempty"`

	Rotations          int     `json:"key_rotations"`
	OldTokenAccepted   int     `json:"old_key_token_accepted_after_rotation"`
	OldTokenRefused    int     `json:"old_key_token_refused_after_expiry"`
	ValidTokensRefused int     `json:"valid_tokens_refused"`
	JWKSFetchErrors    float64 `json:"jwks_fetch_errors"`

	Memory []memFigure `json:"frontends"`
}

type dlFigures struct {
	DecidedCalls      int                   `json:"decided_calls"`
	ClientDecisionIDs int                   `json:"client_decision_ids"` // denials name their decision
	FoundInService    int                   `json:"decided_calls_found_in_service"`
	Lost              int                   `json:"lost"`
	LostExamples      []string              `json:"lost_examples,omitempty"`
	UnflushedAtKill   int                   `json:"decided_calls_unflushed_at_sigkill"`
	Events            int                   `json:"events_in_service"`
	Duplicates        int                   `json:"duplicates_received"`
	Batches           int                   `json:"batches"`
	Instances         map[string]dlInstance `json:"by_instance"`
}

type dlInstance struct {
	InService  int     `json:"in_service"`
	Decisions  float64 `json:"decisions_counted_by_metrics"`
	Dropped    float64 `json:"dropped_counter"`
	Recorded   uint64  `json:"recorded_status"`
	Killed     bool    `json:"killed"`
	Unflushed  float64 `json:"unflushed_at_kill_estimate,omitempty"`
	MetricsAge float64 `json:"metrics_taken_seconds_before_kill,omitempty"`
}

type memFigure struct {
	Instance        string  `json:"instance"`
	Killed          bool    `json:"killed"`
	HeapStartMiB    float64 `json:"heap_start_mib"`
	HeapEndMiB      float64 `json:"heap_end_mib"`
	HeapMaxMiB      float64 `json:"heap_max_mib"`
	GoroutinesStart float64 `json:"goroutines_start"`
	GoroutinesEnd   float64 `json:"goroutines_end"`
	Lived           string  `json:"lived"`
}

// Bounds the figures must reach.
const (
	// Temporal's frontend keeps its own caches (namespaces, gRPC buffers,
	// the SDK clients' connections): heap growth is allowed up to the
	// configured caches of temporal-opa plus this.
	soakHeapSlack = 64 << 20
	// soakFailureSlack is how long after a fault ends its failures are still
	// explained by it: clients reconnect with backoff, the ring settles,
	// sticky task queues of a killed frontend's worker time out.
	soakFailureSlack = 20 * time.Second
	// soakUnflushedWindow: a killed frontend loses the decision-log events
	// it had not uploaded: those of the last reporting interval plus an upload.
	soakUnflushedWindow = (soakLogMaxDelay + 3) * time.Second
)

// analyse computes the figures, prints and writes them, and fails the test
// when one misses its bound.
func (s *soak) analyse() {
	calls := s.rec.all()
	events, dups, batches := s.logs.snapshot()
	o := s.newOracle()
	f := soakFigures{Load: fmt.Sprintf("%d frontends, workers, starters, readers, schedulers, denied callers", len(s.fes)),
		Plan: s.plan.String(), LoadSeconds: s.loadEnd.Sub(s.loadStart).Seconds(),
		ByCaller: map[string]int{}, DecidedInWindow: map[string]int{}, Failures: map[string]int{}, RPCFailures: map[string]int{}}
	s.faultMu.Lock()
	for _, ev := range s.faults {
		f.Faults = append(f.Faults, fmt.Sprintf("%+.0fs %s %s (%.1fs)", ev.start.Sub(s.loadStart).Seconds(), ev.kind, ev.arg, ev.end.Sub(ev.start).Seconds()))
	}
	s.faultMu.Unlock()

	s.decisionFigures(o, calls, events, &f)
	s.failureFigures(calls, &f)
	s.logFigures(calls, events, dups, batches, &f)
	s.propagationFigures(&f)
	s.memoryFigures(&f)
	f.WorkflowsStarted, f.WorkflowsCompleted = s.started.Load(), s.done.Load()
	s.wfErrs.Range(func(k, v any) bool {
		if len(f.WorkflowErrors) < 5 {
			f.WorkflowErrors = append(f.WorkflowErrors, fmt.Sprintf("%v: %v", k, v))
		}
		return true
	})
	s.report(f)
	s.check(f)
}

func (s *soak) decisionFigures(o *oracle, calls []*callRecord, events map[string]loggedEvent, f *soakFigures) {
	denyRevs := map[string]bool{}
	idx := indexEvents(events)
	for _, c := range calls {
		f.Calls++
		f.ByCaller[c.caller+"/"+c.op+"/"+c.outcome]++
		switch c.outcome {
		case outAllowed:
			f.Allowed++
		case outDenied:
			f.Denied++
		case outRefused:
			f.Refused++
		default:
			f.Failed++
			continue
		}
		v := s.judge(o, c, events, idx, false)
		if v.window != "" {
			f.DecidedInWindow[v.window]++
		}
		if v.wrong != "" {
			f.WrongDecisions++
			if len(f.WrongExamples) < 10 {
				f.WrongExamples = append(f.WrongExamples, fmt.Sprintf("%s %s via %s by %s at %+.1fs: %s",
					c.op, c.ns, c.fe, c.caller, c.start.Sub(s.loadStart).Seconds(), v.wrong))
			}
			if c.outcome == outRefused && v.expected[outAllowed] {
				f.ValidTokensRefused++
			}
		}
		if c.caller == "old-key-token" {
			if c.outcome == outAllowed {
				f.OldTokenAccepted++
			} else if c.outcome == outRefused {
				f.OldTokenRefused++
			}
		}
		// The alternating rule, and the self-check that a mis-attributed
		// revision is caught: each denial by it is re-decided by the revision
		// before it, which allows the call.
		if c.outcome == outDenied && c.op == "CountWorkflowExecutions" && strings.Contains(c.reason, "counting workflows is disabled") {
			f.DenyRuleHits++
			ev, ok := events[c.decisionID]
			if !ok {
				continue
			}
			denyRevs[ev.revision] = true
			i := indexOf(o.order, ev.revision)
			claims, _ := o.accepts(c.token, c.start)
			if i > 0 && claims != nil {
				f.denyRuleChecked++
				if d, _ := o.decide(o.order[i-1], claims, c.op, c.ns); d != c.outcome {
					f.MisattributedFlagged++
				}
			}
		}
		found := c.eventFound
		if s.judge(o, c, events, idx, true).wrong != "" {
			f.ShiftedTimelineWrong++
		}
		c.eventFound = found
	}
	f.DenyRuleRevisions = keys(denyRevs)
	f.CallsPerSecond = float64(f.Calls) / f.LoadSeconds
	buckets := make([]int, int(f.LoadSeconds/10))
	for _, c := range calls {
		if i := int(c.start.Sub(s.loadStart) / (10 * time.Second)); i >= 0 && i < len(buckets) {
			buckets[i]++
		}
	}
	sort.Ints(buckets)
	if len(buckets) > 0 {
		f.Per10sMin, f.Per10sMedian, f.Per10sMax = buckets[0], buckets[len(buckets)/2], buckets[len(buckets)-1]
	}
}

// failureFigures explains each failed attempt by the fault active around it.
func (s *soak) failureFigures(calls []*callRecord, f *soakFigures) {
	lastOf := map[int64]*callRecord{}
	failedOps := map[int64]bool{}
	for _, c := range calls {
		if prev := lastOf[c.opID]; prev == nil || c.attempt > prev.attempt {
			lastOf[c.opID] = c
		}
		for _, a := range c.rpcFailures {
			cause := s.causeOf(&callRecord{op: c.op, fe: c.fe, start: a.start, end: a.end})
			f.RPCFailures[cause]++
			if c.outcome != outFailed {
				f.RPCThenDecided++
			}
			if cause == "unexplained" {
				f.Unexplained++
				if len(f.UnexplainedExamples) < 10 {
					f.UnexplainedExamples = append(f.UnexplainedExamples, fmt.Sprintf("attempt of %s via %s at %+.1fs (%s): %s",
						c.op, c.fe, a.start.Sub(s.loadStart).Seconds(), a.code, a.err))
				}
			}
		}
		if c.outcome != outFailed {
			continue
		}
		failedOps[c.opID] = true
		cause := s.causeOf(c)
		f.Failures[cause]++
		if cause == "unexplained" {
			f.Unexplained++
			if len(f.UnexplainedExamples) < 10 {
				f.UnexplainedExamples = append(f.UnexplainedExamples, fmt.Sprintf("%s via %s at %+.1fs (%s): %s",
					c.op, c.fe, c.start.Sub(s.loadStart).Seconds(), c.code, c.err))
			}
		}
	}
	for id := range failedOps {
		if last := lastOf[id]; last.outcome != outFailed {
			f.RetriedThenSucceeded++
		} else {
			f.Unexplained++
			if len(f.UnexplainedExamples) < 10 {
				f.UnexplainedExamples = append(f.UnexplainedExamples, fmt.Sprintf("%s via %s: still failing after %d attempts: %s",
					last.op, last.fe, last.attempt, last.err))
			}
		}
	}
}

// causeOf names the fault that explains a failed call: a killed frontend
// (the call's own: in flight or while it restarted; the other one: its
// worker held the workflow's sticky task queue), or PostgreSQL restarting.
func (s *soak) causeOf(c *callRecord) string {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	for _, ev := range s.faults {
		overlaps := !c.start.After(ev.end.Add(soakFailureSlack)) && !c.end.Before(ev.start)
		if !overlaps {
			continue
		}
		switch {
		case ev.kind == faultKill && ev.arg == c.fe:
			return "frontend killed: in flight or restarting"
		case ev.kind == faultKill && c.op == "QueryWorkflow":
			return "other frontend killed: its worker held the workflow (sticky queue)"
		case ev.kind == faultPGRestart:
			return "PostgreSQL restart"
		}
	}
	return "unexplained"
}

// instanceAt is the instance of fe serving at time at.
func (s *soak) instanceAt(fe string, at time.Time) *feInstance {
	fr := s.fes[fe]
	fr.mu.Lock()
	defer fr.mu.Unlock()
	var found *feInstance
	for _, inst := range fr.instances {
		if !inst.started.After(at) {
			found = inst
		}
	}
	return found
}

// logFigures checks the decision-log service against the clients and the
// metrics: every decision id a client saw is there, and every instance's
// events equal its decisions counted by metrics minus its drops.
func (s *soak) logFigures(calls []*callRecord, events map[string]loggedEvent, dups, batches int, f *soakFigures) {
	d := &f.DecisionLog
	d.Events, d.Duplicates, d.Batches = len(events), dups, batches
	for _, c := range calls {
		if c.outcome != outAllowed && c.outcome != outDenied {
			continue
		}
		d.DecidedCalls++
		if c.decisionID != "" {
			d.ClientDecisionIDs++
		}
		if c.eventFound {
			d.FoundInService++
			continue
		}
		inst := s.instanceAt(c.fe, c.start)
		if inst != nil && !inst.killed.IsZero() && !c.end.Before(inst.killed.Add(-soakUnflushedWindow)) && !c.start.After(inst.killed) {
			d.UnflushedAtKill++
			continue
		}
		d.Lost++
		if len(d.LostExamples) < 10 {
			d.LostExamples = append(d.LostExamples, fmt.Sprintf("%s %s via %s at %+.1fs (decision id %q)", c.outcome, c.op, c.fe, c.start.Sub(s.loadStart).Seconds(), c.decisionID))
		}
	}
	byInst := countBy(events)
	d.Instances = map[string]dlInstance{}
	for _, fe := range s.fes {
		fe.mu.Lock()
		insts := append([]*feInstance(nil), fe.instances...)
		fe.mu.Unlock()
		for _, inst := range insts {
			inst.mu.Lock()
			di := dlInstance{InService: byInst[inst.name], Recorded: inst.statusDL.recorded, Killed: !inst.killed.IsZero()}
			if di.Killed {
				// The last scrape whose decisions must all have been uploaded
				// before the kill.
				for _, m := range inst.scrapes {
					if m.at.Before(inst.killed.Add(-soakUnflushedWindow)) {
						di.Decisions, di.Dropped, di.MetricsAge = m.decisions, m.dropped, inst.killed.Sub(m.at).Seconds()
					}
				}
				// What it had recorded at its last /status reading (at most
				// 0.1s before the kill) or last scrape, and had not uploaded.
				if inst.last != nil {
					di.Unflushed = max(0, inst.last.decisions-inst.last.dropped-float64(di.InService))
				}
				di.Unflushed = max(di.Unflushed, float64(inst.statusDL.recorded)-float64(inst.statusDL.dropped)-float64(di.InService))
				if float64(di.InService) < di.Decisions-di.Dropped {
					d.Lost += int(di.Decisions - di.Dropped - float64(di.InService))
				}
			} else if inst.last != nil {
				di.Decisions, di.Dropped = inst.last.decisions, inst.last.dropped
				if n := di.Decisions - di.Dropped - float64(di.InService); n != 0 {
					d.Lost += int(n) // negative: more events than decisions, also wrong
				}
			}
			inst.mu.Unlock()
			d.Instances[inst.name] = di
		}
	}
}

// propagationFigures: from when each revision could be downloaded (its
// publication, or the bundle server's return) to its first reading on each
// frontend.
func (s *soak) propagationFigures(f *soakFigures) {
	s.revMu.Lock()
	revs := append([]publishedRevision(nil), s.revisions...)
	s.revMu.Unlock()
	f.BundleRevisions = len(revs)
	s.faultMu.Lock()
	var outages []faultEvent
	for _, ev := range s.faults {
		switch ev.kind {
		case faultBundleDown:
			outages = append(outages, ev)
		case faultRotate:
			f.Rotations++
		}
	}
	s.faultMu.Unlock()
	var ds []float64
	for i, r := range revs[1:] {
		// Downloadable from its publication, or from the bundle server's
		// return when it was down then or went down before the frontends'
		// next poll (at most max_delay_seconds later).
		avail := r.at
		for _, o := range outages {
			if !avail.Before(o.start.Add(-soakPollMaxDelay*time.Second)) && avail.Before(o.end) {
				avail = o.end
			}
		}
		var next time.Time
		if i+2 < len(revs) {
			next = revs[i+2].at
		}
		for _, name := range []string{"fe1", "fe2"} {
			fe := s.fes[name]
			fe.mu.Lock()
			var seen time.Time
			for _, smp := range fe.timeline {
				if smp.rev == r.name {
					seen = smp.received
					break
				}
			}
			fe.mu.Unlock()
			switch {
			case !seen.IsZero():
				ds = append(ds, seen.Sub(avail).Seconds())
			case !next.IsZero() && next.Sub(avail) < 0:
				if name == "fe1" {
					f.PropagationNotes = append(f.PropagationNotes, fmt.Sprintf("%s superseded during a bundle-server outage: never served", r.name))
				}
			default:
				f.PropagationNotes = append(f.PropagationNotes, fmt.Sprintf("%s never read on %s (published %+.1fs, next %+.1fs)",
					r.name, name, r.at.Sub(s.loadStart).Seconds(), next.Sub(s.loadStart).Seconds()))
			}
		}
	}
	sort.Float64s(ds)
	f.PropagationN = len(ds)
	if len(ds) > 0 {
		f.PropagationP50, f.PropagationMax = ds[len(ds)/2], ds[len(ds)-1]
	}
}

func (s *soak) memoryFigures(f *soakFigures) {
	for _, name := range []string{"fe1", "fe2"} {
		fe := s.fes[name]
		fe.mu.Lock()
		insts := append([]*feInstance(nil), fe.instances...)
		fe.mu.Unlock()
		for _, inst := range insts {
			inst.mu.Lock()
			if inst.last != nil {
				f.JWKSFetchErrors += inst.last.jwksErr
			}
			if inst.memFirst != nil && inst.memLast != nil {
				end := inst.killed
				if end.IsZero() {
					end = inst.memLast.at
				}
				f.Memory = append(f.Memory, memFigure{Instance: inst.name, Killed: !inst.killed.IsZero(),
					HeapStartMiB: inst.memFirst.heap / (1 << 20), HeapEndMiB: inst.memLast.heap / (1 << 20), HeapMaxMiB: inst.memMax.heap / (1 << 20),
					GoroutinesStart: inst.memFirst.goroutines, GoroutinesEnd: inst.memLast.goroutines,
					Lived: end.Sub(inst.ready).Round(time.Second).String()})
			}
			inst.mu.Unlock()
		}
	}
}

// report prints the figures and writes them to SOAK_REPORT when set.
func (s *soak) report(f soakFigures) {
	var b strings.Builder
	fmt.Fprintf(&b, "soak figures:\n  plan: %s\n  load: %.0fs, %s\n  faults:\n", f.Plan, f.LoadSeconds, f.Load)
	for _, x := range f.Faults {
		fmt.Fprintf(&b, "    %s\n", x)
	}
	fmt.Fprintf(&b, "  calls: %d (%.1f/s; per 10s: min %d, median %d, max %d): allowed %d, denied by the policy %d, tokens refused %d, failed (not decided) %d\n",
		f.Calls, f.CallsPerSecond, f.Per10sMin, f.Per10sMedian, f.Per10sMax, f.Allowed, f.Denied, f.Refused, f.Failed)
	fmt.Fprintf(&b, "  wrong decisions: %d; decided inside a documented window: %v\n", f.WrongDecisions, f.DecidedInWindow)
	for _, x := range f.WrongExamples {
		fmt.Fprintf(&b, "    WRONG %s\n", x)
	}
	fmt.Fprintf(&b, "  oracle self-checks: the alternating rule denied %d calls under %v; re-decided by the revision before, %d are flagged; a timeline shifted by one revision gives %d wrong decisions\n",
		f.DenyRuleHits, f.DenyRuleRevisions, f.MisattributedFlagged, f.ShiftedTimelineWrong)
	fmt.Fprintf(&b, "  failed gRPC attempts retried by the SDK, by cause: %v, of calls then decided: %d\n", f.RPCFailures, f.RPCThenDecided)
	fmt.Fprintf(&b, "  calls failed (after the SDK's retries), by cause: %v; operations retried then decided: %d; unexplained failures: %d\n", f.Failures, f.RetriedThenSucceeded, f.Unexplained)
	for _, x := range f.UnexplainedExamples {
		fmt.Fprintf(&b, "    UNEXPLAINED %s\n", x)
	}
	fmt.Fprintf(&b, "  workflows: started %d, completed %d\n", f.WorkflowsStarted, f.WorkflowsCompleted)
	d := f.DecisionLog
	fmt.Fprintf(&b, "  decision-log events lost: %d (decided calls %d, %d of them denials naming their decision id; their events found in the service %d; "+
		"in the documented SIGKILL window (not uploaded when their frontend was killed) %d; events %d, duplicates received %d, batches %d)\n",
		d.Lost, d.DecidedCalls, d.ClientDecisionIDs, d.FoundInService, d.UnflushedAtKill, d.Events, d.Duplicates, d.Batches)
	for _, x := range d.LostExamples {
		fmt.Fprintf(&b, "    LOST %s\n", x)
	}
	var names []string
	for n := range d.Instances {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		i := d.Instances[n]
		if i.Killed {
			fmt.Fprintf(&b, "    %s (killed): %d in the service >= %.0f decisions - %.0f dropped counted %.1fs before the kill; lost with the process (not uploaded at the kill): at least %.0f\n",
				n, i.InService, i.Decisions, i.Dropped, i.MetricsAge, i.Unflushed)
		} else {
			fmt.Fprintf(&b, "    %s: %d in the service = %.0f decisions counted by metrics - %.0f dropped (status recorded %d)\n", n, i.InService, i.Decisions, i.Dropped, i.Recorded)
		}
	}
	fmt.Fprintf(&b, "  bundle revisions: %d published; propagation to both frontends over %d readings: p50 %.2fs, max %.2fs %v\n",
		f.BundleRevisions, f.PropagationN, f.PropagationP50, f.PropagationMax, f.PropagationNotes)
	fmt.Fprintf(&b, "  key rotations: %d; valid tokens refused: %d; old-key tokens accepted after their rotation %d, refused after expiry %d; JWKS fetch errors (issuer down) %.0f\n",
		f.Rotations, f.ValidTokensRefused, f.OldTokenAccepted, f.OldTokenRefused, f.JWKSFetchErrors)
	for _, m := range f.Memory {
		fmt.Fprintf(&b, "  %s (lived %s, killed %v): live heap %.1f MiB -> %.1f MiB (max %.1f), goroutines %.0f -> %.0f\n",
			m.Instance, m.Lived, m.Killed, m.HeapStartMiB, m.HeapEndMiB, m.HeapMaxMiB, m.GoroutinesStart, m.GoroutinesEnd)
	}
	s.t.Log(b.String())
	if p := os.Getenv("SOAK_REPORT"); p != "" {
		data, err := json.MarshalIndent(f, "", "  ")
		if err == nil {
			err = os.WriteFile(p, data, 0o644)
		}
		if err != nil {
			s.t.Errorf("SOAK_REPORT: %v", err)
		} else {
			s.t.Logf("soak figures written to %s", jsonPath(p))
		}
	}
}

// check fails the test for every figure that misses its bound.
func (s *soak) check(f soakFigures) {
	t := s.t
	if f.WrongDecisions != 0 {
		t.Errorf("wrong decisions: %d, want 0", f.WrongDecisions)
	}
	if f.Unexplained != 0 {
		t.Errorf("unexplained failures: %d, want 0", f.Unexplained)
	}
	if f.DecisionLog.Lost != 0 {
		t.Errorf("decision-log events lost: %d, want 0", f.DecisionLog.Lost)
	}
	if f.ValidTokensRefused != 0 {
		t.Errorf("valid tokens refused: %d, want 0", f.ValidTokensRefused)
	}
	// The oracle must be able to fail.
	if f.DenyRuleHits == 0 || f.MisattributedFlagged == 0 || f.MisattributedFlagged != f.denyRuleChecked {
		t.Errorf("self-check: the alternating rule denied %d calls, %d of them re-decided, %d flagged when mis-attributed: want all flagged, more than 0",
			f.DenyRuleHits, f.denyRuleChecked, f.MisattributedFlagged)
	}
	if f.ShiftedTimelineWrong == 0 {
		t.Error("self-check: a timeline shifted by one revision gave no wrong decision: the oracle cannot fail")
	}
	if f.Allowed == 0 || f.Denied == 0 || f.Refused == 0 {
		t.Errorf("calls allowed %d, denied %d, refused %d: want each > 0", f.Allowed, f.Denied, f.Refused)
	}
	if f.WorkflowsCompleted != f.WorkflowsStarted || f.WorkflowsStarted == 0 {
		t.Errorf("workflows: %d started, %d completed: want all completed (%v)", f.WorkflowsStarted, f.WorkflowsCompleted, f.WorkflowErrors)
	}
	if f.OldTokenAccepted == 0 || f.OldTokenRefused == 0 {
		t.Errorf("old-key tokens: accepted after rotation %d, refused after expiry %d: want both > 0", f.OldTokenAccepted, f.OldTokenRefused)
	}
	if f.Per10sMin*2 < f.Per10sMedian {
		t.Errorf("load not held: %d calls in the slowest 10s, median %d", f.Per10sMin, f.Per10sMedian)
	}
	if f.PropagationN == 0 {
		t.Error("no bundle revision propagation measured")
	}
	for _, m := range f.Memory {
		if m.Killed {
			continue
		}
		if bound := m.HeapStartMiB + float64(soakDecisionCacheBytes+soakTokenCacheBytes+soakLogBufferBytes+soakHeapSlack)/(1<<20); m.HeapEndMiB > bound || m.HeapMaxMiB > bound {
			t.Errorf("%s: live heap %.1f MiB at the end (max %.1f), above %.1f MiB (start + caches + slack)", m.Instance, m.HeapEndMiB, m.HeapMaxMiB, bound)
		}
	}
}
