package jetstreamlog

import (
	"crypto/x509"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

// CredentialsFromSecret turns the entries of a channel's NATS credentials
// Secret (spec.broker.nats.credentialsSecretRef) into the nats.go options
// that present them, from memory: nothing is written to disk. The Secret
// holds at most one way to authenticate ("nats.creds", "token", or
// "username" and "password") and optionally "ca.crt". Every entry is
// checked here, so that a broken Secret is reported when it is read (the
// operator calls this too) rather than on each reconnect. Nil entries mean
// no Secret: no options.
func CredentialsFromSecret(entries map[string][]byte) ([]nats.Option, error) {
	var opts []nats.Option
	auth, err := authOption(entries)
	if err != nil {
		return nil, err
	}
	if auth != nil {
		opts = append(opts, auth)
	}
	if pem, ok := entries[notifyv1alpha1.NATSCAKey]; ok {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("entry %q holds no PEM certificate", notifyv1alpha1.NATSCAKey)
		}
		opts = append(opts, nats.ClientTLSConfig(nil, func() (*x509.CertPool, error) { return pool, nil }))
	}
	return opts, nil
}

// authOption is the one authentication the entries name, or nil for none.
func authOption(entries map[string][]byte) (nats.Option, error) {
	creds, hasCreds := entries[notifyv1alpha1.NATSCredsKey]
	token, hasToken := entries[notifyv1alpha1.NATSTokenKey]
	user, hasUser := entries[notifyv1alpha1.NATSUsernameKey]
	password, hasPassword := entries[notifyv1alpha1.NATSPasswordKey]

	var named []string
	for _, way := range []struct {
		key string
		has bool
	}{
		{notifyv1alpha1.NATSCredsKey, hasCreds},
		{notifyv1alpha1.NATSTokenKey, hasToken},
		{notifyv1alpha1.NATSUsernameKey, hasUser || hasPassword},
	} {
		if way.has {
			named = append(named, fmt.Sprintf("%q", way.key))
		}
	}
	if len(named) > 1 {
		return nil, fmt.Errorf("entries %s each name a way to authenticate: keep one of %q, %q, or %q with %q",
			strings.Join(named, " and "), notifyv1alpha1.NATSCredsKey, notifyv1alpha1.NATSTokenKey,
			notifyv1alpha1.NATSUsernameKey, notifyv1alpha1.NATSPasswordKey)
	}
	switch {
	case hasCreds:
		if err := checkCreds(creds); err != nil {
			return nil, fmt.Errorf("entry %q is not a NATS credentials file: %w", notifyv1alpha1.NATSCredsKey, err)
		}
		return nats.UserCredentialBytes(creds), nil
	case hasToken:
		t := strings.TrimSpace(string(token))
		if t == "" {
			return nil, fmt.Errorf("entry %q is empty", notifyv1alpha1.NATSTokenKey)
		}
		return nats.Token(t), nil
	case hasUser != hasPassword:
		return nil, fmt.Errorf("entries %q and %q go together: one of them is missing",
			notifyv1alpha1.NATSUsernameKey, notifyv1alpha1.NATSPasswordKey)
	case hasUser:
		// A password is taken byte for byte; only the user name's trailing
		// newline (echo > file) is dropped.
		return nats.UserInfo(strings.TrimSpace(string(user)), string(password)), nil
	}
	return nil, nil
}

// checkCreds parses a credentials file as nats.go will on every connect:
// a user JWT (decorated or bare) and an NKey seed.
func checkCreds(creds []byte) error {
	if _, err := nkeys.ParseDecoratedJWT(creds); err != nil {
		return err
	}
	kp, err := nkeys.ParseDecoratedNKey(creds)
	if err != nil {
		return err
	}
	kp.Wipe()
	return nil
}
