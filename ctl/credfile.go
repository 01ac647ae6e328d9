package ctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// credentials is what rillctl keeps in $XDG_CONFIG_HOME/rillctl/credentials.json (default
// ~/.config/rillctl/), mode 0600, dir 0700: what `rillctl login` obtained, so that later
// commands need neither --token nor RILLCTL_TOKEN. Rill's CLI keeps its token the same way
// (cli/pkg/dotrill: access_token and backup_token in ~/.rill/credentials.yaml).
type credentials struct {
	URL         string `json:"url,omitempty"`          // the API it was issued by
	Token       string `json:"token"`                  // the active token
	BackupToken string `json:"backup_token,omitempty"` // the token in force before `sudo user assume` (Rill's CLI keeps the same)
}

// maxCredentialsFile bounds what loadCredentials reads: the file holds two tokens and a URL.
const maxCredentialsFile = 64 << 10

// credentialsPath is where the credentials live: $XDG_CONFIG_HOME/rillctl/credentials.json, or
// ~/.config/rillctl/credentials.json. It is the same on every OS that has $HOME (a macOS user
// finds it where the docs say, not in ~/Library/Application Support).
func credentialsPath() (string, error) {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" || !filepath.IsAbs(dir) { // the XDG spec: a relative value is to be ignored
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("where to keep credentials: %w (set HOME or XDG_CONFIG_HOME)", err)
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "rillctl", "credentials.json"), nil
}

// loadCredentials reads the stored credentials; false when there are none. A file others can
// read is still used (it is the user's own), but one that is not a regular file is refused.
func loadCredentials() (credentials, bool, error) {
	p, err := credentialsPath()
	if err != nil {
		return credentials{}, false, err
	}
	fi, err := os.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return credentials{}, false, nil
	}
	if err != nil {
		return credentials{}, false, fmt.Errorf("read credentials: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return credentials{}, false, fmt.Errorf("read credentials: %s is not a regular file (remove it and run rillctl login)", p)
	}
	if fi.Size() > maxCredentialsFile {
		return credentials{}, false, fmt.Errorf("read credentials: %s is too large to be rillctl's (remove it and run rillctl login)", p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return credentials{}, false, fmt.Errorf("read credentials: %w", err)
	}
	var c credentials
	if err := json.Unmarshal(b, &c); err != nil {
		return credentials{}, false, fmt.Errorf("read credentials %s: %w (remove it and run rillctl login)", p, err)
	}
	if c.Token == "" {
		return credentials{}, false, nil
	}
	return c, true, nil
}

// saveCredentials writes c atomically (a temporary file in the same directory, renamed over the
// old one), so a crash leaves the old credentials or the new, never half of either. The file is
// created 0600 and the directory 0700. A symlink at the path is refused rather than followed or
// replaced: it would be someone pointing rillctl's secret somewhere else.
func saveCredentials(c credentials) error {
	p, err := credentialsPath()
	if err != nil {
		return err
	}
	dir := filepath.Dir(p)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	if fi, err := os.Lstat(p); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("save credentials: %s is a symlink or not a regular file; refusing to write through it", p)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("save credentials: %w", err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	f, err := os.CreateTemp(dir, ".credentials-*.json")
	if err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing left to remove
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("save credentials: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("save credentials: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("save credentials: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	return nil
}

// removeCredentials deletes the stored credentials; none stored is not an error.
func removeCredentials() error {
	p, err := credentialsPath()
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove credentials: %w", err)
	}
	return nil
}
