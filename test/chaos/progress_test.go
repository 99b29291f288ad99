package chaos_test

import "sync"

// progress counts the notifications accepted so far, so that faults strike
// at a share of the run rather than after a guessed time.
type progress struct {
	total int

	mu      sync.Mutex
	done    int
	waiters []waiter
}

type waiter struct {
	at int
	ch chan struct{}
}

func newProgress(total int) *progress { return &progress{total: total} }

// add counts one accepted notification.
func (p *progress) add() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	kept := p.waiters[:0]
	for _, w := range p.waiters {
		if p.done >= w.at {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	p.waiters = kept
}

// count is how many were accepted.
func (p *progress) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

// reached is closed once the share (0-1) of all notifications is accepted.
func (p *progress) reached(share float64) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	w := waiter{at: int(share * float64(p.total)), ch: make(chan struct{})}
	if p.done >= w.at {
		close(w.ch)
	} else {
		p.waiters = append(p.waiters, w)
	}
	return w.ch
}
