package web

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/shoalnet/shoal/node"
)

// TestStatusForTransferEnds: a transfer someone cancelled is 409, one
// whose peers sent nothing is 504 (both were 500).
func TestStatusForTransferEnds(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{fmt.Errorf("%w: fetch of x", node.ErrTransferCancelled), http.StatusConflict},
		{fmt.Errorf("fetch of x received nothing for 2m0s: %w", node.ErrNoProgress), http.StatusGatewayTimeout},
	} {
		if got := statusFor(tc.err); got != tc.want {
			t.Errorf("statusFor(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
