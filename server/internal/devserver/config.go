package devserver

import (
	"fmt"
	"os"
	"time"

	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"

	"github.com/temporal-opa/temporal-opa/server/internal/hostcheck"
)

// serverConfig builds the Temporal configuration in memory.
func serverConfig(o Options, ports []int) (*config.Config, error) {
	sqlCfg := &config.SQL{
		PluginName:        sqliteplugin.PluginName,
		ConnectAttributes: map[string]string{},
		DatabaseName:      o.DBFilename,
	}
	if o.DBFilename == "" {
		sqlCfg.ConnectAttributes["mode"] = "memory"
		sqlCfg.ConnectAttributes["cache"] = "shared"
		sqlCfg.DatabaseName = fmt.Sprintf("temporal-opa-%d-%d", os.Getpid(), time.Now().UnixNano())
	} else {
		sqlCfg.ConnectAttributes["mode"] = "rwc"
	}
	svc := func(ip string, grpcPort, membershipPort, httpPort int) config.Service {
		rpc := config.RPC{GRPCPort: grpcPort, MembershipPort: membershipPort, HTTPPort: max(httpPort, 0), BindOnLocalHost: true}
		if ip != loopback {
			rpc.BindOnLocalHost, rpc.BindOnIP = false, ip
		}
		return config.Service{RPC: rpc}
	}
	frontendAddr := joinHostPort(dialHost(o.IP), o.Port)
	httpAddr := ""
	if o.HTTPPort > 0 {
		httpAddr = joinHostPort(dialHost(o.IP), o.HTTPPort)
	}
	// The internal-frontend (ports[9]) has an HTTP port, not for clients: Temporal's
	// history service sends Nexus requests through it (the worker-target
	// endpoints' operations, dispatched with rpc.CreateLocalFrontendHTTPClient,
	// and the completion callbacks of Nexus operations, "temporal://system"),
	// and with an internal-frontend in the cluster that client calls the
	// internal-frontend's httpPort, not the frontend's (resource.
	// getFrontendConnectionDetails, v1.32.1). Without it Nexus fails; through
	// the public frontend the service's calls carry no token and are denied.
	// Whoever calls it is the internal principal (system admin), so its
	// HTTP API (/api/v1) answers no browser: frontend.httpAllowedHosts
	// (httpAllowedHosts) names only the public HTTP API's host:port, which a
	// page loaded from any origin cannot send to this port. Its Nexus routes
	// answer any Host: dispatch by endpoint needs the endpoint's id, a
	// completion its callback token (a header no no-cors request carries),
	// and dispatch by namespace and task queue is denied to the internal
	// principal (internalGuard). Like its gRPC port it stays open to local
	// processes, which are trusted (docs/production.md, "Security model").
	cfg := &config.Config{
		Global: config.Global{
			Membership: config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: loopback},
		},
		Persistence: config.Persistence{
			DefaultStore:     sqliteplugin.PluginName,
			VisibilityStore:  sqliteplugin.PluginName,
			NumHistoryShards: 1,
			DataStores:       map[string]config.DataStore{sqliteplugin.PluginName: {SQL: sqlCfg}},
		},
		ClusterMetadata: &cluster.Config{
			EnableGlobalNamespace:    false,
			FailoverVersionIncrement: 10,
			MasterClusterName:        clusterName,
			CurrentClusterName:       clusterName,
			ClusterInformation: map[string]cluster.ClusterInformation{
				clusterName: {Enabled: true, InitialFailoverVersion: 1, RPCAddress: frontendAddr, HTTPAddress: httpAddr},
			},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services: map[string]config.Service{
			"frontend":          svc(o.IP, o.Port, ports[0], o.HTTPPort),
			"internal-frontend": svc(loopback, ports[1], ports[2], ports[9]),
			"history":           svc(loopback, ports[3], ports[4], 0),
			"matching":          svc(loopback, ports[5], ports[6], 0),
			"worker":            svc(loopback, ports[7], ports[8], 0),
		},
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{Archival: config.ArchivalNamespaceDefaults{
			History:    config.HistoryArchivalNamespaceDefaults{State: "disabled"},
			Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
		}},
		// PublicClient stays empty: with an internal-frontend, Temporal's own clients
		// (the system worker) go through it and carry the internal principal.
	}
	return cfg, nil
}

// httpAllowedHosts is frontend.httpAllowedHosts: the Host values the HTTP API
// answers, those of the public frontend's HTTP port (package hostcheck: no DNS
// rebinding). The setting is global: the internal-frontend's HTTP API, on
// another port, answers none of them, so no browser reaches it (see
// serverConfig). With the HTTP API off it names a host no request can reach
// this server under (.invalid never resolves).
func httpAllowedHosts(o Options) ([]string, error) {
	if o.HTTPPort <= 0 {
		return []string{"http-api-disabled.invalid"}, nil
	}
	return hostcheck.Hosts(joinHostPort(o.IP, o.HTTPPort))
}
