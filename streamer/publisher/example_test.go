package publisher_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"

	"github.com/herald-notify/herald/streamer/publisher"
)

// A backend notifies two users. The httptest server stands in for the
// streamer; in production the base URL is the channel's endpoint (its
// status.endpoint) and the token carries the channel's publish grant, for
// example from `herald token --publish`.
func ExampleClient_PublishNotification() {
	streamer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			RecipientUserIDs []string `json:"recipientUserIds"`
			NotificationID   string   `json:"notificationId"`
		}
		if r.Header.Get("Authorization") != "Bearer my-publish-token" || json.NewDecoder(r.Body).Decode(&body) != nil {
			http.Error(w, `{"error":{"code":"invalid_request","message":"bad request"}}`, http.StatusBadRequest)
			return
		}
		eventIDs := make([]string, len(body.RecipientUserIDs))
		for i := range eventIDs {
			eventIDs[i] = strconv.Itoa(1732800000000001 + i)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]any{"notificationId": body.NotificationID, "eventIds": eventIDs})
	}))
	defer streamer.Close()

	client, err := publisher.New(streamer.URL, publisher.WithToken("my-publish-token"))
	if err != nil {
		log.Fatal(err)
	}
	result, err := client.PublishNotification(context.Background(), publisher.Notification{
		RecipientUserIDs: []string{"u1", "u2"},
		NotificationID:   "n1",
		NotificationType: "VOCAB_TRAINER",
		Action:           "CREATE",
		Priority:         publisher.PriorityLow,
		Data:             map[string]string{"message": "New vocab trainer available"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(result.NotificationID, result.EventIDs)
	// Output: n1 [1732800000000001 1732800000000002]
}

// Behind a Service, kube-proxy balances connections: over https the default
// client speaks HTTP/2, whose one connection would carry all of a backend's
// publishing to one replica. An HTTP/1.1 pool spreads it over the replicas.
// The httptest server stands in for a streamer serving HTTP/2 with TLS.
func ExampleWithHTTPClient_http1() {
	streamer := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println(r.Proto)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"eventId":"1732800000000001"}`))
	}))
	streamer.EnableHTTP2 = true
	streamer.StartTLS()
	defer streamer.Close()

	roots := x509.NewCertPool()
	roots.AddCert(streamer.Certificate()) // the channel's CA in production
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true) // and nothing else
	transport := &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: roots},
		Protocols:           protocols,
		MaxIdleConnsPerHost: 8, // about the publishes in flight
	}
	client, err := publisher.New(streamer.URL, publisher.WithToken("my-publish-token"),
		publisher.WithHTTPClient(&http.Client{Transport: transport}))
	if err != nil {
		log.Fatal(err)
	}
	if _, err := client.PublishSystemEvent(context.Background(), publisher.SystemEvent{EventType: "maintenance"}); err != nil {
		log.Fatal(err)
	}
	// Output: HTTP/1.1
}
