"""docs/spec.md is the specification the repository cites, and the repository is self-contained.

Docstrings, comments, tests, pages and notebooks cite the released model's behaviour as
"spec §n" or "spec §n step k" (several at once: "spec §2/§5", "spec §2, §5, §8",
"spec §3 steps 1-9"). This file checks that

* every such citation in the repository's text files names a numbered section of
  docs/spec.md ("## n. Title") and, where a step is cited, a step of that section
  ("### Step k: ...");
* every link into docs/spec.md (``spec.md#anchor``) names a heading that exists;
* docs/spec.md and docs/index.md say what "spec §n" means, at the top;
* no file refers to a path outside the repository: no relative link that climbs above the
  repository root, no absolute path of the machine it was written on, no private notes.
"""
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "docs" / "spec.md"
TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".cfg", ".ini", ".yml", ".yaml", ".json",
                 ".ipynb", ".sh", ".rst", ""}
SKIP_DIRS = {"__pycache__", ".git", ".pytest_cache", ".ipynb_checkpoints", "build", "dist",
             "runs", "out", ".benchmarks"}

# "spec" (any case), then everything up to the end of the clause; the §-numbers inside it.
CITATION = re.compile(r"\bspec\s+(§[^\n)\].;:|]*)", re.IGNORECASE)
SECTION = re.compile(r"§\s*(\d+)(?:\s+steps?\s+(\d+)(?:\s*[-–]\s*(\d+))?)?")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*$", re.M)
SPEC_LINK = re.compile(r"\]\(((?:\.\./)*(?:docs/)?spec\.md)(#[^)\s]*)?\)")
MD_LINK = re.compile(r"\]\(([^)\s]+)\)")


def repository_files():
    """The repository's text files: git's tracked and not-ignored files when git can list
    them, else a walk that skips build, cache and run folders."""
    try:
        listed = subprocess.run(
            ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
             "--exclude-standard"], capture_output=True, check=True, timeout=60).stdout
        paths = [ROOT / name for name in listed.decode("utf-8").split("\0") if name]
    except (OSError, subprocess.SubprocessError):
        paths = []
        for folder, dirs, files in os.walk(ROOT):
            dirs[:] = [d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info")
                       and (not d.startswith(".") or d == ".ci")]
            paths += [Path(folder) / name for name in files]
    return sorted(p for p in paths if p.is_file() and p.suffix in TEXT_SUFFIXES)


def _read(path):
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None


def slug(title):
    """The anchor a Markdown renderer (GitHub's rule) gives a heading."""
    title = re.sub(r"[^\w\- ]", "", title.strip().lower())
    return title.replace(" ", "-")


def spec_outline(text):
    """({section number: set of step numbers}, {anchor}) of the spec page's headings."""
    sections, anchors, current, seen = {}, set(), None, {}
    for hashes, title in HEADING.findall(text):
        anchor = slug(title)
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        anchors.add(anchor if count == 0 else f"{anchor}-{count}")
        numbered = re.match(r"(\d+)\.\s", title)
        step = re.match(r"Step (\d+):", title)
        if len(hashes) == 2:
            current = int(numbered.group(1)) if numbered else None
            if current is not None:
                sections[current] = set()
        elif len(hashes) == 3 and step and current is not None:
            sections[current].add(int(step.group(1)))
    return sections, anchors


def citations(text):
    """[(section, step or None, the cited words)] of every "spec §n" citation in ``text``."""
    found = []
    for clause in CITATION.finditer(text):
        for number, first, last in SECTION.findall(clause.group(1)):
            steps = [None] if not first else range(int(first), int(last or first) + 1)
            found += [(int(number), step, clause.group(0).strip()) for step in steps]
    return found


def missing_citations(text, outline):
    sections = outline[0]
    return [(section, step, words) for section, step, words in citations(text)
            if section not in sections or (step is not None and step not in sections[section])]


OUTLINE = spec_outline(SPEC.read_text(encoding="utf-8"))
FILES = repository_files()


def test_the_spec_has_the_sections_the_repository_cites():
    sections, _ = OUTLINE
    assert sorted(sections) == list(range(1, 10))
    assert sections[3] == set(range(1, 11))       # contextual attention, steps 1..10


def test_the_citation_reader_finds_every_form_and_reports_what_is_missing():
    text = ("(spec §2/§5 tables) spec §2, §5, §8) Spec §3 steps 1-3; spec §1's example "
            "spec §5 critics, §6 losses) spec §3 step) spec §12. spec §3 step 11\n"
            "spec §4: and §9 after the clause is not read")
    assert [(s, k) for s, k, _ in citations(text)] == [
        (2, None), (5, None), (2, None), (5, None), (8, None), (3, 1), (3, 2), (3, 3),
        (1, None), (5, None), (6, None), (3, None), (12, None), (3, 11), (4, None)]
    assert [(s, k) for s, k, _ in missing_citations(text, OUTLINE)] == [(12, None), (3, 11)]


def test_every_spec_citation_in_the_repository_resolves():
    missing, count = [], 0
    for path in FILES:
        text = _read(path)
        if text is None or path == Path(__file__).resolve():
            continue
        count += len(citations(text))
        missing += [f"{path.relative_to(ROOT)}: {words!r} -> §{section}"
                    + (f" step {step}" if step else "")
                    for section, step, words in missing_citations(text, OUTLINE)]
    assert count >= 80, f"only {count} citations found: is the reader broken?"
    assert not missing, "citations with no section in docs/spec.md:\n" + "\n".join(missing)


def test_every_link_into_the_spec_names_a_heading():
    _, anchors = OUTLINE
    broken, count = [], 0
    for path in FILES:
        text = _read(path)
        if path.suffix not in (".md", ".ipynb") or text is None:
            continue
        for target, anchor in SPEC_LINK.findall(text):
            if (path.parent / target).resolve() != SPEC:
                continue
            count += 1
            if anchor and anchor[1:] not in anchors:
                broken.append(f"{path.relative_to(ROOT)}: {target}{anchor}")
    assert count >= 10, count
    assert not broken, f"links to headings docs/spec.md does not have: {broken}"


def test_the_spec_and_the_index_say_what_spec_section_means():
    top = SPEC.read_text(encoding="utf-8")[:600]
    assert '"spec §n" means section n of this page (docs/spec.md)' in top
    index = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")[:800]
    assert re.search(r'"spec §n".{0,160}?\]\(spec\.md\)', index, re.S), \
        "docs/index.md should say that \"spec §n\" refers to docs/spec.md (with a link)"


def test_every_equation_row_links_its_section_of_the_spec():
    """docs/equations.md: each row's equation cell points at the spec section that states it
    (or says it is the paper's evaluation, which the spec does not cover)."""
    rows = [line for line in (ROOT / "docs" / "equations.md").read_text(encoding="utf-8")
            .splitlines() if line.startswith("| ") and not line.startswith("| equation |")]
    assert len(rows) >= 50, len(rows)
    unlinked = [row[:80] for row in rows
                if not SPEC_LINK.search(row.split(" | ")[0])
                and "outside the spec" not in row.split(" | ")[0]]
    assert not unlinked, f"equations without a spec link: {unlinked}"


# Paths that point outside the repository. Written so that this file does not match them.
OUTSIDE = [
    (re.compile(r"(?:\.\./)+shared\b|\bshared/+spec\b|deepfill-v1\.md"),
     "the project's private spec folder"),
    (re.compile(r"(?<![\w.~-])/(?:work|home|root|Users|mnt|srv)/[\w.-]"),
     "an absolute path on the author's machine"),
    (re.compile(r"[A-Za-z]:\\\\?Users\\"), "an absolute Windows path"),
    (re.compile(r"helper-note[s]|\.librar[y]/"), "private notes"),
]


@pytest.mark.parametrize("pattern, what", OUTSIDE, ids=[w for _, w in OUTSIDE])
def test_no_file_refers_outside_the_repository(pattern, what):
    found = []
    for path in FILES:
        text = _read(path)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if pattern.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not found, f"{what}:\n" + "\n".join(found)


def test_no_relative_link_climbs_out_of_the_repository():
    escaping = []
    for path in FILES:
        text = _read(path)
        if path.suffix not in (".md", ".ipynb") or text is None:
            continue
        for link in MD_LINK.findall(text):
            if re.match(r"[a-z][a-z0-9+.-]*:", link) or link.startswith("#"):
                continue
            target = (path.parent / link.split("#")[0]).resolve()
            if ROOT.resolve() not in (target, *target.parents):
                escaping.append(f"{path.relative_to(ROOT)}: {link}")
    assert not escaping, f"links that leave the repository: {escaping}"


def test_the_outside_patterns_catch_what_they_are_meant_to():
    samples = ["see ../sha" + "red/spec/x.md", "/" + "work/main/README.md",
               "C:\\" + "Users\\me", "helper" + "-notes/common.md", "the .lib" + "rary/ folder"]
    assert all(any(p.search(s) for p, _ in OUTSIDE) for s in samples)
    fine = ["/tmp/run", "https://github.com/JiahuiYu/generative_inpainting",
            "inpainting/weights/README.md", "docs/spec.md"]
    assert not any(p.search(s) for s in fine for p, _ in OUTSIDE)
