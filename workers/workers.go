package workers

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/netlink"
	"github.com/xdpkit/xdpkit/pipeline"
	"github.com/xdpkit/xdpkit/redirect"
	"github.com/xdpkit/xdpkit/umem"
)

// ErrInvalidConfig is matched by the error of New for a Config it cannot
// use, and by ParseList's and ParseCPUs' errors.
var ErrInvalidConfig = errors.New("invalid configuration")

// Config configures a Set.
type Config struct {
	// Interface is the interface name. Required.
	Interface string
	// Queues are the queue ids, one worker each. Nil means every RX queue
	// of the interface.
	Queues []int
	// CPUs pins worker i to CPUs[i]. Nil spreads the workers round-robin
	// over the CPUs the process may run on. An empty slice (not nil)
	// leaves the threads unpinned.
	CPUs []int
	// SharedUMEM makes all workers share one UMEM (XDP_SHARED_UMEM), each
	// with its own frame pool; UMEMOptions.FrameCount is then the total
	// (zero means 4096 per worker). False gives every worker its own UMEM.
	SharedUMEM bool
	// UMEMOptions are the options of each UMEM. Nil means umem defaults.
	UMEMOptions *umem.Options
	// Socket is the base configuration of every socket (ring sizes, bind
	// mode, busy polling, ...); its UMEM, Pool and Steering are set by
	// the Set.
	Socket afxdp.Config
	// Program is the redirect program to register the sockets in. Nil
	// means the Set attaches one with Redirect and detaches it on Close,
	// unless Steering is set.
	Program *redirect.Program
	// Steering, with Program nil, is where to register the sockets
	// instead: an XSKMAP another process attached (redirect.XSKMap, from
	// `xdpkit attach` or the AF_XDP device plugin). The Set attaches
	// nothing then, and needs no BPF privileges.
	Steering afxdp.Registrar
	// Redirect are the options of the program the Set attaches. Nil means
	// defaults (auto mode, no filter).
	Redirect *redirect.Options
	// StopAll makes the first worker that fails stop every other worker
	// and Run return. Zero value: a failed worker stops alone (its error
	// is in Stats.Failed and Run's result) and the others go on; Run
	// returns when ctx is done or every worker has stopped. Transient
	// transmit errors (a link flap, a stalled TX ring) do not stop a
	// worker at all unless its pipeline sets StopOnTXError; they are
	// counted in its TXErrors.
	StopAll bool
	// Pipeline returns the pipeline configuration of the worker for queue
	// (its Socket field is set by the Set). Each worker needs its own
	// stage instances: stages are not safe for concurrent use. Nil means
	// every worker drops what it receives.
	Pipeline func(queue int) (pipeline.Config, error)
}

// Stats are a Set's counters, per queue and summed.
type Stats struct {
	Total    pipeline.Stats         `json:"total"`
	PerQueue map[int]pipeline.Stats `json:"per_queue"`
	// Failed holds the error of each worker that stopped on one, by queue.
	Failed map[int]string `json:"failed,omitempty"`
}

// Set is a group of workers, one per queue.
type Set struct {
	cfg     Config
	prog    *redirect.Program
	steer   afxdp.Registrar // prog, or Config.Steering
	ownProg bool
	shared  *umem.UMEM
	workers []*worker
	closed  bool
}

type worker struct {
	queue  int
	cpu    int // -1: not pinned
	sock   *afxdp.Socket
	runner *pipeline.Runner
}

// New opens everything the workers need: the program, the UMEM(s), a
// socket and a runner per queue. Nothing runs until Run.
func New(cfg Config) (_ *Set, err error) {
	if cfg.Interface == "" {
		return nil, fmt.Errorf("workers: Config.Interface is required: %w", ErrInvalidConfig)
	}
	link, err := netlink.LinkByName(cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("workers: %w", err)
	}
	queues := cfg.Queues
	if queues == nil {
		if queues, err = ParseList("all", max(link.NumRXQueues, 1)); err != nil {
			return nil, err
		}
	}
	if len(queues) == 0 {
		return nil, fmt.Errorf("workers: no queues: %w", ErrInvalidConfig)
	}
	cpus, err := assignCPUs(cfg.CPUs, len(queues))
	if err != nil {
		return nil, err
	}
	s := &Set{cfg: cfg, prog: cfg.Program, steer: cfg.Steering}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	if s.prog != nil {
		s.steer = s.prog
	} else if s.steer == nil {
		if s.prog, err = redirect.Attach(link.Index, cfg.Redirect); err != nil {
			return nil, fmt.Errorf("workers: %w", err)
		}
		s.steer, s.ownProg = s.prog, true
	}
	if cfg.SharedUMEM {
		o := umem.Options{}
		if cfg.UMEMOptions != nil {
			o = *cfg.UMEMOptions
		}
		if o.FrameCount == 0 {
			o.FrameCount = uint32(umem.DefaultFrameCount * len(queues))
		}
		if s.shared, err = umem.New(&o); err != nil {
			return nil, fmt.Errorf("workers: shared UMEM: %w", err)
		}
	}
	for i, q := range queues {
		w := &worker{queue: q, cpu: cpus[i]}
		sc := cfg.Socket
		sc.Steering, sc.Redirect = s.steer, nil
		sc.UMEM, sc.Pool, sc.UMEMOptions = nil, nil, cfg.UMEMOptions
		if s.shared != nil {
			sc.UMEM, sc.UMEMOptions = s.shared, nil
			// Each worker gets an equal share of the frames as its own pool.
			if i < len(queues)-1 || len(queues) == 1 {
				share := int(s.shared.FrameCount()) / len(queues)
				if sc.Pool, err = s.shared.NewPool(share); err != nil {
					return nil, fmt.Errorf("workers: queue %d: %w", q, err)
				}
			} else {
				sc.Pool = s.shared.Pool // the last worker keeps the rest: the main pool
			}
		}
		if w.sock, err = afxdp.OpenIndex(link.Index, q, &sc); err != nil {
			return nil, fmt.Errorf("workers: %w", err)
		}
		s.workers = append(s.workers, w)
		pc := pipeline.Config{}
		if cfg.Pipeline != nil {
			if pc, err = cfg.Pipeline(q); err != nil {
				return nil, fmt.Errorf("workers: pipeline for queue %d: %w", q, err)
			}
		}
		pc.Socket = w.sock
		pc.LockOSThread = true // Run locks the worker's thread: wait on it, not in the runtime poller
		if w.runner, err = pipeline.New(pc); err != nil {
			return nil, fmt.Errorf("workers: queue %d: %w", q, err)
		}
	}
	return s, nil
}

// assignCPUs returns the CPU of each of n workers, -1 for unpinned.
func assignCPUs(cpus []int, n int) ([]int, error) {
	out := make([]int, n)
	switch {
	case cpus == nil:
		allowed, err := allowedCPUs()
		if err != nil {
			return nil, fmt.Errorf("workers: allowed CPUs: %w", err)
		}
		if len(allowed) == 0 {
			return nil, errors.New("workers: no CPU allowed")
		}
		for i := range out {
			out[i] = allowed[i%len(allowed)]
		}
	case len(cpus) == 0:
		for i := range out {
			out[i] = -1
		}
	case len(cpus) != n:
		return nil, fmt.Errorf("workers: %d CPUs for %d queues: give one per queue: %w", len(cpus), n, ErrInvalidConfig)
	default:
		copy(out, cpus)
	}
	return out, nil
}

// Queues returns the queue of each worker.
func (s *Set) Queues() []int {
	q := make([]int, len(s.workers))
	for i, w := range s.workers {
		q[i] = w.queue
	}
	return q
}

// CPUs returns the CPU each worker is pinned to (-1: not pinned).
func (s *Set) CPUs() []int {
	c := make([]int, len(s.workers))
	for i, w := range s.workers {
		c[i] = w.cpu
	}
	return c
}

// Sockets returns the workers' sockets, in queue order of Config.Queues.
func (s *Set) Sockets() []*afxdp.Socket {
	out := make([]*afxdp.Socket, len(s.workers))
	for i, w := range s.workers {
		out[i] = w.sock
	}
	return out
}

// Program returns the redirect program the sockets are registered in;
// nil when they are registered in Config.Steering.
func (s *Set) Program() *redirect.Program { return s.prog }

// UMEM returns the shared UMEM, or nil without Config.SharedUMEM.
func (s *Set) UMEM() *umem.UMEM { return s.shared }

// Run runs every worker on its own locked, pinned thread until ctx is
// done, or every worker has stopped, or (with StopAll) one worker failed.
// The error joins the workers' errors, each with its queue. Run may be
// called once.
func (s *Set) Run(ctx context.Context) (Stats, error) {
	if s.closed {
		return Stats{}, afxdp.ErrClosed
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, len(s.workers))
	results := make([]pipeline.Stats, len(s.workers))
	for i, w := range s.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // the thread exits with the goroutine: its pinning dies with it
			if w.cpu >= 0 {
				if err := pinThread(w.cpu); err != nil {
					errs[i] = fmt.Errorf("workers: queue %d: pin to CPU %d: %w", w.queue, w.cpu, err)
					if s.cfg.StopAll {
						cancel()
					}
					return
				}
			}
			st, err := w.runner.Run(ctx)
			results[i] = st
			if err != nil {
				errs[i] = fmt.Errorf("workers: queue %d: %w", w.queue, err)
				if s.cfg.StopAll {
					cancel()
				}
			}
		}()
	}
	wg.Wait()
	stats := s.sum(results)
	for i, err := range errs {
		if err != nil {
			if stats.Failed == nil {
				stats.Failed = map[int]string{}
			}
			stats.Failed[s.workers[i].queue] = err.Error()
		}
	}
	return stats, errors.Join(errs...)
}

// Snapshot returns the counters as last published by the running workers
// (every pipeline TickInterval). Safe from any goroutine.
func (s *Set) Snapshot() Stats {
	res := make([]pipeline.Stats, len(s.workers))
	for i, w := range s.workers {
		res[i] = w.runner.Snapshot()
	}
	return s.sum(res)
}

func (s *Set) sum(res []pipeline.Stats) Stats {
	out := Stats{PerQueue: make(map[int]pipeline.Stats, len(res))}
	for i, st := range res {
		out.PerQueue[s.workers[i].queue] = st
		out.Total.Add(st)
	}
	return out
}

// Close closes the sockets, then the shared UMEM and the program if the
// Set attached it. Call it after Run returned. Idempotent.
func (s *Set) Close() error {
	if s == nil || s.closed {
		return nil
	}
	s.closed = true
	var errs []error
	for _, w := range s.workers {
		errs = append(errs, w.sock.Close())
	}
	if s.shared != nil {
		errs = append(errs, s.shared.Close())
	}
	if s.ownProg {
		errs = append(errs, s.prog.Close())
	}
	return errors.Join(errs...)
}
