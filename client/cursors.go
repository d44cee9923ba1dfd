package client

import (
	"context"
	"maps"
	"sync"

	"github.com/google/uuid"
)

// CursorStore keeps, per conversation, the seq up to which messages were
// handed to OnMessage. Run loads it once when it starts and saves a
// conversation's cursor after each message it hands over; resume asks for
// what lies after these cursors.
type CursorStore interface {
	// Load returns every cursor saved.
	Load(ctx context.Context) (map[uuid.UUID]int64, error)
	// Save records that conversation conv was handed over up to seq.
	Save(ctx context.Context, conv uuid.UUID, seq int64) error
}

// MemoryCursors is a CursorStore in memory: a client made with it resumes
// every conversation from the start after its process restarts.
type MemoryCursors struct {
	mu sync.Mutex
	m  map[uuid.UUID]int64
}

// NewMemoryCursors returns an empty MemoryCursors.
func NewMemoryCursors() *MemoryCursors { return &MemoryCursors{m: map[uuid.UUID]int64{}} }

// Load implements CursorStore.
func (s *MemoryCursors) Load(context.Context) (map[uuid.UUID]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m), nil
}

// Save implements CursorStore.
func (s *MemoryCursors) Save(_ context.Context, conv uuid.UUID, seq int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq > s.m[conv] {
		s.m[conv] = seq
	}
	return nil
}
