package notify_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no adapter or fake server leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
