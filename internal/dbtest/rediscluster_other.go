//go:build !linux

package dbtest

import "os/exec"

// dieWithParent does nothing where the kernel cannot kill a child with its
// parent: there a test binary that crashes may leave servers behind.
func dieWithParent(*exec.Cmd) {}
