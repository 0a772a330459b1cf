// Command check parses the Terraform in a folder with HashiCorp's HCL parser (the one
// Terraform uses), offline, and prints a JSON summary for the tests: parse diagnostics, every
// block with its labels and attribute source text, and references (var.x, local.x, data.t.n,
// t.n) that resolve to nothing declared.
//
//	check infra/gcp
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

type block struct {
	Type   string            `json:"type"`
	Labels []string          `json:"labels"`
	File   string            `json:"file"`
	Attrs  map[string]string `json:"attrs"`
	Blocks []block           `json:"blocks"`
}

type summary struct {
	Files       []string `json:"files"`
	Diagnostics []string `json:"diagnostics"`
	Blocks      []block  `json:"blocks"`
	Unresolved  []string `json:"unresolved"`
}

// Names that are not declarations of this module.
var builtins = map[string]bool{"each": true, "count": true, "self": true, "path": true, "terraform": true}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: check <folder>")
		os.Exit(2)
	}
	files, _ := filepath.Glob(filepath.Join(os.Args[1], "*.tf"))
	sort.Strings(files)
	p := hclparse.NewParser()
	out := summary{Files: []string{}, Diagnostics: []string{}, Blocks: []block{}, Unresolved: []string{}}
	var bodies []*hclsyntax.Body
	var names []string
	for _, f := range files {
		file, diags := p.ParseHCLFile(f)
		for _, d := range diags {
			out.Diagnostics = append(out.Diagnostics, d.Error())
		}
		out.Files = append(out.Files, filepath.Base(f))
		if file == nil {
			continue
		}
		body := file.Body.(*hclsyntax.Body)
		bodies = append(bodies, body)
		names = append(names, filepath.Base(f))
	}

	declared := map[string]bool{}
	for i, body := range bodies {
		for _, b := range body.Blocks {
			out.Blocks = append(out.Blocks, convert(b, names[i], p))
			switch b.Type {
			case "resource":
				if len(b.Labels) == 2 {
					declared[b.Labels[0]+"."+b.Labels[1]] = true
				}
			case "data":
				if len(b.Labels) == 2 {
					declared["data."+b.Labels[0]+"."+b.Labels[1]] = true
				}
			case "variable":
				declared["var."+b.Labels[0]] = true
			case "locals":
				for name := range b.Body.Attributes {
					declared["local."+name] = true
				}
			case "module":
				declared["module."+b.Labels[0]] = true
			}
		}
	}

	seen := map[string]bool{}
	for i, body := range bodies {
		walk(body, func(expr hclsyntax.Expression) {
			for _, tr := range expr.Variables() {
				ref, ok := refName(tr)
				if !ok || declared[ref] || seen[ref] {
					continue
				}
				seen[ref] = true
				out.Unresolved = append(out.Unresolved, fmt.Sprintf("%s: %s (%s)", names[i], ref, tr.SourceRange()))
			}
		})
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// refName is the declaration a traversal refers to, e.g. "google_pubsub_topic.app".
func refName(tr hcl.Traversal) (string, bool) {
	root := tr.RootName()
	if builtins[root] {
		return "", false
	}
	attr := func(i int) (string, bool) {
		if len(tr) <= i {
			return "", false
		}
		if a, ok := tr[i].(hcl.TraverseAttr); ok {
			return a.Name, true
		}
		return "", false
	}
	switch root {
	case "var", "local", "module":
		n, ok := attr(1)
		return root + "." + n, ok
	case "data":
		t, ok1 := attr(1)
		n, ok2 := attr(2)
		return "data." + t + "." + n, ok1 && ok2
	default:
		n, ok := attr(1)
		return root + "." + n, ok
	}
}

func walk(body *hclsyntax.Body, visit func(hclsyntax.Expression)) {
	for _, a := range body.Attributes {
		visit(a.Expr)
	}
	for _, b := range body.Blocks {
		walk(b.Body, visit)
	}
}

func convert(b *hclsyntax.Block, file string, p *hclparse.Parser) block {
	out := block{Type: b.Type, Labels: b.Labels, File: file, Attrs: map[string]string{}, Blocks: []block{}}
	src := p.Files()
	for name, a := range b.Body.Attributes {
		r := a.Expr.Range()
		if f, ok := src[r.Filename]; ok {
			out.Attrs[name] = string(r.SliceBytes(f.Bytes))
		}
	}
	for _, nb := range b.Body.Blocks {
		out.Blocks = append(out.Blocks, convert(nb, file, p))
	}
	return out
}
