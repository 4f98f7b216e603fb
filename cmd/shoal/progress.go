package main

import (
	"io"
	"os"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
)

// isTerminal reports whether w is a terminal, where progress bars go.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// newBar returns a byte progress bar on w, or nil when w is not a
// terminal. total -1 means unknown. A nil *progressbar.ProgressBar is not
// usable, so callers go through barWriter, barFinish and barClear.
func newBar(w io.Writer, total int64, description string) *progressbar.ProgressBar {
	if !isTerminal(w) {
		return nil
	}
	return byteBar(w, total, description)
}

// byteBar draws bytes done of total ("12/256 MiB") and the rate in
// IEC units, the ones every other size shoal prints is in.
func byteBar(w io.Writer, total int64, description string) *progressbar.ProgressBar {
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(description),
		progressbar.OptionShowBytes(true),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionShowCount(),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionOnCompletion(func() { _, _ = io.WriteString(w, "\n") }),
		progressbar.OptionSpinnerType(14),
	)
}

// barWriter counts bytes into bar (a nil bar counts nothing).
func barWriter(bar *progressbar.ProgressBar) io.Writer {
	if bar == nil {
		return io.Discard
	}
	return bar
}

func barFinish(bar *progressbar.ProgressBar) {
	if bar != nil {
		_ = bar.Finish()
	}
}

func barClear(bar *progressbar.ProgressBar) {
	if bar != nil {
		_ = bar.Exit()
	}
}
