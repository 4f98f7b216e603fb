package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigTemplateRPCAddr: a fresh config file shows rpc_addr commented
// out (the RPC stays off), and a set one is written and read back.
func TestConfigTemplateRPCAddr(t *testing.T) {
	home := t.TempDir()
	if err := WriteConfig(DefaultConfig(home)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(home, ConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "\n# rpc_addr = \"127.0.0.1:5001\"\n") {
		t.Fatalf("the template does not show rpc_addr commented out:\n%s", b)
	}
	if cfg, err := LoadConfig(home); err != nil || cfg.API.RPCAddr != "" {
		t.Fatalf("the fresh config loads with rpc_addr %q, %v; want it off", cfg.API.RPCAddr, err)
	}
	set := DefaultConfig(t.TempDir())
	set.API.RPCAddr = "127.0.0.1:5099"
	if err := WriteConfig(set); err != nil {
		t.Fatal(err)
	}
	if cfg, err := LoadConfig(set.Home); err != nil || cfg.API.RPCAddr != "127.0.0.1:5099" {
		t.Fatalf("rpc_addr read back as %q, %v", cfg.API.RPCAddr, err)
	}
}
