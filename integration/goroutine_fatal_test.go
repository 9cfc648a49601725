package integration

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"testing"
)

// goroutineCheckedFiles are the test files whose goroutines must not end
// the test: t.FailNow (t.Fatal, t.Skip and the helpers that call them)
// stops only the goroutine it runs on, so called from one a test started it
// leaves the test running on with its failure half reported. Such a
// goroutine sends its failure back to the test's goroutine instead. A file
// joins the list once it does.
var goroutineCheckedFiles = []string{"lifecycle_test.go"}

// TestNoFailNowOnTestStartedGoroutines checks goroutineCheckedFiles: no
// function started with `go` calls, directly or through a helper of this
// package, a method of testing.TB that ends the test.
func TestNoFailNowOnTestStartedGoroutines(t *testing.T) {
	t.Parallel()
	fset := token.NewFileSet()
	paths, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]*ast.File{}
	for _, p := range paths {
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files[p] = f
	}
	ending := failNowCallers(files)
	for _, name := range goroutineCheckedFiles {
		f := files[name]
		if f == nil {
			t.Errorf("%s: no such test file", name)
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			g, ok := n.(*ast.GoStmt)
			if !ok {
				return true
			}
			if callee := callsAny(g.Call, ending); callee != "" {
				t.Errorf("%s: a goroutine started here calls %s, which can end the test: send the failure to the test's goroutine instead",
					fset.Position(g.Pos()), callee)
			}
			return true
		})
	}
}

// failNowCallers returns the names of testing.TB's methods that end a test
// and of the package's functions and methods that call one, directly or
// not. Names are matched without types: a helper that shares a name with
// one of these counts as one, which errs on the side of reporting.
func failNowCallers(files map[string]*ast.File) map[string]bool {
	ending := map[string]bool{"Fatal": true, "Fatalf": true, "FailNow": true, "Skip": true, "Skipf": true, "SkipNow": true}
	var funcs []*ast.FuncDecl
	for _, f := range files {
		for _, d := range f.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Body != nil {
				funcs = append(funcs, fd)
			}
		}
	}
	for grew := true; grew; {
		grew = false
		for _, fd := range funcs {
			if !ending[fd.Name.Name] && callsAny(fd.Body, ending) != "" {
				ending[fd.Name.Name] = true
				grew = true
			}
		}
	}
	return ending
}

// callsAny returns the name of the first call in n to one of names, not
// counting calls inside goroutines that n starts (those are checked on
// their own).
func callsAny(n ast.Node, names map[string]bool) string {
	found := ""
	ast.Inspect(n, func(x ast.Node) bool {
		if found != "" {
			return false
		}
		if g, ok := x.(*ast.GoStmt); ok && g != n {
			return false
		}
		call, ok := x.(*ast.CallExpr)
		if !ok {
			return true
		}
		switch fn := call.Fun.(type) {
		case *ast.Ident:
			if names[fn.Name] {
				found = fn.Name
			}
		case *ast.SelectorExpr:
			if names[fn.Sel.Name] {
				found = fn.Sel.Name
			}
		}
		return true
	})
	return found
}
