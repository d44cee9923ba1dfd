// Package httpserve runs an HTTP server in the background on a listener it
// opens itself, so callers learn the real address (":0" picks a free
// port) before anything is served. Every binary here serves this way.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// Server is a running HTTP server. A nil *Server is valid and does
// nothing, for callers whose server is optional.
type Server struct {
	ln  net.Listener
	srv *http.Server
}

// Listen opens addr and serves h in the background. A serve error other
// than a normal shutdown is logged under name.
func Listen(addr string, h http.Handler, logger *slog.Logger, name string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s: listening on %s: %w", name, addr, err)
	}
	s := &Server{ln: ln, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error(name+" stopped serving", slog.String("error", err.Error()))
		}
	}()
	return s, nil
}

// Addr returns the address served, or "" for a nil Server.
func (s *Server) Addr() string {
	if s == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// Shutdown stops accepting connections and waits for requests in flight,
// up to ctx's deadline.
func (s *Server) Shutdown(ctx context.Context) error {
	if s == nil {
		return nil
	}
	return s.srv.Shutdown(ctx)
}

// Close closes the listener and every connection at once.
func (s *Server) Close() error {
	if s == nil {
		return nil
	}
	return s.srv.Close()
}

// ListenProfiler serves Go's runtime profiles (net/http/pprof, under
// /debug/pprof/) on addr, a loopback address the operator chose: they have
// no authentication, and logs where. An empty addr serves nothing and
// returns a nil Server.
func ListenProfiler(addr string, logger *slog.Logger, name string) (*Server, error) {
	if addr == "" {
		return nil, nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	// Listen sets no write timeout: a CPU profile or trace runs for as
	// long as asked (?seconds=N).
	srv, err := Listen(addr, mux, logger, name+" profiler")
	if err != nil {
		return nil, err
	}
	logger.Info("serving runtime profiles", slog.String("addr", "http://"+srv.Addr()+"/debug/pprof/"))
	return srv, nil
}
