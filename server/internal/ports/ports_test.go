package ports

import (
	"net"
	"slices"
	"testing"
)

func TestCheck(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	free, err := FreeLow("127.0.0.1", 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name            string
		ip              string
		port            int
		inUse, notLocal bool
		ok              bool
	}{
		{name: "free", ip: "127.0.0.1", port: free[0], ok: true},
		{name: "in use", ip: "127.0.0.1", port: busyPort, inUse: true},
		{name: "not an address of this machine", ip: "192.0.2.1", port: free[0], notLocal: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.ip, tc.port)
			if (err == nil) != tc.ok || InUse(err) != tc.inUse || NotLocal(err) != tc.notLocal {
				t.Errorf("Check(%s, %d) = %v (in use: %v, not local: %v), want ok %v, in use %v, not local %v",
					tc.ip, tc.port, err, InUse(err), NotLocal(err), tc.ok, tc.inUse, tc.notLocal)
			}
		})
	}
}

func TestFreeLow(t *testing.T) {
	got, err := FreeLow("127.0.0.1", 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 20 || len(slices.Compact(slices.Sorted(slices.Values(got)))) != 20 {
		t.Fatalf("FreeLow(20) = %v, want 20 distinct ports", got)
	}
	for _, p := range got {
		if p < LowMin || p > LowMax {
			t.Errorf("port %d outside [%d, %d]", p, LowMin, LowMax)
		}
		if err := Check("127.0.0.1", p); err != nil {
			t.Errorf("port %d: %v", p, err)
		}
	}
}
