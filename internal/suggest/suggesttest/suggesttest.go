// Package suggesttest checks, for a package's tests, that each list of
// valid options given to suggest.Hint says what its parser accepts.
package suggesttest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// CheckLists parses the Go files matching pattern (a filepath.Glob
// pattern, such as "caddyfile.go" or "*.go"; test files are skipped) and
// finds every call suggest.Hint(name, list), list being a package variable. The call must
// sit in the default clause of a switch on option names; the switch's
// string cases must be exactly the names in lists[list], apart from those
// in refused (names recognised only to be refused with a reason of their
// own, never offered). Every entry of lists must be used by some call.
func CheckLists(t *testing.T, pattern string, lists map[string][]string, refused ...string) {
	t.Helper()
	paths, err := filepath.Glob(pattern)
	if err != nil || len(paths) == 0 {
		t.Fatalf("no file matches %q (%v)", pattern, err)
	}
	fset := token.NewFileSet()
	used := map[string]bool{}
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		var stack []ast.Node
		ast.Inspect(f, func(n ast.Node) bool {
			if n == nil {
				stack = stack[:len(stack)-1]
				return true
			}
			stack = append(stack, n)
			call, ok := n.(*ast.CallExpr)
			if !ok || !isHint(call) {
				return true
			}
			pos := fset.Position(call.Pos())
			list, ok := call.Args[1].(*ast.Ident)
			if !ok {
				t.Errorf("%s: suggest.Hint's list is not a package variable", pos)
				return true
			}
			used[list.Name] = true
			want, ok := lists[list.Name]
			if !ok {
				t.Errorf("%s: %s is not among the lists checked; add it", pos, list.Name)
				return true
			}
			cases, ok := switchCases(stack)
			if !ok {
				t.Errorf("%s: suggest.Hint is not in the default clause of a switch", pos)
				return true
			}
			for _, c := range cases {
				if !slices.Contains(want, c) && !slices.Contains(refused, c) {
					t.Errorf("%s: the switch accepts %q but %s does not list it", pos, c, list.Name)
				}
			}
			for _, w := range want {
				if !slices.Contains(cases, w) {
					t.Errorf("%s: %s lists %q but the switch has no such case", pos, list.Name, w)
				}
				if slices.Contains(refused, w) {
					t.Errorf("%s: %s lists %q, a name that is refused", pos, list.Name, w)
				}
			}
			return true
		})
	}
	for name := range lists {
		if !used[name] {
			t.Errorf("no suggest.Hint call in %s uses %s", pattern, name)
		}
	}
}

func isHint(call *ast.CallExpr) bool {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "Hint" || len(call.Args) != 2 {
		return false
	}
	pkg, ok := sel.X.(*ast.Ident)
	return ok && pkg.Name == "suggest"
}

// switchCases returns the string cases of the switch whose default clause
// is the innermost clause around the end of stack.
func switchCases(stack []ast.Node) ([]string, bool) {
	for i := len(stack) - 1; i >= 2; i-- {
		clause, ok := stack[i].(*ast.CaseClause)
		if !ok {
			continue
		}
		sw, ok := stack[i-2].(*ast.SwitchStmt)
		if !ok || clause.List != nil {
			return nil, false
		}
		var cases []string
		for _, st := range sw.Body.List {
			for _, e := range st.(*ast.CaseClause).List {
				if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					if s, err := strconv.Unquote(lit.Value); err == nil {
						cases = append(cases, s)
					}
				}
			}
		}
		return cases, true
	}
	return nil, false
}

// Block is one block of options: its list, and a configuration with %s
// where one option goes.
type Block struct {
	List []string
	Src  string
}

// Lists returns the blocks' lists by the blocks' names, for CheckLists.
func Lists(blocks map[string]Block) map[string][]string {
	lists := make(map[string][]string, len(blocks))
	for name, b := range blocks {
		lists[name] = b.List
	}
	return lists
}

// CheckAccepted feeds every listed option, without its arguments, in its
// block to parse (the real parser, such as the Caddyfile adapter), and
// checks that none is refused as unknown: an error, if any, must not name
// it as `option "<name>"` (one about the missing arguments is fine). A
// list offers nothing its parser refuses.
func CheckAccepted(t *testing.T, blocks map[string]Block, parse func(src string) error) {
	t.Helper()
	for _, name := range slices.Sorted(maps.Keys(blocks)) {
		for _, opt := range blocks[name].List {
			err := parse(fmt.Sprintf(blocks[name].Src, opt))
			if err != nil && strings.Contains(err.Error(), fmt.Sprintf("option %q", opt)) {
				t.Errorf("%s lists %q, which its parser does not recognize: %v", name, opt, err)
			}
		}
	}
}
