package rbac_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// updateEnv, set to 1, makes the specs write what the API server answered
// into testdata/ instead of comparing: review the diff before committing it.
const updateEnv = "HERALD_UPDATE_RBAC"

// A right is one row of `kubectl auth can-i --list`: resource (or "-" for
// a non-resource URL), non-resource URLs, resource names and verbs, each list
// as kubectl prints it ("[get list watch]").
type right struct{ resource, urls, names, verbs string }

func (r right) String() string {
	return strings.Join([]string{r.resource, r.urls, r.names, r.verbs}, " ")
}

// rowPattern splits a row of kubectl's table, or of a testdata file; the
// resource column is empty on kubectl's rows for non-resource URLs.
var rowPattern = regexp.MustCompile(`^(\S*)\s+(\[[^\]]*\])\s+(\[[^\]]*\])\s+(\[[^\]]*\])\s*$`)

// parseRights reads rows, skipping blank lines and # comments.
func parseRights(text string) ([]right, error) {
	var rights []right
	scanner := bufio.NewScanner(strings.NewReader(text))
	for scanner.Scan() {
		line := scanner.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		m := rowPattern.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("not a row of kubectl auth can-i --list: %q", line)
		}
		resource := m[1]
		if resource == "" {
			resource = "-"
		}
		rights = append(rights, right{resource, m[2], m[3], m[4]})
	}
	return rights, scanner.Err()
}

// rightsOf asks the API server what identity may do in namespace, with the
// command the README shows.
func rightsOf(ctx context.Context, identity, namespace string) []right {
	GinkgoHelper()
	listed := kubectl(ctx, "auth", "can-i", "--list", "--no-headers", "--as="+identity, "--namespace="+namespace)
	Expect(listed.Err).NotTo(HaveOccurred(), listed.Stderr)
	rights, err := parseRights(listed.Stdout)
	Expect(err).NotTo(HaveOccurred())
	return rights
}

// without is rights less those in baseline, sorted.
func without(rights, baseline []right) []right {
	var out []right
	for _, r := range rights {
		if !slices.Contains(baseline, r) {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b right) int { return strings.Compare(a.String(), b.String()) })
	return slices.Compact(out)
}

// formatRights renders a testdata file: a header saying what it holds, then
// the rights as aligned columns.
func formatRights(header string, rights []right) string {
	var b strings.Builder
	for line := range strings.SplitSeq(header, "\n") {
		b.WriteString(strings.TrimSpace("# "+line) + "\n")
	}
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "# RESOURCE\tNON-RESOURCE URLS\tRESOURCE NAMES\tVERBS")
	for _, r := range rights {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.resource, r.urls, r.names, r.verbs)
	}
	Expect(w.Flush()).To(Succeed())
	return b.String()
}

// rightsDiff lists the rights only in want ("-") and only in got ("+"), one
// a line; empty when both hold the same.
func rightsDiff(want, got []right) string {
	var b strings.Builder
	for _, r := range want {
		if !slices.Contains(got, r) {
			b.WriteString("  - " + r.String() + "\n")
		}
	}
	for _, r := range got {
		if !slices.Contains(want, r) {
			b.WriteString("  + " + r.String() + "\n")
		}
	}
	return b.String()
}

var _ = Describe("what each identity may do, beyond what every authenticated identity may", func() {
	// baseline is what an identity no binding names may do in the
	// namespace: the cluster's own grants to every authenticated user or
	// ServiceAccount (discovery, self reviews), left out of the lists.
	baseline := func(ctx context.Context, namespace string) []right {
		GinkgoHelper()
		user := rightsOf(ctx, unboundUser, namespace)
		Expect(user).NotTo(BeEmpty(), "an authenticated user may at least review itself")
		return append(user, rightsOf(ctx, unboundServiceAcct, namespace)...)
	}

	DescribeTable("matches testdata/",
		func(ctx SpecContext, file, identity, namespace, why string) {
			got := without(rightsOf(ctx, identity, namespace), baseline(ctx, namespace))
			path := filepath.Join("testdata", file)
			header := fmt.Sprintf("%s\n\n  kubectl auth can-i --list --as=%s --namespace=%s\n\n"+
				"less what every authenticated identity may do. Written by %s=1 go test ./test/rbac/;\n"+
				"a change here widens or narrows what Herald may do: review it.", why, identity, namespace, updateEnv)
			if os.Getenv(updateEnv) == "1" {
				Expect(os.WriteFile(path, []byte(formatRights(header, got)), 0o644)).To(Succeed())
				return
			}
			data, err := os.ReadFile(path)
			Expect(err).NotTo(HaveOccurred(), "no expected list: create it with %s=1 go test ./test/rbac/", updateEnv)
			want, err := parseRights(string(data))
			Expect(err).NotTo(HaveOccurred(), path)
			Expect(rightsDiff(want, got)).To(BeEmpty(), "%s may do other things than %s lists "+
				"(- listed but not granted, + granted but not listed).\n"+
				"If the change is intended, update the file with\n  %s=1 go test ./test/rbac/\nand review its diff.",
				identity, path, updateEnv)
		},
		Entry("operator.txt", "operator.txt", operatorSA, teamA,
			"The operator's ServiceAccount, in a namespace with channels (config/rbac/role.yaml, a ClusterRole)."),
		Entry("operator-own-namespace.txt", "operator-own-namespace.txt", operatorSA, operatorNamespace,
			"The operator's ServiceAccount in its own namespace: leader election and its own Pod\n(config/rbac/leader_election_role.yaml) on top of the ClusterRole."),
		Entry("streamer.txt", "streamer.txt", streamerSA, teamA,
			"The streamers of channel team-a/app (key Secret app-keys, NATS credentials app-nats,\nTLS certificate app-tls), in the channel's namespace: their Role (controllers/resources.Role) and system:auth-delegator."),
		Entry("streamer-other-namespace.txt", "streamer-other-namespace.txt", streamerSA, teamB,
			"The streamers of channel team-a/app in another namespace: system:auth-delegator only."),
		Entry("viewer.txt", "viewer.txt", viewer, teamA,
			"A person bound to herald-viewer (aggregated into the built-in view role)."),
		Entry("channel-editor.txt", "channel-editor.txt", channelEditor, teamA,
			"A person bound to herald-notificationchannel-editor (aggregated into admin and edit)."),
		Entry("systemevent-editor.txt", "systemevent-editor.txt", systemEventEditor, teamA,
			"A person bound to herald-systemevent-editor alone: on-call announcing with kubectl apply."),
		Entry("publisher.txt", "publisher.txt", publisherSA, teamA,
			"A backend's ServiceAccount bound to herald-publisher: publishes with its own token."),
		Entry("metrics-reader.txt", "metrics-reader.txt", prometheusSA, teamA,
			"A scraper's ServiceAccount bound to herald-metrics-reader: the operator's /metrics."),
	)
})

var _ = Describe("what an identity may not do", func() {
	DescribeTable("kubectl auth can-i answers",
		func(ctx SpecContext, identity, namespace string, allowed bool, request ...string) {
			args := append([]string{"auth", "can-i"}, request...)
			answer := kubectl(ctx, append(args, "--as="+identity, "--namespace="+namespace)...)
			want := map[bool]string{true: "yes", false: "no"}[allowed]
			Expect(strings.TrimSpace(answer.Stdout)).To(Equal(want), "%s: kubectl auth can-i %s (%s)",
				identity, strings.Join(request, " "), answer.Stderr)
			if allowed {
				Expect(answer.Err).NotTo(HaveOccurred())
			} else {
				Expect(answer.Err).To(HaveOccurred(), "kubectl exits 1 on no")
			}
		},
		// The streamer: its own channel and Secrets, by name, and nothing else.
		Entry("the streamer reads its key Secret", streamerSA, teamA, true, "get", "secrets/app-keys"),
		Entry("the streamer reads its NATS credentials", streamerSA, teamA, true, "get", "secrets/app-nats"),
		Entry("the streamer reads its TLS certificate", streamerSA, teamA, true, "watch", "secrets/app-tls"),
		Entry("the streamer cannot read another channel's TLS certificate", streamerSA, teamA, false, "get", "secrets/other-tls"),
		Entry("the streamer cannot read another channel's Secret", streamerSA, teamA, false, "get", "secrets/other-keys"),
		Entry("the streamer cannot list Secrets", streamerSA, teamA, false, "list", "secrets"),
		Entry("the streamer cannot read a Secret of its name in another namespace", streamerSA, teamB, false, "get", "secrets/app-keys"),
		Entry("the streamer cannot change its Secret", streamerSA, teamA, false, "update", "secrets/app-keys"),
		Entry("the streamer reads its channel", streamerSA, teamA, true, "get", "notificationchannels.notify.herald.dev/app"),
		Entry("the streamer cannot read another channel", streamerSA, teamA, false, "get", "notificationchannels.notify.herald.dev/other"),
		Entry("the streamer cannot change its channel", streamerSA, teamA, false, "patch", "notificationchannels.notify.herald.dev/app"),
		Entry("the streamer cannot write another channel's status", streamerSA, teamA, false,
			"patch", "notificationchannels.notify.herald.dev/other", "--subresource=status"),
		Entry("the streamer records delivery on SystemEvents", streamerSA, teamA, true,
			"patch", "systemevents.notify.herald.dev/maintenance", "--subresource=status"),
		Entry("the streamer cannot create SystemEvents", streamerSA, teamA, false, "create", "systemevents.notify.herald.dev"),
		Entry("the streamer cannot read pods", streamerSA, teamA, false, "get", "pods"),
		// People.
		Entry("a viewer reads channels", viewer, teamA, true, "get", "notificationchannels.notify.herald.dev"),
		Entry("a viewer cannot read Secrets", viewer, teamA, false, "get", "secrets/app-keys"),
		Entry("a viewer cannot edit channels", viewer, teamA, false, "update", "notificationchannels.notify.herald.dev"),
		Entry("a viewer cannot announce", viewer, teamA, false, "create", "systemevents.notify.herald.dev"),
		Entry("a viewer cannot publish", viewer, teamA, false, "create", "notificationchannels.notify.herald.dev/app", "--subresource=publish"),
		Entry("a viewer sees nothing in another namespace", viewer, teamB, false, "get", "notificationchannels.notify.herald.dev"),
		Entry("a channel editor edits channels", channelEditor, teamA, true, "update", "notificationchannels.notify.herald.dev"),
		Entry("a channel editor cannot write a channel's status", channelEditor, teamA, false,
			"patch", "notificationchannels.notify.herald.dev/app", "--subresource=status"),
		Entry("a channel editor cannot read Secrets", channelEditor, teamA, false, "get", "secrets/app-keys"),
		Entry("an on-call engineer announces", systemEventEditor, teamA, true, "create", "systemevents.notify.herald.dev"),
		Entry("an on-call engineer cannot edit channels", systemEventEditor, teamA, false, "update", "notificationchannels.notify.herald.dev"),
		Entry("an on-call engineer cannot write a SystemEvent's status", systemEventEditor, teamA, false,
			"patch", "systemevents.notify.herald.dev/maintenance", "--subresource=status"),
		Entry("a backend publishes", publisherSA, teamA, true, "create", "notificationchannels.notify.herald.dev/app", "--subresource=publish"),
		Entry("a backend cannot read channels", publisherSA, teamA, false, "get", "notificationchannels.notify.herald.dev/app"),
		Entry("a backend cannot publish in another namespace", publisherSA, teamB, false,
			"create", "notificationchannels.notify.herald.dev/app", "--subresource=publish"),
		Entry("a scraper reads the operator's /metrics", prometheusSA, teamA, true, "get", "/metrics"),
		Entry("a scraper cannot read channels", prometheusSA, teamA, false, "get", "notificationchannels.notify.herald.dev"),
		// The operator: the objects of a channel, and no more.
		Entry("the operator cannot change a channel's spec", operatorSA, teamA, false, "update", "notificationchannels.notify.herald.dev/app"),
		Entry("the operator cannot write Secrets", operatorSA, teamA, false, "update", "secrets/app-keys"),
		Entry("the operator cannot create pods", operatorSA, teamA, false, "create", "pods"),
		Entry("the operator cannot exec into pods", operatorSA, teamA, false, "create", "pods", "--subresource=exec"),
		Entry("the operator cannot delete namespaces", operatorSA, teamA, false, "delete", "namespaces/team-a"),
		Entry("the operator binds system:auth-delegator", operatorSA, teamA, true, "bind", "clusterroles.rbac.authorization.k8s.io/system:auth-delegator"),
		Entry("the operator cannot bind cluster-admin", operatorSA, teamA, false, "bind", "clusterroles.rbac.authorization.k8s.io/cluster-admin"),
		// Escalate and bind on Roles let it grant its streamers the Secrets
		// it may not read; the admission policies fence what it writes
		// with them (policy_test.go).
		Entry("the operator escalates Roles", operatorSA, teamA, true, "escalate", "roles.rbac.authorization.k8s.io"),
		Entry("the operator binds Roles", operatorSA, teamA, true, "bind", "roles.rbac.authorization.k8s.io"),
		Entry("the operator cannot escalate a ClusterRole", operatorSA, teamA, false, "escalate", "clusterroles.rbac.authorization.k8s.io"),
		Entry("the operator cannot create ClusterRoles", operatorSA, teamA, false, "create", "clusterroles.rbac.authorization.k8s.io"),
		Entry("the operator cannot impersonate", operatorSA, teamA, false, "impersonate", "serviceaccounts"),
		// The streamers check the Secrets their channel names (issue #15).
		Entry("the operator cannot read a Secret", operatorSA, teamA, false, "get", "secrets/app-keys"),
		Entry("the operator cannot list Secrets", operatorSA, teamA, false, "list", "secrets"),
		Entry("the operator cannot watch Secrets", operatorSA, teamA, false, "watch", "secrets"),
		Entry("the operator cannot read a Secret in its own namespace", operatorSA, operatorNamespace, false, "get", "secrets"),
	)
})
