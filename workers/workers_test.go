//go:build linux

package workers_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/xdpkit/xdpkit/afxdp"
	"github.com/xdpkit/xdpkit/internal/netlink"
	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/umem"
	"github.com/xdpkit/xdpkit/workers"
)

func TestMain(m *testing.M) { testutils.LeakCheckMain(m) }

func TestParseList(t *testing.T) {
	t.Parallel()
	for spec, want := range map[string][]int{
		"0-3": {0, 1, 2, 3}, "0,2,5": {0, 2, 5}, "1-2,6": {1, 2, 6}, "all": {0, 1, 2}, " 7 ": {7},
	} {
		got, err := workers.ParseList(spec, 3)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: got %v, %v; want %v", spec, got, err, want)
		}
	}
	for _, bad := range []string{"", "x", "3-1", "1,1", "-1", "0-", "1-2,2"} {
		if got, err := workers.ParseList(bad, 3); err == nil {
			t.Errorf("%q: accepted as %v", bad, got)
		}
	}
}

// vethRedirects reads veth's per-queue count of frames its XDP program
// redirected (rx_queue_N_xdp_redirect, as `ethtool -S` shows them), the
// kernel's view of what each queue delivered.
func vethRedirects(t *testing.T, ifname string, queues int) []uint64 {
	t.Helper()
	st := testutils.EthtoolStats(t, ifname)
	res := make([]uint64, queues)
	for q := range res {
		res[q] = st.Get(t, fmt.Sprintf("rx_queue_%d_xdp_redirect", q))
	}
	return res
}

func run(t *testing.T, set *workers.Set) (stop func() workers.Stats) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan workers.Stats, 1)
	errc := make(chan error, 1)
	go func() {
		st, err := set.Run(ctx)
		errc <- err
		done <- st
	}()
	return func() workers.Stats {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			return <-done
		case <-time.After(10 * time.Second):
			t.Fatal("workers did not stop within 10s")
		}
		return workers.Stats{}
	}
}

// TestMultiQueue: four workers on the four queues of a veth; traffic of
// many flows spreads over the queues; the sum over the workers is what was
// sent, and each worker got exactly what the kernel redirected on its queue.
func TestMultiQueue(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(fmt.Sprintf("shared=%v", shared), func(t *testing.T) {
			v := testutils.NewVeth(t, testutils.VethOptions{Queues: 4})
			set, err := workers.New(workers.Config{
				Interface:   v.Host,
				Queues:      []int{0, 1, 2, 3},
				SharedUMEM:  shared,
				UMEMOptions: &umem.Options{FrameCount: 4096, FillRingSize: 1024, Checked: true},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := set.Close(); err != nil {
					t.Error(err)
				}
			})
			if cpus := set.CPUs(); len(cpus) != 4 || cpus[0] < 0 {
				t.Fatalf("CPUs %v", cpus)
			}
			stop := run(t, set)
			peer := v.OpenPeerPacketSocket(t)
			const flows, perFlow = 64, 20
			for i := range flows * perFlow {
				f := testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), uint16(30000+i%flows), 9, []byte("mq"))
				if err := peer.Send(f); err != nil {
					t.Fatal(err)
				}
				if i%64 == 63 {
					time.Sleep(time.Millisecond)
				}
			}
			deadline := time.Now().Add(10 * time.Second)
			for set.Snapshot().Total.RXPackets < flows*perFlow && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			st := stop()
			if st.Total.RXPackets != flows*perFlow {
				t.Fatalf("workers received %d frames, sent %d (per queue %v)", st.Total.RXPackets, flows*perFlow, st.PerQueue)
			}
			kernel := vethRedirects(t, v.Host, 4)
			busy := 0
			for q := range 4 {
				if got := st.PerQueue[q].RXPackets; got != kernel[q] {
					t.Errorf("queue %d: worker got %d frames, the kernel redirected %d on that queue", q, got, kernel[q])
				}
				if kernel[q] > 0 {
					busy++
				}
			}
			if busy < 2 {
				t.Errorf("%d flows reached only %d queues: %v", flows, busy, kernel)
			}
			t.Logf("per queue: %v", kernel)
			if shared {
				if err := set.UMEM().Check(); err != nil {
					t.Error(err)
				}
			} else {
				for _, s := range set.Sockets() {
					if err := s.UMEM().Check(); err != nil {
						t.Error(err)
					}
				}
			}
		})
	}
	// Everything closed: no program left.
}

// TestSharedUMEMMillion: four workers share one UMEM; AF_XDP sockets on
// the peer's four queues send over a million frames; afterwards every
// frame of the UMEM is accounted for.
func TestSharedUMEMMillion(t *testing.T) {
	if testing.Short() {
		t.Skip("long: a million frames")
	}
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 4})
	set, err := workers.New(workers.Config{
		Interface:   v.Host,
		Queues:      []int{0, 1, 2, 3},
		SharedUMEM:  true,
		UMEMOptions: &umem.Options{FrameCount: 4 * 4096, Checked: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = set.Close() })
	var peers []*afxdp.Socket
	v.InPeer(t, func() error {
		for q := range 4 {
			p, err := afxdp.OpenIndex(v.PeerIndex, q, &afxdp.Config{Bind: afxdp.BindCopy, Steering: afxdp.NoSteering,
				UMEMOptions: &umem.Options{FrameCount: 2048, FillRingSize: 64, CompletionRingSize: 2048}})
			if err != nil {
				return err
			}
			t.Cleanup(func() { _ = p.Close() })
			peers = append(peers, p)
		}
		return nil
	})
	stop := run(t, set)
	frame := testutils.UDPFrame(v.HostMAC, v.PeerMAC, v.PeerIP.As4(), v.HostIP.As4(), 1, 9, []byte("million"))
	burst := make([][]byte, 64)
	for i := range burst {
		burst[i] = frame
	}
	const target = 1_000_000
	var sent uint64
	deadline := time.Now().Add(3 * time.Minute)
	for set.Snapshot().Total.RXPackets < target {
		if time.Now().After(deadline) {
			t.Fatalf("after 3 minutes: %d sent, %d received", sent, set.Snapshot().Total.RXPackets)
		}
		for _, p := range peers {
			k, err := p.TransmitBytes(burst)
			if err != nil {
				t.Fatal(err)
			}
			sent += uint64(k)
		}
		if sent > set.Snapshot().Total.RXPackets+200_000 {
			time.Sleep(time.Millisecond) // let the workers catch up
		}
	}
	st := stop()
	t.Logf("sent %d, received %d; per queue %v", sent, st.Total.RXPackets, func() (r []uint64) {
		for q := range 4 {
			r = append(r, st.PerQueue[q].RXPackets)
		}
		return
	}())
	u := set.UMEM()
	if err := u.Check(); err != nil {
		t.Fatal(err)
	}
	if c := u.Counts(); c.App != 0 || c.TX != 0 || c.Free+c.Fill != c.Total {
		t.Errorf("frames not all free or in fill rings: %+v", c)
	}
	for _, p := range peers {
		if err := p.Flush(5 * time.Second); err != nil {
			t.Error(err)
		}
	}
}

func TestErrors(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
	if _, err := workers.New(workers.Config{}); err == nil {
		t.Error("no interface accepted")
	}
	if _, err := workers.New(workers.Config{Interface: v.Host, Queues: []int{0, 1}, CPUs: []int{0}}); err == nil {
		t.Error("CPU count mismatch accepted")
	}
	if _, err := workers.New(workers.Config{Interface: v.Host, Queues: []int{0, 5}}); err == nil {
		t.Error("queue 5 of 2 accepted")
	}
	if l, _ := netlink.LinkByIndex(v.HostIndex); l.XDP.IsAttached() {
		t.Errorf("failed New left a program: %+v", l.XDP)
	}
}
