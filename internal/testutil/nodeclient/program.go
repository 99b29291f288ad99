package nodeclient

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
)

// Program is a Node program that writes what it did as JSON lines on its
// standard output, each decoded into an L, and exits 0 when its standard
// input closes.
type Program[L any] struct {
	// Script is the program's file, relative to Dir, and Args its
	// arguments.
	Script string
	Args   []string
	// Dir is the directory the program runs in, where Node resolves its
	// packages; empty means the suite's.
	Dir string
	// Env is added to the test process's environment.
	Env []string
	// WaitDelay bounds how long the program's end waits for its pipes, so
	// that the spec ends even if Node hangs on to them; zero means 5s.
	WaitDelay time.Duration
	// ExitTimeout bounds the wait for the program to exit once its standard
	// input closed; zero means Eventually's default.
	ExitTimeout time.Duration
	// Buffer is how many lines wait for the spec to read them before the
	// program blocks writing; zero means 100.
	Buffer int
	// Unparsable is what stands for a line that is not JSON, so that the
	// spec sees it rather than waiting for a line that never comes.
	Unparsable func(text string) L
	// IsLog, when set, tells the program's log lines, which go to
	// GinkgoWriter, from those the spec reads.
	IsLog func(L) bool
}

// Process is a running Program.
type Process[L any] struct {
	// Stdin is the program's standard input, for programs that take
	// commands.
	Stdin io.Writer
	// Lines are the lines the program wrote, but its log, in order.
	Lines <-chan L
}

// Start runs p under node until the spec ends: then its standard input is
// closed, on which it must exit 0, and it is killed if it hangs.
func Start[L any](node *Node, p Program[L]) *Process[L] {
	ginkgo.GinkgoHelper()
	ctx, kill := context.WithCancel(context.Background())
	// Runs last: whatever happened, no Node process outlives the spec.
	ginkgo.DeferCleanup(kill)
	cmd := exec.CommandContext(ctx, node.path, append([]string{p.Script}, p.Args...)...)
	cmd.Dir = p.Dir
	if p.Env != nil {
		cmd.Env = append(os.Environ(), p.Env...)
	}
	cmd.Stderr = ginkgo.GinkgoWriter
	cmd.WaitDelay = cmp.Or(p.WaitDelay, 5*time.Second)
	stdin, err := cmd.StdinPipe()
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	stdout, err := cmd.StdoutPipe()
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	gomega.Expect(cmd.Start()).To(gomega.Succeed())

	lines := make(chan L, cmp.Or(p.Buffer, 100))
	quit, exited := make(chan struct{}), make(chan struct{})
	var waitErr error
	go func() {
		defer close(exited)
		scanner := bufio.NewScanner(stdout)
		scanner.Buffer(nil, 1<<20)
		for scanner.Scan() {
			line := p.decode(scanner.Bytes())
			if p.IsLog != nil && p.IsLog(line) {
				fmt.Fprintln(ginkgo.GinkgoWriter, scanner.Text())
				continue
			}
			select {
			case lines <- line:
			case <-quit: // the spec is over: read on, so that Node never blocks writing
			}
		}
		// Wait closes stdout: only now that every line was read.
		waitErr = cmd.Wait()
	}()
	name := filepath.Base(p.Script)
	ginkgo.DeferCleanup(func() {
		close(quit)
		_ = stdin.Close()
		exit := gomega.Eventually(exited)
		if p.ExitTimeout > 0 {
			exit = exit.WithTimeout(p.ExitTimeout)
		}
		exit.Should(gomega.BeClosed(), name+" exits when its standard input closes")
		gomega.Expect(waitErr).NotTo(gomega.HaveOccurred(), name+" exits 0")
	})
	return &Process[L]{Stdin: stdin, Lines: lines}
}

// decode is the line text as an L.
func (p Program[L]) decode(text []byte) L {
	var line L
	if err := json.Unmarshal(text, &line); err != nil {
		return p.Unparsable(string(text))
	}
	return line
}
