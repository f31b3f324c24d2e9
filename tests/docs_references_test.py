"""The repository documents itself: every reference to a doc resolves in it.

Scans the repository's text files (tracked and untracked-but-not-ignored, via
`git ls-files`; a plain walk without git) and checks that

* no file points at a document that is not in the repository (the release
  spec and the pitfalls list live in `docs/`, cited by their `docs/` path);
* every section cited as `docs/RELEASE.md §N.M` (or `Sec. N.M`) or
  `docs/PITFALLS.md N.M` is a numbered heading of that document;
* every `docs/...` path mentioned anywhere exists.

The checks are plain functions of a text, so the last tests feed them the
old, unresolvable forms and check that they are caught.
"""

import os
import re
import subprocess

_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Generated or foreign trees; `avlad_tf/configs` is setup.py's copy of gin/.
_SKIP_DIRS = {
    ".git",
    "build",
    "dist",
    "__pycache__",
    ".pytest_cache",
    os.path.join("avlad_tf", "configs"),
}

# Names built in pieces so that this file does not match its own patterns.
_OLD_SPEC = "ORIGINAL_" + "RELEASE"
_RELEASE, _PITFALLS = "docs" + "/RELEASE.md", "docs" + "/PITFALLS.md"
_DOC_NAMES = ("RELEASE", "PITFALLS", "STYLE", "REFERENCES", "PEERS")
# A bare or path-prefixed mention of one of the documents above.
_DOC_MENTION = re.compile(
    r"(?<![\w/.-])((?:[\w.-]+/)*)(" + "|".join(_DOC_NAMES) + r")\.md\b"
)
# A `docs/...` path (ends on a word character, so trailing punctuation and a
# bare `docs/` do not count).
_DOCS_PATH = re.compile(r"(?<![\w./-])docs/((?:[\w.-]+/)*[\w.-]*\w)")
_NUMBER = r"\d+(?:\.\d+)?"
# A markdown file under docs, an optional closing backtick, line breaks and comment marks,
# then `§`, `Sec.`, `section` or nothing, then numbers joined by `-`, `–`,
# `,` or `and` (each optionally with its own `§`).
_CITATION = re.compile(
    r"docs/([\w-]+\.md)`?[\s#*]*(?:§|Sec\.|[Ss]ections?)?\s*"
    r"(" + _NUMBER + r"(?:\s*(?:[-–,]|and)\s*§?\s*" + _NUMBER + r")*)"
)
_HEADING = re.compile(r"^#{1,6}\s+§?(\d+(?:\.\d+)*)(?![\d])", re.MULTILINE)


def _listed_files():
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=_ROOT,
            capture_output=True,
            check=True,
        ).stdout.decode("utf-8")
        return [p for p in out.split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        paths = []
        for top, dirs, files in os.walk(_ROOT):
            rel_top = os.path.relpath(top, _ROOT)
            dirs[:] = [
                d
                for d in dirs
                if os.path.normpath(os.path.join(rel_top, d)) not in _SKIP_DIRS
                and d not in _SKIP_DIRS
            ]
            paths += [os.path.normpath(os.path.join(rel_top, f)) for f in files]
        return paths


def _skipped(path):
    parts = path.split("/")
    return any(
        part in _SKIP_DIRS or part.endswith(".egg-info") for part in parts
    ) or path.startswith("avlad_tf/configs/")


def _text_files():
    """(relative path, text) of every UTF-8 text file in the repository."""
    for path in _listed_files():
        full = os.path.join(_ROOT, path)
        if _skipped(path) or not os.path.isfile(full):
            continue
        with open(full, "rb") as f:
            data = f.read()
        if b"\0" in data:
            continue
        try:
            yield path, data.decode("utf-8")
        except UnicodeDecodeError:
            continue


def _headings(doc):
    """Section numbers that are headings of `doc` (a path), or None."""
    path = os.path.join(_ROOT, doc)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return set(_HEADING.findall(f.read()))


def _expand(numbers):
    """'7.2, 12.11' -> 7.2, 12.11; '2-3' -> 2, 3; '12.9-10' -> 12.9, 12.10."""
    sections = []
    for part in re.split(r"\s*(?:,|and)\s*", numbers):
        ends = [e.strip().lstrip("§").strip() for e in re.split(r"[-–]", part)]
        if len(ends) == 1:
            sections.append(ends[0])
            continue
        first, last = ends[0], ends[-1]
        if "." in first and "." not in last:  # 12.9-10
            major, minor = first.split(".")
            sections += [f"{major}.{i}" for i in range(int(minor), int(last) + 1)]
        elif "." not in first and "." not in last:  # 2-3
            sections += [str(i) for i in range(int(first), int(last) + 1)]
        else:
            sections += [first, last]
    return sections


def unresolved_doc_mentions(text):
    """Mentions of documents that are not `docs/<name>` files of the repo."""
    problems = []
    if _OLD_SPEC in text:
        problems.append(f"mentions {_OLD_SPEC}; cite docs/RELEASE.md")
    for match in _DOC_MENTION.finditer(text):
        prefix, name = match.group(1), match.group(2) + ".md"
        if prefix != "docs/":
            problems.append(f"{match.group(0)!r}: not a docs/ path")
        elif not os.path.isfile(os.path.join(_ROOT, "docs", name)):
            problems.append(f"{match.group(0)!r}: docs/{name} does not exist")
    return problems


def unresolved_citations(text):
    """Citations of a section that is not a heading of the cited doc."""
    problems = []
    for match in _CITATION.finditer(text):
        doc, numbers = "docs" + "/" + match.group(1), match.group(2)
        headings = _headings(doc)
        if headings is None:
            problems.append(f"{match.group(0)!r}: {doc} does not exist")
            continue
        for section in _expand(numbers):
            if section not in headings:
                problems.append(f"{match.group(0)!r}: {doc} has no heading {section}")
    return problems


def missing_docs_paths(text):
    """`docs/...` paths that do not exist in the repository."""
    return [
        f"docs/{m.group(1)} does not exist"
        for m in _DOCS_PATH.finditer(text)
        if not os.path.exists(os.path.join(_ROOT, "docs", m.group(1)))
    ]


def _problems(check):
    return [
        f"{path}: {problem}" for path, text in _text_files() for problem in check(text)
    ]


def test_files_are_scanned():
    paths = {path for path, _ in _text_files()}
    for path in (
        "README.md",
        "docs/RELEASE.md",
        "docs/PITFALLS.md",
        "docs/PARITY.md",
        "avlad_tf/layers/netvlad.py",
        "gin/base.gin",
    ):
        assert path in paths


def test_docs_are_in_the_repository():
    assert _problems(unresolved_doc_mentions) == []


def test_cited_sections_exist():
    assert _problems(unresolved_citations) == []


def test_docs_paths_exist():
    assert _problems(missing_docs_paths) == []


def test_release_spec_has_the_cited_sections():
    headings = _headings(_RELEASE)
    # Top-level sections 0..13, and the quirk / gotcha items as headings.
    assert {str(i) for i in range(14)} <= headings
    assert {f"11.{i}" for i in range(1, 10)} <= headings
    assert {f"12.{i}" for i in range(1, 21)} <= headings


def test_old_references_are_caught():
    release, pitfalls = _RELEASE, _PITFALLS
    assert unresolved_doc_mentions(_OLD_SPEC + ".md §5.1")
    assert unresolved_doc_mentions(_OLD_SPEC + " 5.1")
    assert unresolved_doc_mentions("(PITFALLS" + ".md 3.6)")
    assert unresolved_doc_mentions("(STYLE" + ".md R2)")
    assert unresolved_doc_mentions("docs" + "/PEERS.md")
    assert not unresolved_doc_mentions(f"({release} §5.1, {pitfalls} 3.6)")


def test_bad_sections_are_caught():
    release, pitfalls = _RELEASE, _PITFALLS
    assert not unresolved_citations(f"({release} Sec. 7.2, 12.11)")
    assert not unresolved_citations(f"`{release}` §2–3 and {pitfalls} 3.9")
    assert not unresolved_citations(f"{release}\n# Sec. 9.2).")
    assert not unresolved_citations(f"({release} Sec. 12.9-10)")
    assert unresolved_citations(f"({release} §11.10)")
    assert unresolved_citations(f"({release} Sec. 7, 99)")
    assert unresolved_citations(f"({release} §12.19-21)")
    assert unresolved_citations(f"({pitfalls} Sec. 12)")
    assert unresolved_citations(f"({pitfalls} 3.18)")


def test_missing_paths_are_caught():
    assert missing_docs_paths("see docs/" + "NOPE.md.")
    assert missing_docs_paths("![x](docs/" + "figures/nope.png)")
    assert not missing_docs_paths("see docs/" + "PARITY.md.")
    assert not missing_docs_paths("the `docs/` folder")
