package gateway

// WritersRunning reports how many of the node's connections have their
// writer goroutine running.
func (s *Server) WritersRunning() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		c.wmu.Lock()
		if c.writing {
			n++
		}
		c.wmu.Unlock()
	}
	return n
}

// Connections reports how many websockets the node holds.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Dropped reports how many of the node's connections the hub dropped for
// being slow.
func (s *Server) Dropped() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for c := range s.conns {
		c.wmu.Lock()
		if c.sub != nil {
			select {
			case <-c.sub.Dropped():
				n++
			default:
			}
		}
		c.wmu.Unlock()
	}
	return n
}
