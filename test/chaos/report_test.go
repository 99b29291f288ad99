package chaos_test

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// stats count what happened during a run, for its report.
type stats struct {
	// Publishing.
	accepted    atomic.Int64 // 202s: one per notification
	attempts    atomic.Int64 // requests
	retried     atomic.Int64 // notifications that took more than one request
	unavailable atomic.Int64 // 503s
	lost        atomic.Int64 // requests without an answer (the event may be stored)
	// Streams.
	reconnects   atomic.Int64 // streams opened after a user's first
	refused      atomic.Int64 // stream requests answered other than 200
	unreachable  atomic.Int64 // stream requests without an answer
	duplicates   atomic.Int64 // copies of a notification under a second id
	notifyEvents atomic.Int64 // notification events received, copies included
}

// problems collects what the goroutines of a run found wrong: they cannot
// fail the spec themselves. The first few are kept for the failure message.
type problems struct {
	mu    sync.Mutex
	first []string
	count int
}

const problemsKept = 20

func (p *problems) add(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.count++
	if len(p.first) < problemsKept {
		p.first = append(p.first, err.Error())
	}
}

func (p *problems) any() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.count > 0
}

func (p *problems) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.count == 0 {
		return "none"
	}
	return fmt.Sprintf("%d problem(s), the first %d:\n  %s", p.count, len(p.first), strings.Join(p.first, "\n  "))
}

// timeline records when each fault happened, relative to the run's start.
type timeline struct {
	start time.Time
	mu    sync.Mutex
	lines []string
}

func (t *timeline) add(format string, args ...any) string {
	line := fmt.Sprintf("%7.2fs  ", time.Since(t.start).Seconds()) + fmt.Sprintf(format, args...)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	return line
}

func (t *timeline) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n  ")
}

// report is the run's summary; delivered is 0 when not everything arrived.
func report(cfg config, s *stats, t *timeline, wall time.Duration, delivered time.Duration) string {
	after := "then not every notification arrived"
	if delivered > 0 {
		after = fmt.Sprintf("then %s until every notification had arrived", delivered.Round(time.Millisecond))
	}
	return fmt.Sprintf(`chaos run (seed %d): %d users, %d notifications by %d publishers
  published (202): %d in %d requests; retried notifications: %d; 503s: %d; requests without an answer: %d
  streams: %d reconnects, %d refused, %d unanswered; notification events received: %d, of which extra copies of a notification (duplicates): %d
  wall time: %s of publishing and faults, %s
  faults:
  %s`,
		cfg.seed, cfg.users, cfg.notifications, cfg.publishers,
		s.accepted.Load(), s.attempts.Load(), s.retried.Load(), s.unavailable.Load(), s.lost.Load(),
		s.reconnects.Load(), s.refused.Load(), s.unreachable.Load(), s.notifyEvents.Load(), s.duplicates.Load(),
		wall.Round(time.Millisecond), after, t)
}
