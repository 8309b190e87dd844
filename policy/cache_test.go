package policy

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// TestDecisionCacheBounds: the cache stays within its entries and bytes, keeps
// the entries in use while one-off keys stream through (CLOCK), and refuses keys
// longer than maxKeyBytes.
func TestDecisionCacheBounds(t *testing.T) {
	tests := []struct {
		name           string
		entries, bytes int
		keyLen, reason int
		wantMaxEntries int
	}{
		{"entries bound", 160, 1 << 30, 40, 0, 160},
		{"bytes bound", 1 << 20, 16 * 20 * (200 + 100 + entryOverhead), 200, 100, 16 * 20},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newDecisionCache(tc.entries, tc.bytes)
			hot := []string{"hot-a", "hot-b", "hot-c"}
			for _, k := range hot {
				c.put(k, decided{allow: true})
			}
			for i := range 20000 {
				k := fmt.Sprintf("%0*d", tc.keyLen, i)
				c.put(k, decided{reason: strings.Repeat("r", tc.reason)})
				if i%10 == 0 {
					for _, h := range hot { // in use: hit between one-offs
						if _, ok := c.get([]byte(h)); !ok && i > 0 {
							t.Fatalf("hot entry %s evicted after %d one-off keys", h, i)
						}
					}
				}
			}
			entries, bytes := c.stats()
			if entries > tc.wantMaxEntries+16 || bytes > tc.bytes || entries < tc.wantMaxEntries/2 {
				t.Fatalf("%d entries, %d bytes; want about %d entries, at most %d bytes", entries, bytes, tc.wantMaxEntries, tc.bytes)
			}
		})
	}
	c := newDecisionCache(100, 1<<20)
	long := strings.Repeat("k", maxKeyBytes+1)
	c.put(long, decided{allow: true})
	if _, ok := c.get([]byte(long)); ok {
		t.Error("a key longer than maxKeyBytes was cached")
	}
}

// TestDecisionCacheConcurrent runs gets and puts from many goroutines (for -race).
func TestDecisionCacheConcurrent(t *testing.T) {
	c := newDecisionCache(64, 1<<20)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5000 {
				k := fmt.Sprintf("k-%d", (i*7+g)%200)
				if d, ok := c.get([]byte(k)); ok && d.reason != k {
					t.Errorf("key %s holds the decision of %s", k, d.reason)
					return
				}
				c.put(k, decided{reason: k})
			}
		}()
	}
	wg.Wait()
	if entries, _ := c.stats(); entries > 64+16 {
		t.Fatalf("%d entries", entries)
	}
}
