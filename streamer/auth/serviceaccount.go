package auth

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// PublishTokenAudience is the audience a publisher's Kubernetes
// ServiceAccount token must be issued for (a projected token with
// `audience: notify.herald.dev`). A token for the API server's own audience
// is refused: the streamer could otherwise replay it against the API server.
const PublishTokenAudience = "notify.herald.dev"

// LooksLikeServiceAccountToken reports whether token is a JWT whose
// unverified claims say a Kubernetes API server issued it for
// PublishTokenAudience: only such tokens are worth a TokenReview, so a
// flood of junk tokens costs the API server nothing.
func LooksLikeServiceAccountToken(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(token) > DefaultMaxTokenBytes {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false
	}
	var claims struct {
		Audience   audience        `json:"aud"`
		Kubernetes json.RawMessage `json:"kubernetes.io"`
	}
	if json.Unmarshal(payload, &claims) != nil || len(claims.Kubernetes) == 0 {
		return false
	}
	for _, a := range claims.Audience {
		if a == PublishTokenAudience {
			return true
		}
	}
	return false
}

// audience is the "aud" claim: one string or a list.
type audience []string

func (a *audience) UnmarshalJSON(data []byte) error {
	var one string
	if json.Unmarshal(data, &one) == nil {
		*a = []string{one}
		return nil
	}
	var many []string
	err := json.Unmarshal(data, &many)
	*a = many
	return err
}
