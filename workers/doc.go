// Package workers runs one AF_XDP worker per NIC queue, each on its own
// goroutine locked to an OS thread pinned to a CPU: the shape real
// deployments take on a multi-queue NIC. An idle worker sleeps in poll(2)
// on its own thread (pipeline.Config.LockOSThread), so being locked costs
// it no thread hand-off when frames arrive.
//
// A Set opens the redirect program once for the interface, a socket per
// queue — each with a UMEM of its own, or all sharing one UMEM
// (XDP_SHARED_UMEM) with a frame pool per worker so no lock is shared —
// and a pipeline.Runner per socket with the stages Config.Pipeline builds
// for that queue. Run runs them until the context is cancelled or every
// worker has stopped; it returns the counters per queue and in total. A
// worker that fails (its socket closed, its device gone) stops alone, its
// error in Stats.Failed, unless Config.StopAll makes it stop the set; a
// link flap or a stalled TX ring stops none (the Runner counts it).
//
// # Concurrency
//
// New, Run and Close are for one goroutine; Snapshot may be called from
// any goroutine while Run runs. Each worker's stages run on its own
// goroutine only.
//
//	set, err := workers.New(workers.Config{
//		Interface: "eth0",
//		Queues:    []int{0, 1, 2, 3},
//		Pipeline: func(queue int) (pipeline.Config, error) {
//			return pipeline.Config{Stages: []pipeline.Stage{stages.NewMACSwap()}}, nil
//		},
//	})
//	if err != nil {
//		return err
//	}
//	defer set.Close()
//	stats, err := set.Run(ctx)
//
// For workers in separate processes (one per queue, restartable one by
// one), pin the redirect program in bpffs (redirect.AttachPinned) and run
// a Set of one queue in each process.
package workers
