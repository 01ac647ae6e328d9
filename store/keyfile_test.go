package store

import (
	"crypto/rand"
	"fmt"
	"os"
	"strings"
	"testing"
)

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := dir + "/" + name
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	raw := make([]byte, 32)
	rand.Read(raw)
	if k, err := ReadKeyFile(write("raw", raw)); err != nil || string(k) != string(raw) {
		t.Fatalf("raw: %v", err)
	}
	if k, err := ReadKeyFile(write("hex", []byte(fmt.Sprintf("%x\n", raw)))); err != nil || string(k) != string(raw) {
		t.Fatalf("hex: %v", err)
	}
	if _, err := ReadKeyFile(write("short", []byte("short"))); err == nil || !strings.Contains(err.Error(), "want 16, 24 or 32") {
		t.Fatalf("short key: %v", err)
	}
	if _, err := ReadKeyFile(dir + "/missing"); err == nil {
		t.Fatal("missing key file accepted")
	}
}

// TestCrashLosesNothingAcknowledged runs writes in a child process, kills it with SIGKILL while
// it is still writing, and checks that every write it acknowledged is in the reopened store.
