package devkey

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// A key file that group or others may access, or a state directory they may
// write, is refused with the path, the mode and the chmod that fixes it;
// private ones are used.
func TestRefusesKeysOpenToOthers(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no Unix mode bits")
	}
	k, err := Generate()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name             string
		dirMode, keyMode os.FileMode // 0: no key file
		want             string      // "" = loads; else the error, %s = the dir or file
	}{
		{"private dir and key", 0o700, 0o600, ""},
		{"owner read-only key", 0o700, 0o400, ""},
		{"key readable by others", 0o700, 0o604, "signing key %s is accessible by group or others (mode 0604): anyone who reads it can mint tokens this server accepts; run chmod 600 %s"},
		{"key readable by group", 0o700, 0o640, "signing key %s is accessible by group or others (mode 0640)"},
		{"key writable by group", 0o700, 0o620, "signing key %s is accessible by group or others (mode 0620)"},
		{"dir others may list: the key's mode protects it", 0o755, 0o600, ""},
		{"group-writable dir", 0o770, 0o600, "state directory %s is writable by group or others (mode 0770): it holds the dev signing key, which whoever can write the directory can replace; run chmod 700 %s, or choose another with --state-dir"},
		{"world-writable dir", 0o757, 0o600, "state directory %s is writable by group or others (mode 0757)"},
		{"world-writable dir without a key yet", 0o777, 0, "state directory %s is writable by group or others (mode 0777)"},
		{"private dir without a key yet", 0o700, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "state")
			if err := os.Mkdir(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(dir, KeyFileName)
			if tc.keyMode != 0 {
				if err := k.Save(file); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(file, tc.keyMode); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(dir, tc.dirMode); err != nil {
				t.Fatal(err)
			}
			got, created, err := LoadOrCreate(dir)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("LoadOrCreate: %v", err)
				}
				if created != (tc.keyMode == 0) || tc.keyMode != 0 && got.KeyID() != k.KeyID() {
					t.Errorf("created %v, key %s; want the saved key %s", created, got.KeyID(), k.KeyID())
				}
				return
			}
			path := file
			if strings.HasPrefix(tc.want, "state directory") {
				path = dir
			}
			want := strings.ReplaceAll(tc.want, "%s", path)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("LoadOrCreate: error %v, want %q", err, want)
			}
			if _, err := os.Stat(file); tc.keyMode == 0 && err == nil {
				t.Error("a key was created in a directory that was refused")
			}
			if strings.HasPrefix(tc.want, "signing key") {
				// Load (token --key, keys serve --key) refuses it the same way.
				if _, err := Load(file); err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("Load: error %v, want %q", err, want)
				}
			}
		})
	}
}
