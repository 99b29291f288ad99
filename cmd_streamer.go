package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/client/config"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/announce"
	"github.com/herald-notify/herald/streamer/auth"
	"github.com/herald-notify/herald/streamer/channelspec"
	"github.com/herald-notify/herald/streamer/kube"
	"github.com/herald-notify/herald/streamer/server"
)

// HTTP hardening of the streamer's listeners.
const (
	readHeaderTimeout = 10 * time.Second
	// maxHeaderBytes leaves room for a token in a header or cookie
	// (auth.DefaultMaxTokenBytes) and little else.
	maxHeaderBytes = 32 << 10
	idleTimeout    = 2 * time.Minute
)

// streamerFlags are the command line of "herald streamer".
type streamerFlags struct {
	config        string
	channel       string
	secretsDir    string
	listen        string
	metricsListen string
	logLevel      string
	pprof         bool
}

func runStreamer(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("streamer", flag.ContinueOnError)
	var f streamerFlags
	fs.StringVar(&f.config, "config", "", "NotificationChannel manifest to serve, outside Kubernetes")
	fs.StringVar(&f.channel, "channel", "", "NAMESPACE/NAME of the NotificationChannel to serve, read from the API (KUBECONFIG, or in-cluster)")
	fs.StringVar(&f.secretsDir, "secrets-dir", "", "directory with one folder per Secret the channel names, one file per entry, as Kubernetes mounts them (default: \"secrets\" beside --config)")
	fs.StringVar(&f.listen, "listen", ":8080", "address of the stream and publish API")
	fs.StringVar(&f.metricsListen, "metrics-listen", ":9090", "address of /metrics, /healthz and /readyz")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&f.pprof, "pprof", false, "also serve the Go runtime profiles (net/http/pprof) under /debug/pprof/ on the metrics address; for benchmarks and investigations, not for an address others can reach")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	if (f.config == "") == (f.channel == "") {
		return fmt.Errorf("%w: give exactly one of --config FILE or --channel NAMESPACE/NAME", errUsage)
	}
	if f.channel != "" {
		if _, err := kube.ParseChannelRef(f.channel); err != nil {
			return fmt.Errorf("%w: --channel: %v", errUsage, err)
		}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return fmt.Errorf("%w: --log-level must be debug, info, warn or error, not %q", errUsage, f.logLevel)
	}
	if f.secretsDir == "" && f.config != "" {
		f.secretsDir = filepath.Join(filepath.Dir(f.config), "secrets")
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serveStreamer(ctx, f, logger)
}

// channelSource is where a streamer's channel and keys come from: a file and
// a secrets folder, or the Kubernetes API.
type channelSource struct {
	channel *notifyv1alpha1.NotificationChannel
	keys    *auth.KeySet
	// watch, when set, keeps the server's keys and settings current until
	// ctx ends.
	watch func(ctx context.Context, srv *server.Server) error
	// announcer, when set, announces the channel's SystemEvents.
	announcer *announce.Announcer
	// publishers, when set, authorizes publishers by ServiceAccount token.
	publishers *kube.PublisherReviewer
}

// loadFromFile reads the channel manifest and its key Secret's folder.
func loadFromFile(ctx context.Context, f streamerFlags) (*channelSource, error) {
	channel, err := channelspec.LoadFile(ctx, f.config)
	if err != nil {
		return nil, err
	}
	secretName := channel.Spec.Auth.KeySecretRef.Name
	entries, err := readSecretDir(filepath.Join(f.secretsDir, secretName))
	if err != nil {
		return nil, fmt.Errorf("failed to read the key Secret %q named by spec.auth.keySecretRef: %w", secretName, err)
	}
	keys, err := auth.ParseKeys(channel.Spec.Auth.Algorithms, entries)
	if err != nil {
		return nil, fmt.Errorf("the key Secret %q holds no usable keys: %w", secretName, err)
	}
	return &channelSource{channel: channel, keys: keys}, nil
}

// loadFromAPI reads the channel and its key Secret from the API, and watches
// both so that rotated keys and changed settings apply without dropping
// streams.
func loadFromAPI(ctx context.Context, f streamerFlags, logger *slog.Logger) (*channelSource, error) {
	ref, err := kube.ParseChannelRef(f.channel)
	if err != nil {
		return nil, err
	}
	cfg, err := ctrlconfig.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("failed to find the Kubernetes API (KUBECONFIG or in-cluster): %w", err)
	}
	scheme := runtime.NewScheme()
	if err := notifyv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	channel, err := kube.LoadChannel(ctx, c, ref)
	if err != nil {
		return nil, err
	}
	clientset, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	var srv atomic.Pointer[server.Server]
	watcher := kube.NewKeyWatcher(clientset, channel, func(k *auth.KeySet) {
		if s := srv.Load(); s != nil {
			s.SetKeys(k)
		}
	}, logger)
	keys, err := watcher.LoadKeys(ctx)
	if err != nil {
		// A missing or broken Secret is a condition on the channel that a
		// person fixes; meanwhile the pod stays alive and unready rather
		// than exit into a crash loop.
		logger.Error("waiting for the key Secret; not ready until it holds usable keys", "error", err.Error())
		if keys, err = watcher.WaitForKeys(ctx); err != nil {
			return nil, err
		}
		logger.Info("key Secret usable", "keys", keys.KeyIDs())
	}
	channelWatcher := kube.NewChannelWatcher(c, channel, watcher, func(spec notifyv1alpha1.NotificationChannelSpec, k *auth.KeySet) error {
		return srv.Load().SetSpec(spec, k)
	}, logger)
	announcer := announce.New(announce.Options{
		Channel: channel.Name, Status: kube.SystemEventStatus{Client: c}, Logger: logger,
	})
	publishers := kube.NewPublisherReviewer(clientset, channel)
	return &channelSource{channel: channel, keys: keys, announcer: announcer, publishers: publishers, watch: func(ctx context.Context, s *server.Server) error {
		srv.Store(s)
		go announcer.Run(ctx, s.EventLog())
		go func() {
			if err := kube.WatchSystemEvents(ctx, cfg, channel.Namespace, announcer, logger); err != nil {
				logger.Error("the SystemEvent watch failed; no announcements until a restart", "error", err.Error())
			}
		}()
		channelWatch := make(chan error, 1)
		go func() { channelWatch <- channelWatcher.Run(ctx) }()
		return errors.Join(watcher.Run(ctx), <-channelWatch)
	}}, nil
}

// serveStreamer runs the streamer until ctx ends, then drains it.
func serveStreamer(ctx context.Context, f streamerFlags, logger *slog.Logger) error {
	// The metrics address answers first: alive, not ready, while the channel
	// and its keys load (which may mean waiting for the key Secret).
	opsHandler := &switchHandler{}
	opsHandler.set(startingHandler())
	ops, err := listen(f.metricsListen, opsHandler)
	if err != nil {
		return err
	}
	logger.Info("metrics listening", "metricsListen", ops.addr)
	var source *channelSource
	if f.channel != "" {
		source, err = loadFromAPI(ctx, f, logger)
	} else {
		source, err = loadFromFile(ctx, f)
	}
	if err != nil {
		_ = ops.server.Close()
		if ctx.Err() != nil {
			return nil // stopped while waiting
		}
		return err
	}
	channel := source.channel
	keys := source.keys
	cfg := server.Config{Channel: channel, Keys: keys, Logger: logger}
	if source.announcer != nil {
		cfg.Announcements = source.announcer
	}
	if source.publishers != nil {
		cfg.ServiceAccountPublishers = source.publishers
	}
	srv, err := server.New(cfg)
	if err != nil {
		_ = ops.server.Close()
		return err
	}

	api, err := listen(f.listen, srv.Handler())
	if err != nil {
		_ = ops.server.Close()
		return err
	}
	serverOps := srv.OpsHandler()
	if f.pprof {
		serverOps = withPprof(serverOps)
	}
	opsHandler.set(serverOps)
	logger.Info("streamer started", "channel", channel.Name, "listen", api.addr, "metricsListen", ops.addr, "keys", keys.KeyIDs())

	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	go srv.Run(runCtx)
	if source.watch != nil {
		go func() {
			if err := source.watch(runCtx, srv); err != nil {
				logger.Error("the watch of the channel or its key Secret failed; settings and keys stay as they are", "error", err.Error())
			}
		}()
	}

	select {
	case <-ctx.Done():
	case err := <-api.failed:
		return fmt.Errorf("the API listener failed: %w", err)
	case err := <-ops.failed:
		return fmt.Errorf("the metrics listener failed: %w", err)
	}

	grace := srv.Spec().Drain.GracePeriod.Duration
	logger.Info("draining", "streams", srv.Streams(), "gracePeriod", grace.String())
	drainCtx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	srv.Drain(drainCtx)
	// Streams are closed; let their handlers and publish requests finish, and
	// the streams taken off net/http (HTTP/1.1) write their last frames.
	shutdownCtx, cancelShutdown := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelShutdown()
	err = errors.Join(api.server.Shutdown(shutdownCtx), srv.WaitStreams(shutdownCtx), ops.server.Shutdown(shutdownCtx))
	stopRun()
	logger.Info("stopped")
	return err
}

// switchHandler serves through the handler set last.
type switchHandler struct{ current atomic.Pointer[http.Handler] }

func (s *switchHandler) set(h http.Handler) { s.current.Store(&h) }

func (s *switchHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.current.Load()).ServeHTTP(w, r)
}

// startingHandler serves the metrics address until the streamer runs:
// /healthz says alive (the kubelet must not restart a streamer that waits
// for its key Secret), everything else that it is not ready yet.
func startingHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		if r.URL.Path == "/healthz" {
			_, _ = w.Write([]byte("ok\n"))
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("starting: loading the channel and its keys (see the logs)\n"))
	})
}

// listener is one running HTTP server.
type listener struct {
	server *http.Server
	addr   string
	failed chan error
}

// listen starts an HTTP server with the streamer's hardening. Streams set
// their own per-write deadlines, so there is no server-wide write timeout.
func listen(addr string, handler http.Handler) (*listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("failed to listen on %s: %w", addr, err)
	}
	l := &listener{
		server: &http.Server{
			Handler:           handler,
			ReadHeaderTimeout: readHeaderTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			IdleTimeout:       idleTimeout,
		},
		addr:   ln.Addr().String(),
		failed: make(chan error, 1),
	}
	go func() {
		if err := l.server.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			l.failed <- err
		}
	}()
	return l, nil
}

// withPprof adds the runtime profiles of net/http/pprof to the ops handler.
// They are mounted on their own mux, never on http.DefaultServeMux, so that
// nothing serves them unless --pprof asked for it. The ops listener has no
// write timeout, so a 30-second CPU profile is not cut short.
func withPprof(ops http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", ops)
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// readSecretDir reads a Secret as Kubernetes mounts it: one file per entry.
// Hidden entries (the "..data" links of a mounted volume) are skipped.
func readSecretDir(dir string) (map[string][]byte, error) {
	files, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	entries := map[string][]byte{}
	for _, file := range files {
		if strings.HasPrefix(file.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, file.Name())
		info, err := os.Stat(path) // follows the links of a mounted Secret
		if err != nil {
			return nil, err
		}
		if !info.Mode().IsRegular() {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		entries[file.Name()] = data
	}
	return entries, nil
}
