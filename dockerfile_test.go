package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// No Docker engine runs the tests, so the Dockerfile's build stage is checked
// against what `go build .` compiles: every Go file of the module that the
// binary needs must be copied into the build, or the image build fails.
var _ = It("copies every source file the herald binary is built from into the image build", func() {
	sources := dockerCopySources("Dockerfile")
	Expect(sources).NotTo(BeEmpty())

	out, err := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}|{{join .GoFiles \",\"}}|{{join .EmbedFiles \",\"}}{{end}}{{end}}", ".").Output()
	Expect(err).NotTo(HaveOccurred())
	root, err := os.Getwd()
	Expect(err).NotTo(HaveOccurred())
	var checked int
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		parts := strings.Split(line, "|")
		dir, err := filepath.Rel(root, parts[0])
		Expect(err).NotTo(HaveOccurred())
		for _, list := range parts[1:] {
			for file := range strings.SplitSeq(list, ",") {
				if file == "" {
					continue
				}
				path := filepath.ToSlash(filepath.Join(dir, file))
				Expect(copied(sources, path)).To(BeTrue(), "%s is not copied by the Dockerfile", path)
				checked++
			}
		}
	}
	Expect(checked).To(BeNumerically(">", 20))
})

// dockerCopySources lists the sources of the COPY instructions that copy
// from the build context (not --from another stage).
func dockerCopySources(path string) []string {
	GinkgoHelper()
	f, err := os.Open(path)
	Expect(err).NotTo(HaveOccurred())
	defer f.Close()
	var sources []string
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) < 3 || fields[0] != "COPY" || strings.HasPrefix(fields[1], "--from") {
			continue
		}
		sources = append(sources, fields[1:len(fields)-1]...)
	}
	Expect(scanner.Err()).NotTo(HaveOccurred())
	return sources
}

// copied reports whether a COPY source covers path: the same file, a glob
// matching it, or a directory holding it.
func copied(sources []string, path string) bool {
	for _, src := range sources {
		src = strings.TrimPrefix(src, "./")
		if ok, _ := filepath.Match(src, path); ok {
			return true
		}
		if dir := strings.TrimSuffix(src, "/"); strings.HasSuffix(src, "/") && strings.HasPrefix(path, dir+"/") {
			return true
		}
	}
	return false
}
