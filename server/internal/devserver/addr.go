package devserver

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/temporal-opa/temporal-opa/server/internal/ports"
)

// joinHostPort is host:port.
func joinHostPort(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }

// isLoopback reports whether ip is a loopback address or localhost.
func isLoopback(ip string) bool {
	parsed := net.ParseIP(ip)
	return ip == "localhost" || (parsed != nil && parsed.IsLoopback())
}

// httpDial is the address to dial for the HTTP API's listen address, "" when it is off.
func httpDial(addr string) string {
	if addr == "" {
		return ""
	}
	return dialAddr(addr)
}

// checkFree reports a clear error, naming the flag to change, when ip:port is taken.
func checkFree(ip string, port int, flag string) error {
	err := ports.Check(ip, port)
	switch {
	case err == nil:
		return nil
	case ports.InUse(err):
		return &Error{Msg: fmt.Sprintf("port %d on %s is already in use (another Temporal server?): stop it or choose another port with %s", port, ip, flag)}
	case ports.NotLocal(err):
		return &Error{Msg: fmt.Sprintf("--ip %s is not an address of this machine: use 127.0.0.1, 0.0.0.0 or one of its addresses", ip)}
	}
	return &Error{Msg: fmt.Sprintf("cannot listen on %s:%d: %v", ip, port, err)}
}

func freePort(ip string) (int, error) {
	p, err := ports.FreeLow(ip, 1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

// dialHost is the host clients dial for a listen IP (0.0.0.0 -> 127.0.0.1).
func dialHost(ip string) string {
	if parsed := net.ParseIP(ip); parsed != nil && parsed.IsUnspecified() {
		if parsed.To4() != nil {
			return loopback
		}
		return "::1"
	}
	return ip
}

func dialAddr(hostport string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	return net.JoinHostPort(dialHost(host), port)
}

// waitServing polls the gRPC health service of the workflow service at addr,
// over TLS with tlsCfg when it is not nil.
func waitServing(ctx context.Context, addr string, tlsCfg *tls.Config) error {
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	var last error
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := hc.Check(cctx, &healthpb.HealthCheckRequest{Service: "temporal.api.workflowservice.v1.WorkflowService"})
		cancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		if err != nil {
			last = err
		} else {
			last = fmt.Errorf("health status %s", resp.GetStatus())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
