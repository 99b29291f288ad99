package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/auth"
)

const (
	// defaultTokenTTL is how long a minted token lives unless --ttl says
	// otherwise: long enough to try things out, short enough to forget.
	defaultTokenTTL = time.Hour
	// maxTokenTTL bounds --ttl. The command mints tokens for development and
	// tests; a day covers a working session, and a leaked token stays
	// harmful for at most that long. Production tokens come from the
	// application's own identity provider.
	maxTokenTTL = 24 * time.Hour
)

// tokenOptions are the parsed flags of `herald token`.
type tokenOptions struct {
	keyFile   string
	alg       v1alpha1.JWTAlgorithm
	kid       string
	subject   string
	issuer    string
	audiences stringList
	ttl       time.Duration
	publish   bool
	grant     v1alpha1.PublishGrantSpec
	claims    claimList
}

// runToken implements `herald token`: it prints a signed JWT, and nothing
// else, so that `TOKEN=$(herald token ...)` works in a shell. An HMAC key file
// is used byte for byte, a trailing newline included, exactly as the streamer
// reads the same file put in its key Secret with `--from-file`.
func runToken(args []string, stdout, _ io.Writer) error {
	opts, err := parseTokenFlags(args, stdout)
	if err != nil {
		return err
	}
	key, err := readSigningKey(opts.keyFile)
	if err != nil {
		return err
	}
	token, err := mintToken(opts, key, time.Now())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, token)
	return err
}

// parseTokenFlags parses and checks the flags of `herald token`. Every error
// wraps errUsage and names the flag at fault.
func parseTokenFlags(args []string, stdout io.Writer) (tokenOptions, error) {
	opts := tokenOptions{claims: claimList{}}
	flags := flag.NewFlagSet("token", flag.ContinueOnError)
	flags.StringVar(&opts.keyFile, "key", "", "signing key file (required): the raw shared secret for HS*, a PEM private key (PKCS #8, PKCS #1 or SEC 1) otherwise")
	alg := flags.String("alg", string(v1alpha1.HS256), "JWS algorithm: "+auth.JoinAlgorithms(v1alpha1.JWTAlgorithms))
	flags.StringVar(&opts.kid, "kid", "", "key id written to the header; the streamer needs it when its key Secret holds more than one key")
	flags.StringVar(&opts.subject, "subject", "", "user id, written to \"sub\" (required)")
	flags.StringVar(&opts.issuer, "issuer", "", "issuer, written to \"iss\"")
	flags.Var(&opts.audiences, "audience", "audience, written to \"aud\" (repeatable)")
	flags.DurationVar(&opts.ttl, "ttl", defaultTokenTTL, "lifetime of the token, at most "+maxTokenTTL.String())
	flags.BoolVar(&opts.publish, "publish", false, "add the publish grant, so the token may use the publish API")
	flags.StringVar(&opts.grant.Claim, "grant-claim", v1alpha1.DefaultPublishGrantClaim, "claim that --publish writes the grant to (the channel's auth.publishGrant.claim)")
	flags.StringVar(&opts.grant.Value, "grant-value", v1alpha1.DefaultPublishGrantValue, "grant that --publish writes (the channel's auth.publishGrant.value)")
	flags.Var(&opts.claims, "claim", "extra string claim as key=value, e.g. a custom user-id claim (repeatable)")
	if err := parseFlags(flags, args, stdout); err != nil {
		return tokenOptions{}, err
	}
	if flags.NArg() > 0 {
		return tokenOptions{}, fmt.Errorf("%w: unexpected argument %q", errUsage, flags.Arg(0))
	}
	opts.alg = v1alpha1.JWTAlgorithm(*alg)
	if err := opts.validate(); err != nil {
		return tokenOptions{}, fmt.Errorf("%w: %w", errUsage, err)
	}
	return opts, nil
}

// validate checks the flags against each other and their bounds.
func (o tokenOptions) validate() error {
	switch {
	case o.keyFile == "":
		return errors.New("--key is required")
	case !slices.Contains(v1alpha1.JWTAlgorithms, o.alg):
		return fmt.Errorf("--alg %q is not one of %s", o.alg, auth.JoinAlgorithms(v1alpha1.JWTAlgorithms))
	case o.subject == "":
		return errors.New("--subject is required")
	case slices.Contains(o.audiences, ""):
		return errors.New("--audience must not be empty")
	case o.ttl <= 0:
		return fmt.Errorf("--ttl must be positive, not %s", o.ttl)
	case o.ttl > maxTokenTTL:
		return fmt.Errorf("--ttl %s is more than the maximum of %s", o.ttl, maxTokenTTL)
	case o.grant.Claim == "":
		return errors.New("--grant-claim must not be empty")
	case o.grant.Value == "" || strings.ContainsFunc(o.grant.Value, unicode.IsSpace):
		return fmt.Errorf("--grant-value %q must be one word: the claim may hold several grants separated by spaces", o.grant.Value)
	}
	return o.checkClaimClashes()
}

// claimOwner is a flag of `herald token` and the claims it writes.
type claimOwner struct {
	flag   string
	claims []string
}

// claimOwners are the flags that always write their claims; --publish writes
// the grant claim too.
var claimOwners = []claimOwner{
	{flag: "--subject", claims: []string{"sub"}},
	{flag: "--issuer", claims: []string{"iss"}},
	{flag: "--audience", claims: []string{"aud"}},
	{flag: "--ttl", claims: []string{"exp", "iat", "nbf"}},
}

// checkClaimClashes refuses --claim values for claims another flag writes, so
// that no flag is silently overridden.
func (o tokenOptions) checkClaimClashes() error {
	owners := claimOwners
	if o.publish {
		owners = append(slices.Clip(owners), claimOwner{flag: "--publish", claims: []string{o.grant.Claim}})
	}
	for _, owner := range owners {
		for _, name := range owner.claims {
			if _, given := o.claims[name]; given {
				return fmt.Errorf("--claim %q: the claim is written by %s", name, owner.flag)
			}
		}
	}
	return nil
}

// readSigningKey reads the --key file. A missing or unreadable file is a
// usage error: the flag's value is wrong.
func readSigningKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err != nil {
		var pathErr *fs.PathError
		if errors.As(err, &pathErr) {
			err = pathErr.Err
		}
		return nil, fmt.Errorf("%w: --key: cannot read %s: %w", errUsage, path, err)
	}
	return key, nil
}

// mintToken signs the token opts describe, issued at now. A key that does not
// fit --alg is a usage error naming both flags.
func mintToken(opts tokenOptions, key []byte, now time.Time) (string, error) {
	claims := auth.TokenClaims{
		Subject:      opts.subject,
		Issuer:       opts.issuer,
		Audience:     opts.audiences,
		IssuedAt:     now,
		ExpiresAt:    now.Add(opts.ttl),
		Publish:      opts.publish,
		PublishGrant: opts.grant,
		Extra:        opts.claims.extra(),
	}
	token, err := auth.Sign(claims, opts.alg, opts.kid, key)
	if err != nil {
		return "", fmt.Errorf("%w: --key %s with --alg %s: %w", errUsage, opts.keyFile, opts.alg, err)
	}
	return token, nil
}

// stringList is a repeatable string flag.
type stringList []string

// String implements flag.Value.
func (l *stringList) String() string { return strings.Join(*l, ",") }

// Set implements flag.Value: each use of the flag appends one value.
func (l *stringList) Set(value string) error {
	*l = append(*l, value)
	return nil
}

// claimList is the repeatable --claim key=value flag.
type claimList map[string]string

// String implements flag.Value.
func (c *claimList) String() string {
	pairs := make([]string, 0, len(*c))
	for _, name := range slices.Sorted(maps.Keys(*c)) {
		pairs = append(pairs, name+"="+(*c)[name])
	}
	return strings.Join(pairs, ",")
}

// Set implements flag.Value: it adds one claim, refusing a repeated name.
func (c *claimList) Set(value string) error {
	name, claim, found := strings.Cut(value, "=")
	if !found || name == "" {
		return errors.New("must be key=value")
	}
	if _, given := (*c)[name]; given {
		return fmt.Errorf("claim %q is given twice", name)
	}
	(*c)[name] = claim
	return nil
}

// extra returns the claims as auth.TokenClaims.Extra, nil when there are none.
func (c claimList) extra() map[string]any {
	if len(c) == 0 {
		return nil
	}
	extra := make(map[string]any, len(c))
	for name, value := range c {
		extra[name] = value
	}
	return extra
}
