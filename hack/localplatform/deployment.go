package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// resyncInterval: the Deployment's loop also runs this often without a
// trigger, to retry a status write that failed.
const resyncInterval = 2 * time.Second

// deploymentRunner plays the deployment controller and the kubelet for one
// Deployment: it runs its pods and writes its status.
type deploymentRunner struct {
	key    client.ObjectKey
	runner *Runner
	logger *slog.Logger

	// wake is told, without blocking, that something changed.
	wake chan struct{}

	mu sync.Mutex
	// deployment is the latest spec seen; nil once deleted.
	deployment *appsv1.Deployment
	// pods run, oldest first; stopping pods are no longer among them.
	pods []*pod
	// stopping counts pods being stopped, for Wait.
	stopping sync.WaitGroup
	written  *appsv1.DeploymentStatus
}

func newDeploymentRunner(r *Runner, key client.ObjectKey) *deploymentRunner {
	return &deploymentRunner{
		key: key, runner: r, logger: r.logger.With("deployment", key.String()),
		wake: make(chan struct{}, 1),
	}
}

// update hands the loop the latest Deployment.
func (d *deploymentRunner) update(deployment *appsv1.Deployment) {
	d.mu.Lock()
	d.deployment = deployment
	d.mu.Unlock()
	d.poke()
}

func (d *deploymentRunner) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// run converges the pods on the Deployment until ctx ends, then stops them
// all and waits for them.
func (d *deploymentRunner) run(ctx context.Context) {
	ticker := time.NewTicker(resyncInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			d.stopAll()
			return
		case <-d.wake:
		case <-ticker.C:
		}
		d.sync(ctx)
	}
}

// sync takes one rollout step and writes the status it leads to.
func (d *deploymentRunner) sync(ctx context.Context) {
	d.mu.Lock()
	deployment := d.deployment
	d.mu.Unlock()
	if deployment == nil {
		d.stopAll()
		return
	}
	current := templateHash(&deployment.Spec.Template)
	desired := desiredReplicas(deployment)
	step := planRollout(d.views(), current, desired)
	for _, i := range step.stop {
		d.stopPod(d.pods[i])
	}
	d.removeStopping()
	if step.start {
		d.startPod(deployment, current)
	}
	d.writeStatus(ctx, deployment, current, desired)
}

func (d *deploymentRunner) views() []podView {
	d.mu.Lock()
	defer d.mu.Unlock()
	views := make([]podView, len(d.pods))
	for i, p := range d.pods {
		views[i] = podView{revision: p.spec.revision, ready: p.Ready()}
	}
	return views
}

// startPod starts a pod of the current template, named as the deployment
// controller names them: <deployment>-<template hash>-<random>.
func (d *deploymentRunner) startPod(deployment *appsv1.Deployment, revision string) {
	template := deployment.Spec.Template
	if len(template.Spec.Containers) == 0 {
		return
	}
	suffix := make([]byte, 3)
	_, _ = rand.Read(suffix)
	grace := defaultGracePeriod
	if s := template.Spec.TerminationGracePeriodSeconds; s != nil {
		grace = time.Duration(*s) * time.Second
	}
	serviceAccount := template.Spec.ServiceAccountName
	if serviceAccount == "" {
		serviceAccount = "default"
	}
	spec := podSpec{
		namespace:      deployment.Namespace,
		name:           deployment.Name + "-" + revision + "-" + hex.EncodeToString(suffix)[:5],
		revision:       revision,
		serviceAccount: serviceAccount,
		labels:         template.Labels,
		container:      *template.Spec.Containers[0].DeepCopy(),
		gracePeriod:    grace,
	}
	p, err := newPod(spec, d.runner.herald, d.runner.podsDir, d.runner.kubeconfig, d.runner.logger, d.poke)
	if err != nil {
		d.logger.Error("failed to prepare a pod", "error", err.Error())
		return
	}
	d.mu.Lock()
	d.pods = append(d.pods, p)
	d.mu.Unlock()
	p.start()
}

// stopPod takes p out of the running pods at once (so the Service proxy
// sends it nothing new) and stops it in the background.
func (d *deploymentRunner) stopPod(p *pod) {
	p.terminating.Store(true)
	d.stopping.Add(1)
	go func() {
		defer d.stopping.Done()
		p.stop()
		d.poke()
	}()
}

// removeStopping drops the pods being stopped from the running ones.
func (d *deploymentRunner) removeStopping() {
	d.mu.Lock()
	defer d.mu.Unlock()
	kept := d.pods[:0]
	for _, p := range d.pods {
		if !p.terminating.Load() {
			kept = append(kept, p)
		}
	}
	d.pods = kept
}

// stopAll stops every pod at once and waits until they have exited.
func (d *deploymentRunner) stopAll() {
	d.mu.Lock()
	pods := d.pods
	d.pods = nil
	d.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range pods {
		wg.Go(p.stop)
	}
	wg.Wait()
	d.stopping.Wait()
}

// writeStatus writes the status the pods lead to, when it changed.
func (d *deploymentRunner) writeStatus(ctx context.Context, deployment *appsv1.Deployment, current string, desired int) {
	previous := deployment.Status
	if d.written != nil {
		previous = *d.written
	}
	// Whole seconds, as the API stores them, so that what was written
	// compares equal to what is read back.
	status := deploymentStatus(previous, d.views(), current, desired, deployment.Generation, metav1.Now().Rfc3339Copy())
	// The cache may not hold the last write yet: comparing with it too keeps
	// the loop from writing the same status again on every wake.
	if equality.Semantic.DeepEqual(deployment.Status, status) ||
		(d.written != nil && equality.Semantic.DeepEqual(*d.written, status)) {
		return
	}
	patched := deployment.DeepCopy()
	patched.Status = status
	if err := d.runner.client.Status().Patch(ctx, patched, client.MergeFrom(deployment)); err != nil {
		if !apierrors.IsNotFound(err) && ctx.Err() == nil {
			d.logger.Error("failed to write the Deployment status", "error", err.Error())
		}
		return
	}
	d.written = &status
}

// readyEndpoints are the serving addresses, on container port port, of the
// ready pods whose labels selector matches.
func (d *deploymentRunner) readyEndpoints(selector labels.Selector, port string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var addrs []string
	for _, p := range d.pods {
		if !p.Ready() || !selector.Matches(labels.Set(p.spec.labels)) {
			continue
		}
		if addr := p.Addr(port); addr != "" {
			addrs = append(addrs, addr)
		}
	}
	return addrs
}

// runningPods lists the pods that run, for tests and the printed summary.
func (d *deploymentRunner) runningPods() []*pod {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]*pod(nil), d.pods...)
}
