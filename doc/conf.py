"""Sphinx configuration of the skbilevel documentation.

Build (from the repository root)::

    python -m sphinx -W -b html doc doc/_build/html

``-D plot_gallery=0`` skips running the gallery examples. Nothing here needs
the network: no intersphinx, MathJax is loaded by the browser.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
os.environ.setdefault("MPLBACKEND", "Agg")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import skbilevel  # noqa: E402

# -- project ----------------------------------------------------------------
project = "skbilevel"
author = "the skbilevel developers"
copyright = "2026, the skbilevel developers"
release = skbilevel.__version__
version = release

# -- general ----------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.codeobj.json",
    "**.ipynb_checkpoints",
]
# benchmarks/*.md include the tables of ../benchmarks/results (MyST {include}, headings shifted one level)
default_role = "literal"
nitpicky = False

# -- autodoc / autosummary / numpydoc --------------------------------------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {}
autodoc_typehints = "none"
# numpydoc renders the class docstrings; autosummary's class template lists
# the methods, so numpydoc's own member tables would duplicate them.
numpydoc_show_class_members = False
numpydoc_show_inherited_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# autosummary's one-line summaries end at the first ". "; it already skips "e.g." and "i.e.",
# and the summaries here also use the mathematical "s.t." ("min F s.t. h = 0"), where a cut
# would break an inline literal (a docutils warning) or leave a formula half written.
import sphinx.ext.autosummary as _autosummary  # noqa: E402

if hasattr(_autosummary, "WELL_KNOWN_ABBREVIATIONS") and " s.t." not in _autosummary.WELL_KNOWN_ABBREVIATIONS:
    _autosummary.WELL_KNOWN_ABBREVIATIONS = (*_autosummary.WELL_KNOWN_ABBREVIATIONS, " s.t.")

# -- MyST ---------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3

# -- sphinx-gallery -----------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "ignore_pattern": r"__init__\.py|quickstart\.py",
    "reference_url": {"skbilevel": None},
    "backreferences_dir": "generated/backreferences",
    "doc_module": ("skbilevel",),
    "abort_on_example_error": True,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "within_subsection_order": "FileNameSortKey",
    "remove_config_comments": True,
    "show_memory": False,
    "download_all_examples": False,
}

# -- HTML ---------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skbilevel {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "header_links_before_dropdown": 7,
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
    "icon_links": [],
}
# No primary (left) sidebar on pages without a section navigation (an empty one only narrows the
# column), nor on the benchmark and gallery pages, whose figures, tables and code want the width
# (they link to each other).
html_sidebars = {page: [] for page in ("index", "installation", "parallel", "limitations", "references",
                                       "benchmarks", "benchmarks/*", "auto_examples/*")}
html_context = {"default_mode": "light"}

warnings.filterwarnings("ignore", category=UserWarning, message="Matplotlib is currently using agg")


def _skip_metadata_requests(app, what, name, obj, skip, options):
    """Leave out scikit-learn's generated ``set_{method}_request`` methods: their docstrings
    refer to scikit-learn's glossary, which does not exist here (and skbilevel's estimators
    route no metadata)."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return None


_SKLEARN_ROLE = re.compile(r":(?:ref|term):`(?:([^`<]*?)\s*<[^`>]+>|([^`]+))`")


def _unlink_sklearn_references(app, what, name, obj, options, lines):
    """Inherited scikit-learn methods (``score``, ``get_params``, ...) keep their docstrings, but
    their ``:ref:`` and ``:term:`` roles point into scikit-learn's own documentation: without
    intersphinx (no network here) they would be unresolved references. Keep their text."""
    module = getattr(obj, "__module__", None) or ""
    if not module.startswith("sklearn"):
        return
    lines[:] = [_SKLEARN_ROLE.sub(lambda m: m.group(1) or f"``{m.group(2)}``", line) for line in lines]


# The benchmark tables of ../benchmarks/results are written for the repository: their bullet notes
# record the command, machine, versions and history of each run, and name the papers by the
# numbers of the project's reading list. The documentation shows their headings, tables and
# paragraphs, with the papers named by authors and year; the notes stay in the files.
_PAPERS = {"000": "Huang et al. (2025)", "001": "the perturbed-gradient paper (2025)",
           "002": "Grazzi et al. (2026)", "003": "Liu et al. (2021)", "004": "Sharifi et al. (2025)"}
_PAPER = re.compile(r"\b[Pp]aper (00[0-4])\b")
_COMMIT = re.compile(r",?\s*\(?\bcommits? [0-9a-f]{7,40}\b\)?")


def _readable_results(text: str) -> str:
    """Drop the bullet notes (a line starting with "- " and its indented continuation lines) and the
    sections that list the runs behind a table (a heading "Runs" or "Run ...")."""
    kept, in_note, skip_level = [], False, 0
    for line in text.splitlines():
        heading = re.match(r"(#+)\s", line)
        if heading and skip_level and len(heading.group(1)) <= skip_level:
            skip_level = 0
        if heading and re.match(r"#+\s+Runs?\b", line):
            skip_level = len(heading.group(1))
        if skip_level:
            continue
        if line.startswith("- "):
            in_note = True
            continue
        if in_note and line.startswith((" ", "\t")):
            continue
        in_note = False
        kept.append(line)
    # a lead-in line ("... messages:") whose list was dropped, and a heading left without content
    kept = [line for k, line in enumerate(kept) if not (line.endswith(":") and _ends_section(kept, k))]
    kept = [line for k, line in enumerate(kept) if not _empty_heading(kept, k)]
    # a class on each table, for the style sheet (numbers on one line, a smaller font)
    kept = [f"```{{rst-class}} benchmark-table\n```\n{line}" if _starts_table(kept, k) else line
            for k, line in enumerate(kept)]
    text = "\n".join(kept) + "\n"
    text = _PAPER.sub(lambda m: _PAPERS[m.group(1)], text)
    text = text.replace("the foundation issue", "the project").replace("foundation issue", "project")
    return _COMMIT.sub("", text)


def _starts_table(lines, k):
    """Whether line ``k`` is the header row of a Markdown table."""
    return (lines[k].startswith("|") and (k == 0 or not lines[k - 1].startswith("|"))
            and k + 1 < len(lines) and re.match(r"\|\s*:?-", lines[k + 1]) is not None)


def _empty_heading(lines, k):
    """Whether line ``k`` is a heading followed by nothing, or by a heading of its level or above."""
    level = len(re.match(r"#*", lines[k]).group(0))
    if not level:
        return False
    following = next((line for line in lines[k + 1:] if line.strip()), "")
    following_level = len(re.match(r"#*", following).group(0))
    return not following or 0 < following_level <= level


def _ends_section(lines, k):
    """Whether line ``k`` is the last text of its section (the next non-blank line is a heading, or none)."""
    following = next((line for line in lines[k + 1:] if line.strip()), "#")
    return following.startswith("#")


def _include_results(app, relative_path, parent_docname, content):
    if "benchmarks/results/" in Path(relative_path).as_posix():
        content[0] = _readable_results(content[0])


def setup(app):
    app.connect("include-read", _include_results)
    app.connect("autodoc-skip-member", _skip_metadata_requests)
    app.connect("autodoc-process-docstring", _unlink_sklearn_references)
