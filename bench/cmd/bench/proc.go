//go:build linux

package main

// Child processes: every one is started with a hard time bound, killed
// with its parent (PR_SET_PDEATHSIG), stopped by PID (SIGTERM, then SIGKILL)
// and logged line by line with timestamps.

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

type proc struct {
	name  string
	cmd   *exec.Cmd
	start time.Time
	done  chan struct{}
	err   error

	mu    sync.Mutex
	lines []string
	log   *os.File
	timer *time.Timer
}

var (
	procsMu sync.Mutex
	procs   = map[*proc]bool{}
)

// startProc runs argv with stdout+stderr captured into logPath; after
// bound it is stopped.
func startProc(name, logPath string, bound time.Duration, argv ...string) (*proc, error) {
	p := &proc{name: name, done: make(chan struct{})}
	var err error
	if logPath != "" {
		if p.log, err = os.Create(logPath); err != nil {
			return nil, err
		}
		fmt.Fprintf(p.log, "# %s\n", strings.Join(argv, " "))
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = w, w
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p.start = time.Now()
	if err := p.cmd.Start(); err != nil {
		r.Close()
		w.Close()
		if p.log != nil {
			p.log.Close()
		}
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	w.Close()
	procsMu.Lock()
	procs[p] = true
	procsMu.Unlock()
	var rd sync.WaitGroup
	rd.Add(1)
	go func() {
		defer rd.Done()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 1<<16), 16<<20)
		for sc.Scan() {
			l := sc.Text()
			p.mu.Lock()
			p.lines = append(p.lines, l)
			if p.log != nil {
				fmt.Fprintf(p.log, "%.3f %s\n", time.Since(p.start).Seconds(), l)
			}
			p.mu.Unlock()
		}
		r.Close()
	}()
	go func() {
		p.err = p.cmd.Wait()
		rd.Wait()
		p.mu.Lock()
		if p.log != nil {
			fmt.Fprintf(p.log, "# exit: %v\n", p.err)
			p.log.Close()
			p.log = nil
		}
		p.mu.Unlock()
		procsMu.Lock()
		delete(procs, p)
		procsMu.Unlock()
		close(p.done)
	}()
	p.timer = time.AfterFunc(bound, func() { p.stop(5 * time.Second) })
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitLine waits until a line containing s appears; false on timeout or exit.
func (p *proc) waitLine(s string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p.find(s) != "" {
			return true
		}
		if p.exited() {
			return p.find(s) != ""
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// find returns the last line containing s.
func (p *proc) find(s string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.lines) - 1; i >= 0; i-- {
		if strings.Contains(p.lines[i], s) {
			return p.lines[i]
		}
	}
	return ""
}

func (p *proc) tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := max(0, len(p.lines)-n)
	return strings.Join(p.lines[i:], " | ")
}

func (p *proc) signal(s syscall.Signal) {
	if !p.exited() {
		_ = p.cmd.Process.Signal(s)
	}
}

// wait waits for a natural exit, up to timeout.
func (p *proc) wait(timeout time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// stop sends SIGTERM, waits up to grace, then SIGKILL.
func (p *proc) stop(grace time.Duration) {
	if p.timer != nil {
		p.timer.Stop()
	}
	if p.exited() {
		return
	}
	p.signal(syscall.SIGTERM)
	if !p.wait(grace) {
		p.signal(syscall.SIGKILL)
		p.wait(5 * time.Second)
	}
}

// stopAll stops every child still running (on exit and on signals).
func stopAll() {
	procsMu.Lock()
	var l []*proc
	for p := range procs {
		l = append(l, p)
	}
	procsMu.Unlock()
	for _, p := range l {
		p.stop(3 * time.Second)
	}
}
