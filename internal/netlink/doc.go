// Package netlink is xdpkit's minimal rtnetlink client: it asks the kernel
// about one network interface (name, MTU, RX/TX queue counts, the device
// it is tied to and the XDP programs attached to it) with a single
// RTM_GETLINK request, sent through github.com/mdlayher/netlink.
//
// It exists so the public packages can size an XSKMAP from the RX queue
// count and say which program is in the way when an XDP attach is refused,
// and so `xdpkit doctor` can read a veth's peer, also in another network
// namespace ([LinkByIndexIn]). It only reads: attaching programs is done
// through BPF links by package redirect.
//
// # Namespaces
//
// Every call opens a fresh NETLINK_ROUTE socket, so it sees the network
// namespace of the calling OS thread. Callers that switch namespaces must
// hold the thread with [runtime.LockOSThread] around the call.
//
// # Privileges and platforms
//
// Reading link attributes needs no privilege. The package is Linux-only; on
// other systems [LinkByIndex] and [LinkByName] return an error wrapping
// [errors.ErrUnsupported].
//
// # Errors
//
// A missing interface gives an error matching both [ErrNotFound] and, when
// the kernel said so, unix.ENODEV. Kernel errors keep their errno reachable
// through [errors.Is]; every wait on the socket is bounded by [Timeout].
package netlink
