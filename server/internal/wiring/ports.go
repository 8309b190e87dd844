package wiring

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"go.temporal.io/server/common/config"
)

// CheckPorts reports, with the config key to change, the first port of the
// given services that another process already holds. Temporal itself would exit
// with a fatal log and a stack trace.
func CheckPorts(cfg *config.Config, services []string) error {
	for _, name := range services {
		svc, ok := cfg.Services[name]
		if !ok {
			return fmt.Errorf("--service %s: the Temporal config has no services.%s section", name, name)
		}
		host := ""
		switch {
		case svc.RPC.BindOnLocalHost:
			host = "127.0.0.1"
		case svc.RPC.BindOnIP != "":
			host = svc.RPC.BindOnIP
		}
		for _, p := range []struct {
			key  string
			port int
		}{{"grpcPort", svc.RPC.GRPCPort}, {"membershipPort", svc.RPC.MembershipPort}, {"httpPort", svc.RPC.HTTPPort}} {
			if p.port == 0 {
				continue
			}
			ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p.port)))
			if err != nil {
				if errors.Is(err, syscall.EADDRINUSE) {
					return fmt.Errorf("services.%s.rpc.%s: port %d is already in use (another Temporal server?); stop it or change the port in the Temporal config", name, p.key, p.port)
				}
				return fmt.Errorf("services.%s.rpc.%s: cannot listen on %s: %w", name, p.key, net.JoinHostPort(host, strconv.Itoa(p.port)), err)
			}
			_ = ln.Close()
		}
	}
	return nil
}
