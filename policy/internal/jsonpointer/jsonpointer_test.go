package jsonpointer

import "testing"

func TestEscapeUnescape(t *testing.T) {
	for _, tc := range []struct {
		name, token, escaped string
	}{
		{"plain", "memo", "memo"},
		{"empty", "", ""},
		{"slash", "a/b", "a~1b"},
		{"tilde", "a~b", "a~0b"},
		{"tilde then one", "~1", "~01"},
		{"tilde then zero", "~0", "~00"},
		{"both", "/~", "~1~0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Escape(tc.token); got != tc.escaped {
				t.Errorf("Escape(%q) = %q, want %q", tc.token, got, tc.escaped)
			}
			if got := Unescape(tc.escaped); got != tc.token {
				t.Errorf("Unescape(%q) = %q, want %q", tc.escaped, got, tc.token)
			}
		})
	}
}
