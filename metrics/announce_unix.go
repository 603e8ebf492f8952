//go:build unix

package metrics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Announcement is a process's entry in the run directory.
type Announcement struct {
	path string
	srv  *http.Server
	done chan struct{}
}

// Announce makes the process visible to `xdpkit status`: it listens on
// dir/PID.sock (dir is usually RunDir) and answers each request with a
// Process holding c's counters. Close removes the entry; a process that
// dies without closing leaves a socket nobody listens on, which Peers
// detects and removes.
func Announce(dir, name string, c *Collector) (*Announcement, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("metrics: announce in %s: %w", dir, err)
	}
	path := filepath.Join(dir, strconv.Itoa(os.Getpid())+".sock")
	_ = os.Remove(path) // a previous process of this pid died without closing
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("metrics: announce: %w", err)
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		ln.Close()
		return nil, fmt.Errorf("metrics: announce: %w", err)
	}
	started := time.Now()
	mux := http.NewServeMux()
	mux.HandleFunc("/status", func(w http.ResponseWriter, _ *http.Request) {
		p := Process{PID: os.Getpid(), Name: name, Args: os.Args, Started: started, Sockets: c.Sockets()}
		mfs, err := reg.Gather()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				s := Series{Name: mf.GetName(), Labels: map[string]string{}, Value: m.GetCounter().GetValue()}
				for _, l := range m.GetLabel() {
					s.Labels[l.GetName()] = l.GetValue()
				}
				p.Series = append(p.Series, s)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(p)
	})
	a := &Announcement{path: path, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}, done: make(chan struct{})}
	go func() { defer close(a.done); _ = a.srv.Serve(ln) }()
	return a, nil
}

// Close removes the entry and stops answering. It is idempotent.
func (a *Announcement) Close() error {
	err := a.srv.Close()
	<-a.done
	if rerr := os.Remove(a.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

// Peers asks every process announced in dir, in pid order. Entries whose
// process is gone (nobody listens and no process has that pid) are
// removed and counted in stale.
func Peers(dir string) (procs []Process, stale int, err error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("metrics: peers: %w", err)
	}
	for _, e := range entries {
		pidStr, ok := strings.CutSuffix(e.Name(), ".sock")
		pid, perr := strconv.Atoi(pidStr)
		if !ok || perr != nil {
			continue
		}
		path := filepath.Join(dir, e.Name())
		p, err := ask(path)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) && !alive(pid) {
				_ = os.Remove(path)
				stale++
			}
			continue
		}
		procs = append(procs, p)
	}
	sort.Slice(procs, func(i, j int) bool { return procs[i].PID < procs[j].PID })
	return procs, stale, nil
}

func ask(path string) (Process, error) {
	c := http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}
	resp, err := c.Get("http://xdpkit/status")
	if err != nil {
		return Process{}, err
	}
	defer resp.Body.Close()
	var p Process
	if resp.StatusCode != http.StatusOK {
		return p, fmt.Errorf("%s: %s", path, resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&p)
	return p, err
}

// alive reports whether a process with pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
