//go:build linux

package redirect_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/xdpkit/xdpkit/internal/testutils"
	"github.com/xdpkit/xdpkit/redirect"
)

const bpffsRoot = "/sys/fs/bpf"

// privateBPFFS mounts a bpffs instance of the test's own (mode 0700) on a
// temporary directory and unmounts it at cleanup. Pins left in it go
// with the unmount.
func privateBPFFS(t *testing.T) string {
	t.Helper()
	return mountAt(t, "bpf", "mode=0700")
}

// mountAt mounts a filesystem of type fstype on a new temporary directory
// and unmounts it at cleanup.
func mountAt(t *testing.T, fstype, data string) string {
	t.Helper()
	testutils.RequirePrivileged(t)
	mnt := t.TempDir()
	if err := unix.Mount(fstype, mnt, fstype, 0, data); err != nil {
		t.Fatalf("mount a private %s on %s: %v", fstype, mnt, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("cleanup: unmount %s: %v", mnt, err)
		}
	})
	return mnt
}

func isBPFFS(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && uint32(st.Type) == uint32(unix.BPF_FS_MAGIC)
}

func mkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

// entries returns the names in dir, to check that nothing was created.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// wantUntrusted checks that err matches ErrPinUntrusted and mentions
// every one of substrs.
func wantUntrusted(t *testing.T, err error, substrs ...string) {
	t.Helper()
	if !errors.Is(err, redirect.ErrPinUntrusted) {
		t.Errorf("err = %v, want ErrPinUntrusted", err)
		return
	}
	for _, s := range substrs {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("err = %v\ndoes not mention %q", err, s)
		}
	}
	t.Logf("error text: %v", err)
}

// A pin directory that another user made or can enter, a symbolic link
// where a directory or a pin should be, or a directory off bpffs, is
// refused: nothing is created there, nothing is loaded through the link,
// nothing is attached, and Unpin removes nothing.
func TestPinUntrusted(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	const name = "workers"

	// refused checks AttachPinned and Unpin on base; dirs must stay as
	// they are.
	refused := func(t *testing.T, base string, dirs []string, substrs ...string) {
		t.Helper()
		before := map[string][]string{}
		for _, d := range dirs {
			before[d] = entries(t, d)
		}
		opts := &redirect.Options{PinDir: base}
		p, err := redirect.AttachPinned(v.HostIndex, name, opts)
		if err == nil {
			p.Close()
			_ = redirect.Unpin(name, opts)
			t.Fatal("AttachPinned succeeded")
		}
		wantUntrusted(t, err, substrs...)
		if !strings.HasPrefix(err.Error(), fmt.Sprintf("redirect: attach pinned %q to %s (ifindex %d): ", name, v.Host, v.HostIndex)) {
			t.Errorf("err = %v, want it to start with the call's context", err)
		}
		wantDetached(t, v.HostIndex)
		wantUntrusted(t, redirect.Unpin(name, opts), substrs...)
		for _, d := range dirs {
			if got := entries(t, d); !slices.Equal(got, before[d]) {
				t.Errorf("%s holds %v, was %v", d, got, before[d])
			}
		}
	}

	t.Run("PinDir of another user", func(t *testing.T) {
		base := filepath.Join(privateBPFFS(t), "xdpkit")
		mkdir(t, base, 0o700)
		if err := os.Chown(base, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		refused(t, base, []string{base}, base+" is owned by uid 65534", "rm -r "+base, "chown")
	})
	t.Run("pin directory of another user", func(t *testing.T) {
		base := filepath.Join(privateBPFFS(t), "xdpkit")
		mkdir(t, base, 0o700)
		dir := filepath.Join(base, name)
		mkdir(t, dir, 0o700)
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		refused(t, base, []string{base, dir}, dir+" is owned by uid 65534", "chown")
	})
	t.Run("PinDir mode 0755", func(t *testing.T) {
		base := filepath.Join(privateBPFFS(t), "xdpkit")
		mkdir(t, base, 0o755)
		refused(t, base, []string{base}, base+" has mode 0755", "chmod 0700 "+base)
	})
	t.Run("pin directory mode 0777", func(t *testing.T) {
		base := filepath.Join(privateBPFFS(t), "xdpkit")
		mkdir(t, base, 0o700)
		dir := filepath.Join(base, name)
		mkdir(t, dir, 0o777)
		refused(t, base, []string{base, dir}, dir+" has mode 0777", "chmod 0700 "+dir)
	})
	t.Run("PinDir symlink", func(t *testing.T) {
		mnt := privateBPFFS(t)
		real := filepath.Join(mnt, "real")
		mkdir(t, real, 0o700)
		base := filepath.Join(mnt, "xdpkit")
		if err := os.Symlink(real, base); err != nil {
			t.Fatal(err)
		}
		refused(t, base, []string{mnt, real}, base+" is a symbolic link (to "+real+")", "rm "+base)
	})
	t.Run("pin directory symlink", func(t *testing.T) {
		mnt := privateBPFFS(t)
		elsewhere := filepath.Join(mnt, "elsewhere")
		mkdir(t, elsewhere, 0o700)
		base := filepath.Join(mnt, "xdpkit")
		mkdir(t, base, 0o700)
		dir := filepath.Join(base, name)
		if err := os.Symlink("../elsewhere", dir); err != nil {
			t.Fatal(err)
		}
		refused(t, base, []string{mnt, base, elsewhere}, dir+" is a symbolic link (to ../elsewhere)", "rm "+dir)
	})
	// A pin that is a symbolic link would load another object: the XSKMAP
	// of someone else's program, or another pin's link.
	for _, obj := range []string{"xsks", "link"} {
		t.Run("symlinked "+obj, func(t *testing.T) {
			mnt := privateBPFFS(t)
			elsewhere := filepath.Join(mnt, "elsewhere")
			mkdir(t, elsewhere, 0o700)
			m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "foreign", Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			if err := m.Pin(filepath.Join(elsewhere, obj)); err != nil {
				t.Fatal(err)
			}
			base := filepath.Join(mnt, "xdpkit")
			mkdir(t, base, 0o700)
			dir := filepath.Join(base, name)
			mkdir(t, dir, 0o700)
			if err := os.Symlink(filepath.Join(elsewhere, obj), filepath.Join(dir, obj)); err != nil {
				t.Fatal(err)
			}
			refused(t, base, []string{base, dir, elsewhere}, filepath.Join(dir, obj)+" is a symbolic link", "rm "+filepath.Join(dir, obj))
		})
	}
	t.Run("not bpffs", func(t *testing.T) {
		tmp := mountAt(t, "tmpfs", "mode=0700")
		base := filepath.Join(tmp, "xdpkit")
		mkdir(t, base, 0o700)
		dir := filepath.Join(base, name)
		mkdir(t, dir, 0o700)
		refused(t, base, []string{tmp, base, dir}, base+" is not on a BPF filesystem", "mount -t bpf -o mode=0700 bpf "+base)
	})
	t.Run("missing PinDir not on bpffs", func(t *testing.T) {
		tmp := mountAt(t, "tmpfs", "mode=0700")
		base := filepath.Join(tmp, "a", "xdpkit")
		p, err := redirect.AttachPinned(v.HostIndex, name, &redirect.Options{PinDir: base})
		if err == nil {
			p.Close()
			t.Fatal("AttachPinned succeeded")
		}
		wantUntrusted(t, err, base+" is not on a BPF filesystem ("+tmp+" is not)")
		if got := entries(t, tmp); len(got) != 0 {
			t.Errorf("AttachPinned created %v on tmpfs", got)
		}
	})
}

// Directories AttachPinned creates (missing ancestors of PinDir, PinDir,
// PinDir/name) get mode 0700 whatever the umask.
func TestPinDirCreatedMode(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{})
	for _, umask := range []int{0, 0o077, 0o277} {
		t.Run(fmt.Sprintf("umask %#o", umask), func(t *testing.T) {
			mnt := privateBPFFS(t)
			opts := redirect.Options{PinDir: filepath.Join(mnt, "a", "xdpkit")}
			name := fmt.Sprintf("test-%d-%d", os.Getpid(), pinSeq.Add(1))
			t.Cleanup(func() {
				if err := redirect.Unpin(name, &opts); err != nil {
					t.Errorf("cleanup: %v", err)
				}
				waitDetached(t, v.HostIndex, 5*time.Second)
			})
			old := syscall.Umask(umask)
			p, err := redirect.AttachPinned(v.HostIndex, name, &opts)
			syscall.Umask(old)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			for _, dir := range []string{filepath.Join(mnt, "a"), opts.PinDir, p.Pinned()} {
				fi, err := os.Lstat(dir)
				if err != nil {
					t.Fatal(err)
				}
				st := fi.Sys().(*syscall.Stat_t)
				if fi.Mode() != fs.ModeDir|0o700 || int(st.Uid) != os.Geteuid() {
					t.Errorf("%s: mode %v, owner %d; want drwx------ and uid %d", dir, fi.Mode(), st.Uid, os.Geteuid())
				}
			}
		})
	}
}

// Worker processes for TestAttachPinnedMountsBPFFS.
const (
	bpffsHelperEnv = "XDPKIT_BPFFS_HELPER" // what the helper does
	bpffsHelperOK  = "bpffs helper: ok"
)

// TestHelperBPFFSMount runs in a mount namespace of its own, where it
// unmounts /sys/fs/bpf and then calls AttachPinned with the default
// PinDir; what it checks depends on its mode (see
// TestAttachPinnedMountsBPFFS). It prints bpffsHelperOK when done.
func TestHelperBPFFSMount(t *testing.T) {
	mode := os.Getenv(bpffsHelperEnv)
	if mode == "" {
		t.Skip("helper process for TestAttachPinnedMountsBPFFS")
	}
	// Never change the mounts of the namespace the tests were started in.
	if ns, err := os.Readlink("/proc/self/ns/mnt"); err != nil || ns == os.Getenv("XDPKIT_BPFFS_PARENT_MNTNS") {
		t.Fatalf("not in a mount namespace of its own (%s, %v): refusing to change mounts", ns, err)
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		t.Fatalf("make the mount tree private: %v", err)
	}
	for i := 0; isBPFFS(bpffsRoot); i++ {
		if i == 10 {
			t.Fatalf("%s is still a bpffs after %d unmounts", bpffsRoot, i)
		}
		if err := unix.Unmount(bpffsRoot, unix.MNT_DETACH); err != nil {
			t.Fatalf("unmount %s: %v", bpffsRoot, err)
		}
	}
	iface, err := net.InterfaceByName(os.Getenv("XDPKIT_BPFFS_IFNAME"))
	if err != nil {
		t.Fatal(err)
	}
	name := os.Getenv("XDPKIT_BPFFS_NAME")
	dir := filepath.Join(redirect.DefaultPinDir, name)
	// The mounts made here go with the namespace when the process exits;
	// the pins are removed before.
	t.Cleanup(func() {
		if err := redirect.Unpin(name, nil); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})

	switch mode {
	case "mount", "mkdir":
		if mode == "mkdir" {
			// /sys/fs without a bpf directory: AttachPinned creates it.
			if err := unix.Mount("tmpfs", "/sys/fs", "tmpfs", 0, "mode=0755"); err != nil {
				t.Fatal(err)
			}
		}
		p, err := redirect.AttachPinned(iface.Index, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		wantBPFFSMounted(t)
		if _, err := os.Lstat(filepath.Join(dir, "link")); err != nil {
			t.Errorf("link pin: %v", err)
		}
		id := progID(t, p.XDPProgram())
		if got := xdpInfo(t, iface.Index).AnyProgID(); got != id {
			t.Errorf("attached program %d, want %d", got, id)
		}
		// A second caller finds bpffs and the pins there: no second mount.
		p2, err := redirect.AttachPinned(iface.Index, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer p2.Close()
		if got := progID(t, p2.XDPProgram()); got != id {
			t.Errorf("second AttachPinned: program %d, want the pinned %d", got, id)
		}
		wantBPFFSMounted(t)
	case "concurrent":
		// Callers racing to mount: one mounts, the others wait for it.
		const n = 8
		progs := make([]*redirect.Program, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				progs[i], errs[i] = redirect.AttachPinned(iface.Index, name, nil)
			})
		}
		close(start)
		wg.Wait()
		ids := map[uint32]bool{}
		for i, p := range progs {
			if errs[i] != nil {
				t.Errorf("attach #%d: %v", i, errs[i])
				continue
			}
			defer p.Close()
			ids[progID(t, p.XDPProgram())] = true
		}
		if len(ids) != 1 {
			t.Errorf("concurrent AttachPinned made programs %v, want one", ids)
		}
		wantBPFFSMounted(t)
	case "noperm":
		errc := make(chan error, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread dies with this goroutine
			hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
			var data [2]unix.CapUserData
			if err := unix.Capget(&hdr, &data[0]); err != nil {
				errc <- fmt.Errorf("capget: %w", err)
				return
			}
			data[0].Effective &^= 1 << unix.CAP_SYS_ADMIN
			if err := unix.Capset(&hdr, &data[0]); err != nil {
				errc <- fmt.Errorf("capset: %w", err)
				return
			}
			p, err := redirect.AttachPinned(iface.Index, name, nil)
			if err == nil {
				p.Close()
				err = errors.New("AttachPinned without CAP_SYS_ADMIN succeeded")
			}
			errc <- err
		}()
		err := <-errc
		if !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "CAP_SYS_ADMIN") || !strings.Contains(err.Error(), "mount -t bpf") {
			t.Errorf("err = %v, want a permission error naming CAP_SYS_ADMIN and the mount command", err)
		}
		t.Log(err)
		if isBPFFS(bpffsRoot) {
			t.Errorf("%s was mounted without CAP_SYS_ADMIN", bpffsRoot)
		}
		wantDetached(t, iface.Index)
	case "nosysfs":
		// No /sys/fs/bpf, and /sys is not sysfs: nothing is created.
		if err := unix.Mount("tmpfs", "/sys", "tmpfs", 0, "mode=0755"); err != nil {
			t.Fatal(err)
		}
		p, err := redirect.AttachPinned(iface.Index, name, nil)
		if err == nil {
			p.Close()
			t.Fatal("AttachPinned succeeded")
		}
		if !strings.Contains(err.Error(), "/sys is not sysfs") || !strings.Contains(err.Error(), "mount -t bpf") {
			t.Errorf("err = %v, want it to say /sys is not sysfs and how to mount bpffs", err)
		}
		t.Log(err)
		if got := entries(t, "/sys"); len(got) != 0 {
			t.Errorf("AttachPinned created %v in /sys", got)
		}
		wantDetached(t, iface.Index)
	default:
		t.Fatalf("unknown mode %q", mode)
	}
	if !t.Failed() {
		fmt.Println(bpffsHelperOK)
	}
}

// wantBPFFSMounted checks that exactly one BPF filesystem is mounted on
// /sys/fs/bpf, with mode 0700.
func wantBPFFSMounted(t *testing.T) {
	t.Helper()
	var opts []string
	for _, m := range mounts(t) {
		if m.point == bpffsRoot {
			opts = append(opts, m.fstype+" "+m.super)
		}
	}
	if len(opts) != 1 || !strings.HasPrefix(opts[0], "bpf ") || !strings.Contains(opts[0], "mode=700") {
		t.Errorf("mounts on %s: %q, want one bpf with mode=700", bpffsRoot, opts)
	}
	// bpffs always sets the sticky bit on its root.
	fi, err := os.Stat(bpffsRoot)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: %v, %v; want mode 0700", bpffsRoot, fi.Mode(), err)
	}
}

type mount struct{ point, fstype, super string }

// mounts parses /proc/self/mountinfo.
func mounts(t *testing.T) []mount {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var ms []mount
	for line := range strings.Lines(string(b)) {
		pre, post, ok := strings.Cut(strings.TrimSpace(line), " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 {
			t.Fatalf("mountinfo line %q", line)
		}
		ms = append(ms, mount{point: f[4], fstype: g[0], super: g[2]})
	}
	return ms
}

// hostMounts returns the lines of /proc/self/mountinfo, without the
// network namespaces under /run/netns: tests running in parallel (of
// this package or others) add and remove those.
func hostMounts(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], "/run/netns/") {
			continue
		}
		lines = append(lines, strings.TrimSpace(line))
	}
	return lines
}

// AttachPinned mounts a BPF filesystem on /sys/fs/bpf when none is there,
// as bpftool does. Each case runs in a child process with a mount
// namespace of its own, so the host's mounts stay as they are (checked).
func TestAttachPinnedMountsBPFFS(t *testing.T) {
	v := testutils.NewVeth(t, testutils.VethOptions{Queues: 2})
	ns, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{
		"mount",      // /sys/fs/bpf exists: mounted there, with mode 0700, once
		"mkdir",      // /sys/fs/bpf missing: created, then mounted
		"concurrent", // racing callers mount once
		"noperm",     // no CAP_SYS_ADMIN: a permission error that says so
		"nosysfs",    // /sys is not sysfs: nothing created
	} {
		t.Run(mode, func(t *testing.T) {
			before := hostMounts(t)
			name := fmt.Sprintf("test-%d-%d", os.Getpid(), pinSeq.Add(1))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel() // kills the child if it hangs
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperBPFFSMount$", "-test.count=1", "-test.timeout=50s", "-test.v")
			cmd.Env = append(os.Environ(), bpffsHelperEnv+"="+mode, "XDPKIT_BPFFS_IFNAME="+v.Host,
				"XDPKIT_BPFFS_NAME="+name, "XDPKIT_BPFFS_PARENT_MNTNS="+ns)
			cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
			out, err := cmd.CombinedOutput()
			if err != nil || !bytes.Contains(out, []byte(bpffsHelperOK)) {
				t.Fatalf("helper: %v; output:\n%s", err, out)
			}
			t.Logf("helper output:\n%s", out)
			if after := hostMounts(t); !slices.Equal(before, after) {
				t.Errorf("the host's mounts changed:\nbefore:\n%s\nafter:\n%s", strings.Join(before, "\n"), strings.Join(after, "\n"))
			}
			if _, err := os.Lstat(filepath.Join(redirect.DefaultPinDir, name)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("pin directory on the host: %v", err)
			}
			waitDetached(t, v.HostIndex, 5*time.Second)
		})
	}
}
