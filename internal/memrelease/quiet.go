package memrelease

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/util/wait"
)

// QuietOptions configure WhenQuiet. Zero values are the defaults.
type QuietOptions struct {
	// Check is how often the process is looked at; 0 means 1 s.
	Check time.Duration
	// QuietBytes is what a quiet process allocates at most between two
	// checks; 0 means 1 MiB.
	QuietBytes uint64
	// MinBytes is the least worth giving back, of the free heap and of
	// the executable's pages mapped again since the last release; 0 means
	// 2 MiB.
	MinBytes uint64
	// Registry receives the metrics; nil registers none.
	Registry prometheus.Registerer
	// Logger receives a failure to release; nil means slog.Default().
	Logger *slog.Logger
}

// WhenQuiet gives memory back each time the process goes quiet after it
// grew, until ctx ends. A burst of work (events to many streams, a storm of
// connections) grows the heap, and the Go runtime keeps the free part for the
// next cycle, returning it to the kernel only slowly; serving a metrics scrape
// or a profile maps executable pages again. Once a check finds that the
// process allocated less than QuietBytes since the last one, it returns the
// free heap (debug.FreeOSMemory: a garbage collection first) when at least
// MinBytes of it is held, and unmaps the executable's read-only pages
// (Release) when at least MinBytes of them were mapped again. A busy process
// is left alone: its heap is in use, and collecting it more often would cost
// CPU for memory it takes back at once.
func WhenQuiet(ctx context.Context, opts QuietOptions) {
	opts = opts.withDefaults()
	q := newQuiet(opts)
	wait.UntilWithContext(ctx, func(context.Context) { q.check() }, opts.Check)
}

func (o QuietOptions) withDefaults() QuietOptions {
	if o.Check <= 0 {
		o.Check = time.Second
	}
	if o.QuietBytes == 0 {
		o.QuietBytes = 1 << 20
	}
	if o.MinBytes == 0 {
		o.MinBytes = 2 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Runtime metrics a check reads.
const (
	metricAllocs   = "/gc/heap/allocs:bytes"
	metricHeapFree = "/memory/classes/heap/free:bytes" // free, not yet returned
)

type quiet struct {
	opts    QuietOptions
	samples []metrics.Sample
	// allocs is the bytes allocated up to the last check.
	allocs uint64
	// fileBase is the executable's resident bytes after the last release.
	fileBase uint64

	releases *prometheus.CounterVec
	released prometheus.Counter
}

func newQuiet(opts QuietOptions) *quiet {
	q := &quiet{
		opts:    opts,
		samples: []metrics.Sample{{Name: metricAllocs}, {Name: metricHeapFree}},
		releases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_memory_releases_total",
			Help: "Times the process gave memory back to the kernel once quiet after it grew, by what: heap (the free heap, after a garbage collection) or executable (pages of the binary mapped again since, by a metrics scrape or a profile).",
		}, []string{"what"}),
		released: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "herald_memory_released_bytes_total",
			Help: "Resident memory the process gave back to the kernel once quiet (the fall of its RSS).",
		}),
	}
	if opts.Registry != nil {
		opts.Registry.MustRegister(q.releases, q.released)
	}
	metrics.Read(q.samples)
	q.allocs = q.samples[0].Value.Uint64()
	q.fileBase, _ = residentFile()
	return q
}

// check releases memory if the process is quiet and holds enough to give
// back.
func (q *quiet) check() {
	metrics.Read(q.samples)
	allocs, heapFree := q.samples[0].Value.Uint64(), q.samples[1].Value.Uint64()
	allocated := allocs - q.allocs
	q.allocs = allocs
	if allocated >= q.opts.QuietBytes {
		return
	}
	file, _ := residentFile()
	releaseHeap := heapFree >= q.opts.MinBytes
	releaseFile := file >= q.fileBase+q.opts.MinBytes
	if !releaseHeap && !releaseFile {
		return
	}
	before, _ := resident()
	if releaseHeap {
		debug.FreeOSMemory()
		q.releases.WithLabelValues("heap").Inc()
	}
	if releaseFile {
		if err := releaseExecutable(); err != nil {
			q.opts.Logger.Warn("could not give back the executable's pages", "error", err.Error())
		}
		q.releases.WithLabelValues("executable").Inc()
	}
	after, _ := resident()
	if before > after {
		q.released.Add(float64(before - after))
	}
	q.fileBase, _ = residentFile()
	// What the release itself allocated is not the process's work.
	metrics.Read(q.samples)
	q.allocs = q.samples[0].Value.Uint64()
}

// resident and residentFile are the process's resident bytes (VmRSS) and
// those mapped from files (RssFile), from /proc/self/status; 0 and false
// where there is none.
func resident() (uint64, bool)     { return statusBytes("VmRSS:") }
func residentFile() (uint64, bool) { return statusBytes("RssFile:") }

func statusBytes(field string) (uint64, bool) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	i := bytes.Index(status, []byte(field))
	if i < 0 {
		return 0, false
	}
	line := status[i+len(field):]
	if end := bytes.IndexByte(line, '\n'); end >= 0 {
		line = line[:end]
	}
	kib, err := strconv.ParseUint(string(bytes.TrimSuffix(bytes.TrimSpace(line), []byte(" kB"))), 10, 64)
	if err != nil {
		return 0, false
	}
	return kib << 10, true
}
