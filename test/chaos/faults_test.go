package chaos_test

import (
	"context"
	"fmt"

	. "github.com/onsi/ginkgo/v2"
)

// fault is one blow of the run, struck once a share of the notifications
// was accepted, so that it lands mid-publishing whatever the machine's pace.
type fault struct {
	at   float64 // share of the notifications accepted
	name string
	do   func() (string, error) // returns what it did, for the timeline
}

// strike runs the faults in order, each when its share is reached, and
// returns the first that failed.
func strike(ctx context.Context, faults []fault, p *progress, t *timeline) error {
	defer GinkgoRecover()
	for _, f := range faults {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: not struck: %w", f.name, ctx.Err())
		case <-p.reached(f.at):
		}
		accepted := p.count()
		did, err := f.do()
		if err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
		fmt.Fprintln(GinkgoWriter, "chaos: "+t.add("at %d accepted: %s", accepted, did))
	}
	return nil
}
