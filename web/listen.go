package web

import (
	"container/list"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Connection caps per listener. The API serves one user's CLI and
// dashboard; the gateway may serve many programs at once.
const (
	DefaultAPIMaxConns     = 512
	DefaultGatewayMaxConns = 2048
)

// ServerConfig bounds what HTTP clients can hold open on one listener.
//
// There is deliberately no read or write timeout for a whole request:
// content downloads, CAR exports, event streams and large uploads to
// /api/v1/add last as long as the data takes. What a client cannot do is
// hold a connection without using it: headers must arrive within
// ReadHeaderTimeout, a kept-alive connection with no next request is
// closed after IdleTimeout, and past MaxConns the oldest idle connection
// is closed to make room (as nginx reuses keep-alive connections when it
// runs out). Only when MaxConns connections are all busy does a new one
// wait in the kernel's accept queue.
type ServerConfig struct {
	// MaxConns is how many connections may be open at once.
	MaxConns int
	// ReadHeaderTimeout bounds the time from a connection's first byte of
	// a request (or its opening, for the first request) to the end of
	// the request's headers.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes a kept-alive connection that sends no next
	// request for this long.
	IdleTimeout time.Duration
	// Logger hears when the cap is reached; nil discards.
	Logger *slog.Logger
}

// DefaultServerConfig returns the bounds of a listener with maxConns
// connections.
func DefaultServerConfig(maxConns int) ServerConfig {
	return ServerConfig{MaxConns: maxConns, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
}

// Validate reports the first thing wrong with the configuration.
func (c ServerConfig) Validate() error {
	if c.MaxConns <= 0 {
		return fmt.Errorf("%w: connection cap %d must be positive", ErrConfig, c.MaxConns)
	}
	if c.ReadHeaderTimeout <= 0 || c.IdleTimeout <= 0 {
		return fmt.Errorf("%w: header timeout %v and idle timeout %v must be positive", ErrConfig, c.ReadHeaderTimeout, c.IdleTimeout)
	}
	return nil
}

// NewServer returns a server of h with cfg's timeouts and the listener to
// serve it on: ln, holding at most cfg.MaxConns connections open. Call
// srv.Serve(l); srv.Shutdown closes l.
func NewServer(ln net.Listener, h http.Handler, cfg ServerConfig) (*http.Server, net.Listener, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := newConnLimiter(ln, cfg.MaxConns, log)
	// Shutdown waits for handlers, and an event stream only ends with its
	// request's context: cancel every request's context at Shutdown.
	base, cancel := context.WithCancel(context.Background())
	srv := &http.Server{
		BaseContext:       func(net.Listener) context.Context { return base },
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		ConnState:         l.connState,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(cancel)
	return srv, l, nil
}

// connLimiter is a listener holding at most max connections open. Each
// connection it hands out is on the idle list from its opening until it
// has read a request, and again between requests (the server's ConnState
// hook tells it which); when a new connection arrives with max open, the
// connection idle the longest is closed, and if none is idle Accept waits
// for one to close or become idle.
type connLimiter struct {
	net.Listener
	max int
	log *slog.Logger

	mu     sync.Mutex
	cond   *sync.Cond // a connection closed or became idle, or the listener closed
	open   int
	idle   list.List // *limitedConn, longest idle first
	closed bool
	full   bool // the cap was hit with no idle connection (logged once)
}

func newConnLimiter(ln net.Listener, maxConns int, log *slog.Logger) *connLimiter {
	l := &connLimiter{Listener: ln, max: maxConns, log: log}
	l.cond = sync.NewCond(&l.mu)
	return l
}

// limitedConn is one connection counted by its limiter.
type limitedConn struct {
	net.Conn
	l *connLimiter
	// guarded by l.mu
	elem *list.Element // in l.idle while idle
	gone bool
}

// Accept takes the next connection and makes room for it.
func (l *connLimiter) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	for l.open >= l.max && !l.closed {
		if e := l.idle.Front(); e != nil {
			victim := e.Value.(*limitedConn)
			l.idle.Remove(e)
			victim.elem = nil
			l.mu.Unlock()
			_ = victim.Close()
			l.mu.Lock()
			continue
		}
		if !l.full {
			l.full = true
			l.log.Warn("HTTP connection cap reached with every connection busy: new connections wait", "addr", l.Addr().String(), "max", l.max)
		}
		l.cond.Wait()
	}
	if l.closed {
		l.mu.Unlock()
		_ = c.Close()
		return nil, net.ErrClosed
	}
	l.full = false
	l.open++
	lc := &limitedConn{Conn: c, l: l}
	lc.elem = l.idle.PushBack(lc)
	l.mu.Unlock()
	return lc, nil
}

// Close closes the listener and wakes an Accept waiting for room.
func (l *connLimiter) Close() error {
	l.mu.Lock()
	l.closed = true
	l.cond.Broadcast()
	l.mu.Unlock()
	return l.Listener.Close()
}

// connState is the server's ConnState hook: a connection that has read a
// request is busy, one waiting for a request is idle.
func (l *connLimiter) connState(nc net.Conn, s http.ConnState) {
	c, ok := nc.(*limitedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch s {
	case http.StateNew, http.StateIdle:
		if c.elem == nil && !c.gone {
			c.elem = l.idle.PushBack(c)
			l.cond.Broadcast()
		}
	case http.StateActive, http.StateHijacked:
		if c.elem != nil {
			l.idle.Remove(c.elem)
			c.elem = nil
		}
	}
}

// Close closes the connection and frees its place, once.
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	l := c.l
	l.mu.Lock()
	if !c.gone {
		c.gone = true
		if c.elem != nil {
			l.idle.Remove(c.elem)
			c.elem = nil
		}
		l.open--
		l.cond.Broadcast()
	}
	l.mu.Unlock()
	return err
}
