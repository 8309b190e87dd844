package policy

import "sync"

// cacheKey identifies one call for the decision cache.
type cacheKey struct {
	principal string
	api       string
	namespace string
	nexus     string
}

// decisionCache holds the decisions of one policy generation. It is bounded: when
// full it is emptied, which keeps the hot set of a steady workload at the cost of
// one burst of re-evaluations.
type decisionCache struct {
	mu   sync.RWMutex
	max  int
	data map[cacheKey]decided
}

func newDecisionCache(max int) *decisionCache {
	return &decisionCache{max: max, data: make(map[cacheKey]decided)}
}

func (c *decisionCache) get(k cacheKey) (decided, bool) {
	c.mu.RLock()
	d, ok := c.data[k]
	c.mu.RUnlock()
	return d, ok
}

func (c *decisionCache) put(k cacheKey, d decided) {
	c.mu.Lock()
	if len(c.data) >= c.max {
		clear(c.data)
	}
	c.data[k] = d
	c.mu.Unlock()
}
