package jetstreamlog

import (
	"fmt"
	"strings"
)

// Purposes of a channel's key-value buckets (BucketName).
const (
	TicketsBucketPurpose  = "TICKETS"
	PresenceBucketPurpose = "PRESENCE"
)

// Permissions are the NATS subjects the streamers of one channel publish
// and subscribe to: everything the log, the tickets, presence and the relay
// between replicas need, and nothing of another channel. A NATS user limited
// to them (README "Scaling out") cannot read or write another channel's
// streams, buckets or replies.
type Permissions struct {
	Publish   []string
	Subscribe []string
}

// ChannelPermissions are the permissions of the streamers of
// namespace/channel.
func ChannelPermissions(namespace, channel string) Permissions {
	streams := []string{
		StreamName(namespace, channel),
		"KV_" + BucketName(TicketsBucketPurpose, namespace, channel),
		"KV_" + BucketName(PresenceBucketPurpose, namespace, channel),
	}
	replicas := "herald." + escapeName(namespace) + "." + escapeName(channel) + ".replicas.*"
	p := Permissions{
		Publish:   []string{Subject(namespace, channel), replicas},
		Subscribe: []string{InboxPrefix(namespace, channel) + ".>", replicas},
	}
	for _, stream := range streams {
		p.Publish = append(p.Publish,
			"$JS.API.STREAM.INFO."+stream,
			"$JS.API.STREAM.CREATE."+stream,
			"$JS.API.STREAM.UPDATE."+stream,
			"$JS.API.STREAM.MSG.GET."+stream,
			"$JS.API.DIRECT.GET."+stream+".>",
			"$JS.API.CONSUMER.CREATE."+stream+".>",
			"$JS.API.CONSUMER.INFO."+stream+".>",
			"$JS.API.CONSUMER.DELETE."+stream+".>",
			"$JS.API.CONSUMER.MSG.NEXT."+stream+".>",
			"$JS.FC."+stream+".>",
		)
	}
	// Buckets are also written, and spent tickets deleted.
	for _, purpose := range []string{TicketsBucketPurpose, PresenceBucketPurpose} {
		bucket := BucketName(purpose, namespace, channel)
		p.Publish = append(p.Publish, "$KV."+bucket+".>", "$JS.API.STREAM.MSG.DELETE.KV_"+bucket)
	}
	// nats.go's key-value API asks for the account's JetStream limits.
	p.Publish = append(p.Publish, "$JS.API.INFO")
	return p
}

// ServerConfig is the permissions as a block of the NATS server's
// configuration, for a user in its authorization or an account. Answers to
// the relay's requests go to the asker's reply subject, which
// allow_responses permits without a publish permission on every inbox.
func (p Permissions) ServerConfig() string {
	var b strings.Builder
	b.WriteString("permissions: {\n  publish: {allow: [")
	writeSubjects(&b, p.Publish)
	b.WriteString("]}\n  subscribe: {allow: [")
	writeSubjects(&b, p.Subscribe)
	b.WriteString("]}\n  allow_responses: true\n}\n")
	return b.String()
}

func writeSubjects(b *strings.Builder, subjects []string) {
	for i, s := range subjects {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(b, "\n    %q", s)
	}
	b.WriteString("\n  ")
}
