package controllers

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/auth"
	"github.com/herald-notify/herald/streamer/log/jetstreamlog"
	"github.com/herald-notify/herald/streamer/tlscert"
)

// Field index names on NotificationChannels, for finding the channels that
// name a Secret when it changes.
const secretRefIndex = "notify.herald.dev/secret-refs"

// secretRefs are the names of the Secrets a channel reads: the key Secret,
// the NATS credentials Secret and the TLS Secret when there are.
func secretRefs(channel *notifyv1alpha1.NotificationChannel) []string {
	names := []string{channel.Spec.Auth.KeySecretRef.Name}
	if nats := channel.Spec.Broker.NATS; nats != nil && nats.CredentialsSecretRef != nil {
		names = append(names, nats.CredentialsSecretRef.Name)
	}
	if tls := channel.Spec.HTTP.TLS; tls != nil {
		names = append(names, tls.SecretRef.Name)
	}
	return names
}

// checkSecrets finds what stops the channel's Secrets from serving: a missing
// Secret, or a key Secret without a usable key (parsed with the streamer's own
// code, so operator and streamer agree). Secrets are read straight from the
// API: the operator caches only their metadata, never every Secret's content.
func checkSecrets(ctx context.Context, reader client.Reader, channel *notifyv1alpha1.NotificationChannel) (*problem, error) {
	keyRef := channel.Spec.Auth.KeySecretRef.Name
	secret, found, err := readSecret(ctx, reader, channel.Namespace, keyRef)
	if err != nil {
		return nil, err
	}
	if !found {
		return &problem{reason: notifyv1alpha1.ReasonSecretNotFound, message: fmt.Sprintf(
			"Secret %q named by spec.auth.keySecretRef does not exist in namespace %q: create it with one data entry per verification key, named by its key id (kid)",
			keyRef, channel.Namespace)}, nil
	}
	if _, err := auth.ParseKeys(channel.Spec.Auth.Algorithms, secret.Data); err != nil {
		return &problem{reason: notifyv1alpha1.ReasonInvalidKey, message: fmt.Sprintf(
			"Secret %q named by spec.auth.keySecretRef holds no usable key for algorithms %s: %s",
			keyRef, algorithmList(channel.Spec.Auth.Algorithms), oneLine(err.Error()))}, nil
	}

	if nats := channel.Spec.Broker.NATS; nats != nil && nats.CredentialsSecretRef != nil {
		if p, err := checkBrokerSecret(ctx, reader, channel.Namespace, nats.CredentialsSecretRef.Name); p != nil || err != nil {
			return p, err
		}
	}
	if tls := channel.Spec.HTTP.TLS; tls != nil {
		return checkTLSSecret(ctx, reader, channel.Namespace, tls.SecretRef.Name)
	}
	return nil, nil
}

// checkTLSSecret finds what stops the TLS Secret from serving: missing, or
// no certificate and key the streamers can serve (parsed with the streamer's
// own code).
func checkTLSSecret(ctx context.Context, reader client.Reader, namespace, name string) (*problem, error) {
	secret, found, err := readSecret(ctx, reader, namespace, name)
	if err != nil {
		return nil, err
	}
	if !found {
		return &problem{reason: notifyv1alpha1.ReasonSecretNotFound, message: fmt.Sprintf(
			"Secret %q named by spec.http.tls.secretRef does not exist in namespace %q: create it as a kubernetes.io/tls Secret with %q and %q (kubectl create secret tls); the streamers wait for it",
			name, namespace, corev1.TLSCertKey, corev1.TLSPrivateKeyKey)}, nil
	}
	if _, err := tlscert.Parse(secret.Data); err != nil {
		return &problem{reason: notifyv1alpha1.ReasonInvalidCertificate, message: fmt.Sprintf(
			"Secret %q named by spec.http.tls.secretRef is unusable: %s", name, oneLine(err.Error()))}, nil
	}
	return nil, nil
}

// checkBrokerSecret finds what stops the NATS credentials Secret from serving:
// missing, or entries the streamer cannot dial with (parsed with the
// streamer's own code).
func checkBrokerSecret(ctx context.Context, reader client.Reader, namespace, name string) (*problem, error) {
	secret, found, err := readSecret(ctx, reader, namespace, name)
	if err != nil {
		return nil, err
	}
	if !found {
		return &problem{reason: notifyv1alpha1.ReasonSecretNotFound, message: fmt.Sprintf(
			"Secret %q named by spec.broker.nats.credentialsSecretRef does not exist in namespace %q: create it with an entry %q (a NATS credentials file), %q, or %q and %q, and optionally %q; the streamers wait for it",
			name, namespace, notifyv1alpha1.NATSCredsKey, notifyv1alpha1.NATSTokenKey,
			notifyv1alpha1.NATSUsernameKey, notifyv1alpha1.NATSPasswordKey, notifyv1alpha1.NATSCAKey)}, nil
	}
	if _, err := jetstreamlog.NewCredentials(secret.Data); err != nil {
		return &problem{reason: notifyv1alpha1.ReasonInvalidBrokerCredentials, message: fmt.Sprintf(
			"Secret %q named by spec.broker.nats.credentialsSecretRef is unusable: %s", name, oneLine(err.Error()))}, nil
	}
	return nil, nil
}

// readSecret reads a Secret; found is false when it does not exist.
func readSecret(ctx context.Context, reader client.Reader, namespace, name string) (*corev1.Secret, bool, error) {
	secret := &corev1.Secret{}
	err := reader.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, secret)
	switch {
	case apierrors.IsNotFound(err):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("failed to read Secret %s/%s: %w", namespace, name, err)
	}
	return secret, true, nil
}

// algorithmList is the allow-list for a message: the API default when empty.
func algorithmList(algorithms []notifyv1alpha1.JWTAlgorithm) string {
	if len(algorithms) == 0 {
		algorithms = notifyv1alpha1.DefaultAlgorithms
	}
	names := make([]string, len(algorithms))
	for i, a := range algorithms {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

// oneLine joins the lines of a joined error, for a condition message.
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", "; ") }
