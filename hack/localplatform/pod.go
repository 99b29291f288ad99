package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/clientcmd"
)

// Restart backoff of a container that exits, as the kubelet's CrashLoopBackOff
// but shorter: locally a fix is usually one edit away.
const (
	restartBackoffInitial = 500 * time.Millisecond
	restartBackoffMax     = 30 * time.Second
	// restartBackoffReset: a container that ran this long starts over from
	// the initial backoff when it exits.
	restartBackoffReset = 10 * time.Second
	// readinessPollInterval is how often a pod's readiness probe is asked.
	// Faster than the template's periodSeconds: nothing here is loaded, and
	// a quick answer keeps `make run` and the tests snappy.
	readinessPollInterval = 250 * time.Millisecond
	readinessProbeTimeout = 2 * time.Second
	// defaultGracePeriod is the Kubernetes default of
	// terminationGracePeriodSeconds.
	defaultGracePeriod = 30 * time.Second
)

// podSpec is what a pod needs to run: one container of a Deployment's pod
// template, at one revision.
type podSpec struct {
	namespace      string
	name           string
	revision       string
	serviceAccount string
	labels         map[string]string
	container      corev1.Container
	gracePeriod    time.Duration
}

// pod runs one streamer pod as a local process, restarted when it exits, with
// its container ports on free loopback ports.
type pod struct {
	spec   podSpec
	herald string
	dir    string
	// kubeconfig reaches the API server as the pod's ServiceAccount.
	kubeconfig string
	logger     *slog.Logger
	// changed is told (without blocking) when readiness or the process
	// changes, so that the Deployment's loop acts at once.
	changed func()

	ready    atomic.Bool
	restarts atomic.Int32

	mu sync.Mutex
	// ports maps a container port to the loopback port it is served on in
	// the current run.
	ports map[int32]int
	proc  *os.Process

	// terminating: the pod is being deleted; it serves no new connections
	// from the moment it is marked, before its process is told.
	terminating atomic.Bool
	stopping    atomic.Bool
	stopCh      chan struct{}
	done        chan struct{}
}

// newPod prepares the pod's directory and kubeconfig; start runs it.
func newPod(spec podSpec, herald, baseDir, adminKubeconfig string, logger *slog.Logger, changed func()) (*pod, error) {
	dir := filepath.Join(baseDir, spec.namespace, spec.name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := writeImpersonatingKubeconfig(adminKubeconfig, kubeconfig, spec.namespace, spec.serviceAccount); err != nil {
		return nil, err
	}
	return &pod{
		spec: spec, herald: herald, dir: dir, kubeconfig: kubeconfig,
		logger: logger.With("pod", spec.namespace+"/"+spec.name), changed: changed,
		stopCh: make(chan struct{}), done: make(chan struct{}),
	}, nil
}

// writeImpersonatingKubeconfig writes the administrator kubeconfig with every
// user impersonating the ServiceAccount, with the groups the API server gives
// a ServiceAccount token: the pod gets exactly the rights its RoleBindings
// grant, as with the token a kubelet would mount.
func writeImpersonatingKubeconfig(admin, path, namespace, serviceAccount string) error {
	config, err := clientcmd.LoadFromFile(admin)
	if err != nil {
		return fmt.Errorf("failed to read the kubeconfig %s: %w", admin, err)
	}
	for _, user := range config.AuthInfos {
		user.Impersonate = "system:serviceaccount:" + namespace + ":" + serviceAccount
		user.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}
	}
	return clientcmd.WriteToFile(*config, path)
}

// LogPath is the file the pod's output goes to, across its restarts.
func (p *pod) LogPath() string { return filepath.Join(p.dir, "log") }

// Ready reports whether the pod's readiness probe last succeeded.
func (p *pod) Ready() bool {
	return p.ready.Load() && !p.terminating.Load() && !p.stopping.Load()
}

// PID is the current process's id, 0 when none runs.
func (p *pod) PID() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.proc == nil {
		return 0
	}
	return p.proc.Pid
}

// Addr is the loopback address serving the container port named portName (or
// numbered so), "" when the pod runs no process.
func (p *pod) Addr(port string) string {
	containerPort, ok := containerPortNumber(p.spec.container, port)
	if !ok {
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	local, ok := p.ports[containerPort]
	if !ok || p.proc == nil {
		return ""
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(local))
}

// start runs the container until stop: the process, restarted with backoff
// whenever it exits, and its readiness probe.
func (p *pod) start() {
	go p.superviseProcess()
}

// superviseProcess is the kubelet's restartPolicy Always.
func (p *pod) superviseProcess() {
	defer close(p.done)
	backoff := restartBackoffInitial
	for {
		began := time.Now()
		err := p.runOnce()
		if p.stopping.Load() {
			return
		}
		if time.Since(began) >= restartBackoffReset {
			backoff = restartBackoffInitial
		}
		p.restarts.Add(1)
		p.logger.Warn("streamer exited; restarting", "error", errString(err), "backoff", backoff.String(), "log", p.LogPath())
		select {
		case <-p.stopCh:
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, restartBackoffMax)
	}
}

// runOnce starts the process on fresh ports and waits for it to exit.
func (p *pod) runOnce() error {
	ports, err := freePorts(p.spec.container.Ports)
	if err != nil {
		return err
	}
	env := podEnv(p.spec, p.kubeconfig)
	args := rewriteListenArgs(containerArgs(p.spec.container, env), ports)
	logFile, err := os.OpenFile(p.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.Command(p.herald, args...)
	cmd.Env = envList(env)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// A process group of its own: the terminal's Ctrl-C reaches the runner
	// alone, which then stops the pods in order (SIGTERM, drain). Pdeathsig:
	// should the runner die without that, the kernel kills its pods.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	p.mu.Lock()
	if p.stopping.Load() {
		p.mu.Unlock()
		return nil
	}
	if err := cmd.Start(); err != nil {
		p.mu.Unlock()
		return err
	}
	p.proc, p.ports = cmd.Process, ports
	p.mu.Unlock()
	p.logger.Info("streamer started", "pid", cmd.Process.Pid, "args", strings.Join(args, " "))

	probeCtx, stopProbe := context.WithCancel(context.Background())
	probed := make(chan struct{})
	go func() { defer close(probed); p.probeReadiness(probeCtx) }()
	err = cmd.Wait()
	stopProbe()
	<-probed

	p.mu.Lock()
	p.proc = nil
	p.mu.Unlock()
	p.setReady(false)
	return err
}

// probeReadiness polls the container's readiness probe until ctx ends.
func (p *pod) probeReadiness(ctx context.Context) {
	url, ok := p.readinessURL()
	if !ok {
		// No probe: ready once started, as the kubelet has it.
		p.setReady(true)
		<-ctx.Done()
		return
	}
	client := &http.Client{Timeout: readinessProbeTimeout}
	ticker := time.NewTicker(readinessPollInterval)
	defer ticker.Stop()
	for {
		p.setReady(probeOK(ctx, client, url))
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// readinessURL is the HTTP GET of the container's readiness probe, on the
// loopback port its container port is served on.
func (p *pod) readinessURL() (string, bool) {
	probe := p.spec.container.ReadinessProbe
	if probe == nil || probe.HTTPGet == nil {
		return "", false
	}
	addr := p.Addr(probe.HTTPGet.Port.String())
	if addr == "" {
		return "", false
	}
	return "http://" + addr + probe.HTTPGet.Path, true
}

// probeOK reports whether url answers 2xx or 3xx, the kubelet's success.
func probeOK(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}

func (p *pod) setReady(ready bool) {
	if p.ready.Swap(ready) != ready {
		p.logger.Info("readiness changed", "ready", ready)
		p.changed()
	}
}

// stop is the kubelet's pod deletion: SIGTERM, then SIGKILL when the grace
// period is over; it returns once the process has exited. The preStop sleep
// of the template is left out: it gives load balancers time to stop sending
// new connections, and the runner's Service proxy stops the moment the pod is
// marked stopping.
func (p *pod) stop() {
	p.mu.Lock()
	if p.stopping.Swap(true) {
		p.mu.Unlock()
		<-p.done
		return
	}
	close(p.stopCh)
	proc := p.proc
	p.mu.Unlock()
	p.changed()
	if proc != nil {
		p.logger.Info("stopping streamer (SIGTERM)", "pid", proc.Pid, "gracePeriod", p.spec.gracePeriod.String())
		_ = proc.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(p.spec.gracePeriod):
			p.logger.Warn("grace period over; killing the streamer (SIGKILL)", "pid", proc.Pid)
			_ = proc.Kill()
		}
	}
	<-p.done
}

// freePorts picks a free loopback port for each container port. The kernel
// picks them; they are free again by the time the process listens, which
// leaves a small window in which another program could take one, after which
// the process fails to listen and is restarted on new ports.
func freePorts(ports []corev1.ContainerPort) (map[int32]int, error) {
	out := make(map[int32]int, len(ports))
	for _, port := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		out[port.ContainerPort] = l.Addr().(*net.TCPAddr).Port
		if err := l.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// rewriteListenArgs moves every listen address of a container port in args
// (":8080", "0.0.0.0:8080", alone or after "--flag=") to its loopback port:
// pods share the machine's network here, and nothing should listen beyond
// loopback.
func rewriteListenArgs(args []string, ports map[int32]int) []string {
	out := make([]string, len(args))
	for i, arg := range args {
		out[i] = arg
		prefix, addr := "", arg
		if eq := strings.IndexByte(arg, '='); eq >= 0 && strings.HasPrefix(arg, "-") {
			prefix, addr = arg[:eq+1], arg[eq+1:]
		}
		host, portText, err := net.SplitHostPort(addr)
		if err != nil || (host != "" && host != "0.0.0.0" && host != "::") {
			continue
		}
		port, err := strconv.ParseInt(portText, 10, 32)
		if err != nil {
			continue
		}
		if local, ok := ports[int32(port)]; ok {
			out[i] = prefix + net.JoinHostPort("127.0.0.1", strconv.Itoa(local))
		}
	}
	return out
}

// containerArgs is the container's command line after the executable, with
// $(VAR) references expanded from env as the kubelet does. The image's
// entrypoint is herald, so a command names herald and only its arguments are
// kept.
func containerArgs(c corev1.Container, env map[string]string) []string {
	var args []string
	if len(c.Command) > 0 {
		args = append(args, c.Command[1:]...)
	}
	args = append(args, c.Args...)
	for i, arg := range args {
		args[i] = expandVars(arg, env)
	}
	return args
}

// expandVars replaces $(NAME) by env[NAME] when set, and $$ by $, the
// kubelet's expansion of command and args; unknown references stay as they
// are.
func expandVars(s string, env map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch next := s[i+1]; {
		case next == '$':
			b.WriteByte('$')
			i++
		case next == '(':
			end := strings.IndexByte(s[i:], ')')
			if end < 0 {
				b.WriteByte(s[i])
				continue
			}
			name := s[i+2 : i+end]
			if value, ok := env[name]; ok {
				b.WriteString(value)
			} else {
				b.WriteString(s[i : i+end+1])
			}
			i += end
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// podEnv is the container's environment as the kubelet builds it: literal
// values and downward-API fields, plus KUBECONFIG in place of the mounted
// ServiceAccount token. Nothing of the runner's own environment leaks in.
// References to Secrets and ConfigMaps are not resolved: the streamer reads
// what it needs from the API.
func podEnv(spec podSpec, kubeconfig string) map[string]string {
	env := map[string]string{"KUBECONFIG": kubeconfig}
	for _, v := range spec.container.Env {
		switch {
		case v.ValueFrom == nil:
			env[v.Name] = expandVars(v.Value, env)
		case v.ValueFrom.FieldRef != nil:
			if value, ok := downwardField(spec, v.ValueFrom.FieldRef.FieldPath); ok {
				env[v.Name] = value
			}
		case v.ValueFrom.ResourceFieldRef != nil:
			if value, ok := resourceField(spec.container, v.ValueFrom.ResourceFieldRef); ok {
				env[v.Name] = value
			}
		}
	}
	return env
}

// downwardField is a fieldRef's value for a pod on this machine.
func downwardField(spec podSpec, path string) (string, bool) {
	switch path {
	case "metadata.name":
		return spec.name, true
	case "metadata.namespace":
		return spec.namespace, true
	case "spec.serviceAccountName":
		return spec.serviceAccount, true
	case "spec.nodeName":
		return "localhost", true
	case "status.podIP", "status.hostIP":
		return "127.0.0.1", true
	case "status.podIPs", "status.hostIPs":
		return "127.0.0.1", true
	}
	if key, ok := strings.CutPrefix(path, "metadata.labels['"); ok {
		value, found := spec.labels[strings.TrimSuffix(key, "']")]
		return value, found
	}
	return "", false
}

// resourceField is a resourceFieldRef's value: the container's limit (or
// request) in the divisor's unit, rounded up as the kubelet does.
func resourceField(c corev1.Container, ref *corev1.ResourceFieldSelector) (string, bool) {
	kind, name, ok := strings.Cut(ref.Resource, ".")
	if !ok {
		return "", false
	}
	list := c.Resources.Limits
	if kind == "requests" {
		list = c.Resources.Requests
	}
	quantity, ok := list[corev1.ResourceName(name)]
	if !ok {
		return "", false
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		return strconv.FormatInt(quantity.Value(), 10), true
	}
	value := (quantity.MilliValue() + divisor.MilliValue() - 1) / divisor.MilliValue()
	return strconv.FormatInt(value, 10), true
}

// containerPortNumber resolves a port given by name or number.
func containerPortNumber(c corev1.Container, port string) (int32, bool) {
	for _, p := range c.Ports {
		if p.Name == port || strconv.Itoa(int(p.ContainerPort)) == port {
			return p.ContainerPort, true
		}
	}
	return 0, false
}

func envList(env map[string]string) []string {
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

func errString(err error) string {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.String()
	}
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}
