package main

// TEMPORARY: run()'s steps, until startPlatform (main.go) is on main.

import (
	"context"
	"log/slog"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	notifyv1alpha1 "github.com/herald-notify/herald/api/v1alpha1"
	"github.com/herald-notify/herald/controllers/resources"
	"github.com/herald-notify/herald/internal/apiserver"
)

type browserPlatform struct {
	kubeconfig, serviceAddr, pageURL string
	tokens                           *tokenSigner
	runner                           *Runner
}

func startBrowserPlatform(ctx context.Context) browserPlatform {
	GinkgoHelper()
	root := filepath.Join("..", "..")
	stateDir := GinkgoT().TempDir()
	server, err := apiserver.Start(filepath.Join(root, "config", "crd", "bases"), stateDir)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(server.Stop)
	operatorCtx, stopOperator := context.WithCancel(context.Background())
	operatorDone, err := startOperator(operatorCtx, server)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { stopOperator(); <-operatorDone })
	runner, err := NewRunner(RunnerOptions{
		Config: server.Config, Scheme: server.Scheme, Kubeconfig: server.Kubeconfig,
		Herald: heraldBin, Dir: filepath.Join(stateDir, "pods"),
		Logger: slog.New(slog.NewTextHandler(GinkgoWriter, nil)),
	})
	Expect(err).NotTo(HaveOccurred())
	runnerCtx, stopRunner := context.WithCancel(context.Background())
	runnerDone := make(chan error, 1)
	go func() { runnerDone <- runner.Run(runnerCtx) }()
	DeferCleanup(func() { stopRunner(); Eventually(runnerDone, time.Minute).Should(Receive(BeNil())) })

	page, err := listenPage()
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(page.Close)
	keyFile := filepath.Join(stateDir, "sample-key")
	Expect(createSampleKey(ctx, server, keyFile)).To(Succeed())
	samples, err := filepath.Glob(filepath.Join(root, "config", "samples", "*.yaml"))
	Expect(err).NotTo(HaveOccurred())
	var objs []*unstructured.Unstructured
	for _, file := range samples {
		fileObjs, err := apiserver.ReadManifests(file)
		Expect(err).NotTo(HaveOccurred())
		objs = append(objs, fileObjs...)
	}
	Expect(allowOrigin(objs, sampleChannel, page.Origin())).To(Succeed())
	Expect(apiserver.Apply(ctx, server.Client, namespace, fieldOwner, objs...)).To(Succeed())
	service := client.ObjectKey{Namespace: namespace, Name: resources.ObjectName(sampleChannel)}
	addr, err := waitServiceAddr(ctx, runner, service, resources.PortNameHTTP)
	Expect(err).NotTo(HaveOccurred())
	channel := &notifyv1alpha1.NotificationChannel{}
	Expect(server.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: sampleChannel}, channel)).To(Succeed())
	Expect(servePage(page, root, keyFile, addr, channel)).To(Succeed())
	tokens, err := newTokenSigner(keyFile, sampleKeyID, channel)
	Expect(err).NotTo(HaveOccurred())
	return browserPlatform{kubeconfig: server.Kubeconfig, serviceAddr: addr, pageURL: page.URL(), tokens: tokens, runner: runner}
}
