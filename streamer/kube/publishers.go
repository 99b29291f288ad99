package kube

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/streamer/auth"
)

// PublishSubresource is what a publisher must be allowed to create on the
// channel: `notificationchannels/publish`, granted with an ordinary Role.
const PublishSubresource = "publish"

// Bounds of the review cache.
const (
	// reviewCacheTTL is how long a review's answer is reused: a revoked
	// RoleBinding takes effect within it.
	reviewCacheTTL = 10 * time.Second
	// reviewCacheSize bounds the cached answers.
	reviewCacheSize = 4096
	// reviewTimeout bounds one TokenReview and SubjectAccessReview.
	reviewTimeout = 5 * time.Second
)

// PublisherReviewer authenticates publishers by their Kubernetes
// ServiceAccount token (TokenReview) and authorizes them by RBAC on the
// channel's publish subresource (SubjectAccessReview). Answers are cached
// briefly, keyed by a hash of the token, so a busy publisher costs no API
// call per request.
type PublisherReviewer struct {
	clientset kubernetes.Interface
	namespace string
	channel   string
	now       func() time.Time

	mu    sync.Mutex
	cache map[[sha256.Size]byte]review
}

// review is a cached answer.
type review struct {
	identity auth.Identity
	err      error
	expires  time.Time
}

// NewPublisherReviewer returns a reviewer for publishers to the channel.
func NewPublisherReviewer(clientset kubernetes.Interface, channel *notifyv1alpha1.NotificationChannel) *PublisherReviewer {
	return &PublisherReviewer{
		clientset: clientset, namespace: channel.Namespace, channel: channel.Name, now: time.Now,
		cache: map[[sha256.Size]byte]review{},
	}
}

// Verify authenticates and authorizes a publisher's token. The identity's
// user is the ServiceAccount's username; CanPublish is always true, as a
// publisher without the right gets an error naming what to grant.
func (p *PublisherReviewer) Verify(token string) (auth.Identity, error) {
	key := sha256.Sum256([]byte(token))
	now := p.now()
	p.mu.Lock()
	cached, ok := p.cache[key]
	p.mu.Unlock()
	if ok && now.Before(cached.expires) {
		return cached.identity, cached.err
	}

	ctx, cancel := context.WithTimeout(context.Background(), reviewTimeout)
	defer cancel()
	identity, err := p.review(ctx, token)
	var unavailable *UnavailableError
	if errors.As(err, &unavailable) {
		return identity, err // not cached: the next request tries again
	}
	p.mu.Lock()
	if len(p.cache) >= reviewCacheSize {
		p.evictExpired(now)
	}
	if len(p.cache) < reviewCacheSize {
		p.cache[key] = review{identity: identity, err: err, expires: now.Add(reviewCacheTTL)}
	}
	p.mu.Unlock()
	return identity, err
}

// UnavailableError is a review the Kubernetes API could not answer: the
// publisher should retry, its token may well be good.
type UnavailableError struct{ Err error }

func (e *UnavailableError) Error() string {
	return "the Kubernetes API could not review the ServiceAccount token: " + e.Err.Error()
}

// Unwrap returns the API error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Temporary marks the failure as the server's (publish answers 503).
func (e *UnavailableError) Temporary() bool { return true }

func (p *PublisherReviewer) review(ctx context.Context, token string) (auth.Identity, error) {
	tr, err := p.clientset.AuthenticationV1().TokenReviews().Create(ctx, &authenticationv1.TokenReview{
		Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: []string{auth.PublishTokenAudience}},
	}, metav1.CreateOptions{})
	if err != nil {
		return auth.Identity{}, reviewFailure(err)
	}
	if !tr.Status.Authenticated {
		reason := tr.Status.Error
		if reason == "" {
			reason = "not authenticated"
		}
		return auth.Identity{}, fmt.Errorf("the ServiceAccount token was refused by the Kubernetes API (%s); use a projected token with audience %s", reason, auth.PublishTokenAudience)
	}
	user := tr.Status.User
	extra := map[string]authorizationv1.ExtraValue{}
	for k, v := range user.Extra {
		extra[k] = authorizationv1.ExtraValue(v)
	}
	sar, err := p.clientset.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
		Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user.Username, UID: user.UID, Groups: user.Groups, Extra: extra,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: p.namespace, Verb: "create", Group: notifyv1alpha1.GroupVersion.Group,
				Resource: "notificationchannels", Subresource: PublishSubresource, Name: p.channel,
			},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return auth.Identity{}, reviewFailure(err)
	}
	identity := auth.Identity{UserID: user.Username, ExpiresAt: p.now().Add(reviewCacheTTL)}
	if !sar.Status.Allowed {
		return identity, &ForbiddenError{User: user.Username, Namespace: p.namespace, Channel: p.channel}
	}
	identity.CanPublish = true
	return identity, nil
}

// reviewFailure explains a failed review request: a streamer without the
// right to review tokens says what its ServiceAccount lacks.
func reviewFailure(err error) error {
	if apierrors.IsForbidden(err) {
		err = fmt.Errorf("the streamer may not create TokenReviews and SubjectAccessReviews (its ServiceAccount needs the system:auth-delegator ClusterRole): %w", err)
	}
	return &UnavailableError{Err: err}
}

// ForbiddenError is a publisher the Kubernetes API authenticated but RBAC
// does not allow to publish to the channel.
type ForbiddenError struct {
	User, Namespace, Channel string
}

// Forbidden marks the caller as known but not allowed (publish answers 403).
func (e *ForbiddenError) Forbidden() bool { return true }

func (e *ForbiddenError) Error() string {
	return fmt.Sprintf("%s may not publish to channel %s/%s: grant it create on notificationchannels/publish (resourceNames: [%s]) with a Role, for example the herald-publisher ClusterRole in a RoleBinding",
		e.User, e.Namespace, e.Channel, e.Channel)
}

func (p *PublisherReviewer) evictExpired(now time.Time) {
	for k, r := range p.cache {
		if !now.Before(r.expires) {
			delete(p.cache, k)
		}
	}
}
