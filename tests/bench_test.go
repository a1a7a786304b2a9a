package tests

import (
	"io"
	"testing"

	"github.com/waste-coach/infra/internal/offline"
	"github.com/waste-coach/infra/internal/render"
)

// BenchmarkProgram evaluates the whole program for each stack under the mocks (what every test
// and the render command pay), and reports how many resources the stack declares.
func BenchmarkProgram(b *testing.B) {
	for _, stack := range stacks {
		b.Run(stack, func(b *testing.B) {
			b.ReportAllocs()
			var n int
			for b.Loop() {
				r, err := offline.Run("..", stack)
				if err != nil {
					b.Fatal(err)
				}
				n = len(r.Resources)
			}
			b.ReportMetric(float64(n), "resources")
		})
	}
}

// BenchmarkRender is the render command end to end for prod: evaluation and every file written.
func BenchmarkRender(b *testing.B) {
	b.ReportAllocs()
	dir := b.TempDir()
	for b.Loop() {
		r, err := offline.Run("..", "prod")
		if err != nil {
			b.Fatal(err)
		}
		if err := render.Write(r, dir, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}
