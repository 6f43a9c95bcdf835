package transcoder

import (
	"container/list"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
)

// segmentCache owns the disk budget of the media segments and their
// least-recently-used order. A segment is the unit of eviction: a viewer
// watching one film for two hours must not push the cache past its budget,
// and evicting a whole variant would take the segments right ahead of them.
//
// Victims are chosen under mu; their files are removed after it is
// released. A variant learns that its segment is gone through forget, called
// with no cache lock held.
type segmentCache struct {
	budget int64
	log    *zap.Logger
	obs    Observer
	// kick wakes the janitor when an addition takes the cache over budget,
	// so eviction follows at once rather than at the next tick.
	kick chan struct{}

	// pinBudget bounds the bytes of prepared segments kept from eviction.
	pinBudget int64

	mu    sync.Mutex // a leaf: nothing is locked or called while it is held
	items map[string]*list.Element
	lru   *list.List // of *cacheItem, most recently used at the front
	bytes int64
	// pins are prepared segments, out of the LRU order: never evicted.
	// They count in bytes, so the budget left to the others shrinks.
	pins   map[string]*cacheItem
	pinned int64
}

// evictGrace is how long a segment just made or sent is safe from
// eviction: long enough for the requests it wakes to open it. Without it, a
// segment larger than the whole budget would be evicted as soon as it was
// made, every time, and its request never served.
const evictGrace = time.Second

// holder is what the cache needs of a segment's owner (a variant): to be
// told that segment n is evicted, before its file goes. It returns the
// path to remove, the file moved aside, or "" when it was already gone.
type holder interface {
	forget(n int, path string) string
}

// cacheItem is one segment file on disk.
type cacheItem struct {
	path  string
	size  int64
	used  time.Time
	owner holder // nil for a segment an earlier run left, until a variant claims it
	n     int
}

func newSegmentCache(budget, pinBudget int64, log *zap.Logger, obs Observer) *segmentCache {
	return &segmentCache{budget: budget, pinBudget: pinBudget, log: log, obs: obs, kick: make(chan struct{}, 1),
		items: map[string]*list.Element{}, lru: list.New(), pins: map[string]*cacheItem{}}
}

// add records a segment file as most recently used; an existing record of
// the same path is replaced (a segment made again, or claimed by its
// variant). With pin, it is kept from eviction while the pinned segments
// fit the pin budget; beyond it, it is an ordinary segment.
func (c *segmentCache) add(path string, size int64, owner holder, n int, pin bool) {
	c.mu.Lock()
	if it, ok := c.pins[path]; ok {
		c.bytes += size - it.size
		c.pinned += size - it.size
		it.size, it.owner, it.n, it.used = size, owner, n, time.Now()
	} else if pin && c.pinned+size <= c.pinBudget {
		if e, ok := c.items[path]; ok {
			c.bytes -= e.Value.(*cacheItem).size
			c.lru.Remove(e)
			delete(c.items, path)
		}
		c.pins[path] = &cacheItem{path: path, size: size, used: time.Now(), owner: owner, n: n}
		c.bytes += size
		c.pinned += size
	} else if e, ok := c.items[path]; ok {
		it := e.Value.(*cacheItem)
		c.bytes += size - it.size
		it.size, it.owner, it.n, it.used = size, owner, n, time.Now()
		c.lru.MoveToFront(e)
	} else {
		c.items[path] = c.lru.PushFront(&cacheItem{path: path, size: size, used: time.Now(), owner: owner, n: n})
		c.bytes += size
	}
	sum, over := c.bytes, c.bytes > c.budget
	c.mu.Unlock()
	c.obs.CacheBytes(sum)
	if over {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// claim gives a segment found on disk its variant, leaving its place in
// the LRU order as it was.
func (c *segmentCache) claim(path string, owner holder, n int) {
	c.mu.Lock()
	if it, ok := c.pins[path]; ok {
		it.owner, it.n = owner, n
	}
	if e, ok := c.items[path]; ok {
		it := e.Value.(*cacheItem)
		it.owner, it.n = owner, n
	}
	c.mu.Unlock()
}

// pin keeps a segment already in the cache from eviction, within the pin
// budget (prepared rungs found again after a restart).
func (c *segmentCache) pin(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[path]
	if !ok {
		return
	}
	it := e.Value.(*cacheItem)
	if c.pinned+it.size > c.pinBudget {
		return
	}
	c.lru.Remove(e)
	delete(c.items, path)
	c.pins[path] = it
	c.pinned += it.size
}

// touch marks a segment as just used.
func (c *segmentCache) touch(path string) {
	c.mu.Lock()
	if e, ok := c.items[path]; ok {
		e.Value.(*cacheItem).used = time.Now()
		c.lru.MoveToFront(e)
	}
	c.mu.Unlock()
}

// size is the bytes the cache accounts for now.
func (c *segmentCache) size() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// evict removes least recently used segments until the cache is within its
// budget, or only segments used within evictGrace are left, and returns how
// many it removed.
func (c *segmentCache) evict() int {
	var victims []*cacheItem
	c.mu.Lock()
	for c.bytes > c.budget {
		e := c.lru.Back()
		if e == nil {
			break
		}
		it := e.Value.(*cacheItem)
		if time.Since(it.used) < evictGrace {
			break // and so is everything in front of it
		}
		c.lru.Remove(e)
		delete(c.items, it.path)
		c.bytes -= it.size
		victims = append(victims, it)
	}
	sum := c.bytes
	c.mu.Unlock()
	if len(victims) == 0 {
		return 0
	}
	var freed int64
	for _, it := range victims {
		path := it.path
		if it.owner != nil {
			// The variant stops offering it before the file goes, and moves
			// it aside, so that unlinking it here can never remove a copy
			// the variant makes again meanwhile.
			path = it.owner.forget(it.n, it.path)
		}
		if path != "" {
			os.Remove(path)
		}
		freed += it.size
	}
	c.obs.CacheBytes(sum)
	c.obs.CacheEvicted(len(victims), freed)
	c.log.Debug("cache eviction", zap.Int("segments", len(victims)), zap.Int64("bytes", freed), zap.Int64("cache bytes", sum))
	return len(victims)
}

// load accounts the segments an earlier run left under root, oldest first,
// so that they are evicted before anything this run makes. Work directories
// of runs that were killed are removed, and so are directories left with no
// segment at all.
func (c *segmentCache) load(root string) {
	type found struct {
		path string
		size int64
		mod  time.Time
		n    int
	}
	var all []found
	files, _ := os.ReadDir(root)
	for _, f := range files {
		fdir := filepath.Join(root, f.Name())
		vdirs, _ := os.ReadDir(fdir)
		for _, vd := range vdirs {
			dir := filepath.Join(fdir, vd.Name())
			entries, _ := os.ReadDir(dir)
			segments := 0
			for _, x := range entries {
				name := x.Name()
				if strings.HasPrefix(name, "run-") || strings.HasPrefix(name, ".tmp-") {
					os.RemoveAll(filepath.Join(dir, name))
					continue
				}
				n, ok := segmentNumber(name)
				if vd.Name() == downloadDir {
					n, ok = 0, strings.HasSuffix(name, ".mp4")
				}
				fi, err := x.Info()
				if !ok || err != nil || !fi.Mode().IsRegular() {
					continue
				}
				all = append(all, found{filepath.Join(dir, name), fi.Size(), fi.ModTime(), n})
				segments++
			}
			if segments == 0 {
				os.RemoveAll(dir)
			}
		}
		os.Remove(fdir) // only when empty
	}
	// Oldest first, so the newest ends up at the front.
	slices.SortFunc(all, func(a, b found) int { return a.mod.Compare(b.mod) })
	// Not used by this run: no grace (a zero used time), and no variant yet.
	c.mu.Lock()
	for _, f := range all {
		c.items[f.path] = c.lru.PushFront(&cacheItem{path: f.path, size: f.size, n: f.n})
		c.bytes += f.size
	}
	sum, over := c.bytes, c.bytes > c.budget
	c.mu.Unlock()
	c.obs.CacheBytes(sum)
	if over {
		select {
		case c.kick <- struct{}{}: // the janitor evicts as soon as it starts
		default:
		}
	}
}

// segmentNumber reads n from "segment-n.m4s".
func segmentNumber(name string) (int, bool) {
	if !strings.HasPrefix(name, "segment-") || !strings.HasSuffix(name, ".m4s") {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, "segment-"), ".m4s"))
	return n, err == nil && n >= 0
}
