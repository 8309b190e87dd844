package e2e

import (
	"archive/tar"
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/config"
	"google.golang.org/protobuf/types/known/durationpb"
	"gopkg.in/yaml.v3"

	"github.com/temporal-opa/temporal-opa/policy/claimmapper"
	"github.com/temporal-opa/temporal-opa/policy/source"
	"github.com/temporal-opa/temporal-opa/server/internal/authzconfig"
	"github.com/temporal-opa/temporal-opa/server/internal/cli"
	"github.com/temporal-opa/temporal-opa/server/internal/devkey"
	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
)

// helmValues is what the tests read of server/deploy/helm/values.yaml, the
// values for Temporal's Helm chart (charts/temporal 1.6.x).
type helmValues struct {
	Server struct {
		Image struct {
			Repository string `yaml:"repository"`
			Tag        string `yaml:"tag"`
		} `yaml:"image"`
		SecurityContext struct {
			RunAsUser int `yaml:"runAsUser"`
		} `yaml:"securityContext"`
		InternalFrontend struct {
			Enabled bool `yaml:"enabled"`
		} `yaml:"internal-frontend"`
		Config struct {
			Authorization yaml.Node `yaml:"authorization"` // emitted by the chart as global.authorization
		} `yaml:"config"`
		AdditionalEnv []struct {
			Name  string `yaml:"name"`
			Value string `yaml:"value"`
		} `yaml:"additionalEnv"`
		AdditionalVolumes []struct {
			Name      string `yaml:"name"`
			Projected struct {
				Sources []struct {
					ConfigMap *struct {
						Name     string `yaml:"name"`
						Optional bool   `yaml:"optional"`
					} `yaml:"configMap"`
					Secret *struct {
						Name  string `yaml:"name"`
						Items []struct {
							Key  string `yaml:"key"`
							Path string `yaml:"path"`
						} `yaml:"items"`
					} `yaml:"secret"`
				} `yaml:"sources"`
			} `yaml:"projected"`
		} `yaml:"additionalVolumes"`
		AdditionalVolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			SubPath   string `yaml:"subPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"additionalVolumeMounts"`
	} `yaml:"server"`
	ExtraObjects []string `yaml:"extraObjects"`
}

// chartPod is what the values give a server pod of the chart: the environment
// temporal-opa adds, the directory it mounts and the files in it (from the
// ConfigMap of extraObjects).
type chartPod struct {
	values    helmValues
	raw       map[string]any
	env       []string          // server.additionalEnv as NAME=value
	mountPath string            // where the temporal-opa volume is mounted
	files     map[string]string // path under mountPath -> content, from the ConfigMap
	secrets   []string          // paths under mountPath that come from Secrets
	authzPath string            // TEMPORAL_OPA_AUTHZ_FILE
}

// chartEnvNames are the variables Temporal's chart sets in every server pod
// (templates/server-deployment.yaml); the values must not override them.
var chartEnvNames = []string{"POD_IP", "SERVICES", cli.EnvServices, cli.EnvConfigFile,
	"TEMPORAL_DEFAULT_STORE_PASSWORD", "TEMPORAL_VISIBILITY_STORE_PASSWORD", "USE_INTERNAL_FRONTEND"}

func loadChartPod(t *testing.T) chartPod {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "server", "deploy", "helm", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var p chartPod
	if err := yaml.Unmarshal(data, &p.values); err != nil {
		t.Fatalf("values.yaml: %v", err)
	}
	if err := yaml.Unmarshal(data, &p.raw); err != nil {
		t.Fatalf("values.yaml: %v", err)
	}
	s := p.values.Server
	for _, e := range s.AdditionalEnv {
		p.env = append(p.env, e.Name+"="+e.Value)
		if e.Name == cli.EnvAuthzFile {
			p.authzPath = e.Value
		}
	}
	if p.authzPath == "" {
		t.Fatalf("server.additionalEnv does not set %s", cli.EnvAuthzFile)
	}
	for _, m := range s.AdditionalVolumeMounts {
		if strings.HasPrefix(p.authzPath, strings.TrimSuffix(m.MountPath, "/")+"/") {
			if m.SubPath != "" {
				t.Errorf("server.additionalVolumeMounts %s uses subPath: the kubelet never updates it, so no hot reload", m.Name)
			}
			if !m.ReadOnly {
				t.Errorf("server.additionalVolumeMounts %s is not readOnly", m.Name)
			}
			p.mountPath = m.MountPath
			for _, v := range s.AdditionalVolumes {
				if v.Name != m.Name {
					continue
				}
				for _, src := range v.Projected.Sources {
					if src.ConfigMap != nil && !src.ConfigMap.Optional {
						p.files = configMapData(t, p.values.ExtraObjects, src.ConfigMap.Name)
					}
					if src.Secret != nil {
						for _, it := range src.Secret.Items {
							p.secrets = append(p.secrets, it.Path)
						}
					}
				}
			}
		}
	}
	if p.mountPath == "" || p.files == nil {
		t.Fatalf("%s=%s is not in a volume of server.additionalVolumeMounts whose projected ConfigMap is in extraObjects", cli.EnvAuthzFile, p.authzPath)
	}
	return p
}

// configMapData returns the data of the ConfigMap named name among the
// manifests of extraObjects.
func configMapData(t *testing.T, objects []string, name string) map[string]string {
	t.Helper()
	for _, o := range objects {
		var cm struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Data map[string]string `yaml:"data"`
		}
		if err := yaml.Unmarshal([]byte(o), &cm); err != nil {
			t.Fatalf("extraObjects: %v", err)
		}
		if cm.Kind == "ConfigMap" && cm.Metadata.Name == name {
			return cm.Data
		}
	}
	t.Fatalf("extraObjects has no ConfigMap %s", name)
	return nil
}

// writeMount writes the pod's files under dir (standing for mountPath), after
// replacing in each the strings of edits (old -> new); every old string must
// be found. It returns the content written.
func (p chartPod) writeMount(t *testing.T, dir string, edits map[string][2]string, secrets map[string]string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, content := range p.files {
		out[name] = content
	}
	for old, e := range edits {
		name, repl := e[0], e[1]
		if !strings.Contains(out[name], old) {
			t.Fatalf("values.yaml: %s of the ConfigMap no longer holds %q", name, old)
		}
		out[name] = strings.ReplaceAll(out[name], old, repl)
	}
	for path, content := range secrets {
		out[path] = content
	}
	for name, content := range out {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// The Helm values: Temporal's chart keys as chart 1.6 reads them, the
// environment and whole-volume mount temporal-opa needs, and settings files
// that pass temporal-opa's strict readers.
func TestHelmValues(t *testing.T) {
	p := loadChartPod(t)
	s := p.values.Server
	if s.Image.Repository == "" || s.Image.Tag == "" || strings.HasPrefix(s.Image.Repository, "temporalio/") {
		t.Errorf("server.image %s:%s: want this project's image", s.Image.Repository, s.Image.Tag)
	}
	if s.SecurityContext.RunAsUser != 1000 {
		t.Errorf("server.securityContext.runAsUser %d, want 1000 (the image's user)", s.SecurityContext.RunAsUser)
	}
	if !s.InternalFrontend.Enabled {
		t.Error("server.internal-frontend.enabled is not true: the system worker would call the public frontend without a token")
	}
	if server, _ := p.raw["server"].(map[string]any); server["internalFrontend"] != nil {
		t.Error("server.internalFrontend: chart 1.6 fails the render on this old key; use server.internal-frontend")
	}
	checkInternalFrontendPolicy(t, p.values.ExtraObjects)
	for _, e := range s.AdditionalEnv {
		for _, n := range chartEnvNames {
			if e.Name == n {
				t.Errorf("server.additionalEnv sets %s, which the chart sets itself", n)
			}
		}
	}
	// global.authorization: Temporal's own struct, strictly.
	var auth config.Authorization
	if err := s.Config.Authorization.Decode(&auth); err != nil {
		t.Fatalf("server.config.authorization: %v", err)
	}
	// The mounted files, read as start reads them.
	dir := t.TempDir()
	mountRel := func(path string) string { return strings.TrimPrefix(strings.TrimPrefix(path, p.mountPath), "/") }
	secrets := map[string]string{}
	for _, s := range p.secrets {
		secrets[s] = "token\n"
	}
	files := p.writeMount(t, dir, map[string][2]string{p.mountPath + "/": {mountRel(p.authzPath), dir + "/"}}, secrets)
	settings, err := authzconfig.Parse(p.authzPath, []byte(files[mountRel(p.authzPath)]), claimmapper.FromTemporal(&auth))
	if err != nil {
		t.Fatalf("authz file of the values: %v", err)
	}
	if settings.JWT.Issuer == "" || settings.JWT.PermissionsClaim != auth.PermissionsClaimName || len(settings.JWT.Audiences) != 1 {
		t.Errorf("jwt settings %+v: want the Keycloak issuer, with the claim and audience of server.config.authorization", settings.JWT)
	}
	if settings.Policy.OPAConfig == "" || settings.Policy.OPA == nil {
		t.Fatal("the authz file names no policy.opa_config")
	}
	opaFile := mountRel(strings.Replace(settings.Policy.OPAConfig, dir, p.mountPath, 1))
	if _, err := source.ParseConfig([]byte(files[opaFile])); err != nil {
		t.Errorf("%s: %v", opaFile, err)
	}
	if !strings.Contains(files[opaFile], p.mountPath+"/"+p.secrets[0]) {
		t.Errorf("%s does not read the bundle server's token from the Secret mounted at %s/%s", opaFile, p.mountPath, p.secrets[0])
	}
}

// The image: built from ./temporal-opa with buildah (make image), it runs
// start-dev serving SDK calls, and "start" with nothing but the environment
// and files Temporal's chart and the Helm values give a server pod.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the image test builds and runs the container image")
	}
	if _, err := exec.LookPath("buildah"); err != nil {
		if os.Geteuid() != 0 {
			t.Skip("buildah is not installed and cannot be installed without root: run 'sudo make deps' (apt-get install buildah)")
		}
		t.Fatal("buildah is not installed: run 'make deps' (apt-get install buildah)")
	}
	if os.Geteuid() != 0 {
		t.Skip("buildah builds and runs the image here as root (--isolation chroot); run the test as root")
	}
	root := repoRoot(t)
	bin := serverBinary(t, root)
	if f, err := elf.Open(bin); err != nil {
		t.Fatal(err)
	} else {
		for _, prog := range f.Progs {
			if prog.Type == elf.PT_INTERP {
				t.Fatalf("%s is dynamically linked (built with cgo): a FROM scratch image cannot run it; build with CGO_ENABLED=0", bin)
			}
		}
		_ = f.Close()
	}

	work, err := os.MkdirTemp("", "temporal-opa-image-")
	if err != nil {
		t.Fatal(err)
	}
	storage := filepath.Join(work, "buildah")
	buildah := func(args ...string) *exec.Cmd {
		return exec.Command("buildah", append([]string{"--root", storage + "/storage", "--runroot", storage + "/run", "--storage-driver", "vfs"}, args...)...)
	}
	t.Cleanup(func() {
		_ = buildah("rm", "--all").Run()
		_ = os.RemoveAll(work)
	})

	began := time.Now()
	archive := filepath.Join(work, "temporal-opa.oci.tar")
	build := exec.Command(filepath.Join(root, "server", "deploy", "build-image.sh"), bin, archive, "temporal-opa:e2e")
	build.Env = append(os.Environ(), "BUILDAH_ROOT="+storage)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build-image.sh: %v\n%s", err, out)
	}
	fi, err := os.Stat(archive)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("image built in %s: %s, %d MiB", time.Since(began).Round(time.Millisecond), filepath.Base(archive), fi.Size()>>20)
	checkOCIArchive(t, archive)

	out, err := buildah("from", "--quiet", "oci-archive:"+archive).Output()
	if err != nil {
		t.Fatalf("buildah from: %v", err)
	}
	ctr := strings.TrimSpace(string(out))
	out, err = buildah("inspect", ctr).Output()
	if err != nil {
		t.Fatalf("buildah inspect: %v", err)
	}
	var inspect struct {
		OCIv1 struct {
			Config struct {
				User       string   `json:"User"`
				Entrypoint []string `json:"Entrypoint"`
				Cmd        []string `json:"Cmd"`
				WorkingDir string   `json:"WorkingDir"`
			} `json:"config"`
		} `json:"OCIv1"`
	}
	if err := json.Unmarshal(out, &inspect); err != nil {
		t.Fatal(err)
	}
	cfg := inspect.OCIv1.Config
	if cfg.User != "1000:1000" || strings.Join(cfg.Entrypoint, " ") != "/usr/local/bin/temporal-opa" || strings.Join(cfg.Cmd, " ") != "start" {
		t.Fatalf("image config %+v: want user 1000:1000, entrypoint /usr/local/bin/temporal-opa, command start", cfg)
	}
	img := &container{t: t, buildah: buildah, name: ctr, entrypoint: cfg.Entrypoint[0]}

	t.Run("start-dev serves SDK calls", func(t *testing.T) {
		img.t = t
		began := time.Now()
		port := testutil.FreePort(t, "127.0.0.1")
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		p := img.run(nil, nil, cfg.Entrypoint[0], "start-dev", "--port", strconv.Itoa(port), "--http-port", "-1", "--status-addr", "-1")
		ctx := ctxFor(t, 2*time.Minute)
		if err := waitHealthy(ctx, addr, p.exited); err != nil {
			t.Fatalf("%v\n%s", err, p.output())
		}
		token := p.waitLine(ctx, "export TEMPORAL_API_KEY=")
		t.Logf("start-dev in the container serving in %s", time.Since(began).Round(time.Millisecond))
		user := dialAt(t, addr, "default", rawToken("Bearer "+token))
		runGreet(ctx, t, user, runWorker(t, user), "the container")
		_, err := dialAt(t, addr, "default", rawToken("")).WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: "default"})
		wantDenied(t, "DescribeNamespace without a token", err, "requires a token")
		p.stop(time.Minute)
		if !strings.Contains(p.output(), "Stopped.") {
			t.Errorf("start-dev did not say Stopped.:\n%s", p.output())
		}
	})

	t.Run("start with the Helm chart's environment", func(t *testing.T) {
		img.t = t
		testChartPod(t, img, cfg.Entrypoint, cfg.Cmd)
	})
	t.Logf("image test: %s", time.Since(began).Round(time.Millisecond))
}

// testChartPod runs the image as the chart runs a server pod: entrypoint and
// command unchanged, the chart's environment plus the values' additionalEnv,
// the chart's config file and the values' volume mounted where they say. The
// outside world is local: an OIDC issuer standing for Keycloak, a bundle
// server, SQLite instead of PostgreSQL, free ports instead of 7233...
func testChartPod(t *testing.T, img *container, entrypoint, cmd []string) {
	pod := loadChartPod(t)
	key, err := devkey.Generate()
	if err != nil {
		t.Fatal(err)
	}
	oidc := newOIDCIssuer(t, key)
	priv, pub := testutil.ECKeys(t)
	bundles := testutil.NewBundleServer(t, "chart-bundle-token", remoteBundle(t, "chart-r1", priv))
	port := map[string]int{}
	for i, p := range testutil.FreePorts(t, "127.0.0.1", 12) {
		port[[]string{"fe", "feMembership", "feHTTP", "in", "inMembership", "inHTTP", "history", "historyMembership",
			"matching", "matchingMembership", "workerMembership", "status"}[i]] = p
	}

	// The values' files, pointed at the local issuer and bundle server.
	var auth config.Authorization
	if err := pod.values.Server.Config.Authorization.Decode(&auth); err != nil {
		t.Fatal(err)
	}
	opaDir := t.TempDir()
	authzName := strings.TrimPrefix(strings.TrimPrefix(pod.authzPath, pod.mountPath), "/")
	pemStart := strings.Index(pod.files["opa.yaml"], "-----BEGIN PUBLIC KEY-----")
	pemEnd := strings.Index(pod.files["opa.yaml"], "-----END PUBLIC KEY-----") + len("-----END PUBLIC KEY-----")
	if pemStart < 0 || pemEnd < pemStart {
		t.Fatal("opa.yaml of the values has no public key")
	}
	keyIndent := pod.files["opa.yaml"][strings.LastIndex(pod.files["opa.yaml"][:pemStart], "\n")+1 : pemStart]
	secrets := map[string]string{}
	for _, s := range pod.secrets {
		secrets[s] = "chart-bundle-token\n"
	}
	pod.writeMount(t, opaDir, map[string][2]string{
		"https://keycloak.example/realms/myrealm": {authzName, oidc.URL},
		"127.0.0.1:7253":                       {authzName, fmt.Sprintf("127.0.0.1:%d", port["status"])},
		"https://bundles.example.internal":     {"opa.yaml", bundles.URL},
		pod.files["opa.yaml"][pemStart:pemEnd]: {"opa.yaml", strings.TrimSuffix(strings.TrimPrefix(indent(pub, keyIndent), keyIndent), "\n")},
	}, secrets)
	if err := os.Chmod(opaDir, 0o755); err != nil { // the image's user reads it
		t.Fatal(err)
	}

	// The chart's config (templates/server-configmap.yaml rendered for these
	// values), SQLite in memory instead of PostgreSQL.
	authYAML, err := yaml.Marshal(&pod.values.Server.Config.Authorization)
	if err != nil {
		t.Fatal(err)
	}
	configDir, dynDir := t.TempDir(), t.TempDir()
	extra := testutil.FreePorts(t, "127.0.0.1", 2)
	pprofPort, metricsPort := extra[0], extra[1]
	r := strings.NewReplacer("@AUTH@", indent(string(authYAML), "    "), "@FE@", strconv.Itoa(port["fe"]), "@FEM@", strconv.Itoa(port["feMembership"]),
		"@FEH@", strconv.Itoa(port["feHTTP"]), "@IN@", strconv.Itoa(port["in"]), "@INM@", strconv.Itoa(port["inMembership"]),
		"@INH@", strconv.Itoa(port["inHTTP"]), "@H@", strconv.Itoa(port["history"]), "@HM@", strconv.Itoa(port["historyMembership"]),
		"@M@", strconv.Itoa(port["matching"]), "@MM@", strconv.Itoa(port["matchingMembership"]), "@WM@", strconv.Itoa(port["workerMembership"]),
		"@PPROF@", strconv.Itoa(pprofPort), "@METRICS@", strconv.Itoa(metricsPort), "@DB@", randomName("chart"))
	for dir, files := range map[string]map[string]string{
		configDir: {"config_template.yaml": r.Replace(chartConfigTemplate)},
		dynDir:    {"dynamic_config.yaml": "frontend.enableUpdateWorkflowExecution:\n  - value: true\n"},
	} {
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}

	env := append([]string{
		"POD_IP=127.0.0.1",
		"SERVICES=frontend:internal-frontend:history:matching:worker",
		cli.EnvServices + "=frontend,internal-frontend,history,matching,worker", // one pod per service in the chart; all in one here (SQLite in memory)
		cli.EnvConfigFile + "=/etc/temporal/config/config_template.yaml",
		"TEMPORAL_DEFAULT_STORE_PASSWORD=",
		"TEMPORAL_VISIBILITY_STORE_PASSWORD=",
		"USE_INTERNAL_FRONTEND=1",
	}, pod.env...)
	volumes := []string{configDir + ":/etc/temporal/config:ro", dynDir + ":/etc/temporal/dynamic_config:ro", opaDir + ":" + pod.mountPath + ":ro"}
	began := time.Now()
	p := img.run(env, volumes, append(append([]string{}, entrypoint...), cmd...)...)
	ctx := ctxFor(t, 3*time.Minute)
	addr := fmt.Sprintf("127.0.0.1:%d", port["fe"])
	if err := waitHealthy(ctx, addr, p.exited); err != nil {
		t.Fatalf("%v\n%s", err, p.tail(40))
	}
	t.Logf("start with the chart's environment serving in %s", time.Since(began).Round(time.Millisecond))
	settings := p.waitLine(ctx, "temporal-opa: settings")
	t.Logf("start-up log: temporal-opa: settings %s", settings)
	for _, want := range []string{`"config-from":"` + cli.EnvConfigFile, `"services-from":"` + cli.EnvServices, `"authz-from":"` + cli.EnvAuthzFile} {
		if !strings.Contains(settings, want) {
			t.Errorf("start-up log %q lacks %s", settings, want)
		}
	}

	// Tokens as Keycloak would issue them for these values.
	tokens := func(perms ...string) *oidcTokens {
		return &oidcTokens{key: key, iss: oidc.URL, aud: auth.Audience, perms: perms}
	}
	admin := dialAt(t, addr, "chart", tokens("temporal-system:admin"))
	_, err = admin.WorkflowService().RegisterNamespace(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace: "chart", WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour)})
	wantOK(t, "RegisterNamespace with a Keycloak-shaped admin token", err)
	user := dialAt(t, addr, "chart", tokens("chart:read", "chart:write"))
	tq := runWorker(t, user)
	var run client.WorkflowRun
	retry(ctx, t, "StartWorkflowExecution", func() error {
		run, err = user.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: randomName("greet"), TaskQueue: tq}, Greet, "chart")
		return err
	})
	var got string
	wantOK(t, "workflow result", run.Get(ctx, &got))
	wantDenied(t, "TerminateWorkflowExecution under the signed remote bundle", user.TerminateWorkflow(ctx, run.GetID(), "", "x"), "remote bundle: terminations are frozen")
	if n := bundles.Requests(); n < 1 {
		t.Errorf("bundle server saw %d requests", n)
	}
	p.stop(time.Minute)
}

// chartConfigTemplate is the config_template.yaml that Temporal's chart
// (templates/server-configmap.yaml) renders for the values, a "# enable-template"
// file the server renders in turn, with SQLite in memory and free ports.
const chartConfigTemplate = `# enable-template
log:
  stdout: true
  level: "info"

persistence:
  defaultStore: default
  visibilityStore: default
  numHistoryShards: 1
  datastores:
    default:
      sql:
        pluginName: sqlite
        databaseName: @DB@
        connectAddr: localhost
        connectProtocol: tcp
        password: {{ env "TEMPORAL_DEFAULT_STORE_PASSWORD" | quote }}
        connectAttributes:
          mode: memory
          cache: shared

global:
  membership:
    name: temporal
    maxJoinDuration: 30s
    broadcastAddress: {{ env "POD_IP" | quote }}

  pprof:
    port: @PPROF@

  metrics:
    tags:
      type: {{ env "TEMPORAL_SERVICES" | quote }}
    prometheus:
      timerType: histogram
      listenAddress: "127.0.0.1:@METRICS@"
  authorization:
@AUTH@
services:
  frontend:
    rpc:
      grpcPort: @FE@
      httpPort: @FEH@
      membershipPort: @FEM@
      bindOnIP: "0.0.0.0"
  internal-frontend:
    rpc:
      grpcPort: @IN@
      httpPort: @INH@
      membershipPort: @INM@
      bindOnIP: "0.0.0.0"
  history:
    rpc:
      grpcPort: @H@
      membershipPort: @HM@
      bindOnIP: "0.0.0.0"
  matching:
    rpc:
      grpcPort: @M@
      membershipPort: @MM@
      bindOnIP: "0.0.0.0"
  worker:
    rpc:
      membershipPort: @WM@
      bindOnIP: "0.0.0.0"

clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: "active"
  currentClusterName: "active"
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: "temporal-frontend"
      rpcAddress: "127.0.0.1:@FE@"
      httpAddress: "127.0.0.1:@FEH@"

dcRedirectionPolicy:
  policy: "noop"
  toDC: ""

archival:
  status: "disabled"

dynamicConfigClient:
  filepath: "/etc/temporal/dynamic_config/dynamic_config.yaml"
  pollInterval: "10s"
`

// oidcTokens is a HeadersProvider minting tokens as an OIDC provider would:
// issuer, audience and the permissions claim.
type oidcTokens struct {
	key   *devkey.Key
	iss   string
	aud   string
	perms []string
}

func (p *oidcTokens) GetHeaders(context.Context) (map[string]string, error) {
	tok, err := p.key.Mint(devkey.Claims{Subject: "chart-" + strings.Join(p.perms, "+"), Permissions: p.perms, Issuer: p.iss, Audience: []string{p.aud}})
	if err != nil {
		return nil, err
	}
	return map[string]string{"Authorization": "Bearer " + tok}, nil
}

// newOIDCIssuer serves OIDC discovery and the JWKS of key, as Keycloak does
// for a realm.
func newOIDCIssuer(t *testing.T, key *devkey.Key) *httptest.Server {
	t.Helper()
	jwks, err := key.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			_ = json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "jwks_uri": srv.URL + "/protocol/openid-connect/certs"})
		case "/protocol/openid-connect/certs":
			_, _ = w.Write(jwks)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// container is a working container of the image.
type container struct {
	t          *testing.T
	buildah    func(args ...string) *exec.Cmd
	name       string
	entrypoint string
}

// containerProcess is one "buildah run" of a container.
type containerProcess struct {
	t      *testing.T
	cmd    *exec.Cmd
	argv0  string
	mu     sync.Mutex
	out    strings.Builder
	exited chan error
}

// run runs argv in the container (buildah run --isolation chroot: the host's
// network, so loopback ports are shared) with env and volumes (HOST:CONTAINER[:ro]).
func (c *container) run(env, volumes []string, argv ...string) *containerProcess {
	t := c.t
	t.Helper()
	args := []string{"run", "--isolation", "chroot"}
	for _, e := range env {
		args = append(args, "--env", e)
	}
	for _, v := range volumes {
		args = append(args, "--volume", v)
	}
	args = append(append(args, c.name, "--"), argv...)
	cmd := c.buildah(args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	p := &containerProcess{t: t, cmd: cmd, argv0: argv[0], exited: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		t.Fatalf("buildah run: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	go func() {
		err := cmd.Wait()
		_ = pw.Close()
		p.exited <- err
		close(p.exited)
	}()
	t.Cleanup(func() {
		if pid, ok := p.pid(); ok {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		_ = cmd.Process.Kill()
		<-p.exited
	})
	return p
}

func (p *containerProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *containerProcess) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.output(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitLine returns the first line of output containing s, without s's prefix.
func (p *containerProcess) waitLine(ctx context.Context, s string) string {
	p.t.Helper()
	for {
		for _, l := range strings.Split(p.output(), "\n") {
			if i := strings.Index(l, s); i >= 0 {
				return strings.TrimSpace(l[i+len(s):])
			}
		}
		select {
		case <-ctx.Done():
			p.t.Fatalf("no line with %q in the output:\n%s", s, p.tail(40))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// pid is the host pid of the process buildah runs in the container: chroot
// isolation has no pid namespace, and buildah does not forward signals.
func (p *containerProcess) pid() (int, bool) {
	parent := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) > 1 {
			parent[pid], _ = strconv.Atoi(fields[1])
		}
	}
	for pid := range parent {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if argv0, _, _ := strings.Cut(string(cmdline), "\x00"); argv0 != p.argv0 {
			continue
		}
		for a := parent[pid]; a > 1; a = parent[a] {
			if a == p.cmd.Process.Pid {
				return pid, true
			}
		}
	}
	return 0, false
}

// stop sends SIGTERM to the process in the container, as the kubelet does, and
// fails the test unless it exits with status 0 within limit.
func (p *containerProcess) stop(limit time.Duration) {
	t := p.t
	t.Helper()
	pid, ok := p.pid()
	if !ok {
		t.Fatalf("no process %s under buildah run", p.argv0)
	}
	began := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v, want status 0\n%s", err, p.tail(30))
		}
		t.Logf("stopped in %s", time.Since(began).Round(time.Millisecond))
	case <-time.After(limit):
		t.Errorf("no exit within %s of SIGTERM", limit)
	}
}

// checkOCIArchive checks that archive is an OCI image layout in a tar, as
// docker load, podman load and skopeo read it.
func checkOCIArchive(t *testing.T, archive string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := map[string]bool{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", archive, err)
		}
		seen[h.Name] = true
		if h.Name == "index.json" {
			var idx struct {
				Manifests []struct {
					Annotations map[string]string `json:"annotations"`
				} `json:"manifests"`
			}
			if err := json.NewDecoder(tr).Decode(&idx); err != nil || len(idx.Manifests) != 1 {
				t.Errorf("index.json: %v, %d manifests; want one", err, len(idx.Manifests))
			}
		}
	}
	if !seen["oci-layout"] || !seen["index.json"] {
		t.Errorf("%s is not an OCI archive: files %v", archive, seen)
	}
}

// repoRoot is the directory of go.mod.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		if filepath.Dir(dir) == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = filepath.Dir(dir)
	}
}

// serverBinary is the temporal-opa binary to put in the image:
// $TEMPORAL_OPA_BIN (make test passes ./temporal-opa, just built), else one
// built now with CGO_ENABLED=0 (with the build cache of make, only a link).
func serverBinary(t *testing.T, root string) string {
	t.Helper()
	if bin := os.Getenv("TEMPORAL_OPA_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("TEMPORAL_OPA_BIN: %v", err)
		}
		return bin
	}
	bin := filepath.Join(t.TempDir(), "temporal-opa")
	began := time.Now()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "./server") // as make build
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./server: %v\n%s", err, out)
	}
	t.Logf("built %s in %s (TEMPORAL_OPA_BIN unset)", bin, time.Since(began).Round(time.Millisecond))
	return bin
}
