"""Rules on the package's source that readers and maintainers rely on.

- Words: the package, the README, the tests, the examples and the documentation cite papers by
  authors, title and year; a repository-internal name (a paper's number in the folder of paper texts
  beside the repository, or that folder's name) means nothing to a reader.
- Sizes: no function over 80 lines of code, no class over 450, and the estimator ``BilevelSearchCV``
  at most 300 (its metadata routing, ``cv_results_`` and search strategy live in their own modules).
  Lines of code exclude docstrings, comments and blank lines.
"""

import ast
import re
from pathlib import Path

import skbilevel

PACKAGE = Path(skbilevel.__file__).parent
REPOSITORY = PACKAGE.parent
INTERNAL_NAMES = re.compile("paper" + r" 00[0-9x]|" + "shared" + "/papers", re.IGNORECASE)  # split: not itself a hit
MAX_FUNCTION_LINES, MAX_CLASS_LINES, MAX_SEARCH_ESTIMATOR_LINES = 80, 450, 300


def _sources():
    """The package's modules, the README, the tests, the examples and the documentation's sources."""
    files = sorted(PACKAGE.rglob("*.py"))
    files += sorted(path for folder in ("tests", "examples") for path in (REPOSITORY / folder).glob("*.py"))
    files += [path for path in [REPOSITORY / "README.md"] if path.is_file()]
    doc = REPOSITORY / "doc"
    if doc.is_dir():  # not the build output (_build) nor what Sphinx generates
        generated = {"_build", "generated", "auto_examples"}
        files += sorted(path for path in doc.rglob("*") if path.suffix in {".py", ".rst", ".md"}
                        and not generated.intersection(path.relative_to(doc).parts))
    return files


def _docstring_lines(tree):
    """Line numbers of every module, class and function docstring in ``tree``."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                    and isinstance(first.value.value, str)):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def _sizes(path):
    """``(qualified name, kind, lines of code)`` of every function and class defined in ``path``."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    text, docstrings = source.splitlines(), _docstring_lines(tree)

    def code_lines(node):
        return sum(1 for number in range(node.lineno, node.end_lineno + 1)
                   if number not in docstrings and text[number - 1].strip()
                   and not text[number - 1].strip().startswith("#"))

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                kind = "class" if isinstance(child, ast.ClassDef) else "function"
                yield f"{prefix}{child.name}", kind, code_lines(child)
                yield from visit(child, f"{prefix}{child.name}.")
            else:
                yield from visit(child, prefix)

    return list(visit(tree, ""))


def _where(path):
    return path.relative_to(REPOSITORY).as_posix()


def test_no_repository_internal_paper_names():
    found = [f"{_where(path)}:{number}: {line.strip()}"
             for path in _sources()
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if INTERNAL_NAMES.search(line)]
    assert not found, "cite the paper by authors, title and year:\n" + "\n".join(found)


def test_functions_and_classes_are_short():
    over = [f"{_where(path)}: {kind} {name}: {lines} lines of code"
            for path in sorted(PACKAGE.rglob("*.py"))
            for name, kind, lines in _sizes(path)
            if lines > (MAX_CLASS_LINES if kind == "class" else MAX_FUNCTION_LINES)]
    assert not over, "\n".join(over)


def test_the_search_estimator_is_at_most_300_lines():
    sizes = {name: lines for path in sorted(PACKAGE.rglob("*.py")) for name, _, lines in _sizes(path)}
    assert "BilevelSearchCV" in sizes
    assert sizes["BilevelSearchCV"] <= MAX_SEARCH_ESTIMATOR_LINES, sizes["BilevelSearchCV"]


def test_the_size_count_excludes_docstrings_comments_and_blank_lines(tmp_path):
    source = tmp_path / "example.py"
    source.write_text('class A:\n    """Doc.\n\n    More.\n    """\n\n    # why\n    def f(self):\n'
                      '        """Doc."""\n        x = """not a\n        docstring"""\n        return x\n')
    assert _sizes(source) == [("A", "class", 5), ("A.f", "function", 4)]
