package source_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/temporal-opa/temporal-opa/policy"
	"github.com/temporal-opa/temporal-opa/policy/source"
)

func rev(k int) string { return fmt.Sprintf("v%03d", k) }

// TestHotReloadUnderLoad flips a watched tarball between an allow and a deny
// version while goroutines authorize continuously. Version k allows when k is even.
func TestHotReloadUnderLoad(t *testing.T) {
	const flips, workers = 100, 8
	a := newAuthorizer(t)
	path := filepath.Join(t.TempDir(), "bundle.tar.gz")
	tars := make([][]byte, flips+1)
	for k := range tars {
		tars[k] = tarball(t, files(rev(k), k%2 == 0), "", "")
	}
	replaceFile(t, path, tars[0])
	src, err := source.NewFile(context.Background(), a, "custom", path, source.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if got := outcome(a); got != "allow" {
		t.Fatalf("initial version: %s", got)
	}

	// phase is 2k while version k is active and no write is under way, 2k+1
	// while version k+1 is being written and activated.
	var phase atomic.Int64
	var total, strict atomic.Int64
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range workers {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				before := phase.Load()
				got := outcome(a)
				after := phase.Load()
				total.Add(1)
				if got != "allow" && got != "deny" {
					t.Errorf("decision of neither version: %s", got)
					return
				}
				// Started after version k's activation completed and ended
				// before version k+1 was written: it must be version k's.
				if before == after && before%2 == 0 {
					strict.Add(1)
					if k := before / 2; got != want(k%2 == 0) {
						t.Errorf("decision %s after version %d (%s) was activated", got, k, want(k%2 == 0))
						return
					}
				}
			}
		})
	}

	latencies := make([]time.Duration, 0, flips)
	for k := 1; k <= flips && !t.Failed(); k++ {
		phase.Store(int64(2*k - 1))
		written := time.Now()
		replaceFile(t, path, tars[k])
		eventually(t, "revision "+rev(k), func() bool { return src.Status().Revision == rev(k) })
		latencies = append(latencies, src.Status().ActivatedAt.Sub(written))
		phase.Store(int64(2 * k))
		seen := strict.Load()
		eventually(t, "decisions on "+rev(k), func() bool { return strict.Load() >= seen+workers })
	}
	close(stop)
	wg.Wait()

	st := src.Status()
	if st.Activations != flips+1 || st.Failures != 0 || !st.OK {
		t.Errorf("status after %d flips: %+v", flips, st)
	}
	if got := a.Status().Revisions["custom"]; got != rev(flips) {
		t.Errorf("authorizer revision %q, want %s", got, rev(flips))
	}
	slices.Sort(latencies)
	pct := func(p int) time.Duration { return latencies[(len(latencies)-1)*p/100] }
	summary := fmt.Sprintf("reload latency (write to activation) over %d reloads, %d goroutines authorizing (%d decisions, %d checked against the version just activated): min %s, p50 %s, p90 %s, max %s",
		len(latencies), workers, total.Load(), strict.Load(),
		latencies[0].Round(time.Millisecond), pct(50).Round(time.Millisecond), pct(90).Round(time.Millisecond), latencies[len(latencies)-1].Round(time.Millisecond))
	t.Log(summary)
	fmt.Println(summary)
}

func TestBadBundleOnWatchedPathKeepsPreviousPolicy(t *testing.T) {
	rules := "temporal/custom/rules.rego"
	tests := []struct {
		name  string
		files map[string]string
		want  []string // in Status.LastError
	}{
		{name: "syntax error",
			files: map[string]string{".manifest": manifest("bad"), rules: "package temporal.custom\n\ndeny contains \"x\" if {\n"},
			want:  []string{"rules.rego:4", "rego_parse_error"}},
		{name: "type error against the input schema",
			files: map[string]string{".manifest": manifest("bad"), rules: "package temporal.custom\n\ndeny contains \"x\" if input.target.health_check == \"yes\"\n"},
			want:  []string{"rules.rego:3", "rego_type_error"}},
		{name: "typo input.claim",
			files: map[string]string{".manifest": manifest("bad"), rules: "package temporal.custom\n\ndeny contains \"x\" if input.claim.subject == \"eve\"\n"},
			want:  []string{"rules.rego:3", "undefined ref: input.claim"}},
		{name: "package outside the manifest roots",
			files: map[string]string{".manifest": manifest("bad"), "elsewhere/rules.rego": "package elsewhere\n\nx := 1\n"},
			want:  []string{"elsewhere/rules.rego", "do not permit 'package elsewhere'"}},
		{name: "missing entrypoint",
			files: map[string]string{".manifest": `{"roots": ["temporal"], "revision": "bad"}`, rules: "package temporal.custom\n\ndeny contains \"x\" if false\n"},
			want:  []string{"no rule defines the decision path data.temporal.authz.decision"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAuthorizer(t)
			dir := t.TempDir()
			writeFiles(t, dir, files("good", true))
			src, err := source.NewFile(context.Background(), a, "custom", dir, source.Options{Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			before := a.Status()

			writeFiles(t, dir, tc.files)
			eventually(t, "the bad bundle to be rejected", func() bool { return src.Status().Failures > 0 })
			st := src.Status()
			for _, w := range tc.want {
				if !strings.Contains(st.LastError, w) {
					t.Errorf("Status.LastError %q does not mention %q", st.LastError, w)
				}
			}
			if st.OK || st.Revision != "good" || st.Activations != 1 || st.LastErrorAt.IsZero() {
				t.Errorf("status after a rejected bundle: %+v", st)
			}
			if after := a.Status(); after.Generation != before.Generation || after.Revisions["custom"] != "good" {
				t.Errorf("authorizer moved from generation %d to %d (revisions %v)", before.Generation, after.Generation, after.Revisions)
			}
			if got := outcome(a); got != "allow" {
				t.Errorf("after the bad bundle: %s, want the previous policy's allow", got)
			}

			// A fixed bundle is picked up again.
			_ = os.RemoveAll(filepath.Join(dir, "elsewhere"))
			writeFiles(t, dir, files("fixed", false))
			eventually(t, "the fixed bundle", func() bool { return src.Status().Revision == "fixed" })
			if got := outcome(a); got != "deny" {
				t.Errorf("after the fix: %s, want deny", got)
			}
			if st := src.Status(); !st.OK || st.Activations != 2 {
				t.Errorf("status after the fix: %+v", st)
			}
		})
	}
}

func TestNewFileReturnsFirstError(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) string
		want  string
		stage policy.Stage // of the *policy.ActivationError, if one is expected
	}{
		{name: "missing path", want: "no such file",
			setup: func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope.tar.gz") }},
		{name: "syntax error", want: "rules.rego:4",
			setup: func(t *testing.T) string {
				dir := t.TempDir()
				writeFiles(t, dir, map[string]string{".manifest": manifest("x"), "temporal/custom/rules.rego": "package temporal.custom\n\ndeny contains \"x\" if {\n"})
				return dir
			}},
		{name: "type error", want: "undefined ref: input.claim", stage: "compile",
			setup: func(t *testing.T) string {
				dir := t.TempDir()
				writeFiles(t, dir, map[string]string{".manifest": manifest("x"), "temporal/custom/rules.rego": "package temporal.custom\n\ndeny contains \"x\" if input.claim.subject == \"eve\"\n"})
				return dir
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAuthorizer(t)
			src, err := source.NewFile(context.Background(), a, "custom", tc.setup(t), source.Options{})
			if err == nil {
				src.Close()
				t.Fatal("NewFile succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
			var ae *policy.ActivationError
			if tc.stage != "" && (!errors.As(err, &ae) || ae.Stage != tc.stage) {
				t.Errorf("error %v: want a *policy.ActivationError at stage %s", err, tc.stage)
			}
			if got := outcome(a); got != "default" {
				t.Errorf("after a failed start: %s, want the default policy", got)
			}
		})
	}
}

// kubelet imitates how the kubelet updates a ConfigMap volume (AtomicWriter):
// the files go to a new timestamped directory, a ..data_tmp symlink to it is
// renamed over ..data, the top-level names are symlinks through ..data, and the
// previous directory is removed.
type kubelet struct {
	t     *testing.T
	mount string
	n     int
	prev  string
}

func (k *kubelet) update(fs map[string]string) {
	k.t.Helper()
	k.n++
	ts := fmt.Sprintf("..2026_11_23_08_00_%02d.%d", k.n, k.n)
	writeFiles(k.t, filepath.Join(k.mount, ts), fs)
	tmp := filepath.Join(k.mount, "..data_tmp")
	must(k.t, os.Symlink(ts, tmp))
	must(k.t, os.Rename(tmp, filepath.Join(k.mount, "..data")))
	for name := range fs {
		top := strings.SplitN(name, "/", 2)[0]
		link := filepath.Join(k.mount, top)
		if _, err := os.Lstat(link); errors.Is(err, os.ErrNotExist) {
			must(k.t, os.Symlink(filepath.Join("..data", top), link))
		}
	}
	if k.prev != "" {
		must(k.t, os.RemoveAll(filepath.Join(k.mount, k.prev)))
	}
	k.prev = ts
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestChangesArePickedUp(t *testing.T) {
	tests := []struct {
		name string
		// start lays out version 1 (allow) and returns the path to watch;
		// change returns a function that puts version 2 (deny) in its place.
		start func(t *testing.T) (path string, change func())
	}{
		{name: "ConfigMap volume as the bundle directory (..data symlink flip)", start: func(t *testing.T) (string, func()) {
			k := &kubelet{t: t, mount: t.TempDir()}
			k.update(files("v1", true))
			return k.mount, func() { k.update(files("v2", false)) }
		}},
		{name: "ConfigMap volume holding a tarball (..data symlink flip)", start: func(t *testing.T) (string, func()) {
			k := &kubelet{t: t, mount: t.TempDir()}
			k.update(map[string]string{"bundle.tar.gz": string(tarball(t, files("v1", true), "", ""))})
			return filepath.Join(k.mount, "bundle.tar.gz"), func() {
				k.update(map[string]string{"bundle.tar.gz": string(tarball(t, files("v2", false), "", ""))})
			}
		}},
		{name: "cp of a new tarball over the old one", start: func(t *testing.T) (string, func()) {
			path := filepath.Join(t.TempDir(), "bundle.tar.gz")
			must(t, os.WriteFile(path, tarball(t, files("v1", true), "", ""), 0o644))
			return path, func() { must(t, os.WriteFile(path, tarball(t, files("v2", false), "", ""), 0o644)) }
		}},
		{name: "tarball renamed over the old one", start: func(t *testing.T) (string, func()) {
			path := filepath.Join(t.TempDir(), "bundle.tar.gz")
			replaceFile(t, path, tarball(t, files("v1", true), "", ""))
			return path, func() { replaceFile(t, path, tarball(t, files("v2", false), "", "")) }
		}},
		{name: "editor save in a directory (temporary file renamed over)", start: func(t *testing.T) (string, func()) {
			dir := t.TempDir()
			writeFiles(t, dir, files("v1", true))
			return dir, func() {
				v2 := files("v2", false)
				replaceFile(t, filepath.Join(dir, "temporal/custom/rules.rego"), []byte(v2["temporal/custom/rules.rego"]))
				replaceFile(t, filepath.Join(dir, ".manifest"), []byte(v2[".manifest"]))
			}
		}},
		{name: "write in place in a directory", start: func(t *testing.T) (string, func()) {
			dir := t.TempDir()
			writeFiles(t, dir, files("v1", true))
			return dir, func() { writeFiles(t, dir, files("v2", false)) }
		}},
		{name: "policy in a new subdirectory", start: func(t *testing.T) (string, func()) {
			dir := t.TempDir()
			writeFiles(t, dir, files("v1", true))
			return dir, func() {
				writeFiles(t, dir, map[string]string{"temporal/custom/more/deny.rego": "package temporal.custom\n\ndeny contains \"frozen\" if input.target.namespace == \"payments\"\n"})
				writeFiles(t, dir, map[string]string{".manifest": manifest("v2")})
			}
		}},
		{name: "symlink to a versioned directory flipped", start: func(t *testing.T) (string, func()) {
			root := t.TempDir()
			writeFiles(t, filepath.Join(root, "releases/1"), files("v1", true))
			writeFiles(t, filepath.Join(root, "releases/2"), files("v2", false))
			link := filepath.Join(root, "current")
			must(t, os.Symlink("releases/1", link))
			return link, func() {
				must(t, os.Symlink("releases/2", link+".tmp"))
				must(t, os.Rename(link+".tmp", link))
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newAuthorizer(t)
			path, change := tc.start(t)
			src, err := source.NewFile(context.Background(), a, "custom", path, source.Options{Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if got, st := outcome(a), src.Status(); got != "allow" || st.Revision != "v1" {
				t.Fatalf("first version: %s, status %+v", got, st)
			}
			change()
			eventually(t, "revision v2", func() bool { return src.Status().Revision == "v2" })
			if got := outcome(a); got != "deny" {
				t.Errorf("after the change: %s, want deny", got)
			}
			if st := src.Status(); st.Failures != 0 || st.Activations != 2 || !st.OK {
				t.Errorf("status: %+v", st)
			}
		})
	}
}

func TestFileSourceRecoversWhenPathReappears(t *testing.T) {
	a := newAuthorizer(t)
	path := filepath.Join(t.TempDir(), "bundle.tar.gz")
	must(t, os.WriteFile(path, tarball(t, files("v1", true), "", ""), 0o644))
	src, err := source.NewFile(context.Background(), a, "custom", path, source.Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	must(t, os.Remove(path))
	eventually(t, "the removal to be reported", func() bool { return src.Status().Failures > 0 })
	if st := src.Status(); !strings.Contains(st.LastError, "no such file") || st.Revision != "v1" {
		t.Errorf("status after removal: %+v", st)
	}
	if got := outcome(a); got != "allow" {
		t.Errorf("after removal: %s, want the last good policy", got)
	}
	replaceFile(t, path, tarball(t, files("v2", false), "", ""))
	eventually(t, "revision v2", func() bool { return src.Status().Revision == "v2" })
	if got := outcome(a); got != "deny" {
		t.Errorf("after the path came back: %s", got)
	}
}
