package presence

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/herald-notify/herald/streamer/hub"
)

// heartbeat is the value of a replica's heartbeat key, for people reading
// the bucket: replicas compare revisions, not these times.
type heartbeat struct {
	Replica string    `json:"replica"`
	At      time.Time `json:"at"`
}

// beat writes this replica's heartbeat.
func (p *Presence) beat(ctx context.Context) error {
	data, _ := json.Marshal(heartbeat{Replica: p.self, At: time.Now().UTC()})
	_, err := p.kv.Put(ctx, p.selfKey, data)
	return err
}

// heartbeats writes the heartbeat every Heartbeat until Close.
func (p *Presence) heartbeats() {
	ticker := time.NewTicker(p.opts.Heartbeat)
	defer ticker.Stop()
	failing := false
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-ticker.C:
		}
		ctx, cancel := context.WithTimeout(p.ctx, p.opts.RequestTimeout)
		err := p.beat(ctx)
		cancel()
		switch {
		case err != nil && p.ctx.Err() == nil:
			p.metrics.failures.WithLabelValues(opHeartbeat).Inc()
			if !failing {
				p.logger.Warn("failed to write the replica's heartbeat; after the TTL the other replicas stop counting its streams",
					"ttl", p.opts.TTL.String(), "error", err.Error())
			}
			failing = true
		case err == nil && failing:
			p.logger.Info("the replica's heartbeat is written again")
			failing = false
		}
	}
}

// watchHeartbeats records when each replica's heartbeat changes, closing
// known once the current ones were delivered. It returns when the watcher
// stops (Close).
func (p *Presence) watchHeartbeats(w jetstream.KeyWatcher, known chan struct{}) {
	stop := context.AfterFunc(p.ctx, func() { _ = w.Stop() })
	defer stop()
	// Read to the end: the watcher blocks its connection's delivery on it.
	for e := range w.Updates() {
		if e == nil {
			if known != nil {
				close(known)
				known = nil
			}
			continue
		}
		p.mu.Lock()
		if e.Operation() == jetstream.KeyValuePut {
			p.replicas[e.Key()] = heartbeatSeen{rev: e.Revision(), at: time.Now()}
		} else {
			delete(p.replicas, e.Key()) // a replica that stopped cleanly
		}
		p.metrics.replicas.Set(float64(len(p.replicas)))
		p.mu.Unlock()
	}
}

// alive reports whether replica's streams still count: its heartbeat changed
// within TTL, as seen here. One that looks older is checked against the
// bucket (this replica's watcher may be behind); if it is still the same
// revision, the replica is dead and its stale heartbeat is removed. An
// unanswered check counts the replica alive: the record then errs on the
// side of the limit.
func (p *Presence) alive(ctx context.Context, replica string) bool {
	key := replicaKey(replica)
	p.mu.Lock()
	seen, known := p.replicas[key]
	p.mu.Unlock()
	if known && time.Since(seen.at) < p.opts.TTL {
		return true
	}
	e, err := p.kv.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false
	case err != nil:
		return true
	case !known || e.Revision() != seen.rev:
		p.mu.Lock()
		if cur, ok := p.replicas[key]; !ok || cur.rev < e.Revision() {
			p.replicas[key] = heartbeatSeen{rev: e.Revision(), at: time.Now()}
		}
		p.mu.Unlock()
		return true
	}
	// Only if it did not beat meanwhile.
	_ = p.kv.Delete(ctx, key, jetstream.LastRevision(e.Revision()))
	return false
}

// watchUsers closes the local streams that admissions on other replicas
// replaced: those a newer revision of their user's record no longer lists.
// It returns when the watcher stops (Close).
func (p *Presence) watchUsers(w jetstream.KeyWatcher) {
	stop := context.AfterFunc(p.ctx, func() { _ = w.Stop() })
	defer stop()
	for e := range w.Updates() {
		if e == nil {
			continue
		}
		var r record
		if e.Operation() == jetstream.KeyValuePut {
			r, _ = decodeRecord(e.Value()) // unreadable: lists none of ours
		}
		if user, gone := p.observe(e.Key(), e.Revision(), r); len(gone) > 0 {
			p.closeReplaced(user, gone)
		}
	}
}

// observe records revision rev of the record at key, and returns the local
// streams it no longer lists that were admitted before it.
func (p *Presence) observe(key string, rev uint64, r record) (user string, gone []hub.StreamID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.users[key]
	if st == nil {
		return "", nil
	}
	own := map[hub.StreamID]bool{}
	for _, e := range r.Streams {
		if e.Replica == p.self {
			own[e.Stream] = true
		}
	}
	st.seenRev, st.seenOwn = rev, own
	for id, admittedAt := range st.held {
		if rev > admittedAt && !own[id] {
			delete(st.held, id)
			gone = append(gone, id)
		}
	}
	if st.idle() {
		delete(p.users, key)
	}
	return st.user, gone
}

// releaser removes the streams that ended from their users' records, until
// Close. A key it could not write stays dirty (which signals wake again) and
// is tried after releaseRetryDelay.
func (p *Presence) releaser() {
	backoff := time.NewTimer(releaseRetryDelay)
	defer backoff.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.wake:
		}
		p.mu.Lock()
		keys := maps.Clone(p.dirty)
		clear(p.dirty)
		p.mu.Unlock()
		failed := false
		for key := range keys {
			err := p.release(key)
			if err == nil {
				continue
			}
			if p.ctx.Err() != nil {
				return
			}
			p.metrics.failures.WithLabelValues(opRelease).Inc()
			p.logger.Debug("failed to release streams in the presence record; retrying", "key", key, "error", err.Error())
			p.mu.Lock()
			p.markDirtyLocked(key)
			p.mu.Unlock()
			failed = true
		}
		if failed {
			backoff.Reset(releaseRetryDelay)
			select {
			case <-p.ctx.Done():
				return
			case <-backoff.C:
			}
		}
	}
}

// release rewrites the record at key without this replica's streams that it
// no longer holds.
func (p *Presence) release(key string) error {
	ctx, cancel := context.WithTimeout(p.ctx, p.opts.RequestTimeout)
	defer cancel()
	live := p.liveness(ctx, key)
	for range maxAttempts {
		current, rev, err := p.read(ctx, key)
		if err != nil || rev == 0 {
			return err
		}
		kept := make([]entry, 0, len(current.Streams))
		for _, e := range current.Streams {
			if e.Replica != p.self || live(e) {
				kept = append(kept, e)
			}
		}
		if len(kept) == len(current.Streams) {
			return nil
		}
		_, err = p.write(ctx, key, record{Streams: kept}, rev)
		if !isConflict(err) {
			return err
		}
	}
	return errContended
}
