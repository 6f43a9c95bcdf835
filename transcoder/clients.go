package transcoder

import (
	"sync"
	"time"
)

// clientTTL is how long a player that sent nothing is remembered.
const clientTTL = time.Hour

// clients remembers where each player that sends a clientId last read, to
// release the heads it left behind and to start an init where it plays.
type clients struct {
	mu sync.Mutex // a leaf: variants are released after it is unlocked
	by map[string]*client
}

// client is what hlsd remembers of one player.
type client struct {
	seen time.Time
	at   map[string]clientPos // by kind: the player reads audio and video at once
}

type clientPos struct {
	v *variant
	n int
}

func newClients() *clients { return &clients{by: map[string]*client{}} }

// track notices a player that moved (new quality, another file, or a seek)
// and releases the heads it no longer needs.
func (cs *clients) track(id string, v *variant, n int) {
	if id == "" {
		return
	}
	cs.mu.Lock()
	c := cs.by[id]
	if c == nil {
		c = &client{at: map[string]clientPos{}}
		cs.by[id] = c
	}
	prev, had := c.at[v.kind]
	c.at[v.kind] = clientPos{v: v, n: n}
	c.seen = time.Now()
	cs.mu.Unlock()
	switch {
	case !had:
	case prev.v != v:
		prev.v.release(id, -1)
	case n < prev.n || n > prev.n+v.lookahead():
		prev.v.release(id, n)
	}
}

// position is where the client last read file m, to start an init head
// there rather than at 0 when it switches quality or track.
func (cs *clients) position(id string, m *media) int {
	if id == "" {
		return 0
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if c := cs.by[id]; c != nil {
		for _, kind := range []string{"video", "audio"} {
			if p, ok := c.at[kind]; ok && p.v.m.key == m.key {
				return p.n
			}
		}
	}
	return 0
}

// prune forgets the players not seen for clientTTL.
func (cs *clients) prune() {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for id, c := range cs.by {
		if time.Since(c.seen) > clientTTL {
			delete(cs.by, id)
		}
	}
}
