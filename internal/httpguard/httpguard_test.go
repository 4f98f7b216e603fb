package httpguard

import (
	"net/http/httptest"
	"testing"
)

func TestAllowedHost(t *testing.T) {
	for _, tc := range []struct {
		listen, host string
		ok           bool
	}{
		{"127.0.0.1:5080", "127.0.0.1:5080", true},
		{"127.0.0.1:5080", "localhost:5080", true},
		{"127.0.0.1:5080", "LOCALHOST:5080", true},
		{"127.0.0.1:5080", "[::1]:5080", true},
		{"[::1]:5080", "127.0.0.1:5080", true},
		{"localhost:5080", "127.0.0.1:5080", true},
		{"127.0.0.1:5080", "127.0.0.1:1", false},
		{"127.0.0.1:5080", "127.0.0.1", false}, // no port means 80
		{"127.0.0.1:80", "127.0.0.1", true},
		{"127.0.0.1:80", "[::1]", true},
		{"127.0.0.1:5080", "evil.example:5080", false},
		{"127.0.0.1:5080", ":5080", false},
		{"127.0.0.1:5080", "", false},
		{"10.0.0.5:5080", "10.0.0.5:5080", true},
		{"10.0.0.5:5080", "127.0.0.1:5080", false}, // loopback names only when listening on loopback
		{"10.0.0.5:5080", "evil.example:5080", false},
		{"node.lan:5080", "NODE.lan:5080", true},
		{"0.0.0.0:5080", "anything.example:5080", true}, // wildcard: a token guards it
		{"[::]:5080", "10.1.2.3:5080", true},
		{"0.0.0.0:5080", "anything.example:1", false},
		{"5080", "127.0.0.1:5080", false}, // not HOST:PORT: refuse everything
		{"", ":", false},
	} {
		if got := New(tc.listen, "").AllowedHost(tc.host); got != tc.ok {
			t.Errorf("listening on %q, Host %q: allowed %v, want %v", tc.listen, tc.host, got, tc.ok)
		}
	}
}

func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		origin, host string
		ok           bool
	}{
		{"http://127.0.0.1:5080", "127.0.0.1:5080", true},
		{"http://127.0.0.1:5080/", "127.0.0.1:5080", true},
		{"http://LocalHost:5080", "localhost:5080", true},
		{"http://127.0.0.1", "127.0.0.1:80", true},
		{"http://127.0.0.1:80", "127.0.0.1", true},
		{"http://[::1]:5080", "[::1]:5080", true},
		{"https://127.0.0.1:5080", "127.0.0.1:5080", false},
		{"http://127.0.0.1:1", "127.0.0.1:5080", false},
		{"http://127.0.0.1:5080/page", "127.0.0.1:5080", false},
		{"http://evil.example:5080", "127.0.0.1:5080", false},
		{"null", "127.0.0.1:5080", false},
		{"://bad", "127.0.0.1:5080", false},
	} {
		if got := SameOrigin(tc.origin, tc.host); got != tc.ok {
			t.Errorf("SameOrigin(%q, %q) = %v, want %v", tc.origin, tc.host, got, tc.ok)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for _, tc := range []struct {
		host string
		ok   bool
	}{
		{"localhost", true}, {"LocalHost", true}, {"127.0.0.1", true}, {"127.8.9.10", true},
		{"::1", true}, {"[::1]", true}, {"10.0.0.1", false}, {"0.0.0.0", false},
		{"localhost.evil.example", false}, {"", false},
	} {
		if got := IsLoopbackHost(tc.host); got != tc.ok {
			t.Errorf("IsLoopbackHost(%q) = %v, want %v", tc.host, got, tc.ok)
		}
	}
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:5080", true}, {"[::1]:5080", true}, {"localhost:0", true},
		{"0.0.0.0:5080", false}, {"127.0.0.1", false}, {"192.168.1.2:5080", false},
	} {
		if got := IsLoopbackAddr(tc.addr); got != tc.ok {
			t.Errorf("IsLoopbackAddr(%q) = %v, want %v", tc.addr, got, tc.ok)
		}
	}
}

// TestCheck: the first broken rule is reported, Host before Origin before
// token; without a configured token no Authorization is needed.
func TestCheck(t *testing.T) {
	const addr = "127.0.0.1:5080"
	for _, tc := range []struct {
		name, token, host, origin, auth string
		want                            Refusal
	}{
		{"plain", "", addr, "", "", Allowed},
		{"own origin", "", addr, "http://" + addr, "", Allowed},
		{"foreign origin", "", addr, "http://evil.example", "", ForeignOrigin},
		{"rebinding host", "", "evil.example:5080", "http://evil.example:5080", "", WrongHost},
		{"rebinding host, no token", "t0k", "evil.example:5080", "", "", WrongHost},
		{"foreign origin, no token", "t0k", addr, "http://evil.example", "", ForeignOrigin},
		{"no token", "t0k", addr, "", "", BadToken},
		{"wrong token", "t0k", addr, "", "Bearer nope", BadToken},
		{"token without Bearer", "t0k", addr, "", "t0k", BadToken},
		{"basic auth", "t0k", addr, "", "Basic dDBr", BadToken},
		{"empty bearer", "t0k", addr, "", "Bearer ", BadToken},
		{"token", "t0k", addr, "", "Bearer t0k", Allowed},
		{"token and own origin", "t0k", "localhost:5080", "http://localhost:5080", "Bearer t0k", Allowed},
	} {
		r := httptest.NewRequest("GET", "http://"+addr+"/api/v1/id", nil)
		r.Host = tc.host
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		if got := New(addr, tc.token).Check(r); got != tc.want {
			t.Errorf("%s: Check = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestTokenOKWithoutToken: a guard without a token matches no header, so
// a caller that asks by mistake refuses rather than lets anything in.
func TestTokenOKWithoutToken(t *testing.T) {
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer ")
	if New("127.0.0.1:5080", "").TokenOK(r) {
		t.Fatal(`TokenOK("Bearer ") with no token configured = true`)
	}
}
