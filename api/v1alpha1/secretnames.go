package v1alpha1

import "slices"

// BrokerSecretName is the NATS credentials Secret the spec names
// (broker.nats.credentialsSecretRef), or "".
func (s *NotificationChannelSpec) BrokerSecretName() string {
	if nats := s.Broker.NATS; nats != nil && nats.CredentialsSecretRef != nil {
		return nats.CredentialsSecretRef.Name
	}
	return ""
}

// TLSSecretName is the TLS Secret the spec names (http.tls.secretRef), or "".
func (s *NotificationChannelSpec) TLSSecretName() string {
	if tls := s.HTTP.TLS; tls != nil {
		return tls.SecretRef.Name
	}
	return ""
}

// SecretNames are the Secrets the channel's streamers read, each once: the
// key Secret, then the NATS credentials Secret and the TLS Secret when set.
// The streamer's Role grants reading these names alone.
func (s *NotificationChannelSpec) SecretNames() []string {
	names := []string{s.Auth.KeySecretRef.Name}
	for _, name := range []string{s.BrokerSecretName(), s.TLSSecretName()} {
		if name != "" && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	return names
}
