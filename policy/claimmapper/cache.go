package claimmapper

import (
	"maps"
	"sync"
	"time"

	"go.temporal.io/server/common/authorization"
)

// verified is the outcome of verifying one token, shared by every request that
// presents the same token while it is cached. It is never modified after creation.
type verified struct {
	subject    string
	system     authorization.Role
	namespaces map[string]authorization.Role
	token      *Token
	aud        []string
	audOK      bool      // aud absent, a string or an array of strings
	expires    time.Time // exp; zero when the token has none (then it is not cached)
	gen        uint64    // key set generation it was verified with
}

// claims returns a fresh *Claims (callers may modify it) sharing the Extensions value.
func (v *verified) claims() *authorization.Claims {
	return &authorization.Claims{
		Subject:    v.subject,
		System:     v.system,
		Namespaces: maps.Clone(v.namespaces),
		Extensions: v.token,
		AuthType:   authTypeJWT,
	}
}

func (v *verified) hasAudience(a string) bool {
	if !v.audOK {
		return false
	}
	for _, x := range v.aud {
		if x == a {
			return true
		}
	}
	return false
}

const cacheShards = 16

// tokenCache maps the SHA-256 of a token to its verification outcome: a sharded LRU of
// bounded size whose entries are used only before the token's exp and only with the key
// set generation they were verified with.
type tokenCache struct {
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu    sync.Mutex
	limit int // entries
	bytes int // held
	max   int // bytes
	items map[[32]byte]*cacheNode
	head  cacheNode // sentinel: head.next is the most recently used
}

type cacheNode struct {
	key        [32]byte
	size       int
	v          *verified
	prev, next *cacheNode
}

// nodeOverhead is what a cached token costs besides its claims: the node, the
// map entry, the verified outcome and its roles.
const nodeOverhead = 512

func newTokenCache(size, bytes int) *tokenCache {
	if size <= 0 {
		return nil
	}
	c := &tokenCache{}
	per := (size + cacheShards - 1) / cacheShards
	for i := range c.shards {
		s := &c.shards[i]
		s.limit = per
		s.max = max(1, bytes/cacheShards)
		s.items = make(map[[32]byte]*cacheNode)
		s.head.next, s.head.prev = &s.head, &s.head
	}
	return c
}

func (c *tokenCache) shard(k *[32]byte) *cacheShard { return &c.shards[k[0]%cacheShards] }

func (c *tokenCache) get(k *[32]byte, now time.Time, gen uint64) *verified {
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := s.items[*k]
	if !ok {
		return nil
	}
	if n.v.gen != gen || !now.Before(n.v.expires) {
		s.remove(n)
		return nil
	}
	s.unlink(n)
	s.pushFront(n)
	return n.v
}

// put caches v, the outcome of a token of tokenLen bytes (its decoded claims
// are counted as twice that).
func (c *tokenCache) put(k *[32]byte, v *verified, tokenLen int) {
	size := 2*tokenLen + nodeOverhead
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if size > s.max {
		return
	}
	if n, ok := s.items[*k]; ok {
		s.bytes += size - n.size
		n.v, n.size = v, size
		s.unlink(n)
		s.pushFront(n)
		return
	}
	for len(s.items) >= s.limit || s.bytes+size > s.max {
		s.remove(s.head.prev)
	}
	n := &cacheNode{key: *k, v: v, size: size}
	s.items[*k] = n
	s.bytes += size
	s.pushFront(n)
}

func (c *tokenCache) clear() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		clear(s.items)
		s.bytes = 0
		s.head.next, s.head.prev = &s.head, &s.head
		s.mu.Unlock()
	}
}

func (c *tokenCache) len() int {
	total, _ := c.stats()
	return total
}

// stats returns the entries and bytes held.
func (c *tokenCache) stats() (entries, bytes int) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		entries += len(s.items)
		bytes += s.bytes
		s.mu.Unlock()
	}
	return entries, bytes
}

func (s *cacheShard) remove(n *cacheNode) {
	s.bytes -= n.size
	s.unlink(n)
	delete(s.items, n.key)
}

func (s *cacheShard) unlink(n *cacheNode) {
	n.prev.next, n.next.prev = n.next, n.prev
	n.prev, n.next = nil, nil
}

func (s *cacheShard) pushFront(n *cacheNode) {
	n.prev, n.next = &s.head, s.head.next
	s.head.next.prev = n
	s.head.next = n
}
