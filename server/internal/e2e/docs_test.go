package e2e

// TestDocs runs the commands of the documentation (README.md, docs/**/*.md)
// against a dev server, so that the docs cannot drift from the program.
//
// A fenced block takes part when its info string carries attributes in braces
// after the language (docs/contributing.md#tested-commands explains them to
// writers):
//
//	```sh {test}          run with bash (-e -o pipefail); it must exit 0
//	```sh {test exit=N}   the same, and it must exit N
//	```text {output}      what the tested block just above prints (stdout and
//	                      stderr): each line, in order, where "..." stands
//	                      for anything
//	```rego {file=PATH}   written to PATH (any language) when the test reaches it
//	```sh {server}        a start-dev command line: not run, as the test runs
//	                      one dev server for all the docs (below); the binary
//	                      parses its flags (with --help appended: exit 0)
//
// The blocks of one file run in order in one work directory shared by every
// file (README.md first, then docs/getting-started.md and docs/writing-policies.md, then the others in path order), each in its own bash whose
// variables the next block of the same file sees (assignments are exported
// and saved). The work directory holds the server's --policy bundle my-rule
// (a manifest only: getting-started writes its rules, which the server
// hot-reloads), links to ./temporal-opa, go.mod, go.sum, rego/ and bundles/
// of the checkout (so `go tool opa` and the example bundles work), and is a
// git repository (as a policy repository is); temporal-opa, temporal and opa
// (`go tool opa`) are on PATH. The dev server listens on free
// ports; the docs' default addresses (127.0.0.1:7233 frontend, :7243 HTTP
// API, :7253 status, :8233 Web UI, :9090 metrics) are replaced by its own in
// every block, TEMPORAL_ADDRESS is its frontend and TEMPORAL_OPA_STATE_DIR
// its state directory (tokens minted by the docs' commands are signed with
// its key). It runs as
//
//	temporal-opa start-dev --namespace payments --policy my-rule --decision-log decisions.jsonl --metrics-port PORT
//
// Then the Grafana dashboard and the Prometheus rules of server/deploy are
// checked against a scrape of that server's metrics: see
// checkDashboardSeries.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
)

// docBlock is a fenced block of a doc that takes part in TestDocs.
type docBlock struct {
	file string // relative to the repository
	line int    // of the opening fence
	lang string
	kind string // "test", "output", "file" or "server"
	exit int    // test: the expected exit status
	path string // file: where to write it
	text string
	want string // test: the output block that follows, if any
}

var docFence = regexp.MustCompile("^([ \\t]*)```([A-Za-z0-9_-]*)\\s*(?:\\{([^}]*)\\})?\\s*$")

// docBlocks extracts the blocks with attributes of one Markdown file.
func docBlocks(t *testing.T, root, rel string) []docBlock {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var out []docBlock
	for i := 0; i < len(lines); i++ {
		m := docFence.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		start, indent := i, m[1]
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, strings.TrimPrefix(lines[i], indent)) // a block in a list item is indented
		}
		if i == len(lines) {
			t.Fatalf("%s:%d: unclosed fence", rel, start+1)
		}
		if m[3] == "" {
			continue
		}
		b := docBlock{file: rel, line: start + 1, lang: m[2], text: strings.Join(body, "\n") + "\n"}
		for _, attr := range strings.Fields(m[3]) {
			k, v, _ := strings.Cut(attr, "=")
			switch k {
			case "test", "output", "server":
				b.kind = k
			case "file":
				b.kind, b.path = k, v
			case "exit":
				if b.exit, err = strconv.Atoi(v); err != nil {
					t.Fatalf("%s:%d: exit=%q: want a number", rel, b.line, v)
				}
			default:
				t.Fatalf("%s:%d: unknown attribute %q (test, exit=N, output, file=PATH, server)", rel, b.line, attr)
			}
		}
		if b.kind == "output" {
			if len(out) == 0 || out[len(out)-1].kind != "test" || out[len(out)-1].want != "" {
				t.Fatalf("%s:%d: an output block must follow a tested block", rel, b.line)
			}
			out[len(out)-1].want = b.text
			continue
		}
		out = append(out, b)
	}
	return out
}

// docFiles lists README.md and the Markdown files of docs/, relative to root.
func docFiles(t *testing.T, root string) []string {
	t.Helper()
	files := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, _ := filepath.Rel(root, p)
			files = append(files, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// getting-started and writing-policies first: they write the bundles
	// (my-rule, my-bundle) the other pages use.
	first := []string{"docs/getting-started.md", "docs/writing-policies.md"}
	slices.SortFunc(files[1:], func(a, b string) int {
		ia, ib := slices.Index(first, a), slices.Index(first, b)
		switch {
		case ia >= 0 && ib >= 0:
			return ia - ib
		case ia >= 0:
			return -1
		case ib >= 0:
			return 1
		}
		return strings.Compare(a, b)
	})
	return files
}

// matchOutput checks that every line of want appears in got, in order, "..."
// standing for anything; it returns the first line that does not.
func matchOutput(got, want string) (missing string, ok bool) {
	rest := got
	for _, line := range strings.Split(strings.TrimRight(want, "\n"), "\n") {
		if strings.TrimSpace(line) == "" || strings.TrimSpace(line) == "..." {
			continue
		}
		// Each line must be found within one line of the output, from where
		// the previous one ended.
		found := false
		for len(rest) > 0 && !found {
			outLine, after, _ := strings.Cut(rest, "\n")
			if lineMatches(outLine, line) {
				found = true
			}
			rest = after
		}
		if !found {
			return line, false
		}
	}
	return "", true
}

// lineMatches reports whether an output line matches a pattern line: the
// same words ("..." for anything), runs of spaces and tabs counting as one
// (tables are aligned to their content), indentation ignored.
func lineMatches(got, pattern string) bool {
	got = strings.Join(strings.Fields(got), " ")
	parts := strings.Split(pattern, "...")
	for i, p := range parts {
		// Keep a space next to "..." where the pattern has one.
		lead, trail := strings.HasPrefix(p, " ") || strings.HasPrefix(p, "\t"), strings.HasSuffix(p, " ") || strings.HasSuffix(p, "\t")
		p = strings.Join(strings.Fields(p), " ")
		if i > 0 && lead && p != "" {
			p = " " + p
		}
		if i < len(parts)-1 && trail && p != "" {
			p += " "
		}
		parts[i] = p
	}
	// The first part must start the line unless the pattern starts with "...".
	if !strings.HasPrefix(got, parts[0]) {
		return false
	}
	got = got[len(parts[0]):]
	for i, p := range parts[1:] {
		last := i == len(parts)-2
		if last {
			p = strings.TrimRight(p, " \t")
			if p == "" {
				return true
			}
			return strings.HasSuffix(got, p) && strings.Contains(got, p)
		}
		j := strings.Index(got, p)
		if j < 0 {
			return false
		}
		got = got[j+len(p):]
	}
	return strings.TrimSpace(got) == ""
}

func TestDocsOutputMatching(t *testing.T) {
	for _, c := range []struct {
		got, want string
		ok        bool
	}{
		{"a\nb\nc\n", "a\nc\n", true},
		{"a\nb\nc\n", "c\na\n", false},
		{"  \"allow\": false,\n", "\"allow\": false,\n", true},
		{"ok: the server activates bundle policy from x (revision)\n", "ok: the server...from x...\n", true},
		{"x 200\n", "200\n", false},
		{"200 x\n", "200\n", false},
		{"PASS (1ms)\n", "PASS...\n", true},
		{"a b c\n", "...b...\n", true},
		{"a b c\n", "...c\n", true},
		{"a b c\n", "...b\n", false},
		{"g-1  active    rita\n", "g-1 active rita\n", true},
		{"g-1  active    rita  ada\n", "g-1  active  ...ada\n", true},
		{"g-1  active (break glass)  rita\n", "g-1 active rita\n", false},
		{"abc\n", "ab ...\n", false},
	} {
		if _, ok := matchOutput(c.got, c.want); ok != c.ok {
			t.Errorf("matchOutput(%q, %q) = %v, want %v", c.got, c.want, ok, c.ok)
		}
	}
}

// TestDocs: see the top of this file.
func TestDocs(t *testing.T) {
	cliPath := temporalCLI(t)
	for _, tool := range []string{"bash", "curl", "jq", "git", "openssl"} { // the docs' commands use them
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed: the docs' commands need it (make deps installs it)", tool)
		}
	}
	root := repoRoot(t)
	bin := serverBinary(t, root)

	var blocks []docBlock
	for _, f := range docFiles(t, root) {
		blocks = append(blocks, docBlocks(t, root, f)...)
	}
	tested := 0
	for _, b := range blocks {
		if b.kind == "test" {
			tested++
		}
	}
	if tested < 20 {
		t.Fatalf("only %d tested blocks in the docs: the markers are not found", tested)
	}

	work := t.TempDir()
	binDir := filepath.Join(work, ".bin")
	state := filepath.Join(t.TempDir(), "state")
	must(t, os.MkdirAll(binDir, 0o755))
	must(t, os.MkdirAll(filepath.Join(work, "my-rule"), 0o755))
	must(t, os.WriteFile(filepath.Join(work, "my-rule", ".manifest"), []byte(`{"roots": ["temporal/custom/first"], "revision": "v0"}`), 0o644))
	// opa, as the docs' readers have it: OPA's own command, pinned in go.mod.
	must(t, os.WriteFile(filepath.Join(binDir, "opa"), []byte("#!/bin/sh\nexec go tool opa \"$@\"\n"), 0o755))
	for link, target := range map[string]string{
		filepath.Join(binDir, "temporal-opa"): bin,
		filepath.Join(binDir, "temporal"):     cliPath,
		filepath.Join(work, "temporal-opa"):   bin,
		filepath.Join(work, "go.mod"):         filepath.Join(root, "go.mod"),
		filepath.Join(work, "go.sum"):         filepath.Join(root, "go.sum"),
		filepath.Join(work, "rego"):           filepath.Join(root, "rego"),
		filepath.Join(work, "bundles"):        filepath.Join(root, "bundles"),
	} {
		must(t, os.Symlink(target, link))
	}

	ports := testutil.FreePorts(t, "127.0.0.1", 5)
	addr := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }
	replace := strings.NewReplacer(
		"127.0.0.1:7233", addr(ports[0]), "127.0.0.1:7243", addr(ports[1]), "127.0.0.1:7253", addr(ports[2]),
		"127.0.0.1:8233", addr(ports[3]), "127.0.0.1:9090", addr(ports[4]))
	env := []string{
		"PATH=" + binDir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + work,
		"TEMPORAL_ADDRESS=" + addr(ports[0]),
		"TEMPORAL_OPA_STATE_DIR=" + state,
		"LANG=C.UTF-8",
	}
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH", "GOFLAGS", "GOPROXY", "GOTOOLCHAIN", "CGO_ENABLED", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		} else if k == "GOCACHE" || k == "GOMODCACHE" {
			// HOME changes: keep the go command's caches where they are.
			out, err := exec.Command("go", "env", k).Output()
			if err == nil {
				env = append(env, k+"="+strings.TrimSpace(string(out)))
			}
		}
	}

	// The work directory is a git repository, as a policy repository is.
	git := exec.Command("sh", "-c", "git init -q && git -c user.name=docs -c user.email=docs@example.com commit -q --allow-empty -m docs")
	git.Dir, git.Env = work, env
	if out, err := git.CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}

	startDocsServer(t, bin, work, env, "start-dev", "--port", strconv.Itoa(ports[0]), "--http-port", strconv.Itoa(ports[1]),
		"--status-addr", addr(ports[2]), "--ui-port", strconv.Itoa(ports[3]), "--metrics-port", strconv.Itoa(ports[4]),
		"--namespace", "payments", "--policy", "my-rule", "--decision-log", "decisions.jsonl")

	began := time.Now()
	stateFiles := map[string]string{}
	for _, b := range blocks {
		where := fmt.Sprintf("%s:%d", b.file, b.line)
		switch b.kind {
		case "file":
			p := filepath.Join(work, b.path)
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
			must(t, os.WriteFile(p, []byte(b.text), 0o644))
		case "server":
			checkServerBlock(t, where, b.text, work, env)
		case "test":
			sf, ok := stateFiles[b.file]
			if !ok {
				sf = filepath.Join(t.TempDir(), "vars")
				stateFiles[b.file] = sf
			}
			script := "set -a\n[ -f " + shellQuote(sf) + " ] && . " + shellQuote(sf) + "\n" +
				"trap 'export -p | grep -v -e \" PWD=\" -e \" OLDPWD=\" -e \" SHLVL=\" -e \" _=\" > " + shellQuote(sf) + "' EXIT\n" +
				replace.Replace(b.text)
			// A block takes seconds; the bound allows a first `go tool opa`
			// that compiles OPA (without make's GOFLAGS the build cache may
			// not have it).
			ctx, cancel := context.WithTimeout(context.Background(), blockTimeout)
			cmd := exec.CommandContext(ctx, "bash", "-e", "-o", "pipefail", "-c", script)
			cmd.Dir, cmd.Env = work, env
			// On timeout, kill the block's whole process group (a curl or
			// sleep of a loop would keep the output open), and stop waiting
			// for the output soon after.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
			cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
			cmd.WaitDelay = 5 * time.Second
			blockStart := time.Now()
			out, err := cmd.CombinedOutput()
			timedOut := ctx.Err() != nil
			cancel()
			if d := time.Since(blockStart); d > 10*time.Second {
				t.Logf("%s took %s", where, d.Round(time.Millisecond))
			}
			if timedOut {
				t.Errorf("%s: did not end within %s\n--- block:\n%s--- output:\n%s", where, blockTimeout, b.text, out)
				continue
			}
			code := cmd.ProcessState.ExitCode()
			if err != nil && code < 0 {
				t.Errorf("%s: %v\n%s\n--- output:\n%s", where, err, b.text, out)
				continue
			}
			if code != b.exit {
				t.Errorf("%s: exit status %d, want %d\n--- block:\n%s--- output:\n%s", where, code, b.exit, b.text, out)
				continue
			}
			if b.want != "" {
				if line, ok := matchOutput(string(out), replace.Replace(b.want)); !ok {
					t.Errorf("%s: the output has no line %q (after the lines before it)\n--- block:\n%s--- output:\n%s", where, line, b.text, out)
				}
			}
		}
	}
	t.Logf("%d tested blocks of %d files in %s", tested, len(stateFiles), time.Since(began).Round(time.Millisecond))

	checkDashboardSeries(t, root, "http://"+addr(ports[4])+"/metrics")
}

// blockTimeout bounds one tested block of the docs.
const blockTimeout = 3 * time.Minute

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// checkServerBlock has the binary parse the start-dev command line of a
// {server} block: one command, "temporal-opa start-dev ..." or
// "./temporal-opa start-dev ...", perhaps with a trailing "&" and comment.
func checkServerBlock(t *testing.T, where, text, work string, env []string) {
	t.Helper()
	var cmdLines []string
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			cmdLines = append(cmdLines, l)
		}
	}
	if len(cmdLines) != 1 {
		t.Errorf("%s: a server block holds one start-dev command line, not %d lines", where, len(cmdLines))
		return
	}
	line, _, _ := strings.Cut(cmdLines[0], " #")
	line = strings.TrimSuffix(strings.TrimSpace(line), "&")
	words := strings.Fields(line)
	if len(words) < 2 || (words[0] != "temporal-opa" && words[0] != "./temporal-opa") || words[1] != "start-dev" {
		t.Errorf("%s: a server block runs temporal-opa start-dev, not %q", where, line)
		return
	}
	cmd := exec.Command("bash", "-c", "temporal-opa start-dev "+strings.Join(words[2:], " ")+" --help")
	cmd.Dir, cmd.Env = work, env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("%s: %s: %v\n%s", where, line, err, out)
	}
}

// startDocsServer runs the binary with args in dir and returns once it is
// ready; it is stopped at the end of the test.
func startDocsServer(t *testing.T, bin, dir string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env = dir, env
	runStartDev(t, cmd)
}
