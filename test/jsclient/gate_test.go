package jsclient_test

import "sync"

// gate holds back whoever waits on it while it is shut: the front's reads
// while stalled, the origin's ticket requests while held.
type gate struct {
	mu   sync.Mutex
	shut chan struct{} // closed on open; nil while open
}

// close shuts the gate.
func (g *gate) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut == nil {
		g.shut = make(chan struct{})
	}
}

// open lets every waiter through.
func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.shut != nil {
		close(g.shut)
		g.shut = nil
	}
}

// closed is a channel that closes when the gate opens, nil while open.
func (g *gate) closed() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.shut
}
