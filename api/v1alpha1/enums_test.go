package v1alpha1_test

import (
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/internal/apiserver"
)

// The enum markers cannot name Go constants, so each enum is written twice:
// in its marker and in its Go list, which the streamer validates with. These
// specs read the generated CRDs, so the two cannot drift apart.
var _ = Describe("the Go lists of the enums", func() {
	// crdProperty is the schema of the property at path (below
	// spec.versions[0].schema.openAPIV3Schema.properties) in the CRD file.
	crdProperty := func(file string, path ...string) map[string]any {
		GinkgoHelper()
		objs, err := apiserver.ReadManifests(filepath.Join(repoRoot, "config", "crd", "bases", file))
		Expect(err).NotTo(HaveOccurred())
		Expect(objs).To(HaveLen(1))
		versions, _, err := unstructured.NestedSlice(objs[0].Object, "spec", "versions")
		Expect(err).NotTo(HaveOccurred())
		Expect(versions).To(HaveLen(1))
		fields := []string{"schema", "openAPIV3Schema"}
		for _, p := range path {
			fields = append(fields, "properties", p)
		}
		property, found, err := unstructured.NestedMap(versions[0].(map[string]any), fields...)
		Expect(err).NotTo(HaveOccurred())
		Expect(found).To(BeTrue(), "no property %v in %s", path, file)
		return property
	}

	It("has the SystemEvent CRD's priorities and its default", func() {
		priority := crdProperty("notify.herald.dev_systemevents.yaml", "spec", "priority")
		Expect(priority["enum"]).To(Equal(asAny(notifyv1alpha1.Priorities)))
		Expect(priority["default"]).To(BeEquivalentTo(notifyv1alpha1.DefaultSystemEventPriority))
	})

	It("has the NotificationChannel CRD's JWT algorithms and its defaults", func() {
		algorithms := crdProperty("notify.herald.dev_notificationchannels.yaml", "spec", "auth", "algorithms")
		items, _ := algorithms["items"].(map[string]any)
		Expect(items["enum"]).To(Equal(asAny(notifyv1alpha1.JWTAlgorithms)))
		Expect(algorithms["default"]).To(Equal(asAny(notifyv1alpha1.DefaultAlgorithms)))
	})
})

// asAny is values as the []any of strings that a parsed YAML list is.
func asAny[T ~string](values []T) []any {
	list := make([]any, len(values))
	for i, v := range values {
		list[i] = string(v)
	}
	return list
}
