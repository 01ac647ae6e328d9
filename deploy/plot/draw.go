package main

import (
	"fmt"
	"image/color"
	"os"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Colours of Grafana's (and matplotlib's) default palette, as the dashboard draws them.
var (
	blue   = color.RGBA{31, 119, 180, 255}
	orange = color.RGBA{255, 127, 14, 255}
	red    = color.RGBA{214, 39, 40, 255}
	green  = color.RGBA{44, 160, 44, 255}
)

type series struct {
	name  string
	color color.Color
	value func(sample) float64
}

// render draws four panels of the dashboard, two by two, into a 1200x760 PNG at out.
func render(samples []sample, out string) error {
	panels := []struct {
		title, unit string
		series      []series
	}{
		{"Checks per second by result", "checks/s", []series{
			{"allowed", green, func(s sample) float64 { return s.allowed }},
			{"denied", orange, func(s sample) float64 { return s.denied }},
			{"error", red, func(s sample) float64 { return s.errored }}}},
		{"Check latency inside rill-authd", "µs", []series{
			{"p50", blue, func(s sample) float64 { return s.p50 }},
			{"p99", red, func(s sample) float64 { return s.p99 }}}},
		{"Cache hit ratio", "hits / (hits + misses)", []series{
			{"hit ratio", blue, func(s sample) float64 { return s.hitRatio }}}},
		{"Active tokens by kind", "tokens", []series{
			{"user", blue, func(s sample) float64 { return s.usr }},
			{"service", orange, func(s sample) float64 { return s.svc }}}},
	}
	const rows, cols = 2, 2
	plots := make([][]*plot.Plot, rows)
	for i := range plots {
		plots[i] = make([]*plot.Plot, cols)
	}
	for i, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.title
		p.X.Label.Text = "time (s)"
		p.Y.Label.Text = pn.unit
		p.Y.Min = 0
		p.Y.Tick.Marker = shortTicks{}
		p.Add(plotter.NewGrid())
		p.Legend.Top = true
		for _, s := range pn.series {
			xys := make(plotter.XYs, len(samples))
			for j, smp := range samples {
				xys[j].X, xys[j].Y = float64(j+1), s.value(smp)
			}
			l, err := plotter.NewLine(xys)
			if err != nil {
				return fmt.Errorf("%s: %s: %w", pn.title, s.name, err)
			}
			l.Color, l.Width = s.color, vg.Points(1.5)
			p.Add(l)
			p.Legend.Add(s.name, l)
		}
		plots[i/cols][i%cols] = p
	}
	img := vgimg.NewWith(vgimg.UseWH(1200*vg.Inch/96, 760*vg.Inch/96), vgimg.UseDPI(96), vgimg.UseBackgroundColor(color.White))
	dc := draw.New(img)
	title := dc
	title.Min.Y = title.Max.Y - vg.Points(24)
	dc.Max.Y -= vg.Points(28)
	font := plot.DefaultFont
	font.Size = vg.Points(14)
	title.FillText(draw.TextStyle{Color: color.Black, Font: font, XAlign: draw.XCenter, Handler: plot.DefaultTextHandler},
		vg.Point{X: (title.Min.X + title.Max.X) / 2, Y: title.Min.Y + vg.Points(6)},
		fmt.Sprintf("rill-authd under a %d s load (scraped from /metrics once a second)", len(samples)))
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(16), PadY: vg.Points(12), PadTop: vg.Points(4), PadBottom: vg.Points(8), PadLeft: vg.Points(8), PadRight: vg.Points(16)}
	canvases := plot.Align(plots, tiles, dc)
	for r := range plots {
		for c := range plots[r] {
			plots[r][c].Draw(canvases[r][c])
		}
	}
	w, err := os.Create(out)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
		w.Close()
		return fmt.Errorf("write %s: %w", out, err)
	}
	return w.Close()
}

// shortTicks are gonum's default ticks labelled without trailing zeros (25000, not 25000.00).
type shortTicks struct{}

func (shortTicks) Ticks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'g', -1, 64)
		}
	}
	return ts
}
