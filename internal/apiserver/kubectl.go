package apiserver

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// KubectlResult is what one kubectl invocation printed.
type KubectlResult struct {
	Stdout, Stderr string
	// Err is the command's failure, nil when it exited 0.
	Err error
}

// KubectlPath is the kubectl the tests drive: $KUBECTL, else the one on PATH.
func KubectlPath() (string, error) {
	if bin := os.Getenv("KUBECTL"); bin != "" {
		return bin, nil
	}
	bin, err := exec.LookPath("kubectl")
	if err != nil {
		return "", fmt.Errorf("kubectl is not on PATH: run 'make test', which provides one, or set KUBECTL: %w", err)
	}
	return bin, nil
}

// Kubectl runs the real kubectl against the server as its administrator, with
// stdin as its standard input.
func (s *Server) Kubectl(ctx context.Context, stdin string, args ...string) KubectlResult {
	bin, err := KubectlPath()
	if err != nil {
		return KubectlResult{Err: err}
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"--kubeconfig", s.Kubeconfig}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	return KubectlResult{Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
}
