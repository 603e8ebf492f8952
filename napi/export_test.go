//go:build linux

package napi

import "path/filepath"

// Config is the package's configuration, for tests that use a fake sysfs
// root or a private state directory.
type Config = config

// NewConfig returns a configuration that looks for interfaces under
// sysRoot (for /sys/class/net) and keeps state in stateDir.
func NewConfig(sysRoot, stateDir string) *Config {
	return &config{sysRoot: sysRoot, stateDir: stateDir}
}

// StatePath returns the path of the state file of ifname.
func (c *config) StatePath(ifname string) (string, error) {
	k, err := c.key(ifname)
	return filepath.Join(c.stateDir, k.fileName()), err
}
