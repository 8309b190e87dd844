package cli

import (
	"fmt"
	"slices"
	"strings"
)

// EnvPrefix is the prefix of temporal-opa's own environment variables.
const EnvPrefix = "TEMPORAL_OPA_"

// EnvStateDir is the variable that sets the default --state-dir.
const EnvStateDir = "TEMPORAL_OPA_STATE_DIR"

// EnvVars are the TEMPORAL_OPA_* variables a user may set, with what each is for.
var EnvVars = []struct{ Name, Use string }{
	{EnvAuthzFile, "--authz of start"},
	{EnvStateDir, "the default --state-dir"},
	{"TEMPORAL_OPA_ADMIN_TOKEN", "not read: the shell variable start-dev's banner exports for the CLI"},
}

// envTestVars are the prefixes of the variables this repository's own tests
// and benchmarks read (TEMPORAL_OPA_BIN, TEMPORAL_OPA_BENCH_DURATION,
// TEMPORAL_OPA_E2E_LOG, ...): CI sets them in the environment of the binary too.
var envTestVars = []string{"TEMPORAL_OPA_BIN", "TEMPORAL_OPA_BENCH_", "TEMPORAL_OPA_E2E_", "TEMPORAL_OPA_BROWSER_"}

// checkEnv refuses a TEMPORAL_OPA_* variable that is set but unknown: the
// commands that read such variables would silently ignore a misspelt one
// (TEMPORAL_OPA_AUTHZ_FLIE) and run with other settings than the user meant.
func checkEnv(env Env) error {
	if env.Environ == nil {
		return nil
	}
	var unknown []string
	for _, kv := range env.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) || knownEnv(name) {
			continue
		}
		unknown = append(unknown, name)
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	var known []string
	for _, v := range EnvVars {
		known = append(known, v.Name+" ("+v.Use+")")
	}
	what := "environment variable " + unknown[0] + " is"
	if len(unknown) > 1 {
		what = "environment variables " + strings.Join(unknown, ", ") + " are"
	}
	hint := ""
	if s := closestEnv(unknown[0]); s != "" {
		hint = " (did you mean " + s + "?)"
	}
	var tests []string
	for _, p := range envTestVars {
		if strings.HasSuffix(p, "_") {
			p += "*"
		}
		tests = append(tests, p)
	}
	return fmt.Errorf("%s set but not known to %s%s: unset or rename it; the variables it knows are %s, and those of its own tests (%s)",
		what, Program, hint, strings.Join(known, ", "), strings.Join(tests, ", "))
}

func knownEnv(name string) bool {
	for _, v := range EnvVars {
		if v.Name == name {
			return true
		}
	}
	for _, p := range envTestVars {
		if name == p || strings.HasSuffix(p, "_") && strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// closestEnv is the known variable nearest to name, when it is a likely typo.
func closestEnv(name string) string {
	best, bestDist := "", 4
	for _, v := range EnvVars {
		if d := EditDistance(name, v.Name); d < bestDist {
			best, bestDist = v.Name, d
		}
	}
	return best
}

// EditDistance is the Levenshtein distance of a and b (bytes): how far a
// mistyped name is from a known one, for "did you mean" suggestions.
func EditDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
