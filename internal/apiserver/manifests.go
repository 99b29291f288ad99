package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

// ReadManifests reads the Kubernetes objects of a multi-document YAML file.
func ReadManifests(path string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	objs, err := ReadManifestsFrom(data)
	if err != nil {
		return nil, fmt.Errorf("failed to read %s: %w", path, err)
	}
	return objs, nil
}

// ReadManifestsFrom reads the Kubernetes objects of multi-document YAML.
func ReadManifestsFrom(data []byte) ([]*unstructured.Unstructured, error) {
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []*unstructured.Unstructured
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		obj := &unstructured.Unstructured{}
		if err := yaml.Unmarshal(doc, &obj.Object); err != nil {
			return nil, err
		}
		if len(obj.Object) == 0 {
			continue // an empty document, e.g. after a trailing "---"
		}
		objs = append(objs, obj)
	}
}

// Apply server-side applies the objects into namespace (for namespaced kinds
// without one) under the given field owner.
func Apply(ctx context.Context, c client.Client, namespace, fieldOwner string, objs ...*unstructured.Unstructured) error {
	for _, obj := range objs {
		if obj.GetNamespace() == "" && namespace != "" {
			namespaced, err := c.IsObjectNamespaced(obj)
			if err != nil {
				return fmt.Errorf("failed to look up the scope of %s: %w", obj.GroupVersionKind().Kind, err)
			}
			if namespaced {
				obj.SetNamespace(namespace)
			}
		}
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(obj), client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
			return fmt.Errorf("failed to apply %s %s: %w", obj.GetKind(), client.ObjectKeyFromObject(obj), err)
		}
	}
	return nil
}
