package jetstreamlog

// KeyToken makes one token ('.' separates them) of a key-value key of any
// string, such as a user id: escaped as in StreamName with '~' written '_',
// since keys allow only [-/_=.A-Za-z0-9]. '_' then only ever starts an
// escape, so different strings give different tokens; the empty string is
// "_", which no other string gives.
func KeyToken(s string) string {
	if s == "" {
		return "_"
	}
	return escapeWith(s, '_')
}
