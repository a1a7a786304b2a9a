// Command release makes the stack file change of a release pull request (docs/delivery.md):
//
//	release set-image -stack dev -service auth -image ghcr.io/<org>/<name>@sha256:<hex> -registry ghcr.io/<org>
//	release promote -from dev -to prod -service all
//
// set-image validates the inputs (a service of the images config, an image of the allowed
// registry pinned by digest) and changes images.<service> in Pulumi.<stack>.yaml and nothing
// else. promote copies the source stack's digests to the target stack. Both then load the
// changed stack's whole configuration as the program would, and write a pull request body to
// -body. The release workflows (.github/workflows/release.yml, promote.yml) run it with their
// inputs in the environment, never in the command's text.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/waste-coach/infra/config"
	"github.com/waste-coach/infra/internal/release"
	"github.com/waste-coach/infra/internal/stackfile"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "set-image":
		err = setImage(os.Args[2:])
	case "promote":
		err = promote(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: release set-image -stack S -service NAME -image REF@sha256:HEX -registry HOST/ORG [-body FILE]\n       release promote -from S -to S [-service all|NAME] [-body FILE]")
	os.Exit(2)
}

func setImage(args []string) error {
	fs := flag.NewFlagSet("set-image", flag.ExitOnError)
	dir := fs.String("dir", ".", "folder holding Pulumi.yaml")
	stack := fs.String("stack", "dev", "stack whose Pulumi.<stack>.yaml to change")
	service := fs.String("service", "", "service whose image to set: "+strings.Join(release.Services(), ", "))
	image := fs.String("image", "", "image reference pinned by digest")
	registry := fs.String("registry", "", "the allowed registry and organisation, such as ghcr.io/example")
	body := fs.String("body", "", "write the pull request's body here")
	_ = fs.Parse(args)

	if err := errors.Join(release.CheckService(*service), release.CheckImage(*image, *registry)); err != nil {
		return err
	}
	path := filepath.Join(*dir, "Pulumi."+*stack+".yaml")
	before, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	after, old, err := release.SetImage(before, *service, *image)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if old == *image {
		fmt.Printf("%s already runs %s: nothing to change\n", *stack, *image)
		return nil
	}
	if err := write(*dir, *stack, path, before, after); err != nil {
		return err
	}
	changes := []release.Change{{Service: *service, From: old, To: *image}}
	fmt.Printf("%s: %s %s -> %s\n", *stack, *service, old, *image)
	return writeBody(*body, fmt.Sprintf("Release %s to %s", *service, *stack), *stack, changes)
}

func promote(args []string) error {
	fs := flag.NewFlagSet("promote", flag.ExitOnError)
	dir := fs.String("dir", ".", "folder holding Pulumi.yaml")
	from := fs.String("from", "dev", "stack whose images to copy")
	to := fs.String("to", "prod", "stack to copy them to")
	service := fs.String("service", "all", "all, or one of "+strings.Join(release.Services(), ", "))
	body := fs.String("body", "", "write the pull request's body here")
	_ = fs.Parse(args)

	services := release.Services()
	if *service != "all" {
		if err := release.CheckService(*service); err != nil {
			return err
		}
		services = []string{*service}
	}
	source, err := os.ReadFile(filepath.Join(*dir, "Pulumi."+*from+".yaml"))
	if err != nil {
		return err
	}
	path := filepath.Join(*dir, "Pulumi."+*to+".yaml")
	before, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	after, changes, err := release.Promote(source, before, services)
	if err != nil {
		return err
	}
	if len(changes) == 0 {
		fmt.Printf("%s already runs %s's images of %s: nothing to promote\n", *to, *from, strings.Join(services, ", "))
		return nil
	}
	if err := write(*dir, *to, path, before, after); err != nil {
		return err
	}
	for _, c := range changes {
		fmt.Printf("%s: %s %s -> %s\n", *to, c.Service, c.From, c.To)
	}
	return writeBody(*body, fmt.Sprintf("Promote %s from %s to %s", strings.Join(names(changes), ", "), *from, *to), *to, changes)
}

// write replaces the stack file and loads the stack's whole configuration as the program would
// (a production stack refuses an image without a digest, for one); on a refusal the file is put
// back and the refusal returned.
func write(dir, stack, path string, before, after []byte) error {
	if err := os.WriteFile(path, after, 0o644); err != nil {
		return err
	}
	sc, err := stackfile.Read(dir, stack)
	if err == nil {
		_, err = config.Parse(stack, releaseLookup(sc.Values))
	}
	if err != nil {
		if restore := os.WriteFile(path, before, 0o644); restore != nil {
			return errors.Join(err, restore)
		}
		return fmt.Errorf("the changed %s is refused: %w", filepath.Base(path), err)
	}
	return nil
}

// releaseLookup serves the stack file's values to the config check. A `secure:` value cannot be
// decrypted here and arrives as a placeholder; a secret whose structure the check reads (the
// registry login, imagePullSecret) is left out rather than refused: the release changes images
// only, and the deploy checks the decrypted secret.
func releaseLookup(values map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := values[k]
		if ok && strings.HasSuffix(k, ":imagePullSecret") && strings.HasPrefix(v, stackfile.SecretPlaceholder) {
			return "", false
		}
		return v, ok
	}
}

func names(changes []release.Change) []string {
	var out []string
	for _, c := range changes {
		out = append(out, c.Service)
	}
	return slices.Compact(out)
}

// writeBody writes the pull request's title (first line) and body: what changes, what merging
// does, how to roll back.
func writeBody(path, title, stack string, changes []release.Change) error {
	if path == "" {
		return nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", title)
	fmt.Fprintf(&b, "Changes only `images` in `Pulumi.%s.yaml`:\n\n| service | from | to |\n|---|---|---|\n", stack)
	for _, c := range changes {
		fmt.Fprintf(&b, "| %s | `%s` | `%s` |\n", c.Service, c.From, c.To)
	}
	fmt.Fprintf(&b, "\nThe `%s` preview below must show only these Deployments' image changes. Merging deploys %s (deploy.yml", stack, stack)
	if stack == "prod" {
		b.WriteString(", after the `prod` environment's required reviewers approve")
	}
	b.WriteString("). Roll back by reverting this pull request's merge (docs/delivery.md, \"Application releases\").\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
