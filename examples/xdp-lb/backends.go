package main

// Live backends: the set every worker's LoadBalancer balances over, changed
// while the workers run by re-reading -backends on SIGHUP and through the
// -admin HTTP endpoint. Each worker applies a change at its next tick
// (stages.LoadBalancer.UpdateBackends, applied by Tick), so no lock is
// taken per packet.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/xdpkit/xdpkit/stages"
)

// backendSet is the backends of all the workers' LoadBalancers.
type backendSet struct {
	mu  sync.Mutex
	cur []stages.Backend
	lbs []*stages.LoadBalancer // one per worker, built alike
}

// set replaces the backends of every LoadBalancer with bs. The first
// checks bs; the others are built alike, so they accept it too.
func (s *backendSet) set(bs []stages.Backend) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setLocked(bs)
}

func (s *backendSet) setLocked(bs []stages.Backend) error {
	for _, lb := range s.lbs {
		if err := lb.UpdateBackends(bs); err != nil {
			return err
		}
	}
	s.cur = slices.Clone(bs)
	return nil
}

// add adds b; errBackendExists if its address is a backend's already.
func (s *backendSet) add(b stages.Backend) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.ContainsFunc(s.cur, func(o stages.Backend) bool { return o.IP.Unmap() == b.IP.Unmap() }) {
		return fmt.Errorf("backend %v: %w", b.IP, errBackendExists)
	}
	return s.setLocked(append(slices.Clone(s.cur), b))
}

// remove removes the backend with address ip; stages.ErrNoBackend if
// there is none.
func (s *backendSet) remove(ip netip.Addr) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.cur, func(o stages.Backend) bool { return o.IP.Unmap() == ip.Unmap() })
	if i < 0 {
		return fmt.Errorf("backend %v: %w", ip, stages.ErrNoBackend)
	}
	return s.setLocked(slices.Delete(slices.Clone(s.cur), i, i+1))
}

var errBackendExists = errors.New("already a backend")

// backendJSON is a backend as the admin endpoint reads and writes it.
type backendJSON struct {
	IP       string `json:"ip"`
	MAC      string `json:"mac"`
	TunnelIP string `json:"tunnel_ip,omitempty"` // -mode ipip: the outer destination, if not IP
	Packets  uint64 `json:"packets"`             // frames sent to it by the workers, in user space
}

// list returns the backends with their packet counts summed over the
// workers (a backend a worker has not applied yet counts 0 there).
func (s *backendSet) list() []backendJSON {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]backendJSON, len(s.cur))
	for i, b := range s.cur {
		out[i] = backendJSON{IP: b.IP.String(), MAC: b.MAC.String()}
		if b.TunnelIP.IsValid() {
			out[i].TunnelIP = b.TunnelIP.String()
		}
		for _, lb := range s.lbs {
			for _, st := range lb.Stats() {
				if st.IP == b.IP.Unmap() {
					out[i].Packets += st.Packets
				}
			}
		}
	}
	return out
}

// readBackends reads a -backends file: one backend a line as IP,MAC or
// IP,MAC,TUNNEL (the -backend flag's form); blank lines and lines starting with # are
// skipped.
func readBackends(name string) ([]stages.Backend, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("-backends: %w", err)
	}
	defer f.Close()
	var bs backendList
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := bs.Set(line); err != nil {
			return nil, fmt.Errorf("-backends %s:%d: %w", name, n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("-backends %s: %w", name, err)
	}
	return bs, nil
}

// adminHandler serves the backend set as JSON:
//
//	GET    /backends       the backends and their packet counts
//	POST   /backends       {"ip": "10.0.0.13", "mac": "02:00:00:00:00:13"}: add one
//	                       ("tunnel_ip" too, for -mode ipip with an IPv6 VIP)
//	DELETE /backends/{ip}  remove one
//
// Each answers with the backends as they are afterwards (the workers
// apply a change at their next tick, within 100 ms), or an error as
// {"error": "..."} with status 400, 404 or 409.
func adminHandler(s *backendSet) http.Handler {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	fail := func(w http.ResponseWriter, err error) {
		status := http.StatusBadRequest
		switch {
		case errors.Is(err, errBackendExists):
			status = http.StatusConflict
		case errors.Is(err, stages.ErrNoBackend):
			status = http.StatusNotFound
		}
		reply(w, status, map[string]string{"error": err.Error()})
	}
	mux.HandleFunc("GET /backends", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, s.list())
	})
	mux.HandleFunc("POST /backends", func(w http.ResponseWriter, r *http.Request) {
		var in backendJSON
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4096))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			fail(w, fmt.Errorf("want {\"ip\": ..., \"mac\": ...}: %w", err))
			return
		}
		var b backendList
		spec := in.IP + "," + in.MAC
		if in.TunnelIP != "" {
			spec += "," + in.TunnelIP
		}
		if err := b.Set(spec); err != nil {
			fail(w, err)
			return
		}
		if err := s.add(b[0]); err != nil {
			fail(w, err)
			return
		}
		reply(w, http.StatusCreated, s.list())
	})
	mux.HandleFunc("DELETE /backends/{ip}", func(w http.ResponseWriter, r *http.Request) {
		ip, err := netip.ParseAddr(r.PathValue("ip"))
		if err != nil {
			fail(w, err)
			return
		}
		if err := s.remove(ip); err != nil {
			fail(w, err)
			return
		}
		reply(w, http.StatusOK, s.list())
	})
	return mux
}

// listenAdmin listens on addr, which must be a loopback address: the
// endpoint has no authentication.
func listenAdmin(addr string) (net.Listener, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, fmt.Errorf("-admin %q: want a loopback ADDR:PORT such as 127.0.0.1:8081: %w", addr, err)
	}
	if !ap.Addr().IsLoopback() {
		return nil, fmt.Errorf("-admin %s: not a loopback address; the admin endpoint has no authentication, so it only listens on 127.0.0.1 or ::1", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-admin: %w", err)
	}
	return l, nil
}
