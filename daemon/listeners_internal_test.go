package daemon

import "testing"

func TestHTTPConnLimitFormula(t *testing.T) {
	for nofile, want := range map[uint64]int{
		0: httpConnFloor, 100: httpConnFloor, 160: httpConnFloor, 161: 16,
		256: 64, 1024: 448, 65536: 16384, 1 << 20: httpConnCap, 1<<63 - 1: httpConnCap,
	} {
		if got := httpConnLimit(nofile); got != want {
			t.Errorf("httpConnLimit(%d) = %d, want %d", nofile, got, want)
		}
	}
}
