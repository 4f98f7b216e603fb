package sim

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// chart draws simple SVG plots with axes; everything is inline so the
// report needs no outside file.
type chart struct {
	w, h       float64
	left, bot  float64
	xmax, ymax float64
	xlabel     string
	ylabel     string
	b          strings.Builder
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"}

func color(i int) string { return palette[i%len(palette)] }

func newChart(xmax, ymax float64, xlabel, ylabel string) *chart {
	c := &chart{w: 640, h: 300, left: 60, bot: 40, xmax: niceMax(xmax), ymax: niceMax(ymax), xlabel: xlabel, ylabel: ylabel}
	fmt.Fprintf(&c.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="11">`, c.w, c.h, c.w, c.h)
	c.axes()
	return c
}

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten.
func niceMax(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func (c *chart) x(v float64) float64 { return c.left + v/c.xmax*(c.w-c.left-20) }
func (c *chart) y(v float64) float64 { return c.h - c.bot - v/c.ymax*(c.h-c.bot-20) }

func (c *chart) axes() {
	x0, y0 := c.x(0), c.y(0)
	fmt.Fprintf(&c.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`, x0, y0, c.x(c.xmax), y0)
	fmt.Fprintf(&c.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#333"/>`, x0, y0, x0, c.y(c.ymax))
	for i := 0; i <= 5; i++ {
		xv, yv := c.xmax*float64(i)/5, c.ymax*float64(i)/5
		fmt.Fprintf(&c.b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, c.x(xv), y0+14, num(xv))
		fmt.Fprintf(&c.b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`, x0-4, c.y(yv)+4, num(yv))
		fmt.Fprintf(&c.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`, x0, c.y(yv), c.x(c.xmax), c.y(yv))
	}
	fmt.Fprintf(&c.b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`, (c.x(0)+c.x(c.xmax))/2, c.h-6, html.EscapeString(c.xlabel))
	fmt.Fprintf(&c.b, `<text x="12" y="%.1f" text-anchor="middle" transform="rotate(-90 12 %.1f)">%s</text>`, (c.y(0)+c.y(c.ymax))/2, (c.y(0)+c.y(c.ymax))/2, html.EscapeString(c.ylabel))
}

func num(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2g", v)
}

// line draws a polyline through points (x, y).
func (c *chart) line(xs, ys []float64, col string, step bool) {
	var pts strings.Builder
	for i := range xs {
		if step && i > 0 {
			fmt.Fprintf(&pts, "%.1f,%.1f ", c.x(xs[i]), c.y(ys[i-1]))
		}
		fmt.Fprintf(&pts, "%.1f,%.1f ", c.x(xs[i]), c.y(ys[i]))
	}
	fmt.Fprintf(&c.b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`, col, pts.String())
}

// vline marks x = v with a dashed line and a label.
func (c *chart) vline(v float64, label string) {
	if v > c.xmax {
		return
	}
	fmt.Fprintf(&c.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#000" stroke-dasharray="4 3"/>`, c.x(v), c.y(0), c.x(v), c.y(c.ymax))
	fmt.Fprintf(&c.b, `<text x="%.1f" y="%.1f">%s</text>`, c.x(v)+3, c.y(c.ymax)+10, html.EscapeString(label))
}

// bar draws a bar from x to x+w of height v.
func (c *chart) bar(x, w, v float64, col, title string) {
	fmt.Fprintf(&c.b, `<rect x="%.1f" y="%.1f" width="%.2f" height="%.1f" fill="%s"><title>%s</title></rect>`,
		c.x(x), c.y(v), math.Max(c.x(x+w)-c.x(x), 0.5), c.y(0)-c.y(v), col, html.EscapeString(title))
}

// legend lists names with their colours in the top right corner.
func (c *chart) legend(names []string) {
	for i, n := range names {
		y := 26 + float64(i)*14
		fmt.Fprintf(&c.b, `<rect x="%.1f" y="%.1f" width="10" height="10" fill="%s"/><text x="%.1f" y="%.1f">%s</text>`,
			c.w-150, y-9, color(i), c.w-136, y, html.EscapeString(n))
	}
}

func (c *chart) svg() string { return c.b.String() + "</svg>" }
