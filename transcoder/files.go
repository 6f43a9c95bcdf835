package transcoder

import (
	"container/list"
	"sync"
)

// files is the registry of opened file versions, bounded: past max, the
// least recently used that nothing is using are forgotten (their probe,
// keyframes and plans stay on disk, so opening one again is cheap).
type files struct {
	max int

	mu    sync.Mutex // a leaf
	byKey map[string]*list.Element
	lru   *list.List // of *media, most recently used at the front
}

func newFiles(max int) *files {
	return &files{max: max, byKey: map[string]*list.Element{}, lru: list.New()}
}

// acquire returns the media of key, pinned, or nil when none is registered.
// The caller releases it.
func (r *files) acquire(key string) *media {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.byKey[key]
	if !ok {
		return nil
	}
	m := e.Value.(*media)
	m.pins.Add(1) // cannot be retired meanwhile: retire runs under r.mu
	r.lru.MoveToFront(e)
	return m
}

// add registers m, unless a media of its key already is, and forgets the
// least recently used idle ones while there are more than max.
func (r *files) add(m *media) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.byKey[m.key]; !ok {
		r.byKey[m.key] = r.lru.PushFront(m)
	}
	r.trimLocked()
}

// trim forgets idle media over max; the janitor calls it, since media
// become idle long after they were added.
func (r *files) trim() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trimLocked()
}

func (r *files) trimLocked() {
	for e := r.lru.Back(); e != nil && r.lru.Len() > r.max; {
		prev := e.Prev()
		if old := e.Value.(*media); old.retire() {
			r.lru.Remove(e)
			delete(r.byKey, old.key)
		}
		e = prev
	}
}

// snapshot lists the registered media.
func (r *files) snapshot() []*media {
	r.mu.Lock()
	defer r.mu.Unlock()
	ms := make([]*media, 0, r.lru.Len())
	for e := r.lru.Front(); e != nil; e = e.Next() {
		ms = append(ms, e.Value.(*media))
	}
	return ms
}
