package jetstreamlog

import (
	"errors"
	"fmt"
	"strings"
)

// maxStreamName is JetStream's limit on a stream name (it names a folder of
// the store).
const maxStreamName = 255

// StreamName is the JetStream stream of a channel: "HERALD_<ns>_<channel>",
// each part escaped by escapeName.
func StreamName(namespace, channel string) string {
	return "HERALD_" + escapeName(namespace) + "_" + escapeName(channel)
}

// Subject is the one subject a channel's events are published on:
// "herald.<ns>.<channel>.events", each part escaped by escapeName.
func Subject(namespace, channel string) string {
	return "herald." + escapeName(namespace) + "." + escapeName(channel) + ".events"
}

// InboxPrefix is the prefix of the reply subjects of a channel's replicas:
// a subject space of the channel's own, so that a NATS user limited to the
// channel (ChannelPermissions) need not read every reply in its account
// (_INBOX.>).
func InboxPrefix(namespace, channel string) string {
	return "_INBOX_herald." + escapeName(namespace) + "." + escapeName(channel)
}

// ReplicaSubject is the core NATS subject on which one replica of a channel
// answers the others' requests: "herald.<ns>.<channel>.replicas.<replica>",
// each part escaped by escapeName. The channel's stream captures only
// Subject, so these are never stored.
func ReplicaSubject(namespace, channel, replica string) string {
	return "herald." + escapeName(namespace) + "." + escapeName(channel) + ".replicas." + escapeName(replica)
}

// BucketName is the JetStream key-value bucket of a channel for purpose
// (upper case, such as "TICKETS"): "HERALD_<purpose>_<ns>_<channel>", each
// part escaped by escapeName but with 'X' instead of '~', which bucket names
// do not allow. 'X' only ever starts an escape too (upper case letters are
// escaped), so two (namespace, channel) pairs never share a bucket.
func BucketName(purpose, namespace, channel string) string {
	return "HERALD_" + purpose + "_" + escapeWith(namespace, 'X') + "_" + escapeWith(channel, 'X')
}

// escapeName keeps the characters of a Kubernetes name ([a-z0-9-]) and writes
// every other byte as '~' and two lowercase hex digits, so that "my.channel"
// becomes "my~2echannel". The result never holds '.', '*', '>', whitespace,
// path separators or '_' (JetStream forbids the first ones in names and
// subject tokens; '_' separates the parts of a stream name), and '~' only
// ever starts an escape: different names give different results, and two
// (namespace, channel) pairs never share a stream or a subject.
func escapeName(name string) string { return escapeWith(name, '~') }

// escapeWith is escapeName with escape, a byte outside [a-z0-9-], starting
// the escapes.
func escapeWith(name string, escape byte) string {
	const hex = "0123456789abcdef"
	var b strings.Builder
	b.Grow(len(name))
	for i := range len(name) {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte(escape)
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&0xf])
	}
	return b.String()
}

// checkNames refuses the names a stream cannot be made of.
func checkNames(namespace, channel string) error {
	if namespace == "" || channel == "" {
		return errors.New("a namespace and a channel are required")
	}
	if name := StreamName(namespace, channel); len(name) > maxStreamName {
		return fmt.Errorf("stream name %q is longer than JetStream's %d characters", name, maxStreamName)
	}
	return nil
}
