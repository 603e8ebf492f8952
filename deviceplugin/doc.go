// Package deviceplugin is the pod side of the AF_XDP device plugin for
// Kubernetes (github.com/intel/afxdp-plugins-for-kubernetes): how a
// program in a pod without CAP_BPF or CAP_NET_ADMIN gets the XSKMAP of
// the XDP program the plugin attached to its interface, the way DPDK's
// af_xdp driver does with use_cni and use_pinned_map.
//
// The plugin attaches the program on the node and offers the map in one
// of two ways, each under a directory per interface (DefaultDir, DPDK's
// dp_path, mounted into the pod):
//
//   - a unix socket, DIR/IFACE/afxdp.sock (SOCK_SEQPACKET), over which
//     the pod asks for the map's fd: /connect,HOSTNAME → /host_ok,
//     /version → 0.1, /xsk_map_fd,IFACE → /fd_ack with the fd attached
//     (SCM_RIGHTS), optionally /config_busy_poll,TIMEOUT,BUDGET with the
//     AF_XDP socket's fd attached → /config_busy_poll_ack (the plugin
//     sets the busy-poll options the pod may not), and /fin → /fin_ack.
//     [XSKMap] does the whole exchange; [Client] does it a step at a
//     time;
//   - the map pinned in bpffs, DIR/IFACE/xsks_map ([PinnedXSKMap]).
//
// Either way the pod then opens its AF_XDP sockets and inserts them in
// the map (afxdp.Config.Steering = redirect.XSKMapRegistrar(m)), which
// needs CAP_NET_RAW and locked memory, nothing else.
//
// Every exchange is bounded by a timeout; the plugin's refusals
// (/host_nak, /fd_nak, /nak, /error, /config_busy_poll_nak) and a plugin
// that closes the connection or stays silent are errors that say which
// request they answer. A Client is not safe for concurrent use.
package deviceplugin
