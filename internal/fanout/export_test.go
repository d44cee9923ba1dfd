package fanout

// LocalSubscribers returns how many local subscriptions h holds on
// channel. It reads them under the channel's lock, which an unsubscribe
// holds until Redis has answered, so none is half done when it returns.
func (h *Hub) LocalSubscribers(channel string) int {
	unlock := h.lockChannel(channel)
	defer unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs[channel])
}

// Links returns the addresses of the hub's live connections ("" for a
// single server) and how many channels each holds.
func (h *Hub) Links() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for addr, l := range h.links {
		out[addr] = len(l.channels)
	}
	return out
}
