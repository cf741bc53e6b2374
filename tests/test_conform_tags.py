"""Every statement tag of protocol_spec.md has a case in the kit, and every
tag a case names exists in the specification."""

import re
from pathlib import Path

from bluetrace.conform.modes import MODES

SPEC = Path(__file__).resolve().parent.parent / "protocol_spec.md"
TAG = re.compile(r"\[(BT-[0-9]+(?:\.[0-9]+)?-[0-9]+)\]")


def spec_tags() -> list[str]:
    return TAG.findall(SPEC.read_text(encoding="utf-8"))


def case_tags() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for cases in MODES.values():
        for case in cases:
            for tag in case.tags:
                found.setdefault(tag, []).append(case.id)
    return found


def test_the_specification_is_tagged() -> None:
    assert len(spec_tags()) >= 40


def test_each_tag_is_defined_once() -> None:
    tags = spec_tags()
    assert sorted(tag for tag in set(tags) if tags.count(tag) > 1) == []


def test_each_tag_follows_its_section() -> None:
    """``[BT-3.4-2]`` sits in section 3.4 (or a section of 3.4's own number)."""
    section = "0"
    misplaced = []
    for line in SPEC.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"#{2,3} ([0-9]+(?:\.[0-9]+)?)\.? ", line)
        if heading:
            section = heading.group(1)
        misplaced += [tag for tag in TAG.findall(line) if tag.split("-")[1] != section]
    assert misplaced == []


def test_every_tag_has_a_case() -> None:
    covered = case_tags()
    assert [tag for tag in spec_tags() if tag not in covered] == []


def test_every_case_tag_exists() -> None:
    defined = set(spec_tags())
    unknown = {tag: ids for tag, ids in case_tags().items() if tag not in defined}
    assert unknown == {}


def test_case_ids_are_unique_and_follow_sections() -> None:
    ids = [case.id for cases in MODES.values() for case in cases]
    assert len(ids) == len(set(ids))
    for case_id in ids:
        mode, section, name = case_id.split("/")
        assert mode in MODES
        assert re.fullmatch(r"[0-9]+(\.[0-9]+)?|notes", section), case_id
        assert re.fullmatch(r"[a-z0-9-]+", name), case_id
