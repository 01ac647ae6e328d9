package store

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
)

// ReadKeyFile reads an at-rest encryption key: 16, 24 or 32 raw bytes, or that many bytes in
// hex (surrounding white space ignored).
func ReadKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read encryption key: %w", err)
	}
	if t := bytes.TrimSpace(b); len(t) == 32 || len(t) == 48 || len(t) == 64 {
		if k, err := hex.DecodeString(string(t)); err == nil {
			return k, nil
		}
	}
	switch len(b) {
	case 16, 24, 32:
		return b, nil
	}
	return nil, fmt.Errorf("encryption key %s: want 16, 24 or 32 bytes (raw or hex), got %d bytes", path, len(b))
}
