package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/auth"
)

// The browser page of `make run` is Herald's reference browser page,
// examples/browser, on Herald's JavaScript client (clients/js), served on a
// loopback port of its own: another origin than the channel's Service, as an
// application's pages are. The page server also stands in for the rest of
// that application: it tells the page where Herald is (config.json), and its
// development-only token endpoint plays the application's login.

const (
	// pageDir holds the page's files, relative to the repository's root.
	pageDir = "examples/browser"
	// clientDir holds Herald's JavaScript client, relative to the
	// repository's root; the page imports it from clientPath.
	clientDir  = "clients/js"
	clientPath = "/clients/js/"
	// pageTokenTTL is the lifetime of the tokens the page's token endpoint
	// signs: the page asks for a fresh one before each ticket.
	pageTokenTTL = 15 * time.Minute
	// pageReadHeaderTimeout bounds a request's head, as any server's should.
	pageReadHeaderTimeout = 10 * time.Second
)

// pageConfig is the page's config.json.
type pageConfig struct {
	// HeraldURL is the channel's base URL, its Service's loopback port.
	HeraldURL string `json:"heraldUrl"`
	// User is the user the page streams as.
	User string `json:"user"`
}

// tokenSigner signs tokens that a channel accepts: with the channel's first
// algorithm, a key of its key Secret and that key's kid, and the issuer and
// audiences it checks.
type tokenSigner struct {
	key       []byte
	kid       string
	alg       notifyv1alpha1.JWTAlgorithm
	issuer    string
	audiences []string
	grant     notifyv1alpha1.PublishGrantSpec
}

// newTokenSigner signs for channel with the key in keyFile, stored under kid
// in the channel's key Secret (the file holds it byte for byte, as
// createSampleKey writes it).
func newTokenSigner(keyFile, kid string, channel *notifyv1alpha1.NotificationChannel) (*tokenSigner, error) {
	key, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("failed to read the key to sign the page's tokens: %w", err)
	}
	spec := channel.Spec.Auth
	if len(spec.Algorithms) == 0 {
		return nil, fmt.Errorf("channel %s allows no JWT algorithm to sign with", channel.Name)
	}
	return &tokenSigner{
		key: key, kid: kid, alg: spec.Algorithms[0],
		issuer: spec.Issuer, audiences: spec.Audiences, grant: spec.PublishGrant,
	}, nil
}

// sign signs a token for subject that lives for ttl, with the channel's
// publish grant when publish is set.
func (s *tokenSigner) sign(subject string, publish bool, ttl time.Duration) (string, error) {
	now := time.Now()
	return auth.Sign(auth.TokenClaims{
		Subject: subject, Issuer: s.issuer, Audience: s.audiences,
		IssuedAt: now, ExpiresAt: now.Add(ttl),
		Publish: publish, PublishGrant: s.grant,
	}, s.alg, s.kid, s.key)
}

// tokenResponse is what the page's token endpoint answers.
type tokenResponse struct {
	Token string `json:"token"`
}

// pageHandler serves the page's files from root's pageDir, Herald's
// JavaScript client from root's clientDir under clientPath, config as
// config.json, and at POST /dev/token a fresh token for config.User (the
// only user the endpoint signs for).
func pageHandler(root string, config pageConfig, tokens *tokenSigner) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServer(http.Dir(filepath.Join(root, pageDir))))
	mux.Handle("GET "+clientPath, http.StripPrefix(clientPath, http.FileServer(http.Dir(filepath.Join(root, clientDir)))))
	mux.HandleFunc("GET /config.json", func(w http.ResponseWriter, _ *http.Request) {
		writePageJSON(w, config)
	})
	mux.HandleFunc("POST /dev/token", func(w http.ResponseWriter, _ *http.Request) {
		token, err := tokens.sign(config.User, false, pageTokenTTL)
		if err != nil {
			http.Error(w, "cannot sign a token: "+err.Error(), http.StatusInternalServerError)
			return
		}
		writePageJSON(w, tokenResponse{Token: token})
	})
	// An edited page shows on reload; a token is never cached.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	})
}

func writePageJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// pageServer serves the page on a loopback port. Its listener opens first,
// so that its origin is known (and allowed by the sample channel) before
// the handler, which needs the running channel, exists.
type pageServer struct {
	listener net.Listener
	server   *http.Server
	done     chan error
}

// listenPage opens the page's listener on a free loopback port.
func listenPage() (*pageServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("failed to listen for the browser page: %w", err)
	}
	return &pageServer{listener: l}, nil
}

// Origin is the page's origin, as a browser sends it in Origin.
func (p *pageServer) Origin() string { return "http://" + p.listener.Addr().String() }

// URL is where a browser opens the page.
func (p *pageServer) URL() string { return p.Origin() + "/" }

// serve serves handler until Close.
func (p *pageServer) serve(handler http.Handler) {
	p.server = &http.Server{Handler: handler, ReadHeaderTimeout: pageReadHeaderTimeout}
	p.done = make(chan error, 1)
	go func() { p.done <- p.server.Serve(p.listener) }()
}

// Close stops the page server and closes its connections, or only its
// listener if it never served.
func (p *pageServer) Close() error {
	if p.server == nil {
		return p.listener.Close()
	}
	err := p.server.Close()
	if served := <-p.done; !errors.Is(served, http.ErrServerClosed) {
		err = errors.Join(err, served)
	}
	return err
}

// servePage serves the browser page for the sample channel, once the
// runner serves its Service: the page streams as the sample user, with
// tokens signed with the sample key.
func (p *platform) servePage(ctx context.Context) error {
	addr, channel, err := p.servedChannel(ctx, sampleChannel)
	if err != nil {
		return err
	}
	tokens, err := newTokenSigner(p.KeyFile, sampleKeyID, channel)
	if err != nil {
		return err
	}
	config := pageConfig{HeraldURL: "http://" + addr, User: sampleUser}
	p.Page.serve(pageHandler(p.root, config, tokens))
	return nil
}

// allowOrigin adds origin to the cors.allowedOrigins of the
// NotificationChannel named channel among objs, before they are applied.
func allowOrigin(objs []*unstructured.Unstructured, channel, origin string) error {
	for _, obj := range objs {
		if obj.GetKind() != "NotificationChannel" || obj.GetName() != channel {
			continue
		}
		origins, _, err := unstructured.NestedStringSlice(obj.Object, "spec", "cors", "allowedOrigins")
		if err != nil {
			return fmt.Errorf("channel %s: spec.cors.allowedOrigins: %w", channel, err)
		}
		return unstructured.SetNestedStringSlice(obj.Object, append(origins, origin), "spec", "cors", "allowedOrigins")
	}
	return fmt.Errorf("no NotificationChannel %s among the samples, to allow the browser page's origin %s", channel, origin)
}
