package e2e

import (
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// networkPolicy is what the test reads of a networking.k8s.io/v1 NetworkPolicy.
type networkPolicy struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Spec       struct {
		PodSelector labelSelector `yaml:"podSelector"`
		PolicyTypes []string      `yaml:"policyTypes"`
		Ingress     []struct {
			From []struct {
				PodSelector       *labelSelector `yaml:"podSelector"`
				NamespaceSelector *labelSelector `yaml:"namespaceSelector"`
				IPBlock           *struct {
					CIDR string `yaml:"cidr"`
				} `yaml:"ipBlock"`
			} `yaml:"from"`
			Ports []struct {
				Port     any    `yaml:"port"`
				Protocol string `yaml:"protocol"`
			} `yaml:"ports"`
		} `yaml:"ingress"`
	} `yaml:"spec"`
}

type labelSelector struct {
	MatchLabels      map[string]string `yaml:"matchLabels"`
	MatchExpressions []struct {
		Key      string   `yaml:"key"`
		Operator string   `yaml:"operator"`
		Values   []string `yaml:"values"`
	} `yaml:"matchExpressions"`
}

// matches is Kubernetes' label selector semantics for the operators used
// here (an unknown operator matches nothing: the test then fails closed).
func (s labelSelector) matches(labels map[string]string) bool {
	for k, v := range s.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	for _, e := range s.MatchExpressions {
		v, ok := labels[e.Key]
		switch e.Operator {
		case "In":
			if !ok || !slices.Contains(e.Values, v) {
				return false
			}
		case "Exists":
			if !ok {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// renderChartTemplate renders the template expressions the values' objects
// use as Temporal's chart 1.6 renders extraObjects (tpl, with the release
// "temporal" of chart "temporal"); any other expression fails the test.
func renderChartTemplate(t *testing.T, s string) string {
	t.Helper()
	for expr, v := range map[string]string{
		`{{ include "temporal.fullname" . }}`: "temporal",
		`{{ include "temporal.name" . }}`:     "temporal",
		`{{ .Release.Name }}`:                 "temporal",
	} {
		s = strings.ReplaceAll(s, expr, v)
	}
	if i := strings.Index(s, "{{"); i >= 0 {
		t.Fatalf("extraObjects: a template expression the test does not render: %.60s", s[i:])
	}
	return s
}

// checkInternalFrontendPolicy: the values ship a NetworkPolicy that admits
// only the release's Temporal server pods, admin-tools and the namespace Job
// to the internal-frontend's gRPC (7236) and HTTP (7246) ports, whose callers
// are all system admin.
func checkInternalFrontendPolicy(t *testing.T, objects []string) {
	t.Helper()
	var pol *networkPolicy
	for _, o := range objects {
		var np networkPolicy
		if err := yaml.Unmarshal([]byte(renderChartTemplate(t, o)), &np); err != nil {
			t.Fatalf("extraObjects: %v", err)
		}
		if np.Kind == "NetworkPolicy" && np.Spec.PodSelector.matches(chartPodLabels("internal-frontend", "temporal")) {
			pol = &np
		}
	}
	if pol == nil {
		t.Fatal("extraObjects has no NetworkPolicy selecting the internal-frontend pods: whoever reaches its ports (7236 gRPC, 7246 HTTP, on 0.0.0.0) is system admin")
	}
	if pol.APIVersion != "networking.k8s.io/v1" || !slices.Contains(pol.Spec.PolicyTypes, "Ingress") {
		t.Errorf("internal-frontend NetworkPolicy: apiVersion %q policyTypes %q, want networking.k8s.io/v1 with Ingress", pol.APIVersion, pol.Spec.PolicyTypes)
	}
	for _, c := range []string{"frontend", "history", "matching", "worker"} {
		if pol.Spec.PodSelector.matches(chartPodLabels(c, "temporal")) {
			t.Errorf("internal-frontend NetworkPolicy also selects the %s pods", c)
		}
	}
	// allowed reports whether the policy admits a connection to port from a
	// pod of the namespace with labels (nil: from outside the cluster).
	allowed := func(labels map[string]string, port int) bool {
		for _, rule := range pol.Spec.Ingress {
			portOK := len(rule.Ports) == 0
			for _, p := range rule.Ports {
				switch v := p.Port.(type) {
				case int:
					portOK = portOK || v == port
				case nil:
					portOK = true
				}
			}
			if !portOK {
				continue
			}
			if len(rule.From) == 0 {
				return true
			}
			for _, peer := range rule.From {
				switch {
				case peer.IPBlock != nil:
					if labels == nil {
						return true
					}
				case peer.NamespaceSelector != nil:
					return true // pods of other namespaces too: too wide for this test
				case peer.PodSelector != nil && labels != nil && peer.PodSelector.matches(labels):
					return true
				}
			}
		}
		return false
	}
	for _, port := range []int{7236, 7246} {
		for _, c := range []string{"frontend", "internal-frontend", "history", "matching", "worker", "admintools", "database"} {
			if !allowed(chartPodLabels(c, "temporal"), port) {
				t.Errorf("internal-frontend NetworkPolicy: the %s pods cannot reach port %d", c, port)
			}
		}
		for name, labels := range map[string]map[string]string{
			"outside the cluster":       nil,
			"the Web UI":                chartPodLabels("web", "temporal"),
			"another release's history": chartPodLabels("history", "other"),
			"an application pod":        {"app": "orders"},
		} {
			if allowed(labels, port) {
				t.Errorf("internal-frontend NetworkPolicy admits %s to port %d", name, port)
			}
		}
	}
}

// chartPodLabels are the labels Temporal's chart 1.6 gives a pod of
// component in a release of chart "temporal" (temporal.resourceLabels).
func chartPodLabels(component, release string) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":       "temporal",
		"app.kubernetes.io/instance":   release,
		"app.kubernetes.io/component":  component,
		"app.kubernetes.io/managed-by": "Helm",
		"app.kubernetes.io/part-of":    "temporal",
	}
}
