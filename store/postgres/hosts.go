package postgres

import (
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// primaryOnly makes every connection made with cfg reach a primary: unless the URL (or
// PGTARGETSESSIONATTRS) chooses target_session_attrs itself, a connection to a server that
// does not accept writes (a standby, a primary being demoted) is refused and the next host of
// a multi-host URL is tried. Nothing here works on a standby: writes fail there, and so does
// the feed's LISTEN.
func primaryOnly(cfg *pgconn.Config, url string) {
	if cfg.ValidateConnect != nil || strings.Contains(url, "target_session_attrs") || os.Getenv("PGTARGETSESSIONATTRS") != "" {
		return
	}
	cfg.ValidateConnect = pgconn.ValidateConnectTargetSessionAttrsReadWrite
}

// hosts names every host:port a connection may try, for messages (no user, no password).
func hosts(cfg *pgconn.Config) string {
	all := []string{hostPort(cfg.Host, cfg.Port)}
	for _, f := range cfg.Fallbacks {
		if hp := hostPort(f.Host, f.Port); hp != all[len(all)-1] { // sslmode=prefer repeats a host
			all = append(all, hp)
		}
	}
	return strings.Join(all, ",")
}

func hostPort(host string, port uint16) string {
	if strings.HasPrefix(host, "/") {
		return host // a Unix socket directory
	}
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}
