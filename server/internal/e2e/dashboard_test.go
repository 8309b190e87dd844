package e2e

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// The monitoring files of server/deploy whose queries TestDocs checks.
const (
	dashboardFile = "server/deploy/grafana/temporal-opa.json"
	rulesFile     = "server/deploy/prometheus/temporal-opa-rules.yaml"
	metricsRef    = "docs/reference/metrics.md"
)

// checkDashboardSeries checks that every PromQL expression of the Grafana
// dashboard and of the Prometheus rules names only series the server exports:
// Temporal's (service_*, ...) must be in the scrape of metricsURL, a dev
// server that has served the docs' commands; a temporal_opa_* series must be
// in that scrape or, when nothing has recorded it yet (a counter appears
// once incremented: shadow disagreements, dropped events), in the metrics
// reference, generated from a real Prometheus handler on which every series
// was recorded (TestMetricsReference in policy/authzmetrics).
func checkDashboardSeries(t *testing.T, root, metricsURL string) {
	t.Helper()
	scraped := scrapeSeries(t, metricsURL)
	documented := documentedSeries(t, filepath.Join(root, metricsRef))
	checkDashboardPanels(t, filepath.Join(root, dashboardFile))
	exprs := dashboardExprs(t, filepath.Join(root, dashboardFile))
	rules := ruleExprs(t, filepath.Join(root, rulesFile))
	if len(exprs) < 10 || len(rules) < 4 {
		t.Fatalf("%d dashboard and %d rule expressions: the files were not read", len(exprs), len(rules))
	}
	fromDocs := map[string]bool{}
	for _, e := range append(exprs, rules...) {
		names := promQLSeries(e.expr)
		if len(names) == 0 {
			t.Errorf("%s: %q names no series", e.where, e.expr)
		}
		for _, n := range names {
			labels, ok := scraped[n]
			if !ok && strings.HasPrefix(n, "temporal_opa_") {
				labels, ok = documented[n]
				fromDocs[n] = ok
			}
			if !ok {
				t.Errorf("%s: %q names %s, which the server does not export (not in the scrape of a dev server%s)",
					e.where, e.expr, n, map[bool]string{true: " nor in " + metricsRef}[strings.HasPrefix(n, "temporal_opa_")])
				continue
			}
			for _, l := range promQLLabels(e.expr) {
				if !labels[l] {
					t.Errorf("%s: %q uses the label %s, which %s does not have (it has %v)", e.where, e.expr, l, n, slices.Sorted(maps.Keys(labels)))
				}
			}
		}
	}
	var late []string
	for n := range fromDocs {
		late = append(late, n)
	}
	slices.Sort(late)
	t.Logf("dashboard: %d expressions, rules: %d; series not recorded by the docs' commands, found in %s: %v", len(exprs), len(rules), metricsRef, late)
}

type promExpr struct{ where, expr string }

// checkDashboardPanels checks the dashboard's shape as Grafana imports it:
// a title and uid, a Prometheus datasource variable, panels with unique ids
// and each panel but rows with targets that have a refId and an expression.
func checkDashboardPanels(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title, UID string
		Templating struct {
			List []struct{ Name, Type, Query string }
		}
		Panels []struct {
			ID      int
			Type    string
			Title   string
			Targets []struct{ RefID, Expr string }
		}
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("%s: no title or uid", dashboardFile)
	}
	if !slices.ContainsFunc(d.Templating.List, func(v struct{ Name, Type, Query string }) bool {
		return v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus"
	}) {
		t.Errorf("%s: no Prometheus datasource variable named datasource", dashboardFile)
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] || p.ID == 0 {
			t.Errorf("%s: panel %q: id %d missing or not unique", dashboardFile, p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: panel %q has no query", dashboardFile, p.Title)
		}
		for _, q := range p.Targets {
			if q.RefID == "" || q.Expr == "" {
				t.Errorf("%s: panel %q: a query without refId or expr", dashboardFile, p.Title)
			}
		}
	}
}

// dashboardExprs returns every "expr" of the dashboard's JSON, wherever it is.
func dashboardExprs(t *testing.T, path string) []promExpr {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []promExpr
	var walk func(v any, title string)
	walk = func(v any, title string) {
		switch v := v.(type) {
		case map[string]any:
			if s, ok := v["title"].(string); ok {
				title = s
			}
			for k, x := range v {
				if s, ok := x.(string); ok && k == "expr" {
					out = append(out, promExpr{where: dashboardFile + ": panel " + title, expr: s})
					continue
				}
				walk(x, title)
			}
		case []any:
			for _, x := range v {
				walk(x, title)
			}
		}
	}
	walk(v, "")
	return out
}

// ruleExprs returns the expr of every rule of a Prometheus rule file.
func ruleExprs(t *testing.T, path string) []promExpr {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert, Record, Expr string
			}
		}
	}
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(false)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []promExpr
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Expr == "" {
				t.Errorf("%s: rule %s%s has no expr", rulesFile, r.Alert, r.Record)
			}
			out = append(out, promExpr{where: rulesFile + ": " + r.Alert + r.Record, expr: r.Expr})
		}
	}
	return out
}

// scrapeSeries returns the sample names of a Prometheus text exposition,
// each with the label names its samples carry.
func scrapeSeries(t *testing.T, url string) map[string]map[string]bool {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape %s: %v %s", url, err, resp.Status)
	}
	out := map[string]map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.IndexAny(line, "{ ")
		if i <= 0 {
			continue
		}
		name := line[:i]
		if out[name] == nil {
			out[name] = map[string]bool{}
		}
		if line[i] == '{' {
			labels, _, _ := strings.Cut(promQLStrings.ReplaceAllString(line[i+1:], `""`), "}")
			for _, kv := range strings.Split(labels, ",") {
				if k, _, ok := strings.Cut(kv, "="); ok {
					out[name][strings.TrimSpace(k)] = true
				}
			}
		}
	}
	return out
}

// documentedSeries returns the sample names the metrics reference lists, with
// their label names: each series' name with the suffixes of its type
// (histograms: _bucket, with le, _sum and _count).
var refSeries = regexp.MustCompile("(?m)^\\| `(temporal_opa_[a-z_]+)` \\| (counter|histogram|gauge) \\| ([^|]*) \\|")

func documentedSeries(t *testing.T, path string) map[string]map[string]bool {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]bool{}
	for _, m := range refSeries.FindAllStringSubmatch(string(data), -1) {
		labels := map[string]bool{}
		for _, l := range strings.Split(m[3], ",") {
			if l = strings.Trim(strings.TrimSpace(l), "`"); l != "" && l != "none" {
				labels[l] = true
			}
		}
		out[m[1]] = labels
		if m[2] == "histogram" {
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				out[m[1]+s] = labels
			}
			bucket := map[string]bool{"le": true}
			for l := range labels {
				bucket[l] = true
			}
			out[m[1]+"_bucket"] = bucket
		}
	}
	if len(out) < 10 {
		t.Fatalf("%s lists %d series: the table was not found", path, len(out))
	}
	return out
}

// promQL tokens that are not series names.
var promQLWords = map[string]bool{}

func init() {
	for _, w := range strings.Fields(`by without on ignoring group_left group_right offset bool and or unless
		sum min max avg group stddev stdvar count count_values bottomk topk quantile inf nan atmodifier start end`) {
		promQLWords[w] = true
	}
}

var (
	promQLStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promQLMatchers = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promQLGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promQLIdent    = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)
)

// promQLLabels returns the label names an expression matches on or groups
// by: those of its label matchers and of by, without, on, ignoring,
// group_left and group_right.
func promQLLabels(expr string) []string {
	e := promQLStrings.ReplaceAllString(expr, `""`)
	var out []string
	add := func(l string) {
		if l = strings.TrimSpace(l); l != "" && !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	for _, m := range promQLMatcherList.FindAllStringSubmatch(e, -1) {
		for _, kv := range strings.Split(m[1], ",") {
			if i := strings.IndexAny(kv, "=!"); i > 0 {
				add(kv[:i])
			}
		}
	}
	for _, m := range promQLGroupingList.FindAllStringSubmatch(e, -1) {
		for _, l := range strings.Split(m[1], ",") {
			add(l)
		}
	}
	return out
}

var (
	promQLMatcherList  = regexp.MustCompile(`\{([^}]*)\}`)
	promQLGroupingList = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
)

// promQLSeries returns the metric names an expression selects: the
// identifiers left once strings, label matchers, ranges and grouping labels
// are removed, that are neither functions (followed by "("), keywords nor
// numbers.
func promQLSeries(expr string) []string {
	e := promQLStrings.ReplaceAllString(expr, `""`)
	e = promQLMatchers.ReplaceAllString(e, " ")
	e = promQLGrouping.ReplaceAllString(e, " ")
	var out []string
	for _, loc := range promQLIdent.FindAllStringIndex(e, -1) {
		name := e[loc[0]:loc[1]]
		if loc[0] > 0 && (e[loc[0]-1] >= '0' && e[loc[0]-1] <= '9' || e[loc[0]-1] == '.') {
			continue // the unit of a duration (1d) or an exponent
		}
		if promQLWords[strings.ToLower(name)] {
			continue
		}
		if strings.HasPrefix(strings.TrimLeft(e[loc[1]:], " \t\n"), "(") {
			continue // a function
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

func TestPromQLLabels(t *testing.T) {
	got := promQLLabels(`sum by (operation, decision) (rate(a_total{decision=~"deny|error", mode="enforce"}[5m])) / on (operation) b`)
	if want := []string{"decision", "mode", "operation"}; !slices.Equal(slices.Sorted(slices.Values(got)), want) {
		t.Errorf("promQLLabels = %v, want %v", got, want)
	}
}

func TestPromQLSeries(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (decision) (rate(temporal_opa_decisions_total{mode="enforce"}[$__rate_interval]))`:                                    {"temporal_opa_decisions_total"},
		`histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))`:                                                                  {"x_bucket"},
		`sum by (operation) (rate(a_total{decision=~"deny|error"}[5m])) > 3 * sum by (operation) (rate(a_total[1h] offset 1d)) + 0.1`: {"a_total"},
		`increase(a_total{result="error"}[15m]) > 0 and increase(b_total{result="ok"}[15m]) == 0`:                                     {"a_total", "b_total"},
		`sum(rate(h{result="hit"}[1m])) / sum(rate(h[1m]))`:                                                                           {"h"},
		`topk(10, sum without (instance) (up))`:                                                                                       {"up"},
		`a_total{job="x}y"}`:                                                                                                          {"a_total"},
		`1e3 * b`:                                                                                                                     {"b"},
	} {
		if got := promQLSeries(expr); !slices.Equal(got, want) {
			t.Errorf("promQLSeries(%q) = %v, want %v", expr, got, want)
		}
	}
}
