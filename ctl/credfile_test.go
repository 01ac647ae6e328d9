package ctl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCredentialsFile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	t.Setenv("HOME", filepath.Join(dir, "home"))
	p, err := credentialsPath()
	if err != nil || p != filepath.Join(dir, "rillctl", "credentials.json") {
		t.Fatalf("credentialsPath = %q, %v", p, err)
	}
	if _, ok, err := loadCredentials(); ok || err != nil {
		t.Fatalf("load with no file: ok=%v err=%v", ok, err)
	}
	want := credentials{URL: "http://127.0.0.1:1", Token: "rill_usr_a", BackupToken: "rill_usr_b"}
	if err := saveCredentials(want); err != nil {
		t.Fatal(err)
	}
	got, ok, err := loadCredentials()
	if !ok || err != nil || got != want {
		t.Fatalf("load = %+v %v %v, want %+v", got, ok, err, want)
	}
	for path, mode := range map[string]os.FileMode{p: 0o600, filepath.Dir(p): 0o700 | os.ModeDir} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode() != mode {
			t.Fatalf("%s: mode %v (%v), want %v", path, fi.Mode(), err, mode)
		}
	}
	// Replaced atomically: no temporary files left next to it.
	if err := saveCredentials(credentials{Token: "rill_usr_c"}); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 1 {
		t.Fatalf("after two saves the directory holds %d entries, want 1", len(ents))
	}
	if err := removeCredentials(); err != nil {
		t.Fatal(err)
	}
	if err := removeCredentials(); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	if _, ok, _ := loadCredentials(); ok {
		t.Fatal("credentials still there after remove")
	}

	// A symlink at the path is neither followed nor replaced.
	target := filepath.Join(dir, "elsewhere")
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
	if err := saveCredentials(want); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("save through a symlink: %v", err)
	}
	if _, err := os.Lstat(target); !os.IsNotExist(err) {
		t.Fatalf("the symlink's target was written: %v", err)
	}
	if _, _, err := loadCredentials(); err == nil {
		t.Fatal("load through a symlink succeeded")
	}
	os.Remove(p)

	// Garbage is a clear error, not a token.
	if err := os.WriteFile(p, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadCredentials(); err == nil || !strings.Contains(err.Error(), "rillctl login") {
		t.Fatalf("load of garbage: %v", err)
	}
}

func TestCredentialsPathDefault(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	for _, xdg := range []string{"", "relative/dir"} {
		t.Setenv("XDG_CONFIG_HOME", xdg)
		p, err := credentialsPath()
		if err != nil || p != filepath.Join(home, ".config", "rillctl", "credentials.json") {
			t.Fatalf("XDG_CONFIG_HOME=%q: %q, %v", xdg, p, err)
		}
	}
}

func TestResolveStoredCredentials(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", dir)
	if err := saveCredentials(credentials{URL: "http://127.0.0.1:7", Token: "rill_usr_stored"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, url, token   string
		wantURL, wantToken string
	}{
		{"nothing given", "", "", "http://127.0.0.1:7", "rill_usr_stored"},
		{"same url", "http://127.0.0.1:7/", "", "http://127.0.0.1:7/", "rill_usr_stored"},
		{"other url", "http://127.0.0.1:8", "", "http://127.0.0.1:8", ""},
		{"token given", "", "rill_usr_flag", defaultAPIURL, "rill_usr_flag"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := Globals{APIURL: tt.url, Token: tt.token}
			if err := g.resolve(); err != nil {
				t.Fatal(err)
			}
			if g.APIURL != tt.wantURL || g.Token != tt.wantToken {
				t.Fatalf("resolve = %q %q, want %q %q", g.APIURL, g.Token, tt.wantURL, tt.wantToken)
			}
		})
	}
}
