package main

import (
	"encoding/json"
	"reflect"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// builtinCRDs are the CustomResourceDefinitions the chart may render objects of, made from their operators' own Go
// types: the Prometheus operator's ServiceMonitor. The schema has every field of those types (so a misspelt or
// misplaced field is refused), though not the enums and patterns of the operator's generated CRD.
func builtinCRDs() []*apiextv1.CustomResourceDefinition {
	return []*apiextv1.CustomResourceDefinition{
		crdFromType("monitoring.coreos.com", "v1", "ServiceMonitor", "servicemonitors", reflect.TypeOf(monitoringv1.ServiceMonitor{})),
	}
}

// crdFromType defines a namespaced custom resource whose schema is derived from its Go type's spec and status.
func crdFromType(group, version, kind, plural string, t reflect.Type) *apiextv1.CustomResourceDefinition {
	props := map[string]apiextv1.JSONSchemaProps{}
	for _, name := range []string{"Spec", "Status"} {
		if f, ok := t.FieldByName(name); ok {
			props[jsonName(f)] = schemaFor(f.Type, map[reflect.Type]bool{})
		}
	}
	return &apiextv1.CustomResourceDefinition{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition"},
		ObjectMeta: metav1.ObjectMeta{Name: plural + "." + group},
		Spec: apiextv1.CustomResourceDefinitionSpec{
			Group: group,
			Names: apiextv1.CustomResourceDefinitionNames{Kind: kind, ListKind: kind + "List", Plural: plural, Singular: strings.ToLower(kind)},
			Scope: apiextv1.NamespaceScoped,
			Versions: []apiextv1.CustomResourceDefinitionVersion{{
				Name: version, Served: true, Storage: true,
				Schema: &apiextv1.CustomResourceValidation{OpenAPIV3Schema: &apiextv1.JSONSchemaProps{Type: "object", Properties: props}},
			}},
		},
	}
}

var (
	timeType        = reflect.TypeOf(metav1.Time{})
	durationType    = reflect.TypeOf(metav1.Duration{})
	intOrStringType = reflect.TypeOf(intstr.IntOrString{})
	quantityType    = reflect.TypeOf(resource.Quantity{})
	rawType         = reflect.TypeOf(runtime.RawExtension{})
	jsonType        = reflect.TypeOf(apiextv1.JSON{})
	marshalerType   = reflect.TypeOf((*json.Marshaler)(nil)).Elem()
)

// schemaFor is the structural schema of what encoding/json makes of a Go type. A type that marshals itself, or
// that contains itself, accepts anything.
func schemaFor(t reflect.Type, stack map[reflect.Type]bool) apiextv1.JSONSchemaProps {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case timeType:
		return apiextv1.JSONSchemaProps{Type: "string", Format: "date-time"}
	case durationType:
		return apiextv1.JSONSchemaProps{Type: "string"}
	case intOrStringType, quantityType:
		return apiextv1.JSONSchemaProps{XIntOrString: true}
	case rawType, jsonType:
		return anything()
	}
	if stack[t] || (t.Kind() != reflect.String && reflect.PointerTo(t).Implements(marshalerType)) {
		return anything()
	}
	switch t.Kind() {
	case reflect.String:
		return apiextv1.JSONSchemaProps{Type: "string"}
	case reflect.Bool:
		return apiextv1.JSONSchemaProps{Type: "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return apiextv1.JSONSchemaProps{Type: "integer"}
	case reflect.Float32, reflect.Float64:
		return apiextv1.JSONSchemaProps{Type: "number"}
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return apiextv1.JSONSchemaProps{Type: "string", Format: "byte"}
		}
		items := schemaFor(t.Elem(), stack)
		return apiextv1.JSONSchemaProps{Type: "array", Items: &apiextv1.JSONSchemaPropsOrArray{Schema: &items}}
	case reflect.Map:
		values := schemaFor(t.Elem(), stack)
		return apiextv1.JSONSchemaProps{Type: "object", AdditionalProperties: &apiextv1.JSONSchemaPropsOrBool{Allows: true, Schema: &values}}
	case reflect.Struct:
		stack[t] = true
		defer delete(stack, t)
		props := map[string]apiextv1.JSONSchemaProps{}
		addFields(t, stack, props)
		return apiextv1.JSONSchemaProps{Type: "object", Properties: props}
	default:
		return anything()
	}
}

// addFields adds a struct's JSON fields to props, flattening embedded structs as encoding/json does.
func addFields(t reflect.Type, stack map[reflect.Type]bool, props map[string]apiextv1.JSONSchemaProps) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name := jsonName(f)
		ft := f.Type
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		if f.Anonymous && ft.Kind() == reflect.Struct && (strings.Split(tag, ",")[0] == "") {
			addFields(ft, stack, props)
			continue
		}
		props[name] = schemaFor(f.Type, stack)
	}
}

func jsonName(f reflect.StructField) string {
	if name := strings.Split(f.Tag.Get("json"), ",")[0]; name != "" {
		return name
	}
	return f.Name
}

func anything() apiextv1.JSONSchemaProps {
	return apiextv1.JSONSchemaProps{XPreserveUnknownFields: ptr(true)}
}

func ptr[T any](v T) *T { return &v }
