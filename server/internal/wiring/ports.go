package wiring

import (
	"fmt"
	"net"
	"strconv"

	"go.temporal.io/server/common/config"

	"github.com/temporal-opa/temporal-opa/server/internal/ports"
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
			if err := ports.Check(host, p.port); ports.InUse(err) {
				return fmt.Errorf("services.%s.rpc.%s: port %d is already in use (another Temporal server?); stop it or change the port in the Temporal config", name, p.key, p.port)
			} else if err != nil {
				return fmt.Errorf("services.%s.rpc.%s: cannot listen on %s: %w", name, p.key, net.JoinHostPort(host, strconv.Itoa(p.port)), err)
			}
		}
	}
	return nil
}
