package jetstreamlog

import (
	"crypto/x509"
	"fmt"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

// Credentials are a channel's NATS credentials (the entries of
// spec.broker.nats.credentialsSecretRef), held in memory (nothing is written
// to disk) and presented to nats.go through handlers that read the current
// version on every connection. A rotated Secret (Update) therefore applies
// to the next connection and every reconnection, without a restart. The
// Secret holds at most one way to authenticate ("nats.creds", "token", or
// "username" and "password") and optionally "ca.crt". Every entry is checked
// when the Secret is read, so that a broken Secret is reported then rather
// than on each reconnect.
type Credentials struct {
	// way and hasCA are fixed when the connection's options are made: the
	// options nats.go holds depend on them.
	way   authWay
	hasCA bool

	mu      sync.RWMutex
	current credentialValues
}

// authWay is how a pod authenticates to NATS.
type authWay string

const (
	authNone     authWay = "no authentication"
	authCreds    authWay = "a credentials file (entry \"" + notifyv1alpha1.NATSCredsKey + "\")"
	authToken    authWay = "a token (entry \"" + notifyv1alpha1.NATSTokenKey + "\")"
	authUserInfo authWay = "a user and password (entries \"" + notifyv1alpha1.NATSUsernameKey + "\" and \"" + notifyv1alpha1.NATSPasswordKey + "\")"
)

// credentialValues are one version of the Secret, parsed.
type credentialValues struct {
	way            authWay
	creds          []byte
	token          string
	user, password string
	ca             *x509.CertPool
}

// NewCredentials checks the entries of a channel's NATS credentials Secret
// and holds them. Nil entries mean no Secret: no authentication, no CA.
func NewCredentials(entries map[string][]byte) (*Credentials, error) {
	v, err := parseCredentials(entries)
	if err != nil {
		return nil, err
	}
	return &Credentials{way: v.way, hasCA: v.ca != nil, current: v}, nil
}

// Options are the nats.go options that present the credentials, each
// reading the version current when nats.go connects.
func (c *Credentials) Options() []nats.Option {
	var opts []nats.Option
	switch c.way {
	case authCreds:
		opts = append(opts, nats.UserJWT(
			func() (string, error) { return nkeys.ParseDecoratedJWT(c.values().creds) },
			func(nonce []byte) ([]byte, error) {
				kp, err := nkeys.ParseDecoratedNKey(c.values().creds)
				if err != nil {
					return nil, fmt.Errorf("entry %q holds no NKey seed: %w", notifyv1alpha1.NATSCredsKey, err)
				}
				defer kp.Wipe()
				return kp.Sign(nonce)
			}))
	case authToken:
		opts = append(opts, nats.TokenHandler(func() string { return c.values().token }))
	case authUserInfo:
		opts = append(opts, nats.UserInfoHandler(func() (string, string) {
			v := c.values()
			return v.user, v.password
		}))
	}
	if c.hasCA {
		opts = append(opts, nats.ClientTLSConfig(nil, func() (*x509.CertPool, error) { return c.values().ca, nil }))
	}
	return opts
}

// Update takes a new version of the Secret for the next connection. A
// version that is unusable, or that changes the way to authenticate or
// whether there is a CA, is refused with why, and the current one stays:
// the options of a running connection cannot change that.
func (c *Credentials) Update(entries map[string][]byte) error {
	v, err := c.check(entries)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.current = v
	return nil
}

// Check reports why Update would refuse the entries, without taking them.
func (c *Credentials) Check(entries map[string][]byte) error {
	_, err := c.check(entries)
	return err
}

func (c *Credentials) check(entries map[string][]byte) (credentialValues, error) {
	v, err := parseCredentials(entries)
	if err != nil {
		return credentialValues{}, err
	}
	if v.way != c.way {
		return credentialValues{}, fmt.Errorf("the Secret now names %s instead of %s: the way to authenticate is set when a pod starts; restart the channel's pods to apply it", v.way, c.way)
	}
	if hasCA := v.ca != nil; hasCA != c.hasCA {
		change := "no longer has its"
		if hasCA {
			change = "now has an"
		}
		return credentialValues{}, fmt.Errorf("the Secret %s entry %q: whether NATS is reached over TLS with the Secret's CA is set when a pod starts; restart the channel's pods to apply it",
			change, notifyv1alpha1.NATSCAKey)
	}
	return v, nil
}

func (c *Credentials) values() credentialValues {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.current
}

// parseCredentials checks and parses one version of the Secret.
func parseCredentials(entries map[string][]byte) (credentialValues, error) {
	v, err := parseAuth(entries)
	if err != nil {
		return credentialValues{}, err
	}
	if pem, ok := entries[notifyv1alpha1.NATSCAKey]; ok {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return credentialValues{}, fmt.Errorf("entry %q holds no PEM certificate", notifyv1alpha1.NATSCAKey)
		}
		v.ca = pool
	}
	return v, nil
}

// parseAuth finds the one way to authenticate the entries name.
func parseAuth(entries map[string][]byte) (credentialValues, error) {
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
		return credentialValues{}, fmt.Errorf("entries %s each name a way to authenticate: keep one of %q, %q, or %q with %q",
			strings.Join(named, " and "), notifyv1alpha1.NATSCredsKey, notifyv1alpha1.NATSTokenKey,
			notifyv1alpha1.NATSUsernameKey, notifyv1alpha1.NATSPasswordKey)
	}
	switch {
	case hasCreds:
		if err := checkCreds(creds); err != nil {
			return credentialValues{}, fmt.Errorf("entry %q is not a NATS credentials file: %w", notifyv1alpha1.NATSCredsKey, err)
		}
		return credentialValues{way: authCreds, creds: creds}, nil
	case hasToken:
		t := strings.TrimSpace(string(token))
		if t == "" {
			return credentialValues{}, fmt.Errorf("entry %q is empty", notifyv1alpha1.NATSTokenKey)
		}
		return credentialValues{way: authToken, token: t}, nil
	case hasUser != hasPassword:
		return credentialValues{}, fmt.Errorf("entries %q and %q go together: one of them is missing",
			notifyv1alpha1.NATSUsernameKey, notifyv1alpha1.NATSPasswordKey)
	case hasUser:
		// A password is taken byte for byte; only the user name's trailing
		// newline (echo > file) is dropped.
		return credentialValues{way: authUserInfo, user: strings.TrimSpace(string(user)), password: string(password)}, nil
	}
	return credentialValues{way: authNone}, nil
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
