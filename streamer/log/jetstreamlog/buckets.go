package jetstreamlog

import "strings"

// BucketName is the JetStream key-value bucket that holds a channel's shared
// state of one kind (purpose, lower-case letters, such as "presence"):
// "HERALD_<ns>_<channel>_<purpose>", namespace and channel escaped as in
// StreamName with '~' written 'X', since bucket names allow only
// [A-Za-z0-9_-]. escapeName never writes an upper-case letter, so two
// channels still never share a bucket.
func BucketName(namespace, channel, purpose string) string {
	return "HERALD_" + strings.ReplaceAll(escapeName(namespace), "~", "X") + "_" +
		strings.ReplaceAll(escapeName(channel), "~", "X") + "_" + purpose
}

// KeyToken makes one token ('.' separates them) of a key-value key of any
// string, such as a user id: escaped as in StreamName with '~' written '_',
// since keys allow only [-/_=.A-Za-z0-9]. '_' then only ever starts an
// escape, so different strings give different tokens; the empty string is
// "_", which no other string gives.
func KeyToken(s string) string {
	if s == "" {
		return "_"
	}
	return strings.ReplaceAll(escapeName(s), "~", "_")
}
