package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// natsReadyTimeout bounds the wait for the local NATS server to accept
// connections with JetStream on.
const natsReadyTimeout = 30 * time.Second

// localNATS is the NATS server with JetStream that the local platform's NATS
// channels use, running in this process (nats-server as a Go module, nothing
// downloaded). One node: the channels' streams have one replica. It syncs
// every write before acknowledging it, as Herald recommends for production.
type localNATS struct {
	srv *server.Server
	// Token is what clients present: the credentials Secret's "token".
	Token string
}

// startNATS starts the server on a free loopback port, its JetStream store
// in storeDir.
func startNATS(storeDir string) (*localNATS, error) {
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	srv, err := server.NewServer(&server.Options{
		ServerName:         "herald-local",
		Host:               "127.0.0.1",
		Port:               server.RANDOM_PORT,
		Authorization:      token,
		JetStream:          true,
		StoreDir:           storeDir,
		SyncAlways:         true,
		JetStreamMaxMemory: 64 << 20,
		JetStreamMaxStore:  1 << 30,
		NoLog:              true,
		NoSigs:             true,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to create the NATS server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(natsReadyTimeout) || !srv.JetStreamEnabled() {
		srv.Shutdown()
		return nil, fmt.Errorf("the NATS server did not accept connections with JetStream within %s", natsReadyTimeout)
	}
	return &localNATS{srv: srv, Token: token}, nil
}

// URL is the server's client URL.
func (n *localNATS) URL() string { return n.srv.ClientURL() }

// Stop shuts the server down and waits until it has.
func (n *localNATS) Stop() {
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
}
