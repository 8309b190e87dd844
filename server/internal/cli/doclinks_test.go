package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// TestDocLinks checks every relative link of README.md and docs/**/*.md: the
// file or directory it names exists, and its #anchor is a heading of the
// Markdown page it points to (GitHub's anchors). Links in fenced blocks and
// inline code are not links; http(s) and mailto links are not checked.
func TestDocLinks(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	pages := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".md") {
			rel, _ := filepath.Rel(root, p)
			pages = append(pages, rel)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 10 {
		t.Fatalf("%d pages found", len(pages))
	}
	anchors := map[string]map[string]bool{} // page -> anchors, read on demand
	anchorsOf := func(page string) map[string]bool {
		if a, ok := anchors[page]; ok {
			return a
		}
		data, err := os.ReadFile(filepath.Join(root, page))
		if err != nil {
			t.Fatal(err)
		}
		anchors[page] = headingAnchors(string(data))
		return anchors[page]
	}
	links := 0
	for _, page := range pages {
		data, err := os.ReadFile(filepath.Join(root, page))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range markdownLinks(string(data)) {
			target := l.target
			if strings.HasPrefix(target, "http://") || strings.HasPrefix(target, "https://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			links++
			path, anchor, _ := strings.Cut(target, "#")
			dest := page
			if path != "" {
				dest = filepath.Join(filepath.Dir(page), path)
				if _, err := os.Stat(filepath.Join(root, dest)); err != nil {
					t.Errorf("%s:%d: link %q: %s does not exist", page, l.line, target, dest)
					continue
				}
			}
			if anchor == "" {
				continue
			}
			if !strings.HasSuffix(dest, ".md") {
				t.Errorf("%s:%d: link %q: an anchor in a file that is not Markdown", page, l.line, target)
				continue
			}
			if !anchorsOf(dest)[anchor] {
				t.Errorf("%s:%d: link %q: %s has no heading with the anchor #%s", page, l.line, target, dest, anchor)
			}
		}
	}
	if links < 100 {
		t.Errorf("only %d relative links found: the extractor misses them", links)
	}
}

type mdLink struct {
	line   int
	target string
}

var (
	mdLinkRe   = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdCodeSpan = regexp.MustCompile("`[^`]*`")
)

// markdownLinks returns the targets of the inline links of a Markdown page,
// outside fenced blocks and code spans.
func markdownLinks(text string) []mdLink {
	var out []mdLink
	fence := false
	for i, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fence = !fence
			continue
		}
		if fence {
			continue
		}
		line = mdCodeSpan.ReplaceAllStringFunc(line, func(s string) string {
			// [`text`](target): keep the link, drop other code.
			return strings.Repeat("x", len(s))
		})
		for _, m := range mdLinkRe.FindAllStringSubmatch(line, -1) {
			out = append(out, mdLink{line: i + 1, target: m[1]})
		}
	}
	return out
}

// headingAnchors returns GitHub's anchors of a page's headings: lower case,
// punctuation dropped, spaces as dashes, "-1", "-2"... for repeats.
func headingAnchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	fence := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fence = !fence
			continue
		}
		if fence || !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimLeft(line, "#")
		if !strings.HasPrefix(h, " ") {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(strings.TrimSpace(h)) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n, ok := seen[a]; ok {
			seen[a] = n + 1
			a += "-" + itoa(n+1)
		} else {
			seen[a] = 0
		}
		out[a] = true
	}
	return out
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var d []byte
	for ; n > 0; n /= 10 {
		d = append([]byte{byte('0' + n%10)}, d...)
	}
	return string(d)
}

func TestHeadingAnchors(t *testing.T) {
	a := headingAnchors("# Web UI\n## The authz file (`--authz FILE`)\n### Several issuers: `jwt.issuers`\n## 5. Hot-reload it\n```\n# not a heading\n```\n## Web UI\n")
	for _, want := range []string{"web-ui", "the-authz-file---authz-file", "several-issuers-jwtissuers", "5-hot-reload-it", "web-ui-1"} {
		if !a[want] {
			t.Errorf("no anchor %q in %v", want, a)
		}
	}
	if a["not-a-heading"] {
		t.Errorf("a comment in a fenced block is a heading: %v", a)
	}
}
