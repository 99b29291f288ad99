package server

import (
	"crypto/aes"
	"crypto/cipher"
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"strings"

	"github.com/herald-notify/herald/streamer/hub"
)

// streamIDs turns the hub's numbers for this process's streams into the
// stream ids clients are given, "<replica>.<32 hex digits>", and back. The
// number is encrypted as one AES block under a key of this process, so an id
// tells nothing of other streams (the hub numbers them in turn) and one that
// was not handed out is found by no guess better than chance: a refresh with
// it is a 404, never a 403 that would tell a stream exists. Nothing is kept
// per stream.
type streamIDs struct {
	// replica starts every id; it holds only [0-9a-z] (Replicas.ID).
	replica string
	block   cipher.Block
}

// streamIDBlockHex is the length of an id's part after the replica.
const streamIDBlockHex = 2 * aes.BlockSize

func newStreamIDs(replica string) streamIDs {
	key := make([]byte, 16)
	_, _ = crand.Read(key) // never fails (crypto/rand)
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // a 16-byte key is always valid
	}
	return streamIDs{replica: replica, block: block}
}

// id is the stream id of the hub's stream n: the block holds n in its last
// eight bytes and zeros before it, which decoding checks.
func (c streamIDs) id(n hub.StreamID) string {
	var b [aes.BlockSize]byte
	binary.BigEndian.PutUint64(b[8:], uint64(n))
	c.block.Encrypt(b[:], b[:])
	return c.replica + "." + hex.EncodeToString(b[:])
}

// number is the hub's number of the stream id names, if this process handed
// it out.
func (c streamIDs) number(id string) (hub.StreamID, bool) {
	replica, rest, _ := strings.Cut(id, ".")
	if replica != c.replica || len(rest) != streamIDBlockHex {
		return 0, false
	}
	var b [aes.BlockSize]byte
	if _, err := hex.Decode(b[:], []byte(rest)); err != nil {
		return 0, false
	}
	c.block.Decrypt(b[:], b[:])
	if binary.BigEndian.Uint64(b[:8]) != 0 {
		return 0, false
	}
	return hub.StreamID(binary.BigEndian.Uint64(b[8:])), true
}
