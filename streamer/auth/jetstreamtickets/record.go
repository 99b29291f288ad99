package jetstreamtickets

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/herald-notify/herald/streamer/auth"
)

// recordVersion is the format of a ticket's value; a store refuses others
// (see Redeem), so that a change of format shows during a rolling upgrade
// instead of redeeming a misread identity.
const recordVersion = 1

// record is a ticket's value: the identity the stream needs, and when the
// ticket expires. Times are Unix nanoseconds, exact and zone-free.
type record struct {
	Version int    `json:"v"`
	UserID  string `json:"user"`
	// Expires is the ticket's expiry; TokenExpires its token's, which the
	// stream must not outlive.
	Expires      int64  `json:"exp"`
	TokenExpires int64  `json:"tokenExp"`
	CanPublish   bool   `json:"publish,omitempty"`
	KeyID        string `json:"kid,omitempty"`
}

func encodeRecord(id auth.Identity, expires time.Time) ([]byte, error) {
	value, err := json.Marshal(record{
		Version: recordVersion, UserID: id.UserID,
		Expires: expires.UnixNano(), TokenExpires: id.ExpiresAt.UnixNano(),
		CanPublish: id.CanPublish, KeyID: id.KeyID,
	})
	if err != nil {
		return nil, fmt.Errorf("failed to encode a ticket record: %w", err)
	}
	return value, nil
}

func decodeRecord(value []byte) (record, error) {
	var rec record
	if err := json.Unmarshal(value, &rec); err != nil {
		return record{}, fmt.Errorf("cannot be read: %w", err)
	}
	if rec.Version != recordVersion {
		return record{}, fmt.Errorf("has version %d, this streamer reads %d", rec.Version, recordVersion)
	}
	return rec, nil
}

func (r record) expires() time.Time { return time.Unix(0, r.Expires) }

func (r record) identity() auth.Identity {
	return auth.Identity{UserID: r.UserID, ExpiresAt: time.Unix(0, r.TokenExpires), CanPublish: r.CanPublish, KeyID: r.KeyID}
}
