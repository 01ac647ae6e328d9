package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// unixScheme prefixes a listen address that is a Unix socket: unix:///run/rill-authd/authz.sock.
const unixScheme = "unix://"

// socketMode is the mode of a socket we create: the owner and the group may connect (connecting
// needs write permission), nobody else. The group is --socket-group's, so that Envoy's user,
// in that group, reaches the check without the socket being open to every local user.
const socketMode = 0o660

// maxSocketPath is the longest path of a Unix socket on Linux (sun_path's 108 bytes, one NUL).
const maxSocketPath = 107

// socketPath is the path of a unix:// address, "" for a TCP one.
func socketPath(addr string) string {
	if p, ok := strings.CutPrefix(addr, unixScheme); ok {
		return p
	}
	return ""
}

// listen opens the listener of flag (--grpc-addr, --http-addr) on addr: TCP host:port, or a Unix
// socket at unix:///path created with socketMode and group gid (-1: the process's).
func listen(flag, addr string, gid int) (net.Listener, error) {
	path := socketPath(addr)
	if path == "" {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s %s: %w%s", flag, addr, err, inUseHint(err, flag))
		}
		return l, nil
	}
	l, err := listenUnix(path, gid)
	if err != nil {
		return nil, fmt.Errorf("listen on %s %s: %w", flag, addr, err)
	}
	return l, nil
}

// listenUnix creates the socket at path. A socket already there is the remnant of a process
// that died without removing it (a crash, SIGKILL) only when nobody answers on it: that one is
// replaced; a live one (another daemon, maybe this one started twice) or anything that is not a
// socket is never touched, and the start fails saying why.
//
// The socket is bound under a temporary name in the same directory, given its mode and group,
// then renamed into place, so that it is never reachable with the mode the umask gives.
func listenUnix(path string, gid int) (net.Listener, error) {
	if path == "" || !filepath.IsAbs(path) {
		return nil, fmt.Errorf("want an absolute path, as unix:///run/rill-authd/authz.sock")
	}
	// Short: a socket's path has at most 107 bytes (sun_path), the temporary one too.
	tmp := filepath.Join(filepath.Dir(path), fmt.Sprintf(".%x.tmp", os.Getpid()))
	if len(path) > maxSocketPath || len(tmp) > maxSocketPath {
		return nil, fmt.Errorf("the path is too long for a Unix socket (at most %d bytes)", maxSocketPath)
	}
	if err := clearStale(path); err != nil {
		return nil, err
	}
	os.Remove(tmp) // ours, from a start of this pid that failed half-way
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, err
	}
	// We remove the socket ourselves, by its final name, and only if it is still ours.
	l.SetUnlinkOnClose(false)
	fail := func(err error) (net.Listener, error) {
		l.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Chmod(tmp, socketMode); err != nil {
		return fail(err)
	}
	if gid >= 0 {
		if err := os.Chown(tmp, -1, gid); err != nil {
			return fail(fmt.Errorf("--socket-group: %w", err))
		}
	}
	fi, err := os.Lstat(tmp)
	if err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	return &unixListener{UnixListener: l, path: path, fi: fi}, nil
}

// clearStale makes way for a new socket at path: nothing there is fine; a socket nobody
// listens on is removed; anything else is an error that names what is there.
func clearStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket (%s): refusing to replace it; remove it or choose another path", path, fi.Mode().Type())
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s: another process is listening on this socket (a daemon already running?): refusing to replace it", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		// EACCES, a timeout (a live listener with a full backlog): we cannot tell it is stale.
		return fmt.Errorf("%s exists and cannot be told stale: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}

// unixListener removes its socket on Close, if the path still holds the socket it created (a
// daemon started after this one may have replaced a socket it took for stale).
type unixListener struct {
	*net.UnixListener
	path string
	fi   os.FileInfo
	once sync.Once
}

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() {
		if fi, serr := os.Lstat(l.path); serr == nil && os.SameFile(fi, l.fi) {
			os.Remove(l.path)
		}
	})
	return err
}

// socketGroup is the gid of --socket-group, a group name or number; -1 for none.
func socketGroup(name string) (int, error) {
	if name == "" {
		return -1, nil
	}
	if gid, err := strconv.Atoi(name); err == nil {
		if gid < 0 {
			return 0, fmt.Errorf("--socket-group %s: a gid is 0 or more", name)
		}
		return gid, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("--socket-group %s: %w", name, err)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return 0, fmt.Errorf("--socket-group %s: gid %q: %w", name, g.Gid, err)
	}
	return gid, nil
}

// listenAddr is how a listener's address is logged and given to clients: host:port for TCP,
// unix:///path for a socket.
func listenAddr(l net.Listener) string {
	if a, ok := l.Addr().(*net.UnixAddr); ok {
		if ul, ok := l.(*unixListener); ok {
			return unixScheme + ul.path
		}
		return unixScheme + a.Name
	}
	return l.Addr().String()
}
