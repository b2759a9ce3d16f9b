"""Write every benchmark table, ``benchmarks/results/<benchmark>.md``, from the benchmark's records.

Usage::

    python -m benchmarks.render            # rewrite the tables
    python -m benchmarks.render --check    # exit 1 if a committed table differs from its records
"""

import argparse
import importlib
import sys

from benchmarks._harness import RESULTS, read_records

#: the benchmarks that write a table
BENCHMARKS = ("example_2_2", "generalisation", "hyper_cleaning", "search_vs_grid", "svm_paper",
              "svm_validation_losses")


def rendered(name):
    """The table of benchmark ``name`` as its records give it."""
    module = importlib.import_module(f"benchmarks.{name}")
    return module.render(read_records(name))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed tables, write nothing")
    opts = parser.parse_args(argv)
    differ = []
    for name in BENCHMARKS:
        path, text = RESULTS / f"{name}.md", rendered(name)
        if opts.check:
            if not path.is_file() or path.read_text() != text:
                differ.append(name)
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(RESULTS.parents[1])}")
    if differ:
        sys.exit("tables that differ from their records: " + ", ".join(differ))


if __name__ == "__main__":
    main()
