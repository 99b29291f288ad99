// Package channelspec reads a NotificationChannel spec outside the API server
// (the streamer's --config file) and defaults and validates it with the CRD's
// own structural schema and CEL rules: the same defaults, the same rules and
// the same messages as `kubectl apply`, from one source.
package channelspec

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"weak"

	apiextensionsinternal "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	structuralschema "k8s.io/apiextensions-apiserver/pkg/apiserver/schema"
	"k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel"
	structuraldefaulting "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/defaulting"
	structuralpruning "k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning"
	apiservervalidation "k8s.io/apiextensions-apiserver/pkg/apiserver/validation"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"sigs.k8s.io/yaml"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/config"
)

// InvalidError lists everything wrong with a spec, each naming its field.
type InvalidError struct {
	// Source names where the spec came from, e.g. the file's path.
	Source string
	Errs   field.ErrorList
}

func (e *InvalidError) Error() string {
	msgs := make([]string, 0, len(e.Errs))
	for _, err := range e.Errs {
		msgs = append(msgs, err.Error())
	}
	return fmt.Sprintf("%s is invalid:\n  %s", e.Source, strings.Join(msgs, "\n  "))
}

// specSchema is the spec's part of the CRD, compiled once.
type specSchema struct {
	structural *structuralschema.Structural
	openAPI    apiservervalidation.SchemaValidator
	cel        *cel.Validator
}

// cachedSchema holds the compiled schema only while something uses it: a
// streamer decodes its --config file once at start, and the CEL programs and
// environments behind it are then megabytes it would keep for nothing.
var cachedSchema struct {
	sync.Mutex
	schema weak.Pointer[specSchema]
}

// compiled returns the compiled spec schema, compiling it again if the last
// one was collected.
func compiled() (*specSchema, error) {
	cachedSchema.Lock()
	defer cachedSchema.Unlock()
	if schema := cachedSchema.schema.Value(); schema != nil {
		return schema, nil
	}
	schema, err := compile()
	if err != nil {
		return nil, err
	}
	cachedSchema.schema = weak.Make(schema)
	return schema, nil
}

// compile turns the embedded CRD's spec schema into the validators the API
// server builds from it.
func compile() (*specSchema, error) {
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := yaml.UnmarshalStrict(config.NotificationChannelCRD, crd); err != nil {
		return nil, fmt.Errorf("failed to parse the embedded NotificationChannel CRD: %w", err)
	}
	if len(crd.Spec.Versions) != 1 || crd.Spec.Versions[0].Schema == nil {
		return nil, errors.New("the embedded NotificationChannel CRD has no single schema")
	}
	v1Spec, ok := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"]
	if !ok {
		return nil, errors.New("the embedded NotificationChannel CRD has no spec schema")
	}
	internal := &apiextensionsinternal.JSONSchemaProps{}
	if err := apiextensionsv1.Convert_v1_JSONSchemaProps_To_apiextensions_JSONSchemaProps(&v1Spec, internal, nil); err != nil {
		return nil, fmt.Errorf("failed to convert the spec schema: %w", err)
	}
	structural, err := structuralschema.NewStructural(internal)
	if err != nil {
		return nil, fmt.Errorf("the spec schema is not structural: %w", err)
	}
	openAPI, _, err := apiservervalidation.NewSchemaValidator(internal)
	if err != nil {
		return nil, fmt.Errorf("failed to build the spec's OpenAPI validator: %w", err)
	}
	return &specSchema{
		structural: structural,
		openAPI:    openAPI,
		cel:        cel.NewValidator(structural, false, celconfig.PerCallLimit),
	}, nil
}

// specPath is where the spec's fields are, as the API server names them.
var specPath = field.NewPath("spec")

// Decode parses a NotificationChannel manifest from YAML or JSON, applies the
// CRD's defaults to its spec and validates it as the API server would. The
// same manifest therefore runs locally and on a cluster. Unknown fields are
// errors, not silently dropped: a misspelt setting must not fall back to its
// default.
func Decode(ctx context.Context, source string, data []byte) (*notifyv1alpha1.NotificationChannel, error) {
	schema, err := compiled()
	if err != nil {
		return nil, err
	}
	obj, err := parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s is not a valid YAML or JSON document: %w", source, err)
	}

	errs := validateKind(obj)
	spec, ok := obj["spec"].(map[string]any)
	if !ok {
		errs = append(errs, field.Required(specPath, "a NotificationChannel spec"))
		return nil, &InvalidError{Source: source, Errs: errs}
	}
	unknown := structuralpruning.PruneWithOptions(spec, schema.structural, false, structuralschema.UnknownFieldPathOptions{
		ParentPath: []string{"spec"}, TrackUnknownFieldPaths: true,
	})
	sort.Strings(unknown)
	for _, path := range unknown {
		errs = append(errs, &field.Error{Type: field.ErrorTypeForbidden, Field: path, Detail: "unknown field, not a NotificationChannel setting"})
	}
	structuraldefaulting.Default(spec, schema.structural)
	errs = append(errs, apiservervalidation.ValidateCustomResource(specPath, spec, schema.openAPI)...)
	if len(errs) == 0 {
		// As in the API server: CEL rules run on a schema-valid object only.
		celErrs, _ := schema.cel.Validate(ctx, specPath, schema.structural, spec, nil, celconfig.RuntimeCELCostBudget)
		errs = append(errs, celErrs...)
	}
	if len(errs) > 0 {
		return nil, &InvalidError{Source: source, Errs: errs}
	}

	channel := &notifyv1alpha1.NotificationChannel{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(obj, channel, true); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	if channel.Name == "" {
		channel.Name = DefaultName
	}
	return channel, nil
}

// DefaultName names a channel whose manifest has no metadata.name.
const DefaultName = "local"

// parse decodes YAML or JSON as the API server decodes JSON: whole numbers
// become int64, which the schema's integer checks and CEL rules expect.
func parse(data []byte) (map[string]any, error) {
	jsonData, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	if err := utiljson.Unmarshal(jsonData, &obj); err != nil {
		return nil, err
	}
	if obj == nil {
		obj = map[string]any{}
	}
	return obj, nil
}

// validateKind checks that the document is a NotificationChannel of this API version.
func validateKind(obj map[string]any) field.ErrorList {
	var errs field.ErrorList
	for name, want := range map[string]string{
		"apiVersion": notifyv1alpha1.GroupVersion.String(),
		"kind":       "NotificationChannel",
	} {
		switch got, ok := obj[name]; {
		case !ok:
			errs = append(errs, field.Required(field.NewPath(name), "must be "+want))
		case got != want:
			errs = append(errs, field.NotSupported(field.NewPath(name), got, []string{want}))
		}
	}
	sort.Slice(errs, func(i, j int) bool { return errs[i].Field < errs[j].Field })
	return errs
}

// LoadFile reads and validates the NotificationChannel manifest at path.
func LoadFile(ctx context.Context, path string) (*notifyv1alpha1.NotificationChannel, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read the channel config: %w", err)
	}
	return Decode(ctx, path, data)
}
