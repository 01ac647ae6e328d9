package main

import (
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/rill-authd/rill-authd/internal/testenv"
)

// TestPlotDrawsTheDashboard runs the program's load and scrapes against a real daemon for a
// few seconds and checks the PNG: its size, and the panels' lines drawn in their colours.
func TestPlotDrawsTheDashboard(t *testing.T) {
	d := testenv.Start(t, "")
	out := filepath.Join(t.TempDir(), "dashboard.png")
	if dir := os.Getenv("PLOT_TEST_KEEP"); dir != "" {
		out = filepath.Join(dir, "dashboard.png")
	}
	if err := run(d.URL(), d.GRPCAddr, d.Token, 3, 2, out); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1200 || b.Dy() != 760 {
		t.Errorf("size %v, want 1200x760", b)
	}
	seen := map[color.RGBA]int{}
	for y := img.Bounds().Min.Y; y < img.Bounds().Max.Y; y++ {
		for x := img.Bounds().Min.X; x < img.Bounds().Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			seen[color.RGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 255}]++
		}
	}
	for name, c := range map[string]color.RGBA{"allowed (green)": green, "p50 (blue)": blue, "p99 (red)": red} {
		if seen[c] < 50 {
			t.Errorf("the %s line is missing: %d pixels of it", name, seen[c])
		}
	}
}
