package presence

import "github.com/herald-notify/herald/streamer/log/jetstreamlog"

// Keys of the bucket. A user's record is "u.<user>", a replica's heartbeat
// "r.<replica>", each one token (jetstreamlog.KeyToken); the prefixes let a
// replica watch the two kinds apart.
const (
	userPrefix    = "u."
	replicaPrefix = "r."
)

func userKey(user string) string       { return userPrefix + jetstreamlog.KeyToken(user) }
func replicaKey(replica string) string { return replicaPrefix + jetstreamlog.KeyToken(replica) }
