package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/herald-notify/herald/controllers/resources"
)

// RunnerOptions configure a Runner.
type RunnerOptions struct {
	// Config and Scheme reach the API server as an administrator: the
	// runner reads Deployments and Services and writes Deployment status.
	Config *rest.Config
	Scheme *runtime.Scheme
	// Kubeconfig is the administrator kubeconfig file each pod's own is
	// derived from (impersonating the pod's ServiceAccount).
	Kubeconfig string
	// Herald is the herald binary the pods run (their image's entrypoint).
	Herald string
	// Dir holds a folder per pod: its kubeconfig and its log.
	Dir string
	// Namespace limits the runner to one namespace; empty means all.
	Namespace string
	Logger    *slog.Logger
}

// Runner plays, for the Deployments and Services the operator owns, the
// parts of a cluster that a bare API server lacks: the deployment controller
// and the kubelet (pods as local processes, their status on the Deployment)
// and kube-proxy (a Service as a loopback port over the ready pods).
type Runner struct {
	herald     string
	kubeconfig string
	podsDir    string
	logger     *slog.Logger
	client     client.Client
	mgr        ctrl.Manager

	// podsCtx ends when the runner stops: every Deployment's loop stops its
	// pods then.
	podsCtx  context.Context
	stopPods context.CancelFunc
	loops    sync.WaitGroup

	mu          sync.Mutex
	deployments map[client.ObjectKey]*deploymentLoop
	services    map[client.ObjectKey]*service
}

// deploymentLoop is a Deployment's runner and what stops it.
type deploymentLoop struct {
	*deploymentRunner
	cancel context.CancelFunc
}

// service is one Service's proxies, one per port, and what they select.
type service struct {
	selector labels.Selector
	// targetPorts maps a Service port name to the container port it
	// forwards to (a name or a number).
	targetPorts map[string]string
	proxies     map[string]*serviceProxy
}

// managedSelector selects what the operator owns: the runner caches and
// acts on nothing else.
func managedSelector() labels.Selector {
	return labels.SelectorFromSet(labels.Set{resources.LabelManagedBy: resources.ManagedBy})
}

// NewRunner prepares a Runner; Run runs it.
func NewRunner(opts RunnerOptions) (*Runner, error) {
	if opts.Herald == "" || opts.Kubeconfig == "" || opts.Dir == "" {
		return nil, errors.New("the runner needs the herald binary, a kubeconfig and a directory")
	}
	managed := cache.ByObject{Label: managedSelector()}
	cacheOptions := cache.Options{ByObject: map[client.Object]cache.ByObject{
		&appsv1.Deployment{}: managed,
		&corev1.Service{}:    managed,
	}}
	if opts.Namespace != "" {
		cacheOptions.DefaultNamespaces = map[string]cache.Config{opts.Namespace: {}}
	}
	mgr, err := ctrl.NewManager(opts.Config, ctrl.Options{
		Scheme:                 opts.Scheme,
		Cache:                  cacheOptions,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return nil, fmt.Errorf("failed to create the runner's manager: %w", err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	podsCtx, stopPods := context.WithCancel(context.Background())
	r := &Runner{
		herald: opts.Herald, kubeconfig: opts.Kubeconfig, podsDir: opts.Dir, logger: logger,
		client: mgr.GetClient(), mgr: mgr, podsCtx: podsCtx, stopPods: stopPods,
		deployments: map[client.ObjectKey]*deploymentLoop{},
		services:    map[client.ObjectKey]*service{},
	}
	// Several runners may live in one process (the tests): controller names
	// need not be unique then.
	skip := true
	opt := controller.Options{SkipNameValidation: &skip}
	if err := ctrl.NewControllerManagedBy(mgr).Named("localrunner-deployments").For(&appsv1.Deployment{}).
		WithOptions(opt).Complete(reconcile.Func(r.reconcileDeployment)); err != nil {
		return nil, err
	}
	if err := ctrl.NewControllerManagedBy(mgr).Named("localrunner-services").For(&corev1.Service{}).
		WithOptions(opt).Complete(reconcile.Func(r.reconcileService)); err != nil {
		return nil, err
	}
	return r, nil
}

// Run runs pods and Service proxies until ctx ends. Then it stops every pod
// (SIGTERM, their drain, SIGKILL after their grace period) while the proxies
// still carry the drain's last frames, then closes the proxies.
func (r *Runner) Run(ctx context.Context) error {
	mgrCtx, stopMgr := context.WithCancel(context.Background())
	mgrDone := make(chan error, 1)
	go func() { mgrDone <- r.mgr.Start(mgrCtx) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-mgrDone:
		mgrDone <- err
	}
	stopMgr()
	err = errors.Join(err, <-mgrDone)
	r.stopPods()
	r.loops.Wait()
	r.closeProxies()
	return err
}

// reconcileDeployment hands the latest Deployment to its loop, starting the
// loop the first time, and stops the loop once the Deployment is gone.
func (r *Runner) reconcileDeployment(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	d := &appsv1.Deployment{}
	err := r.client.Get(ctx, req.NamespacedName, d)
	if apierrors.IsNotFound(err) || (err == nil && d.DeletionTimestamp != nil) {
		r.forgetDeployment(req.NamespacedName)
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	r.deploymentLoopFor(req.NamespacedName).update(d)
	return reconcile.Result{}, nil
}

func (r *Runner) deploymentLoopFor(key client.ObjectKey) *deploymentLoop {
	r.mu.Lock()
	defer r.mu.Unlock()
	if loop, ok := r.deployments[key]; ok {
		return loop
	}
	ctx, cancel := context.WithCancel(r.podsCtx)
	loop := &deploymentLoop{deploymentRunner: newDeploymentRunner(r, key), cancel: cancel}
	r.deployments[key] = loop
	r.loops.Go(func() { loop.run(ctx) })
	return loop
}

// forgetDeployment stops a deleted Deployment's pods, as the garbage
// collector deletes a ReplicaSet's pods.
func (r *Runner) forgetDeployment(key client.ObjectKey) {
	r.mu.Lock()
	loop, ok := r.deployments[key]
	delete(r.deployments, key)
	r.mu.Unlock()
	if ok {
		loop.cancel()
	}
}

// reconcileService keeps one proxy per port of the Service, each on a
// loopback port of its own that stays the same while the Service exists.
func (r *Runner) reconcileService(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	svc := &corev1.Service{}
	err := r.client.Get(ctx, req.NamespacedName, svc)
	if apierrors.IsNotFound(err) || (err == nil && svc.DeletionTimestamp != nil) {
		r.forgetService(req.NamespacedName)
		return reconcile.Result{}, nil
	}
	if err != nil {
		return reconcile.Result{}, err
	}
	return reconcile.Result{}, r.updateService(req.NamespacedName, svc)
}

func (r *Runner) updateService(key client.ObjectKey, svc *corev1.Service) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	state, ok := r.services[key]
	if !ok {
		state = &service{proxies: map[string]*serviceProxy{}}
		r.services[key] = state
	}
	// A Service without a selector selects no pod.
	state.selector = labels.Nothing()
	if len(svc.Spec.Selector) > 0 {
		state.selector = labels.SelectorFromSet(svc.Spec.Selector)
	}
	state.targetPorts = map[string]string{}
	for _, port := range svc.Spec.Ports {
		target := port.TargetPort.String()
		if port.TargetPort.IntValue() == 0 && port.TargetPort.StrVal == "" {
			target = fmt.Sprint(port.Port)
		}
		state.targetPorts[port.Name] = target
		if _, ok := state.proxies[port.Name]; ok {
			continue
		}
		proxy, err := listenServiceProxy("127.0.0.1:0", r.endpointsFunc(key, port.Name),
			r.logger.With("service", key.String(), "port", port.Name))
		if err != nil {
			return fmt.Errorf("failed to listen for Service %s port %q: %w", key, port.Name, err)
		}
		state.proxies[port.Name] = proxy
		r.logger.Info("Service port is served locally", "service", key.String(), "port", port.Name, "address", proxy.Addr())
	}
	for name, proxy := range state.proxies {
		if _, ok := state.targetPorts[name]; !ok {
			proxy.Close()
			delete(state.proxies, name)
		}
	}
	return nil
}

// endpointsFunc lists, at each connection, the ready pods of the Service's
// namespace that its selector matches, on its port's target port.
func (r *Runner) endpointsFunc(key client.ObjectKey, portName string) func() []string {
	return func() []string {
		r.mu.Lock()
		state, ok := r.services[key]
		if !ok {
			r.mu.Unlock()
			return nil
		}
		selector, target := state.selector, state.targetPorts[portName]
		var loops []*deploymentLoop
		for k, loop := range r.deployments {
			if k.Namespace == key.Namespace {
				loops = append(loops, loop)
			}
		}
		r.mu.Unlock()
		var addrs []string
		for _, loop := range loops {
			addrs = append(addrs, loop.readyEndpoints(selector, target)...)
		}
		// A stable order keeps the round robin fair across calls.
		sort.Strings(addrs)
		return addrs
	}
}

// DropConnections closes the connections through the proxies of the Service
// named key, as a network failure would, leaving its pods running; false if
// there is no such Service.
func (r *Runner) DropConnections(key client.ObjectKey) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	state, ok := r.services[key]
	if ok {
		for _, proxy := range state.proxies {
			proxy.DropConnections()
		}
	}
	return ok
}

func (r *Runner) forgetService(key client.ObjectKey) {
	r.mu.Lock()
	state, ok := r.services[key]
	delete(r.services, key)
	r.mu.Unlock()
	if ok {
		for _, proxy := range state.proxies {
			proxy.Close()
		}
	}
}

func (r *Runner) closeProxies() {
	r.mu.Lock()
	services := r.services
	r.services = map[client.ObjectKey]*service{}
	r.mu.Unlock()
	for _, state := range services {
		for _, proxy := range state.proxies {
			proxy.Close()
		}
	}
}

// ServiceAddr is the loopback address of a Service's port, "" until the
// runner serves it.
func (r *Runner) ServiceAddr(key client.ObjectKey, port string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	state, ok := r.services[key]
	if !ok {
		return ""
	}
	proxy, ok := state.proxies[port]
	if !ok {
		return ""
	}
	return proxy.Addr()
}

// Pods are the running (not stopping) pods of a Deployment, oldest first.
func (r *Runner) Pods(key client.ObjectKey) []*pod {
	r.mu.Lock()
	loop, ok := r.deployments[key]
	r.mu.Unlock()
	if !ok {
		return nil
	}
	return loop.runningPods()
}
