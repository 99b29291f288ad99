package chaos_test

import (
	"errors"
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"

	"github.com/herald-notify/herald/internal/testutil/fleettest"
	"github.com/herald-notify/herald/internal/testutil/freeport"
)

// stopTimeout bounds a streamer's drain at the end (its grace is 1 s).
const stopTimeout = 30 * time.Second

// fleet is the channel's streamers, herald processes that a fault kills
// and starts again on the same ports: clients and publishers keep one list
// of addresses, as they would keep a Service's.
type fleet struct {
	binary, config string
	addrs          []fleettest.Addrs

	mu    sync.Mutex
	procs []*fleettest.Process // nil while killed
}

// startFleet starts n streamers on ports that a restart finds free
// (freeport.StableAddr).
func startFleet(binary, config string, n int) (*fleet, error) {
	f := &fleet{binary: binary, config: config, addrs: make([]fleettest.Addrs, n), procs: make([]*fleettest.Process, n)}
	for i := range n {
		listen, err := freeport.StableAddr()
		if err != nil {
			return f, err
		}
		metrics, err := freeport.StableAddr()
		if err != nil {
			return f, err
		}
		p, err := f.start(i, listen, metrics)
		if err != nil {
			return f, err
		}
		f.addrs[i] = p.Addrs
		f.procs[i] = p
	}
	return f, nil
}

func (f *fleet) start(i int, listen, metrics string) (*fleettest.Process, error) {
	return fleettest.StartProcess(fleettest.ProcessOptions{
		Binary: f.binary, Config: f.config, Listen: listen, MetricsListen: metrics,
		Logs: GinkgoWriter, Name: streamerName(i),
	})
}

func streamerName(i int) string { return fmt.Sprintf("s%d", i+1) }

func (f *fleet) size() int { return len(f.addrs) }

// api is streamer i's API base URL, whether it runs or not.
func (f *fleet) api(i int) string { return f.addrs[i].API }

// kill ends streamer i with SIGKILL.
func (f *fleet) kill(i int) error {
	f.mu.Lock()
	p := f.procs[i]
	f.procs[i] = nil
	f.mu.Unlock()
	if p == nil {
		return fmt.Errorf("streamer %s is not running", streamerName(i))
	}
	return p.Kill()
}

// restart starts streamer i again on its ports.
func (f *fleet) restart(i int) error {
	listen, metrics := f.addrs[i].HostPorts()
	p, err := f.start(i, listen, metrics)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.procs[i] = p
	return nil
}

// stop drains every running streamer, and fails if one did not exit
// cleanly (or, under -race, reported a race).
func (f *fleet) stop() error {
	f.mu.Lock()
	procs := append([]*fleettest.Process(nil), f.procs...)
	f.mu.Unlock()
	var errs []error
	for i, p := range procs {
		if p != nil {
			if err := p.Stop(stopTimeout); err != nil {
				errs = append(errs, fmt.Errorf("streamer %s: %w", streamerName(i), err))
			}
		}
	}
	return errors.Join(errs...)
}
