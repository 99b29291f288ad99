package server_test

import (
	"crypto/rand"
	"errors"
	"reflect"
	"slices"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/controllers/resources"
	"github.com/herald-notify/herald/internal/testutil/streamertest"
	"github.com/herald-notify/herald/streamer/auth"
	"github.com/herald-notify/herald/streamer/server"
)

// The streamer and the operator agree on which settings need new pods: the
// streamer applies a change of every other field of the spec live, and the
// operator's pod-template hash moves on exactly the start-only ones. Every
// field of the spec is walked by reflection, so a field added later is
// covered without anyone remembering this test.

// apiPackage is the import path of the API types, whose structs the walk
// descends into; fields of other types (durations, Kubernetes types) are
// leaves, changed whole.
var apiPackage = reflect.TypeFor[notifyv1alpha1.NotificationChannelSpec]().PkgPath()

// specLeaves are the JSON paths ("spec.auth.issuer") of every leaf field of
// the spec.
func specLeaves() []string {
	var leaves []string
	var walk func(t reflect.Type, path string)
	walk = func(t reflect.Type, path string) {
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || t.PkgPath() != apiPackage {
			leaves = append(leaves, path)
			return
		}
		for i := range t.NumField() {
			walk(t.Field(i).Type, path+"."+jsonName(t.Field(i)))
		}
	}
	walk(reflect.TypeFor[notifyv1alpha1.NotificationChannelSpec](), "spec")
	return leaves
}

// jsonName is the name of a field in the API's JSON.
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

// fieldAt is the field of spec at path, allocating the structs on the way.
func fieldAt(spec *notifyv1alpha1.NotificationChannelSpec, path string) reflect.Value {
	v := reflect.ValueOf(spec).Elem()
	for _, name := range strings.Split(path, ".")[1:] {
		if v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		i := slices.IndexFunc(reflect.VisibleFields(v.Type()), func(f reflect.StructField) bool { return jsonName(f) == name })
		Expect(i).NotTo(BeNumerically("<", 0), "%s has no field %s", v.Type(), name)
		v = v.Field(i)
	}
	return v
}

// change sets field to a valid value other than its own. A field of a type
// it does not know fails the spec: add the type.
func change(field reflect.Value, path string) {
	GinkgoHelper()
	switch p := field.Addr().Interface().(type) {
	case *string:
		*p += "changed"
	case *int32:
		*p++
	case *bool:
		*p = !*p
	case **int32:
		*p = new(ptrOr(*p) + 1)
	case **bool:
		// Unset is true for every boolean of the spec (networkPolicy.enabled).
		*p = new(*p != nil && !**p)
	case **metav1.Duration:
		*p = &metav1.Duration{Duration: ptrOr(*p).Duration + time.Second}
	case *[]string:
		*p = append(*p, "https://changed.example.com")
	case *map[string]string:
		*p = map[string]string{"changed.example.com/key": "yes"}
	case *[]notifyv1alpha1.JWTAlgorithm:
		*p = append(*p, notifyv1alpha1.HS512)
	case *[]notifyv1alpha1.TokenSource:
		*p = append(*p, notifyv1alpha1.TokenSourceQueryParameter)
	case *notifyv1alpha1.UserLimitPolicy:
		*p = other(*p, notifyv1alpha1.UserLimitReplaceOldest, notifyv1alpha1.UserLimitReject)
	case *notifyv1alpha1.BrokerType:
		*p = other(*p, notifyv1alpha1.BrokerEmbedded, notifyv1alpha1.BrokerNATS)
	case *notifyv1alpha1.ServiceType:
		*p = other(*p, notifyv1alpha1.ServiceTypeClusterIP, notifyv1alpha1.ServiceTypeLoadBalancer)
	case *corev1.ResourceRequirements:
		p.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("123m")}
	case *[]corev1.Toleration:
		*p = append(*p, corev1.Toleration{Key: "changed.example.com/key", Operator: corev1.TolerationOpExists})
	case *[]notifyv1alpha1.NetworkPolicyPeer:
		*p = append(*p, notifyv1alpha1.NetworkPolicyPeer{IPBlock: &notifyv1alpha1.IPBlock{CIDR: "192.0.2.0/24"}})
	case **corev1.Affinity:
		*p = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{}}
	default:
		Fail("the test cannot change " + path + " of type " + field.Type().String() + ": teach change the type")
	}
}

// ptrOr is *p, or the zero value when p is nil.
func ptrOr[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// other is b when v is a, else a.
func other[T comparable](v, a, b T) T {
	if v == a {
		return b
	}
	return a
}

// startOnlySettingOf is the start-only setting path is (or is in), or "".
func startOnlySettingOf(path string) string {
	for _, setting := range notifyv1alpha1.StartOnlySettings() {
		if path == setting || strings.HasPrefix(path, setting+".") {
			return setting
		}
	}
	return ""
}

// configHash is the operator's pod-template hash of a channel with spec.
func configHash(spec notifyv1alpha1.NotificationChannelSpec) string {
	return resources.ConfigHash(resources.Inputs{
		Channel:      &notifyv1alpha1.NotificationChannel{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "app"}, Spec: spec},
		DefaultImage: "ghcr.io/herald-notify/herald:v0.0.0-test",
	})
}

var _ = Describe("the start-only settings", func() {
	// setSpec applies spec with keys for every algorithm it may name: an
	// HMAC key long enough for HS512.
	setSpec := func(s *streamer, spec notifyv1alpha1.NotificationChannelSpec) error {
		GinkgoHelper()
		secret := make([]byte, 64)
		_, _ = rand.Read(secret)
		keys, err := auth.ParseKeys(spec.Auth.Algorithms, map[string][]byte{streamertest.KeyID: secret})
		Expect(err).NotTo(HaveOccurred())
		return s.srv.SetSpec(spec, keys)
	}
	leaves := specLeaves()

	It("walks every field of the spec, into the nested structs", func() {
		for _, setting := range notifyv1alpha1.StartOnlySettings() {
			Expect(slices.ContainsFunc(leaves, func(l string) bool { return startOnlySettingOf(l) == setting })).To(BeTrue(),
				"%s names a field of the spec", setting)
		}
		// A field added to the spec is live unless it is listed as
		// start-only. This list makes whoever adds one decide: if the
		// streamer reads it only at start, add it to the start-only
		// settings; if it applies it live (or does not read it), add it here.
		var live []string
		for _, l := range leaves {
			if startOnlySettingOf(l) == "" {
				live = append(live, l)
			}
		}
		Expect(live).To(ConsistOf(
			"spec.replicas", "spec.image",
			"spec.auth.algorithms", "spec.auth.issuer", "spec.auth.audiences", "spec.auth.userIdClaim", "spec.auth.leeway",
			"spec.auth.tokenSources", "spec.auth.cookieName", "spec.auth.ticketTTL", "spec.auth.expiryWarning",
			"spec.auth.publishGrant.claim", "spec.auth.publishGrant.value",
			"spec.connections.maxPerUser", "spec.connections.userLimitPolicy", "spec.connections.maxPerPod",
			"spec.connections.keepAliveInterval", "spec.connections.sendQueueBytes",
			"spec.cors.allowedOrigins", "spec.drain.gracePeriod", "spec.drain.reconnectJitter",
			"spec.pod.resources", "spec.pod.nodeSelector", "spec.pod.tolerations", "spec.pod.affinity",
			"spec.pod.annotations", "spec.pod.priorityClassName",
			"spec.service.type", "spec.service.port", "spec.service.annotations",
			"spec.autoscaling.minReplicas", "spec.autoscaling.maxReplicas", "spec.autoscaling.targetCPUUtilizationPercentage",
			"spec.networkPolicy.enabled", "spec.networkPolicy.httpFrom", "spec.networkPolicy.metricsFrom",
		))
	})

	for _, path := range leaves {
		setting := startOnlySettingOf(path)
		if setting != "" {
			It("keeps the running "+path+", reports "+setting+" and rolls the pods on a change", func() {
				s := startStreamer(nil)
				before := s.srv.Spec()
				spec := *before.DeepCopy()
				change(fieldAt(&spec, path), path)

				var restart *server.RestartError
				Expect(errors.As(setSpec(s, spec), &restart)).To(BeTrue())
				Expect(restart.Fields).To(Equal([]string{setting}))
				Expect(equality.Semantic.DeepEqual(s.srv.Spec(), before)).To(BeTrue(), "the running spec is unchanged")
				Expect(configHash(spec)).NotTo(Equal(configHash(before)))
			})
			continue
		}
		It("applies a change of "+path+" live", func() {
			s := startStreamer(nil)
			before := s.srv.Spec()
			spec := *before.DeepCopy()
			change(fieldAt(&spec, path), path)
			Expect(equality.Semantic.DeepEqual(spec, before)).To(BeFalse(), "the change changed something")

			Expect(setSpec(s, spec)).To(Succeed())
			Expect(equality.Semantic.DeepEqual(s.srv.Spec(), spec)).To(BeTrue(), "the running spec is the new one")
			if path == "spec.image" {
				// Not a setting: the hash covers the image the pods run.
				Expect(configHash(spec)).NotTo(Equal(configHash(before)))
				return
			}
			Expect(configHash(spec)).To(Equal(configHash(before)), "the pods do not roll")
		})
	}
})
