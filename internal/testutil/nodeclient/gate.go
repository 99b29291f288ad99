package nodeclient

import "sync"

// Gate holds back whoever waits on it while it is shut: a front's reads or
// requests that a spec holds until a point of its choosing, whatever the
// timing of the client. Its zero value is open.
type Gate struct {
	mu   sync.Mutex
	shut chan struct{} // closed on Open; nil while open
}

// Shut makes later waiters wait until Open.
func (g *Gate) Shut() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut == nil {
		g.shut = make(chan struct{})
	}
}

// Open lets every waiter through.
func (g *Gate) Open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut != nil {
		close(g.shut)
		g.shut = nil
	}
}

// Opening is a channel that closes when the gate opens, nil while it is
// open.
func (g *Gate) Opening() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.shut
}
