package e2e

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.temporal.io/api/serviceerror"

	"github.com/temporal-opa/temporal-opa/server/internal/cli"
	"github.com/temporal-opa/temporal-opa/server/internal/devserver"
	"github.com/temporal-opa/temporal-opa/server/internal/testutil"
)

// runStartDevChild is the main of the start-dev process of
// TestStartDevListeners: "temporal-opa start-dev" as server/main.go runs it,
// until SIGINT or SIGTERM.
func runStartDevChild(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	o, err := cli.ParseStartDev(args, cli.OSEnv())
	if err == nil {
		err = devserver.Run(ctx, o, os.Stdout, os.Stderr)
	}
	code, msg := cli.Exit(err)
	if msg != "" {
		fmt.Fprintln(os.Stderr, msg)
	}
	return code
}

// attackBody is the body of the request: grpc-gateway reads a
// text/plain body as JSON, so a web page can send it with fetch(no-cors).
const attackBody = `{"workflowType":{"name":"Evil"},"taskQueue":{"name":"q"}}`

// TestStartDevListeners runs "start-dev --ip 0.0.0.0" with every HTTP surface
// on (HTTP API, UI, status, metrics) as a process of its own, lists the TCP
// sockets that process listens on (from /proc, not from its flags), and on
// each one sends what a web page can send:
//
//   - the request, POST /api/v1/namespaces/default/workflows/<id>
//     with a text/plain body and a foreign Origin, to the port's own address;
//   - the same with a DNS-rebinding Host (evil.example:<port>), as a page of
//     evil.example re-resolved to this machine sends it, same-origin
//     (Sec-Fetch-Site: same-origin passes the UI's CSRF check);
//   - GETs of every path start-dev serves with that rebinding Host.
//
// No request may be answered 2xx, and no workflow may have started. A port
// that speaks no HTTP (gRPC, membership) fails the requests: refused too.
// --ip exposes only the frontend: the UI, metrics, status, JWKS and every
// internal service listen on loopback.
func TestStartDevListeners(t *testing.T) {
	if _, err := os.Stat("/proc/self/net/tcp"); err != nil {
		t.Skip("needs Linux /proc to list the process's sockets")
	}
	// The judge of this test catches a port that serves HTTP and accepts.
	t.Run("judge", func(t *testing.T) {
		open := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }))
		defer open.Close()
		_, port, _ := net.SplitHostPort(open.Listener.Addr().String())
		p, _ := strconv.Atoi(port)
		if got := probe(listenSocket{ip: net.IPv4(127, 0, 0, 1), port: p}, "evil-judge"); len(got) == 0 {
			t.Fatal("a server that accepts every request passed the probe")
		}
	})

	ports := testutil.FreePorts(t, "0.0.0.0", 5)
	grpcPort, httpPort, statusPort, uiPort, metricsPort := ports[0], ports[1], ports[2], ports[3], ports[4]
	sd := startDevChild(t, "--ip", "0.0.0.0", "--port", strconv.Itoa(grpcPort), "--http-port", strconv.Itoa(httpPort),
		"--status-addr", "127.0.0.1:"+strconv.Itoa(statusPort), "--ui-port", strconv.Itoa(uiPort),
		"--metrics-port", strconv.Itoa(metricsPort), "--state-dir", t.TempDir(), "--log-level", "error")

	socks := listeningSockets(t, sd.pid)
	t.Logf("start-dev (pid %d) listens on %d TCP sockets: %s", sd.pid, len(socks), socks)
	byPort := map[int]listenSocket{}
	for _, s := range socks {
		byPort[s.port] = s
	}
	for _, want := range []struct {
		name     string
		port     int
		loopback bool
	}{
		{"frontend gRPC (--ip 0.0.0.0)", grpcPort, false},
		{"frontend HTTP API (--ip 0.0.0.0)", httpPort, false},
		{"status", statusPort, true},
		{"Web UI (dev identity)", uiPort, true},
		{"metrics", metricsPort, true},
	} {
		s, ok := byPort[want.port]
		switch {
		case !ok:
			t.Errorf("%s: nothing listens on port %d", want.name, want.port)
		case want.loopback && !s.ip.IsLoopback():
			t.Errorf("%s listens on %s with --ip 0.0.0.0: want loopback", want.name, s)
		case !want.loopback && !s.ip.IsUnspecified():
			t.Errorf("%s listens on %s: want 0.0.0.0 (--ip)", want.name, s)
		}
	}
	// Temporal binds a service's membership (ringpop) port on the IP of its
	// gRPC port: the frontend's follows --ip (docs/production.md, "Security model"). No
	// other port leaves loopback.
	var public []string
	for _, s := range socks {
		if s.port != grpcPort && s.port != httpPort && !s.ip.IsLoopback() {
			public = append(public, s.String())
		}
	}
	if len(public) > 1 {
		t.Errorf("%s listen beyond loopback: only the frontend's gRPC, HTTP and membership ports may", public)
	}

	// The servers' own names still work.
	for _, own := range []struct {
		port int
		path string
	}{{uiPort, "/"}, {statusPort, "/status"}, {metricsPort, "/metrics"}} {
		for _, host := range []string{"127.0.0.1", "localhost"} {
			url := "http://" + net.JoinHostPort(host, strconv.Itoa(own.port)) + own.path
			resp, err := http.Get(url)
			if err != nil {
				t.Errorf("GET %s: %v", url, err)
				continue
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("GET %s: %s, want 200", url, resp.Status)
			}
		}
	}

	var ids []string
	for _, s := range socks {
		id := fmt.Sprintf("evil-%d", s.port)
		ids = append(ids, id)
		for _, accepted := range probe(s, id) {
			t.Errorf("%s accepted: %s", s, accepted)
		}
	}
	// Whatever the answers said, nothing may have started.
	c := dialAt(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(grpcPort)), "default", rawToken("Bearer "+sd.adminToken))
	for _, id := range ids {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := c.DescribeWorkflowExecution(ctx, id, "")
		cancel()
		var nf *serviceerror.NotFound
		if !errors.As(err, &nf) {
			t.Errorf("workflow %s (sent to port %s): want NotFound, got %v: a request without a token started it", id, strings.TrimPrefix(id, "evil-"), err)
		}
	}
}

// probe sends the request and the rebinding requests to s and
// returns a line for every one that was answered 2xx.
func probe(s listenSocket, id string) []string {
	host := s.ip.String()
	switch {
	case s.ip.IsUnspecified() && s.ip.To4() != nil:
		host = "127.0.0.1"
	case s.ip.IsUnspecified():
		host = "::1"
	}
	base := "http://" + net.JoinHostPort(host, strconv.Itoa(s.port))
	rebound := "evil.example:" + strconv.Itoa(s.port)
	client := &http.Client{Timeout: 3 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var accepted []string
	notHTTP := false
	send := func(method, path, hostHeader string, body string, hdr map[string]string) {
		if notHTTP {
			return
		}
		req, err := http.NewRequest(method, base+path, strings.NewReader(body))
		if err != nil {
			accepted = append(accepted, err.Error())
			return
		}
		if hostHeader != "" {
			req.Host = hostHeader
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := client.Do(req)
		if err != nil {
			notHTTP = true // no HTTP here (gRPC, membership): refused, and so will the next requests be
			return
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 200))
		resp.Body.Close()
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			accepted = append(accepted, fmt.Sprintf("%s %s (Host %s): %s %q", method, path, req.Host, resp.Status, b))
		}
	}
	path := "/api/v1/namespaces/default/workflows/" + id
	send(http.MethodPost, path, "", attackBody, map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example"})
	sameOrigin := map[string]string{"Content-Type": "text/plain", "Origin": "http://" + rebound, "Sec-Fetch-Site": "same-origin"}
	send(http.MethodPost, path, rebound, attackBody, sameOrigin)
	for _, p := range []string{"/", "/healthz", "/status", "/metrics", "/.well-known/jwks.json", "/api/v1/settings",
		"/api/v1/namespaces/default/workflows", "/api/v1/cluster-info"} {
		send(http.MethodGet, p, rebound, "", map[string]string{"Sec-Fetch-Site": "same-origin"})
	}
	return accepted
}

// listenSocket is a TCP socket in state LISTEN.
type listenSocket struct {
	ip   net.IP
	port int
}

func (s listenSocket) String() string { return net.JoinHostPort(s.ip.String(), strconv.Itoa(s.port)) }

// listeningSockets lists the TCP sockets process pid listens on: the sockets
// in state LISTEN (0A) of /proc/<pid>/net/tcp and tcp6 whose inode is one of
// the process's open files (/proc/<pid>/fd/* -> socket:[inode]).
func listeningSockets(t *testing.T, pid int) []listenSocket {
	t.Helper()
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		t.Fatal(err)
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	var out []listenSocket
	for _, table := range []string{"tcp", "tcp6"} {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			if table == "tcp6" && errors.Is(err, os.ErrNotExist) {
				continue // no IPv6
			}
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != "0A" || !inodes[f[9]] {
				continue
			}
			s, err := parseProcAddr(f[1])
			if err != nil {
				t.Fatalf("/proc/%d/net/%s: %q: %v", pid, table, line, err)
			}
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		t.Fatalf("process %d listens on no TCP socket", pid)
	}
	slices.SortFunc(out, func(a, b listenSocket) int { return a.port - b.port })
	return out
}

// parseProcAddr parses a local_address of /proc/net/tcp{,6}: the IP in hex,
// as 32-bit words in host (little-endian) order, ":" and the port in hex.
func parseProcAddr(s string) (listenSocket, error) {
	ipHex, portHex, ok := strings.Cut(s, ":")
	if !ok {
		return listenSocket{}, errors.New("no port")
	}
	raw, err := hex.DecodeString(ipHex)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return listenSocket{}, fmt.Errorf("bad address %q", ipHex)
	}
	for i := 0; i < len(raw); i += 4 { // each 32-bit word is little-endian
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(portHex, 16, 16)
	if err != nil {
		return listenSocket{}, err
	}
	return listenSocket{ip: net.IP(raw), port: int(port)}, nil
}

// startDevProc is a start-dev process of a test.
type startDevProc struct {
	pid        int
	adminToken string
}

// startDevChild runs "temporal-opa start-dev args..." (this test binary
// re-executed) and returns once its banner is printed; it is stopped at the
// end of the test.
func startDevChild(t *testing.T, args ...string) startDevProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), childEnv+"=start-dev")
	admin := runStartDev(t, cmd)
	if admin == "" {
		t.Fatal("start-dev printed no admin token")
	}
	return startDevProc{pid: cmd.Process.Pid, adminToken: admin}
}

// runStartDev starts cmd, a start-dev process, and returns once its banner is
// printed (with the admin token the banner exports; "" when none); the
// process is interrupted at the end of the test, and its log shown if the
// test failed.
func runStartDev(t *testing.T, cmd *exec.Cmd) (adminToken string) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "start-dev.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logFile
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the test
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var admin string
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			if v, ok := strings.CutPrefix(line, "export TEMPORAL_OPA_ADMIN_TOKEN="); ok {
				admin = v
			}
			if strings.HasPrefix(line, "Press Ctrl-C to stop") {
				ready <- admin
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			tail(t, "start-dev", logPath, 40)
		}
		_ = logFile.Close()
	})
	select {
	case admin := <-ready:
		return admin
	case err := <-exited:
		tail(t, "start-dev", logPath, 40)
		t.Fatalf("start-dev exited before it was ready: %v", err)
	case <-time.After(3 * time.Minute):
		t.Fatal("start-dev was not ready in 3 minutes")
	}
	return ""
}
