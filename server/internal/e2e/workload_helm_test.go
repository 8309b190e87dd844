package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.temporal.io/server/common/config"
	"gopkg.in/yaml.v3"

	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
	"github.com/temporal-opa/temporal-opa/server/internal/authzconfig"
)

// workerManifest is what the test reads of a ServiceAccount or Deployment.
type workerManifest struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
	Spec struct {
		Template struct {
			Spec struct {
				ServiceAccountName string `yaml:"serviceAccountName"`
				Containers         []struct {
					Env []struct {
						Name  string `yaml:"name"`
						Value string `yaml:"value"`
					} `yaml:"env"`
					VolumeMounts []struct {
						Name      string `yaml:"name"`
						MountPath string `yaml:"mountPath"`
						SubPath   string `yaml:"subPath"`
					} `yaml:"volumeMounts"`
				} `yaml:"containers"`
				Volumes []struct {
					Name      string `yaml:"name"`
					Projected struct {
						Sources []struct {
							ServiceAccountToken *struct {
								Audience          string `yaml:"audience"`
								ExpirationSeconds int    `yaml:"expirationSeconds"`
								Path              string `yaml:"path"`
							} `yaml:"serviceAccountToken"`
						} `yaml:"sources"`
					} `yaml:"projected"`
				} `yaml:"volumes"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

// The workload-identity example of the Helm values: the commented issuers
// list of authz.yaml, uncommented, passes temporal-opa's strict reader, and
// the worker Deployment of examples/worker-deployment.yaml asks for projected
// tokens that its cluster issuer entry accepts (audience, lifetime), in a
// file the worker can re-read.
func TestWorkloadIdentityHelmExample(t *testing.T) {
	pod := loadChartPod(t)
	authz := pod.files[strings.TrimPrefix(strings.TrimPrefix(pod.authzPath, pod.mountPath), "/")]
	issuersYAML, err := commentedBlock(authz, "# issuers:")
	if err != nil {
		t.Fatalf("authz.yaml of values.yaml: %v", err)
	}
	var auth config.Authorization
	if err := pod.values.Server.Config.Authorization.Decode(&auth); err != nil {
		t.Fatal(err)
	}
	settings, err := authzconfig.Parse("authz.yaml (issuers example)", []byte("jwt:\n"+issuersYAML), claimmapper.FromTemporal(&auth))
	if err != nil {
		t.Fatalf("the issuers example of values.yaml, uncommented:\n%s\n%v", issuersYAML, err)
	}
	var cluster *claimmapper.Config
	entries := settings.JWT.IssuerConfigs()
	for i, e := range entries {
		if e.FetchTokenFile != "" {
			cluster = &entries[i]
		}
	}
	if len(entries) != 2 || cluster == nil {
		t.Fatalf("issuers example: %d entries, want the Keycloak realm and the cluster's issuer (with fetch_token_file)", len(entries))
	}
	const saDir = "/var/run/secrets/kubernetes.io/serviceaccount/"
	if cluster.CAFile != saDir+"ca.crt" || cluster.FetchTokenFile != saDir+"token" {
		t.Errorf("cluster issuer: ca_file %q, fetch_token_file %q: want the files Kubernetes mounts in every pod under %s", cluster.CAFile, cluster.FetchTokenFile, saDir)
	}
	for _, e := range entries {
		if e.FetchTokenFile == "" && (e.Issuer != "https://keycloak.example/realms/myrealm" || !slices.Equal(e.Audiences, []string{auth.Audience})) {
			t.Errorf("Keycloak entry %s with audiences %v: want the realm of the values with global.authorization's audience", e.Issuer, e.Audiences)
		}
	}

	data, err := os.ReadFile(filepath.Join(repoRoot(t), "server", "deploy", "helm", "examples", "worker-deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var sa, deploy *workerManifest
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var m workerManifest
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("worker-deployment.yaml: %v", err)
		}
		switch m.Kind {
		case "ServiceAccount":
			sa = &m
		case "Deployment":
			deploy = &m
		}
	}
	if sa == nil || deploy == nil {
		t.Fatal("worker-deployment.yaml: want a ServiceAccount and a Deployment")
	}
	spec := deploy.Spec.Template.Spec
	if spec.ServiceAccountName != sa.Metadata.Name || deploy.Metadata.Namespace != sa.Metadata.Namespace {
		t.Errorf("the Deployment runs as %s/%s, not as the ServiceAccount %s/%s", deploy.Metadata.Namespace, spec.ServiceAccountName, sa.Metadata.Namespace, sa.Metadata.Name)
	}
	found := 0
	for _, v := range spec.Volumes {
		for _, src := range v.Projected.Sources {
			tok := src.ServiceAccountToken
			if tok == nil {
				continue
			}
			found++
			if !slices.Contains(cluster.Audiences, tok.Audience) {
				t.Errorf("serviceAccountToken audience %q is not among the cluster issuer's audiences %v", tok.Audience, cluster.Audiences)
			}
			if tok.ExpirationSeconds < 600 || time.Duration(tok.ExpirationSeconds)*time.Second > cluster.MaxLifetime {
				t.Errorf("expirationSeconds %d: Kubernetes wants at least 600, and max_lifetime %s refuses more", tok.ExpirationSeconds, cluster.MaxLifetime)
			}
			file := ""
			for _, c := range spec.Containers {
				for _, m := range c.VolumeMounts {
					if m.Name != v.Name {
						continue
					}
					if m.SubPath != "" {
						t.Errorf("volume %s is mounted with subPath: the kubelet never updates it, the worker would keep an expired token", v.Name)
					}
					file = strings.TrimSuffix(m.MountPath, "/") + "/" + tok.Path
				}
				for _, e := range c.Env {
					if e.Name == "TEMPORAL_TOKEN_FILE" && e.Value != file {
						t.Errorf("TEMPORAL_TOKEN_FILE %q, but the token is mounted at %q", e.Value, file)
					}
				}
			}
			if file == "" {
				t.Errorf("volume %s is mounted in no container", v.Name)
			}
		}
	}
	if found != 1 {
		t.Errorf("the Deployment has %d serviceAccountToken sources, want 1", found)
	}
	t.Logf("worker %s (sub system:serviceaccount:%s:%s) asks for aud %v tokens; the cluster issuer entry accepts them", deploy.Metadata.Name, sa.Metadata.Namespace, sa.Metadata.Name, cluster.Audiences)
}

// commentedBlock finds the line that is exactly prefix after its indentation
// and returns it with the comment lines that follow it at that indentation,
// uncommented ("# " removed) and indented by two spaces.
func commentedBlock(text, prefix string) (string, error) {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		trimmed := strings.TrimLeft(l, " ")
		if trimmed != prefix {
			continue
		}
		lead := l[:len(l)-len(trimmed)] + "# "
		var out []string
		for _, l := range lines[i:] {
			if !strings.HasPrefix(l, lead) {
				break
			}
			out = append(out, "  "+strings.TrimPrefix(l, lead))
		}
		return strings.Join(out, "\n") + "\n", nil
	}
	return "", fmt.Errorf("no commented %q block", prefix)
}
