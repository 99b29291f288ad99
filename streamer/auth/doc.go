// Package auth authenticates the streamer's clients and publishers with JWTs,
// following the JSON Web Token Best Current Practices (RFC 8725).
//
// A [KeySet] is parsed from the channel's key Secret and its algorithm
// allow-list ([ParseKeys]); a [Verifier] checks tokens against it and yields
// an [Identity]; keys rotate by handing the Verifier a new KeySet
// ([Verifier.SetKeys]) without dropping a request. A [TicketStore] trades a
// verified Identity for a short-lived single-use ticket, so that browsers,
// whose EventSource cannot send headers, never put a JWT in a URL; it keeps
// them in one process, and [Tickets] is what a store shared by a channel's
// replicas implements (package jetstreamtickets). [Sign]
// mints tokens for the `herald token` command and for tests.
package auth
