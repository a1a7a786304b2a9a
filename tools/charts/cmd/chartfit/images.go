package main

import (
	"fmt"
	"slices"
	"strings"
)

// ChartImage is an image a rendered release runs, and where.
type ChartImage struct {
	Release, Object, Image string
}

// chartImages lists every image the rendered releases run: the containers and init containers
// of their pod templates, the image of each Prometheus and Alertmanager resource (the operator
// makes their pods), and the config reloader the operator adds to them (its
// --prometheus-config-reloader flag). Helm test hooks are left out: an install never runs them.
func chartImages(rendered []*Rendered) []ChartImage {
	var out []ChartImage
	add := func(r *Rendered, obj, image string) {
		if image != "" {
			out = append(out, ChartImage{r.Release.Name, obj, image})
		}
	}
	for _, r := range rendered {
		for _, o := range r.Objects {
			if slices.Contains(o.Hook, "test") {
				continue
			}
			m := o.Map
			kind, _ := m["kind"].(string)
			obj := kind + "/" + str(dig(m, "metadata"), "name")
			spec := dig(m, "spec")
			switch kind {
			case "Prometheus", "Alertmanager":
				add(r, obj, str(spec, "image"))
				continue
			case "CronJob":
				spec = dig(spec, "jobTemplate", "spec")
			}
			pod := dig(spec, "template", "spec")
			for _, c := range slices.Concat(list(pod, "initContainers"), list(pod, "containers")) {
				image, _ := c["image"].(string)
				add(r, obj, image)
				if v, ok := flagValue(strs(c["args"]), "prometheus-config-reloader"); ok {
					add(r, obj+" (--prometheus-config-reloader)", v)
				}
			}
		}
	}
	return out
}

// checkImageDigests fails an image that carries a digest other than the one the program pins
// for its repository:tag (a chart bump that moved the tag, or a wrong value), and an image
// without a digest that the program does not let run by tag. Docker Hub's short names are
// compared in their full docker.io/ form.
func checkImageDigests(images []ChartImage, t *Table) []Finding {
	var out []Finding
	for _, img := range images {
		ref, digest, pinned := strings.Cut(img.Image, "@")
		ref = fullName(ref)
		switch want, known := t.ImageDigests[ref]; {
		case pinned && !known:
			out = append(out, Finding{Release: img.Release, Pod: img.Object, Problem: fmt.Sprintf("image %s carries a digest, but the program pins none for %s (versions/images.go)", img.Image, ref)})
		case pinned && digest != want:
			out = append(out, Finding{Release: img.Release, Pod: img.Object, Problem: fmt.Sprintf("image %s: the program pins %s for %s", img.Image, want, ref)})
		case !pinned && known:
			out = append(out, Finding{Release: img.Release, Pod: img.Object, Problem: fmt.Sprintf("image %s runs by tag, though the program pins %s for it: the chart's values do not carry the digest", img.Image, want)})
		case !pinned:
			if _, ok := t.TagOnly[ref]; !ok {
				out = append(out, Finding{Release: img.Release, Pod: img.Object, Problem: fmt.Sprintf("image %s runs by tag alone and versions/images.go gives no reason (tagOnly)", img.Image)})
			}
		}
	}
	return out
}

// fullName writes a Docker Hub reference in full: busybox:1 is docker.io/library/busybox:1.
func fullName(ref string) string {
	first, _, found := strings.Cut(ref, "/")
	if !found {
		return "docker.io/library/" + ref
	}
	if !strings.ContainsAny(first, ".:") && first != "localhost" {
		return "docker.io/" + ref
	}
	return ref
}

// printImages writes the images table: each image once, with where it runs and how it is pinned.
func printImages(w *strings.Builder, images []ChartImage, t *Table) {
	fmt.Fprintf(w, "images the charts run (digest: pinned in versions/images.go; tag: why not):\n")
	seen := map[string]bool{}
	for _, img := range images {
		if seen[img.Image] {
			continue
		}
		seen[img.Image] = true
		ref, _, pinned := strings.Cut(img.Image, "@")
		how := "digest"
		if !pinned {
			how = "tag: " + t.TagOnly[fullName(ref)]
		}
		fmt.Fprintf(w, "  %-30s %-70s %s\n", img.Release, ref, how)
	}
	fmt.Fprintln(w)
}
