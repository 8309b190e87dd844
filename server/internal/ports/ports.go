// Package ports picks free TCP ports and tells why a port cannot be listened
// on: the one place start-dev, start, the Web UI, the status endpoint, "keys
// serve" and the tests ask these questions.
package ports

import (
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"strconv"
	"syscall"
)

// Free ports are picked below the kernel's ephemeral range (32768 and up on
// Linux): a picked port is closed again before its user binds it, and an
// ephemeral port can meanwhile become the local port of any outgoing
// connection of the machine. Ports below 32768 also fit the SMALLINT
// membership columns of Temporal's SQL persistence.
const (
	LowMin = 10000
	LowMax = 32767
)

// InUse reports whether err is a listen that failed because another socket
// holds the port (EADDRINUSE).
func InUse(err error) bool { return errors.Is(err, syscall.EADDRINUSE) }

// NotLocal reports whether err is a listen that failed because the IP is not
// an address of this machine (EADDRNOTAVAIL).
func NotLocal(err error) bool { return errors.Is(err, syscall.EADDRNOTAVAIL) }

// Check listens on ip:port and closes the listener at once: nil when the port
// can be listened on now. Its error is net.Listen's: see InUse and NotLocal.
func Check(ip string, port int) error {
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		return err
	}
	return ln.Close()
}

// ListenLow listens on a random free port of ip in [LowMin, LowMax], else on
// any free port.
func ListenLow(ip string) (net.Listener, error) {
	for range 200 {
		port := LowMin + mrand.IntN(LowMax-LowMin+1)
		if ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port))); err == nil {
			return ln, nil
		}
	}
	return net.Listen("tcp", net.JoinHostPort(ip, "0"))
}

// FreeLow finds n distinct free TCP ports of ip, below the ephemeral range
// when it can (ListenLow). They are free when checked; another process could
// take one before its user binds it.
func FreeLow(ip string, n int) ([]int, error) {
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	picked := make([]int, 0, n)
	for range n { // each held until all are picked, so that they differ
		ln, err := ListenLow(ip)
		if err != nil {
			return nil, fmt.Errorf("find a free port on %s: %w", ip, err)
		}
		lns = append(lns, ln)
		picked = append(picked, ln.Addr().(*net.TCPAddr).Port)
	}
	return picked, nil
}
