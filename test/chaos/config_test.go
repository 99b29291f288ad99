package chaos_test

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// config sizes a run. The defaults fit "make test" on a small machine; a
// longer run sets the environment (see the package documentation).
type config struct {
	// users each hold one stream; each notification goes to 1-3 of them.
	users int
	// notifications are published in all, spread over publishers, each of
	// which numbers its own so that their order can be checked per user.
	notifications int
	publishers    int
	// seed makes the plan (recipients), the replicas picked and the
	// streamer killed repeatable; it is printed in the report.
	seed int64
	// timeout bounds the run: publishing, faults, and delivery after.
	timeout time.Duration
}

// Environment variables that size a run, and their defaults.
const (
	envUsers         = "HERALD_CHAOS_USERS"
	envNotifications = "HERALD_CHAOS_NOTIFICATIONS"
	envPublishers    = "HERALD_CHAOS_PUBLISHERS"
	envSeed          = "HERALD_CHAOS_SEED"
	envTimeout       = "HERALD_CHAOS_TIMEOUT"

	defaultUsers         = 200
	defaultNotifications = 10000
	defaultPublishers    = 8
	defaultTimeout       = 8 * time.Minute
)

// loadConfig reads the environment. It is called when the spec tree is
// built, since the spec's timeout comes from it.
func loadConfig() (config, error) {
	cfg := config{seed: time.Now().UnixNano()}
	var err error
	if cfg.users, err = intFromEnv(envUsers, defaultUsers, 3); err != nil {
		return cfg, err
	}
	if cfg.notifications, err = intFromEnv(envNotifications, defaultNotifications, 1); err != nil {
		return cfg, err
	}
	if cfg.publishers, err = intFromEnv(envPublishers, defaultPublishers, 1); err != nil {
		return cfg, err
	}
	if raw := os.Getenv(envSeed); raw != "" {
		if cfg.seed, err = strconv.ParseInt(raw, 10, 64); err != nil {
			return cfg, fmt.Errorf("%s=%q: not an integer", envSeed, raw)
		}
	}
	cfg.timeout = defaultTimeout
	if raw := os.Getenv(envTimeout); raw != "" {
		if cfg.timeout, err = time.ParseDuration(raw); err != nil || cfg.timeout <= 0 {
			return cfg, fmt.Errorf("%s=%q: not a positive duration", envTimeout, raw)
		}
	}
	return cfg, nil
}

// intFromEnv is the integer in the environment variable name, at least
// least, or otherwise when it is unset.
func intFromEnv(name string, otherwise, least int) (int, error) {
	raw := os.Getenv(name)
	if raw == "" {
		return otherwise, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < least {
		return 0, fmt.Errorf("%s=%q: want an integer of at least %d", name, raw, least)
	}
	return n, nil
}
