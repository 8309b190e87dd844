package policy

import (
	"hash/maphash"
	"sync"
	"sync/atomic"

	"github.com/temporal-opa/temporal-opa/policy/internal/projection"
)

// Cache bounds: decisionCache.put refuses keys longer than maxKeyBytes (such a
// call is decided without the cache), and counts every entry as its key, its
// reason and entryOverhead bytes (map entry, slot, string headers).
const (
	maxKeyBytes   = projection.MaxKeyBytes
	entryOverhead = 112
	grantOverhead = 48 // a Grant: three string headers
	cacheShards   = 16
)

// decisionCache holds the decisions of one policy generation, by a key of every
// value the policy reads. It is bounded in entries and in bytes, split in shards
// (each with its own lock) so that both cores decide at once, and evicts with
// CLOCK: a hit marks its entry, and eviction passes over marked entries once
// (clearing the mark) before taking an unmarked one, so the entries in use stay
// while one-off calls come and go.
type decisionCache struct {
	seed   maphash.Seed
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu         sync.RWMutex
	index      map[string]int32 // key to slot
	slots      []cacheSlot
	hand       int
	bytes      int
	maxEntries int
	maxBytes   int
}

type cacheSlot struct {
	key  string
	d    decided
	size int
	used atomic.Bool // hit since the hand last passed
}

func newDecisionCache(maxEntries, maxBytes int) *decisionCache {
	c := &decisionCache{seed: maphash.MakeSeed()}
	perEntries := max(1, (maxEntries+cacheShards-1)/cacheShards)
	perBytes := max(1, maxBytes/cacheShards)
	for i := range c.shards {
		s := &c.shards[i]
		s.index = make(map[string]int32)
		s.maxEntries, s.maxBytes = perEntries, perBytes
	}
	return c
}

func (c *decisionCache) get(k []byte) (decided, bool) {
	s := &c.shards[maphash.Bytes(c.seed, k)%cacheShards]
	s.mu.RLock()
	i, ok := s.index[string(k)]
	if !ok {
		s.mu.RUnlock()
		return decided{}, false
	}
	sl := &s.slots[i]
	d := sl.d
	if !sl.used.Load() {
		sl.used.Store(true)
	}
	s.mu.RUnlock()
	return d, true
}

func (c *decisionCache) put(k string, d decided) {
	size := len(k) + len(d.reason) + entryOverhead
	for _, g := range d.granted {
		size += len(g.Role) + len(g.Namespace) + len(g.Rule) + grantOverhead
	}
	if len(k) > maxKeyBytes {
		return
	}
	s := &c.shards[maphash.String(c.seed, k)%cacheShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	if size > s.maxBytes {
		return
	}
	if i, ok := s.index[k]; ok {
		sl := &s.slots[i]
		s.bytes += size - sl.size
		sl.d, sl.size = d, size
		return
	}
	// Evict until the entry fits; a freed slot is reused.
	free := -1
	for len(s.index) >= s.maxEntries || s.bytes+size > s.maxBytes {
		free = s.evict()
	}
	if free < 0 {
		if len(s.slots) < s.maxEntries {
			s.slots = append(s.slots, cacheSlot{})
			free = len(s.slots) - 1
		} else {
			free = s.evict()
		}
	}
	sl := &s.slots[free]
	sl.key, sl.d, sl.size = k, d, size
	sl.used.Store(false)
	s.index[k] = int32(free)
	s.bytes += size
}

// evict empties the next unmarked slot under the hand and returns it.
func (s *cacheShard) evict() int {
	for {
		if s.hand >= len(s.slots) {
			s.hand = 0
		}
		i := s.hand
		s.hand++
		sl := &s.slots[i]
		if sl.key == "" && sl.size == 0 {
			return i // already free
		}
		if sl.used.Load() {
			sl.used.Store(false)
			continue
		}
		delete(s.index, sl.key)
		s.bytes -= sl.size
		*sl = cacheSlot{}
		return i
	}
}

// stats returns the entries and bytes held.
func (c *decisionCache) stats() (entries, bytes int) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		entries += len(s.index)
		bytes += s.bytes
		s.mu.RUnlock()
	}
	return entries, bytes
}
