package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
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
	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
	"github.com/herald-notify/herald/streamer/server"
	"github.com/herald-notify/herald/streamer/tlscert"
)

// channelSource is where a streamer's channel and keys come from: a file and
// a secrets folder, or the Kubernetes API.
type channelSource struct {
	channel *notifyv1alpha1.NotificationChannel
	keys    *auth.KeySet
	// brokerCredentials are the NATS credentials Secret's
	// (spec.broker.nats.credentialsSecretRef), nil when the channel names none.
	brokerCredentials *jetstreamlog.Credentials
	// certificate is the API listener's TLS certificate
	// (spec.http.tls.secretRef), nil when the channel serves no TLS.
	certificate *tlscert.Served
	// systemEvents, when set, records the status of the channel's
	// SystemEvents, which the streamer then announces.
	systemEvents announce.StatusWriter
	// watch, when set, keeps the server's keys and settings current, and
	// feeds the announcer (when there is one), until ctx ends.
	watch func(ctx context.Context, srv *server.Server, announcer *announce.Announcer) error
	// publishers, when set, authorizes publishers by ServiceAccount token.
	publishers *kube.PublisherReviewer
	// statusClient, when set, reads the channel from the API server and
	// writes the streamers' conditions on its status.
	statusClient client.Client
	// secretsReport, when set, stops the report of the channel's Secrets
	// on its SecretsUsable condition.
	secretsReport func()
}

// stopSecretsReport stops the report of the channel's Secrets, if any.
func (s *channelSource) stopSecretsReport() {
	if s.secretsReport != nil {
		s.secretsReport()
	}
}

// loadFromFile reads the channel manifest and its Secrets' folders in
// secretsDir (default: "secrets" beside the manifest), and reads the
// folders again every poll (watchFiles).
func loadFromFile(ctx context.Context, manifest, secretsDir string, poll time.Duration, logger *slog.Logger) (*channelSource, error) {
	channel, err := channelspec.LoadFile(ctx, manifest)
	if err != nil {
		return nil, err
	}
	if secretsDir == "" {
		secretsDir = filepath.Join(filepath.Dir(manifest), "secrets")
	}
	keysDir := &secretDir{name: channel.Spec.Auth.KeySecretRef.Name, field: "spec.auth.keySecretRef"}
	keysDir.dir = filepath.Join(secretsDir, keysDir.name)
	if keysDir.held, err = readSecretDir(keysDir.dir); err != nil {
		return nil, fmt.Errorf("failed to read the key Secret %q named by spec.auth.keySecretRef: %w", keysDir.name, err)
	}
	keys, err := auth.ParseKeys(channel.Spec.Auth.Algorithms, keysDir.held)
	if err != nil {
		return nil, fmt.Errorf("the key Secret %q holds no usable keys: %w", keysDir.name, err)
	}
	source := &channelSource{channel: channel, keys: keys}
	credentialsDir := &secretDir{name: channel.Spec.BrokerSecretName(), field: brokerSecretField}
	if credentialsDir.name != "" {
		credentialsDir.dir = filepath.Join(secretsDir, credentialsDir.name)
		if credentialsDir.held, err = readSecretDir(credentialsDir.dir); err != nil {
			return nil, fmt.Errorf("failed to read the NATS credentials Secret %q named by %s: %w", credentialsDir.name, brokerSecretField, err)
		}
		if source.brokerCredentials, err = jetstreamlog.NewCredentials(credentialsDir.held); err != nil {
			return nil, fmt.Errorf("the NATS credentials Secret %q named by %s is unusable: %w", credentialsDir.name, brokerSecretField, err)
		}
	}
	certificateDir := &secretDir{name: channel.Spec.TLSSecretName(), field: tlsSecretField}
	if certificateDir.name != "" {
		certificateDir.dir = filepath.Join(secretsDir, certificateDir.name)
		if certificateDir.held, err = readSecretDir(certificateDir.dir); err != nil {
			return nil, fmt.Errorf("failed to read the TLS Secret %q named by %s: %w", certificateDir.name, tlsSecretField, err)
		}
		cert, err := tlscert.Parse(certificateDir.held)
		if err != nil {
			return nil, fmt.Errorf("the TLS Secret %q named by %s is unusable: %w", certificateDir.name, tlsSecretField, err)
		}
		source.certificate = tlscert.NewServed(cert)
	}
	source.watch = source.watchFiles(keysDir, certificateDir, credentialsDir, poll, logger)
	return source, nil
}

// tlsSecretField is the spec field that names the TLS certificate's Secret.
const tlsSecretField = "spec.http.tls.secretRef"

// checkTLSSecret accepts a Secret's data that holds a certificate and its key.
func checkTLSSecret(data map[string][]byte) error {
	_, err := tlscert.Parse(data)
	return err
}

// brokerSecretField is the spec field that names the NATS credentials Secret.
const brokerSecretField = "spec.broker.nats.credentialsSecretRef"

// checkBrokerSecret accepts the credentials Secret's data the log can dial with.
func checkBrokerSecret(data map[string][]byte) error {
	_, err := jetstreamlog.NewCredentials(data)
	return err
}

// loadFromAPI reads the channel NAMESPACE/NAME and its key Secret from the
// API, and watches both so that rotated keys and changed settings apply
// without dropping streams. From the moment it has read the channel, pod
// reports on the channel whether its Secrets are usable, also while it waits
// for them; the source's stopSecretsReport stops that.
func loadFromAPI(ctx context.Context, channelRef, pod string, logger *slog.Logger) (source *channelSource, err error) {
	ref, err := kube.ParseChannelRef(channelRef)
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
	var heldCredentials atomic.Pointer[jetstreamlog.Credentials]
	stopSecretsReport := goUntilStopped(kube.NewSecretsReporter(kube.SecretsReporterOptions{
		Client: c, Clientset: clientset, Channel: channel, Pod: pod, Logger: logger,
		BrokerCredentials: heldCredentials.Load,
	}).Run)
	defer func() {
		if err != nil {
			stopSecretsReport()
		}
	}()
	// The watchers start before the server exists; they reach it through
	// srv once watch runs.
	var srv atomic.Pointer[server.Server]
	keyWatcher := kube.NewKeyWatcher(clientset, channel, func(k *auth.KeySet) {
		if s := srv.Load(); s != nil {
			s.SetKeys(k)
		}
	}, logger)
	keys, err := keyWatcher.LoadKeys(ctx)
	if err != nil {
		// A missing or broken Secret is a condition on the channel that a
		// person fixes; meanwhile the pod stays alive and unready rather
		// than exit into a crash loop.
		logger.Error("waiting for the key Secret; not ready until it holds usable keys", "reason", "KeysUnusable", "error", err.Error())
		if keys, err = keyWatcher.WaitForKeys(ctx); err != nil {
			return nil, err
		}
		logger.Info("key Secret usable", "keys", keys.KeyIDs())
	}
	var brokerCredentials *jetstreamlog.Credentials
	if name := channel.Spec.BrokerSecretName(); name != "" {
		// Later versions are watched below: a connection authenticates when
		// it connects, so a rotated Secret applies from the next one.
		data, err := kube.WaitForSecret(ctx, clientset, channel.Namespace, name, brokerSecretField, checkBrokerSecret, logger)
		if err != nil {
			return nil, err
		}
		if brokerCredentials, err = jetstreamlog.NewCredentials(data); err != nil {
			return nil, err
		}
		heldCredentials.Store(brokerCredentials)
	}
	var certificate *tlscert.Served
	if name := channel.Spec.TLSSecretName(); name != "" {
		// Until the Secret holds a certificate the API is not served: the
		// pod waits, alive and not ready. Later versions are watched below.
		data, err := kube.WaitForSecret(ctx, clientset, channel.Namespace, name, tlsSecretField, checkTLSSecret, logger)
		if err != nil {
			return nil, err
		}
		cert, err := tlscert.Parse(data)
		if err != nil {
			return nil, err
		}
		certificate = tlscert.NewServed(cert)
	}
	channelWatcher := kube.NewChannelWatcher(c, channel, keyWatcher, func(spec notifyv1alpha1.NotificationChannelSpec, k *auth.KeySet) error {
		return srv.Load().SetSpec(spec, k)
	}, logger)
	source = &channelSource{
		channel: channel, keys: keys, brokerCredentials: brokerCredentials, certificate: certificate, systemEvents: kube.SystemEventStatus{Client: c},
		publishers: kube.NewPublisherReviewer(clientset, channel), statusClient: c, secretsReport: stopSecretsReport,
	}
	source.watch = func(ctx context.Context, s *server.Server, announcer *announce.Announcer) error {
		srv.Store(s)
		go announcer.Run(ctx)
		go func() {
			if err := kube.WatchSystemEvents(ctx, cfg, channel.Namespace, announcer, logger); err != nil {
				logger.Error("the SystemEvent watch failed; no announcements until a restart", "reason", "WatchFailed", "error", err.Error())
			}
		}()
		channelWatch := make(chan error, 1)
		go func() { channelWatch <- channelWatcher.Run(ctx) }()
		certificateWatch := make(chan error, 1)
		go func() { certificateWatch <- watchCertificate(ctx, clientset, channel, certificate, logger) }()
		credentialsWatch := make(chan error, 1)
		go func() { credentialsWatch <- watchBrokerCredentials(ctx, clientset, channel, brokerCredentials, logger) }()
		return errors.Join(keyWatcher.Run(ctx), <-channelWatch, <-certificateWatch, <-credentialsWatch)
	}
	return source, nil
}

// watchCertificate keeps certificate equal to the channel's TLS Secret until
// ctx ends, so that a rotated certificate applies to new handshakes without a
// restart. Without TLS there is nothing to watch.
func watchCertificate(ctx context.Context, clientset kubernetes.Interface, channel *notifyv1alpha1.NotificationChannel,
	certificate *tlscert.Served, logger *slog.Logger) error {
	if certificate == nil {
		return nil
	}
	return kube.WatchSecret(ctx, clientset, channel.Namespace, channel.Spec.TLSSecretName(), tlsSecretField, certificate.Load, logger)
}

// watchBrokerCredentials keeps credentials equal to the channel's NATS
// credentials Secret until ctx ends, so that rotated credentials apply to
// the next connection to NATS without a restart. Without a Secret there is
// nothing to watch.
func watchBrokerCredentials(ctx context.Context, clientset kubernetes.Interface, channel *notifyv1alpha1.NotificationChannel,
	credentials *jetstreamlog.Credentials, logger *slog.Logger) error {
	if credentials == nil {
		return nil
	}
	return kube.WatchSecret(ctx, clientset, channel.Namespace, channel.Spec.BrokerSecretName(), brokerSecretField, credentials.Update, logger)
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
