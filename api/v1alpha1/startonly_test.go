package v1alpha1_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
)

var _ = Describe("the start-only settings", func() {
	// spec has a value in every start-only setting and in a live one.
	spec := func() *notifyv1alpha1.NotificationChannelSpec {
		return &notifyv1alpha1.NotificationChannelSpec{
			Auth:    notifyv1alpha1.AuthSpec{KeySecretRef: notifyv1alpha1.LocalSecretReference{Name: "keys"}, Issuer: "https://id.example.com"},
			History: notifyv1alpha1.HistorySpec{MaxEvents: 5},
			Broker:  notifyv1alpha1.BrokerSpec{Type: notifyv1alpha1.BrokerNATS, NATS: &notifyv1alpha1.NATSBrokerSpec{URL: "nats://nats:4222"}},
			CORS:    notifyv1alpha1.CORSSpec{AllowedOrigins: []string{"https://app.example.com"}},
		}
	}

	It("are broker, history, the key Secret reference and http, in that order", func() {
		Expect(notifyv1alpha1.StartOnlySettings()).To(Equal([]string{"spec.broker", "spec.history", "spec.auth.keySecretRef", "spec.http"}))
	})

	It("StartOnly keeps only them, as a copy", func() {
		s := spec()
		only := s.StartOnly()
		Expect(only).To(Equal(notifyv1alpha1.NotificationChannelSpec{
			Auth: notifyv1alpha1.AuthSpec{KeySecretRef: s.Auth.KeySecretRef}, History: s.History, Broker: s.Broker,
		}))
		only.Broker.NATS.URL = "nats://other:4222"
		Expect(s.Broker.NATS.URL).To(Equal("nats://nats:4222"))
	})

	It("KeepStartOnly takes them from the running spec and leaves the others", func() {
		next := &notifyv1alpha1.NotificationChannelSpec{Auth: notifyv1alpha1.AuthSpec{KeySecretRef: notifyv1alpha1.LocalSecretReference{Name: "other"}, Issuer: "https://new.example.com"}}
		running := spec()
		next.KeepStartOnly(running)
		Expect(next.StartOnly()).To(Equal(running.StartOnly()))
		Expect(next.Auth.Issuer).To(Equal("https://new.example.com"))
		Expect(next.CORS.AllowedOrigins).To(BeEmpty())
		running.Broker.NATS.URL = "nats://other:4222"
		Expect(next.Broker.NATS.URL).To(Equal("nats://nats:4222"), "a deep copy")
	})

	DescribeTable("StartOnlyChanges names the settings that changed",
		func(edit func(*notifyv1alpha1.NotificationChannelSpec), changed []string) {
			to := spec()
			edit(to)
			Expect(spec().StartOnlyChanges(to)).To(Equal(changed))
		},
		Entry("none, when only live settings change", func(s *notifyv1alpha1.NotificationChannelSpec) {
			s.Auth.Issuer, s.CORS.AllowedOrigins = "", nil
		}, nil),
		Entry("the broker, by a nested field", func(s *notifyv1alpha1.NotificationChannelSpec) { s.Broker.NATS.StreamReplicas = 3 },
			[]string{"spec.broker"}),
		Entry("all three, in order", func(s *notifyv1alpha1.NotificationChannelSpec) {
			s.Auth.KeySecretRef.Name, s.History.MaxEvents, s.Broker = "other", 6, notifyv1alpha1.BrokerSpec{}
		}, []string{"spec.broker", "spec.history", "spec.auth.keySecretRef"}),
		Entry("http, by turning TLS on", func(s *notifyv1alpha1.NotificationChannelSpec) {
			s.HTTP.TLS = &notifyv1alpha1.HTTPTLSSpec{SecretRef: notifyv1alpha1.LocalSecretReference{Name: "app-tls"}}
		}, []string{"spec.http"}),
	)
})
