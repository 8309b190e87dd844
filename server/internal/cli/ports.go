package cli

import "fmt"

// A PortOffset places a port of start-dev beside --port when its own flag is
// not given: the one definition of start-dev's port defaults.
type PortOffset int

const (
	// HTTPPortOffset places the frontend's HTTP API (--http-port).
	HTTPPortOffset PortOffset = 10
	// StatusPortOffset places the status endpoint (--status-addr, on 127.0.0.1).
	StatusPortOffset PortOffset = 20
	// UIPortOffset places the Web UI (--ui-port).
	UIPortOffset PortOffset = 1000
)

// From is the port at offset d from port, or an error saying which flag to
// set when that is past 65535.
func (d PortOffset) From(port int) (int, error) {
	if p := port + int(d); p <= 65535 {
		return p, nil
	}
	what, fix := "", ""
	switch d {
	case HTTPPortOffset:
		what, fix = "the HTTP API", "set --http-port, or --http-port -1 to disable it"
	case StatusPortOffset:
		what, fix = "the status endpoint", "set --status-addr, or --status-addr -1 to disable it"
	case UIPortOffset:
		what, fix = "the Web UI", "set --ui-port, or --headless to run without the UI"
	default:
		what, fix = "a port", "choose a lower --port"
	}
	return 0, fmt.Errorf("--port %d leaves no room for %s on port+%d: %s", port, what, int(d), fix)
}
