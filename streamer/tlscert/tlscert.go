// Package tlscert is the streamer's TLS certificate (spec.http.tls): parsed
// from a kubernetes.io/tls Secret by the streamer and by the operator, which
// checks the Secret with the same code, and served from a holder that a
// rotated Secret updates without a restart.
package tlscert

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"

	corev1 "k8s.io/api/core/v1"
)

// Parse reads the certificate chain and private key of a kubernetes.io/tls
// Secret's data ("tls.crt" and "tls.key", PEM). The error names the entry
// that is missing, or says why the two do not make a certificate.
func Parse(data map[string][]byte) (*tls.Certificate, error) {
	for _, entry := range []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey} {
		if len(data[entry]) == 0 {
			return nil, fmt.Errorf("the entry %q is missing or empty", entry)
		}
	}
	cert, err := tls.X509KeyPair(data[corev1.TLSCertKey], data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return nil, fmt.Errorf("the entries %q and %q are not a PEM certificate and its private key: %w",
			corev1.TLSCertKey, corev1.TLSPrivateKeyKey, err)
	}
	return &cert, nil
}

// Served is the certificate a TLS listener presents, swapped whole: a
// handshake takes the one current when it starts, so a rotated certificate
// applies to new connections while open ones keep theirs.
type Served struct {
	current atomic.Pointer[tls.Certificate]
}

// NewServed serves cert.
func NewServed(cert *tls.Certificate) *Served {
	s := &Served{}
	s.current.Store(cert)
	return s
}

// Load replaces the certificate with the one in a Secret's data (Parse). An
// unusable version changes nothing: the certificate in use stays.
func (s *Served) Load(data map[string][]byte) error {
	cert, err := Parse(data)
	if err != nil {
		return err
	}
	s.current.Store(cert)
	return nil
}

// Certificate is the certificate in use.
func (s *Served) Certificate() *tls.Certificate { return s.current.Load() }

// ServerConfig is the TLS configuration of a listener that presents the
// certificate in use and offers HTTP/2 and HTTP/1.1 by ALPN.
func (s *Served) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return s.current.Load(), nil
		},
	}
}
